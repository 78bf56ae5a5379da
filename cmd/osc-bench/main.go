package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"

	"osc/internal/load"
)

// Targets from the issues: osc copies at least half as fast as the raw
// INSERT … SELECT with no load, and holds writers up less than a second at
// cut-over (the PostgreSQL issue's target; checked on both).
const (
	minRatio    = 0.5
	maxCutStall = time.Second
)

type options struct {
	rows, rate, chunkSize int
	oscBin                string
}

func main() {
	var o options
	flag.IntVar(&o.rows, "rows", 1000000, "rows in the benchmark table")
	flag.IntVar(&o.rate, "rate", 200, "write transactions per second during the loaded osc run")
	flag.StringVar(&o.oscBin, "osc", "bin/osc", "path of the osc binary")
	flag.IntVar(&o.chunkSize, "chunk-size", 0, "passed to osc as --chunk-size (0: osc's default)")
	only := flag.String("only", "", `run only "mysql" or "postgres"`)
	flag.Parse()
	if o.rows < 1 || o.rate < 1 || o.chunkSize < 0 {
		fmt.Fprintln(os.Stderr, "osc-bench: --rows and --rate must be at least 1, --chunk-size at least 0")
		os.Exit(2)
	}
	if *only != "" && *only != "mysql" && *only != "postgres" {
		fmt.Fprintf(os.Stderr, "osc-bench: --only must be mysql or postgres, not %q\n", *only)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	failed := false
	var results []result
	for _, b := range []bench{mysqlBench(o.rows), postgresBench(o.rows)} {
		if *only != "" && *only != b.name {
			continue
		}
		if ctx.Err() != nil {
			break // interrupted
		}
		res, err := b.run(ctx, o)
		results = append(results, res...)
		if err != nil {
			fmt.Fprintf(os.Stderr, "osc-bench: %s: %v\n", b.name, err)
			failed = true
		}
	}
	printResults(o, results)
	if failed {
		os.Exit(1)
	}
}

// bench is one database's benchmark: its connection and its SQL.
type bench struct {
	name, driver, dsn string
	version           string   // query returning the server version
	setup             []string // create and fill the table; {rows} = rows
	settle            string   // vacuum/analyze the table before each run
	createCopy        string   // an empty table like the benchmark table
	dropHelpers       string   // drops the raw copy and osc's tables
	oscArgs           []string // how osc reaches the table
	write             func(*rand.Rand) string
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func mysqlBench(rows int) bench {
	host, port, user := env("OSC_MYSQL_HOST", "127.0.0.1"), env("OSC_MYSQL_PORT", "13306"), env("OSC_MYSQL_USER", "root")
	return bench{
		name:    "mysql",
		driver:  "mysql",
		dsn:     fmt.Sprintf("%s@tcp(%s:%s)/osc_demo", user, host, port),
		version: "SELECT VERSION()",
		setup: []string{
			`CREATE TABLE osc_bench (
				id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
				account_id INT NOT NULL,
				qty INT NOT NULL,
				status VARCHAR(16) NOT NULL,
				label VARCHAR(64) NOT NULL,
				price DECIMAL(12,2) NOT NULL,
				created_at DATETIME NOT NULL,
				updated_at DATETIME NOT NULL) ENGINE=InnoDB`,
			`INSERT INTO osc_bench (account_id, qty, status, label, price, created_at, updated_at)
				SELECT seq % 50000, seq % 100, ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'done'),
				       CONCAT('item ', seq, ' ', MD5(seq)), (seq % 100000) / 100,
				       '2024-01-01' + INTERVAL seq SECOND, '2024-01-01' + INTERVAL seq SECOND
				FROM seq_1_to_{rows}`,
		},
		settle:      "ANALYZE TABLE osc_bench",
		createCopy:  "CREATE TABLE osc_bench_copy LIKE osc_bench",
		dropHelpers: "DROP TABLE IF EXISTS osc_bench_copy, osc_bench_osc_new, osc_bench_osc_log, osc_bench_osc_old",
		oscArgs:     []string{"--host", host, "--port", port, "--user", user, "--database", "osc_demo", "--table", "osc_bench"},
		write:       writeLoad(rows),
	}
}

func postgresBench(rows int) bench {
	dsn := env("OSC_PG_DSN", "postgres://postgres@127.0.0.1:15432/osc_test?sslmode=disable")
	return bench{
		name:    "postgres",
		driver:  "pgx",
		dsn:     dsn,
		version: "SHOW server_version",
		setup: []string{
			`CREATE TABLE public.osc_bench (
				id bigserial PRIMARY KEY,
				account_id int NOT NULL,
				qty int NOT NULL,
				status varchar(16) NOT NULL,
				label varchar(64) NOT NULL,
				price numeric(12,2) NOT NULL,
				created_at timestamp NOT NULL,
				updated_at timestamp NOT NULL)`,
			`INSERT INTO public.osc_bench (account_id, qty, status, label, price, created_at, updated_at)
				SELECT g % 50000, g % 100, (ARRAY['new', 'paid', 'shipped', 'done'])[1 + g % 4],
				       'item ' || g || ' ' || md5(g::text), (g % 100000) / 100.0,
				       timestamp '2024-01-01' + g * interval '1 second', timestamp '2024-01-01' + g * interval '1 second'
				FROM generate_series(1, {rows}) g`,
		},
		// Sets hint bits and the visibility map, so that the first copy
		// does not pay for them, and keeps autovacuum (due on a freshly
		// filled table) from running beside a measured run.
		settle:      "VACUUM ANALYZE public.osc_bench",
		createCopy:  "CREATE TABLE public.osc_bench_copy (LIKE public.osc_bench INCLUDING ALL)",
		dropHelpers: "DROP TABLE IF EXISTS public.osc_bench_copy, public._osc_bench_osc, public._osc_bench_old",
		oscArgs:     []string{"--dsn", dsn, "--table", "public.osc_bench"},
		write:       writeLoad(rows),
	}
}

// writeLoad returns the load's transactions, the same SQL on both databases:
// a quarter inserts, a quarter deletes and half updates, over the key range.
func writeLoad(rows int) func(*rand.Rand) string {
	return func(r *rand.Rand) string {
		id := r.IntN(rows) + 1
		switch r.IntN(4) {
		case 0:
			return fmt.Sprintf(`INSERT INTO osc_bench (account_id, qty, status, label, price, created_at, updated_at)
				VALUES (%d, 1, 'new', 'live insert', 9.99, NOW(), NOW())`, r.IntN(50000))
		case 1:
			return fmt.Sprintf("DELETE FROM osc_bench WHERE id = %d", id)
		default:
			return fmt.Sprintf("UPDATE osc_bench SET qty = qty + 1, status = 'paid', updated_at = NOW() WHERE id = %d", id)
		}
	}
}

// result is one measured run.
type result struct {
	db, run    string
	rows       int64
	copy, wall time.Duration // wall: osc's whole run; 0 for the raw copy
	raw        bool

	cutFrom, cutTo time.Time     // osc's cutting-over state, as seen in its log
	ckFrom, ckTo   time.Time     // osc's checksumming state, as seen in its log
	ckBlocked      time.Duration // the longest the checksum blocked writes (its log)
	ckP99, ckStall time.Duration // writes during the checksum: p99, longest in flight
	load           *load.Stats   // nil when there was no load
	cutStall       time.Duration // longest write in flight during the cut-over
}

func (r result) rate() float64 { return float64(r.rows) / r.copy.Seconds() }

// run benchmarks one database: the raw copy, osc with no load, osc under
// load. It returns the runs measured before any failure.
func (b bench) run(ctx context.Context, o options) (res []result, err error) {
	db, err := sql.Open(b.driver, b.dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(8)
	var version string
	if err := db.QueryRowContext(ctx, b.version).Scan(&version); err != nil {
		return nil, fmt.Errorf("connect (is the sandbox up? bash localtests/sandbox.sh up): %w", err)
	}
	drop := func(ctx context.Context) error {
		for _, s := range []string{b.dropHelpers, "DROP TABLE IF EXISTS osc_bench"} {
			if _, err := db.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("drop the benchmark's tables: %w", err)
			}
		}
		return nil
	}
	if err := drop(ctx); err != nil {
		return nil, err
	}
	defer func() {
		// The tables go even when ctx was cancelled (Ctrl-C).
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		err = errors.Join(err, drop(ctx))
	}()

	progress("%s (%s): building a table of %d rows", b.name, version, o.rows)
	start := time.Now()
	for _, s := range append(b.setup, b.settle) {
		if _, err := db.ExecContext(ctx, strings.ReplaceAll(s, "{rows}", strconv.Itoa(o.rows))); err != nil {
			return nil, fmt.Errorf("build the table: %w", err)
		}
	}
	progress("%s: built in %s", b.name, time.Since(start).Round(time.Millisecond))

	progress("%s: raw copy: INSERT INTO osc_bench_copy SELECT * FROM osc_bench", b.name)
	raw, err := b.rawCopy(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("raw copy: %w", err)
	}
	raw.db, raw.run, raw.rows, raw.raw = b.name, "raw INSERT … SELECT", int64(o.rows), true
	res = append(res, raw)

	progress("%s: osc --execute, no write load", b.name)
	r, err := b.osc(ctx, db, o, "ADD COLUMN bench_a INT NULL")
	if err != nil {
		return res, fmt.Errorf("osc, no load: %w", err)
	}
	r.db, r.run = b.name, "osc, no load"
	res = append(res, r)

	progress("%s: osc --execute under %d writes/s", b.name, o.rate)
	w, err := load.Start(ctx, db, b.write, o.rate)
	if err != nil {
		return res, err
	}
	time.Sleep(time.Second)
	r, oscErr := b.osc(ctx, db, o, "ADD COLUMN bench_b INT NULL")
	time.Sleep(time.Second) // writes keep landing on the new table
	st := w.Stop()
	r.db, r.run, r.load = b.name, fmt.Sprintf("osc, %d writes/s", o.rate), &st
	if oscErr != nil {
		return res, fmt.Errorf("osc under load: %w", oscErr)
	}
	r.cutStall = st.MaxDuring(r.cutFrom, r.cutTo)
	r.ckP99, r.ckStall = st.P99During(r.ckFrom, r.ckTo), st.MaxDuring(r.ckFrom, r.ckTo)
	res = append(res, r)
	if st.Errors > 0 {
		return res, fmt.Errorf("osc under load: %d of %d writes failed; the first: %w", st.Errors, st.Count, st.FirstErr)
	}
	return res, nil
}

// rawCopy times INSERT INTO copy SELECT * FROM t into an empty copy of the
// table, and drops the copy.
func (b bench) rawCopy(ctx context.Context, db *sql.DB) (result, error) {
	if _, err := db.ExecContext(ctx, b.createCopy); err != nil {
		return result{}, err
	}
	start := time.Now()
	if _, err := db.ExecContext(ctx, "INSERT INTO osc_bench_copy SELECT * FROM osc_bench"); err != nil {
		return result{}, err
	}
	r := result{copy: time.Since(start)}
	if _, err := db.ExecContext(ctx, b.dropHelpers); err != nil {
		return result{}, err
	}
	return r, nil
}

// osc runs osc --execute with alter, streaming its output, then drops the
// old table it leaves behind and settles the new one for the next run.
func (b bench) osc(ctx context.Context, db *sql.DB, o options, alter string) (result, error) {
	// Replica-lag throttling is off: it would measure how fast the sandbox's
	// single-threaded replica replays the copy, not the copy itself (the raw
	// INSERT … SELECT does not wait for replicas either).
	// The copy is what is measured: the ALTER alone would run natively.
	args := append(append([]string{}, b.oscArgs...), "--alter", alter, "--execute", "--max-lag-millis", "0", "--strategy", "copy")
	if o.chunkSize > 0 {
		args = append(args, "--chunk-size", strconv.Itoa(o.chunkSize))
	}
	progress("%s %s", o.oscBin, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, o.oscBin, args...) //nolint:gosec // G204: the osc binary the developer named (--osc)
	// On Ctrl-C let osc clean up after itself.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 2 * time.Minute
	out, err := cmd.StderrPipe()
	if err != nil {
		return result{}, err
	}
	cmd.Stdout = cmd.Stderr // the status lines, in the same stream as the log
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	var r result
	failure := "" // osc's own error line
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(os.Stderr, "    osc| "+line)
		r.observe(line, time.Now())
		if strings.HasPrefix(line, "osc: error:") {
			failure = line
		}
	}
	if err := cmd.Wait(); err != nil {
		return r, fmt.Errorf("%s: %w (%s)", o.oscBin, err, failure)
	}
	r.wall = time.Since(start)
	if r.copy <= 0 || r.cutFrom.IsZero() || r.cutTo.IsZero() {
		return r, errors.New(`osc succeeded but its log lacks the "row copy complete" line (rows=, elapsed=) or the cutting-over state`)
	}
	if _, err := db.ExecContext(ctx, b.dropHelpers); err != nil {
		return r, fmt.Errorf("drop the old table: %w", err)
	}
	if _, err := db.ExecContext(ctx, b.settle); err != nil {
		return r, fmt.Errorf("settle the new table: %w", err)
	}
	return r, nil
}

// observe reads one line of osc's log (slog text format).
func (r *result) observe(line string, at time.Time) {
	switch {
	case strings.Contains(line, `msg="row copy complete"`):
		r.rows, _ = strconv.ParseInt(field(line, "rows"), 10, 64)
		r.copy, _ = time.ParseDuration(field(line, "elapsed"))
	case strings.Contains(line, `msg=state state=checksumming`):
		r.ckFrom = at
	case strings.Contains(line, "msg=state ") && !r.ckFrom.IsZero() && r.ckTo.IsZero():
		r.ckTo = at
		if strings.Contains(line, `state="cutting over"`) {
			r.cutFrom = at
		}
	case strings.Contains(line, `msg="checksum: writes blocked"`):
		if d, err := time.ParseDuration(field(line, "for")); err == nil {
			r.ckBlocked = max(r.ckBlocked, d)
		}
	case strings.Contains(line, `msg=state state="cutting over"`):
		r.cutFrom = at
	case strings.Contains(line, "msg=state ") && !r.cutFrom.IsZero() && r.cutTo.IsZero():
		r.cutTo = at
	}
}

// field returns the unquoted value of key=value in a slog text line.
func field(line, key string) string {
	_, v, ok := strings.Cut(line, " "+key+"=")
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, " ")
	return v
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "=== "+format+"\n", args...)
}

func printResults(o options, results []result) {
	fmt.Printf("\nosc-bench: %d rows, write load %d tx/s, nproc %d, osc with --max-lag-millis 0", o.rows, o.rate, runtime.NumCPU())
	// The machine may be shared: its load colours every number below.
	if avg, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf(", load average %s", strings.Join(strings.Fields(string(avg))[:3], " "))
	}
	fmt.Print("\n\n")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	header := []string{"database", "run", "rows", "copy time", "rows/s", "vs raw", "osc wall", "checksum", "vs copy",
		"checksum block", "cut-over", "writes", "errors", "write p99", "write max", "max write during cut-over",
		"p99 during checksum", "max write during checksum"}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	raw := map[string]float64{}
	for _, r := range results {
		if r.raw {
			raw[r.db] = r.rate()
		}
		cells := []string{r.db, r.run, strconv.FormatInt(r.rows, 10), ms(r.copy), fmt.Sprintf("%.0f", r.rate()),
			fmt.Sprintf("%.2f×", r.rate()/raw[r.db])}
		if !r.raw {
			ck := r.ckTo.Sub(r.ckFrom)
			cells = append(cells, ms(r.wall), ms(ck), fmt.Sprintf("%.0f%%", 100*ck.Seconds()/r.copy.Seconds()),
				ms(r.ckBlocked), ms(r.cutTo.Sub(r.cutFrom)))
		}
		if r.load != nil {
			cells = append(cells, strconv.FormatInt(r.load.Count, 10), strconv.FormatInt(r.load.Errors, 10),
				ms(r.load.P99), ms(r.load.Max), ms(r.cutStall), ms(r.ckP99), ms(r.ckStall))
		}
		for len(cells) < len(header) {
			cells = append(cells, "-")
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	fmt.Println("\nrows/s = rows copied / copy time (osc: its \"row copy complete\" log line; raw: the INSERT … SELECT).")
	fmt.Println("cut-over = time osc spent in the cutting-over state (from its log); max write during cut-over =")
	fmt.Println("the longest write in flight at some moment of it. checksum = time in the checksumming state, vs copy = of the")
	fmt.Println("copy time; checksum block = the longest the checksum blocked writes (its log); p99 / max write during checksum")
	fmt.Println("= the writes that started in / were in flight during the checksumming state.")
	fmt.Println("The table is analyzed (PostgreSQL: vacuumed) before each run.")
	fmt.Printf("Targets: osc with no load ≥ %.1f× raw; max write during cut-over < %s.\n", minRatio, maxCutStall)
	for _, r := range results {
		switch {
		case r.raw:
		case r.load == nil:
			fmt.Printf("  %-8s %-18s %.2f× raw: %s\n", r.db, r.run, r.rate()/raw[r.db], met(r.rate()/raw[r.db] >= minRatio))
		default:
			fmt.Printf("  %-8s %-18s cut-over stall %s: %s\n", r.db, r.run, ms(r.cutStall), met(r.cutStall < maxCutStall))
		}
	}
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
