package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
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

// Targets from issue 12 (copy and apply speed): with no load osc copies as
// fast as the raw INSERT … SELECT; under load the writers' p99 rises at most
// 10 ms over their baseline; the applier keeps up with 100k changes/s; and
// the cut-over holds writers up less than a second. The peers' targets are
// in peerTarget.
const (
	minRatio     = 1.0
	maxP99Rise   = 10 * time.Millisecond
	minApplyRate = 100000
	maxCutStall  = time.Second
	// maxChecksumShare is issue 10's: the checksum takes at most this
	// share of the copy's time.
	maxChecksumShare = 0.15
	// maxChecksumBlock is issue 10's longest the checksum's lock blocks
	// writes.
	maxChecksumBlock = 50 * time.Millisecond
)

type options struct {
	rows, rate, chunkSize, applyRows int
	indexes                          int
	baseline                         time.Duration
	oscBin, ghost, repack, plot      string
	// applyOnly skips everything but the applier's backlog; applyOsc are
	// the osc binaries whose appliers are timed on it, in turn.
	applyOnly bool
	applyOsc  []string
	// checksumOsc are more osc binaries run with no load, in turn, to
	// compare their checksums' time against their copies' in one run.
	checksumOsc []string
	// copyThreads, when set, replaces the runs after the raw copy: osc
	// with no load, once with each --copy-threads in turn, rounds times.
	copyThreads []int
	rounds      int
}

func main() {
	var o options
	flag.IntVar(&o.rows, "rows", 1000000, "rows in the benchmark table")
	flag.IntVar(&o.rate, "rate", 200, "write transactions per second during the loaded osc run")
	flag.StringVar(&o.oscBin, "osc", "bin/osc", "path of the osc binary")
	flag.IntVar(&o.chunkSize, "chunk-size", 0, "passed to osc as --chunk-size (0: osc's default)")
	flag.IntVar(&o.applyRows, "apply-rows", 200000, "changes in the backlog osc's applier is timed on (0: skip)")
	flag.DurationVar(&o.baseline, "baseline", 10*time.Second, "how long the write load runs alone, for the writers' baseline")
	flag.StringVar(&o.ghost, "gh-ost", "", `gh-ost binary to compare with on MySQL (default: gh-ost on PATH; "none" to skip)`)
	flag.StringVar(&o.repack, "pg-repack", "", `pg_repack binary to compare with on PostgreSQL (default: pg_repack on PATH; "none" to skip)`)
	flag.StringVar(&o.plot, "plot", "osc-bench.svg", `SVG file for the writers' latency over the loaded runs ("" to skip)`)
	flag.IntVar(&o.indexes, "indexes", 0, fmt.Sprintf("secondary indexes on the benchmark table, 0 to %d", len(benchIndexes())))
	only := flag.String("only", "", `run only "mysql" or "postgres"`)
	flag.BoolVar(&o.applyOnly, "apply-only", false, "run only the applier's backlog (no raw copy, baseline, or copy runs)")
	applyOsc := flag.String("apply-osc", "", "comma-separated osc binaries whose appliers are timed on the backlog in turn, in the same run, to compare them (default: --osc)")
	copyThreads := flag.String("copy-threads", "", "comma-separated osc --copy-threads values: after the raw copy, run only osc with no load, once with each in turn, --rounds times, to compare them in one run")
	flag.IntVar(&o.rounds, "rounds", 2, "rounds of the --copy-threads runs")
	checksumOsc := flag.String("checksum-osc", "", "comma-separated osc binaries run once more each with no load, in turn, to compare their checksum's share of the copy time in the same run")
	flag.Parse()
	o.applyOsc = []string{o.oscBin}
	if *applyOsc != "" {
		o.applyOsc = strings.Split(*applyOsc, ",")
	}
	if *checksumOsc != "" {
		o.checksumOsc = strings.Split(*checksumOsc, ",")
	}
	if *copyThreads != "" {
		for _, f := range strings.Split(*copyThreads, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				fmt.Fprintf(os.Stderr, "osc-bench: --copy-threads %q: want positive numbers, comma-separated\n", *copyThreads)
				os.Exit(2)
			}
			o.copyThreads = append(o.copyThreads, n)
		}
	}
	o.ghost, o.repack = lookPeer(o.ghost, "gh-ost"), lookPeer(o.repack, "pg_repack")
	if o.rows < 1 || o.rate < 1 || o.chunkSize < 0 || o.applyRows < 0 || o.indexes < 0 || o.indexes > len(benchIndexes()) {
		fmt.Fprintf(os.Stderr, "osc-bench: --rows and --rate must be at least 1, --chunk-size and --apply-rows at least 0, --indexes 0 to %d\n", len(benchIndexes()))
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
	var panels []panel
	for _, b := range []bench{mysqlBench(o), postgresBench(o)} {
		if *only != "" && *only != b.name {
			continue
		}
		if ctx.Err() != nil {
			break // interrupted
		}
		res, err := b.run(ctx, o)
		results = append(results, res...)
		panels = append(panels, plotPanels(res)...)
		if err != nil {
			fmt.Fprintf(os.Stderr, "osc-bench: %s: %v\n", b.name, err)
			failed = true
		}
	}
	printResults(o, results)
	if o.plot != "" && len(panels) > 0 {
		if err := writePlot(o.plot, panels); err != nil {
			fmt.Fprintf(os.Stderr, "osc-bench: plot: %v\n", err)
			failed = true
		} else {
			fmt.Printf("\nWriters' latency over the loaded runs: %s\n", o.plot)
		}
	}
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
	peer              *peer   // nil: none to compare with
	replica           *sql.DB // nil: no replica reached
	// replicaDSN reaches the replica (standby) whose lag is measured;
	// heartbeat writes the time (one argument) into osc_bench_hb.
	replicaDSN, heartbeat string
}

// standbyDSN is dsn with its port replaced by the standby's.
func standbyDSN(dsn, port string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Host = u.Hostname() + ":" + port
	return u.String()
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func mysqlBench(o options) bench {
	rows := o.rows
	host, port, user := env("OSC_MYSQL_HOST", "127.0.0.1"), env("OSC_MYSQL_PORT", "13306"), env("OSC_MYSQL_USER", "root")
	dbName := env("OSC_BENCH_MYSQL_DATABASE", "osc_demo")
	return bench{
		name:    "mysql",
		driver:  "mysql",
		dsn:     fmt.Sprintf("%s@tcp(%s:%s)/%s", user, host, port, dbName),
		version: "SELECT VERSION()",
		setup: append([]string{
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
		}, benchIndexes()[:o.indexes]...),
		settle:     "ANALYZE TABLE osc_bench",
		createCopy: "CREATE TABLE osc_bench_copy LIKE osc_bench",
		dropHelpers: "DROP TABLE IF EXISTS osc_bench_copy, osc_bench_osc_new, osc_bench_osc_log, osc_bench_osc_old, " +
			"_osc_bench_gho, _osc_bench_ghc, _osc_bench_del",
		oscArgs: []string{"--host", host, "--port", port, "--user", user, "--database", dbName, "--table", "osc_bench"},
		write:   writeLoad(rows),
		peer:    ghostPeer(o.ghost, host, port, user),
		replicaDSN: fmt.Sprintf("%s@tcp(%s:%s)/%s", user, env("OSC_MYSQL_REPLICA_HOST", host),
			env("OSC_MYSQL_REPLICA_PORT", "13307"), dbName),
		heartbeat: "UPDATE osc_bench_hb SET v = ? WHERE id = 1",
	}
}

// benchIndexes are the secondary indexes --indexes adds to the benchmark
// table, after its rows (the same SQL on both databases).
func benchIndexes() []string {
	return []string{
		"CREATE INDEX osc_bench_account ON osc_bench (account_id)",
		"CREATE INDEX osc_bench_created ON osc_bench (created_at)",
		"CREATE INDEX osc_bench_status ON osc_bench (status, updated_at)",
	}
}

func postgresBench(o options) bench {
	rows := o.rows
	dsn := env("OSC_PG_DSN", "postgres://postgres@127.0.0.1:15432/osc_test?sslmode=disable")
	return bench{
		name:    "postgres",
		driver:  "pgx",
		dsn:     dsn,
		version: "SHOW server_version",
		setup: append([]string{
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
		}, benchIndexes()[:o.indexes]...),
		// Sets hint bits and the visibility map, so that the first copy
		// does not pay for them, and keeps autovacuum (due on a freshly
		// filled table) from running beside a measured run.
		settle:      "VACUUM ANALYZE public.osc_bench",
		createCopy:  "CREATE TABLE public.osc_bench_copy (LIKE public.osc_bench INCLUDING ALL)",
		dropHelpers: "DROP TABLE IF EXISTS public.osc_bench_copy, public._osc_bench_osc, public._osc_bench_old",
		oscArgs:     []string{"--dsn", dsn, "--table", "public.osc_bench"},
		write:       writeLoad(rows),
		peer:        repackPeer(o.repack, dsn),
		replicaDSN:  standbyDSN(dsn, env("OSC_PG_STANDBY_PORT", "15433")),
		heartbeat:   "UPDATE osc_bench_hb SET v = $1 WHERE id = 1",
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
	tool       string // "raw", "baseline", "osc", the peer's name, or "apply"
	rows       int64
	copy, wall time.Duration // copy: osc's copy (its log), the raw copy, the apply's time; wall: the tool's whole run

	start, copyEnd time.Time     // the tool's run, and (osc) the end of its copy
	cutFrom, cutTo time.Time     // osc's cutting-over state, as seen in its log
	ckFrom, ckTo   time.Time     // osc's checksumming state, as seen in its log
	ckBlocked      time.Duration // the longest the checksum blocked writes (its log)
	ckP99, ckStall time.Duration // writes during the checksum: p99, longest in flight
	load           *load.Stats   // nil when there was no load
	cutStall       time.Duration // longest write in flight during the cut-over
	applied        int64         // changes in the apply run's backlog
	lag            time.Duration // the replica's largest lag during the run
}

func (r result) rate() float64           { return float64(r.rows) / r.copy.Seconds() }
func (r result) checksum() time.Duration { return r.ckTo.Sub(r.ckFrom) }
func (r result) checksumShare() float64  { return r.checksum().Seconds() / r.copy.Seconds() }
func (r result) wallRate() float64       { return float64(r.rows) / r.wall.Seconds() }

// run benchmarks one database: the raw copy, the writers alone, osc and its
// peer with no load and under load, and osc's applier on a backlog. It
// returns the runs measured before any failure.
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
		for _, s := range []string{b.dropHelpers, "DROP TABLE IF EXISTS osc_bench", "DROP TABLE IF EXISTS osc_bench_hb"} {
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
	if b.peer != nil && b.peer.prepare != "" {
		if _, err := db.ExecContext(ctx, b.peer.prepare); err != nil {
			progress("%s: %s is not usable here, skipped: %v", b.name, b.peer.name, err)
			b.peer = nil
		}
	}

	replica, err := sql.Open(b.driver, b.replicaDSN)
	if err != nil {
		return nil, err
	}
	defer replica.Close()
	if err := replica.PingContext(ctx); err != nil {
		progress("%s: no replica to measure the lag of: %v", b.name, err)
		replica = nil
	}
	b.replica = replica

	progress("%s (%s): building a table of %d rows", b.name, version, o.rows)
	start := time.Now()
	setup := append(append([]string{}, b.setup...), "CREATE TABLE osc_bench_hb (id INT PRIMARY KEY, v BIGINT NOT NULL)",
		"INSERT INTO osc_bench_hb VALUES (1, 0)", b.settle)
	for _, s := range setup {
		if _, err := db.ExecContext(ctx, strings.ReplaceAll(s, "{rows}", strconv.Itoa(o.rows))); err != nil {
			return nil, fmt.Errorf("build the table: %w", err)
		}
	}
	progress("%s: built in %s", b.name, time.Since(start).Round(time.Millisecond))

	if o.applyOnly {
		return b.applyRuns(ctx, db, o)
	}
	progress("%s: raw copy: INSERT INTO osc_bench_copy SELECT * FROM osc_bench", b.name)
	raw, err := b.rawCopy(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("raw copy: %w", err)
	}
	raw.db, raw.run, raw.tool, raw.rows = b.name, "raw INSERT … SELECT", "raw", int64(o.rows)
	res = append(res, raw)
	if len(o.copyThreads) > 0 {
		more, err := b.threadRuns(ctx, db, o)
		return append(res, more...), err
	}

	if o.baseline > 0 {
		progress("%s: the write load alone for %s (the writers' baseline)", b.name, o.baseline)
		w, err := load.Start(ctx, db, b.write, o.rate)
		if err != nil {
			return res, err
		}
		from := time.Now()
		time.Sleep(o.baseline)
		st := w.Stop()
		res = append(res, result{db: b.name, run: fmt.Sprintf("writers alone, %d/s", o.rate), tool: "baseline",
			start: from, wall: time.Since(from), load: &st})
	}

	tools := []string{"osc"}
	if b.peer != nil {
		tools = append(tools, b.peer.name)
	}
	for i, tool := range tools {
		progress("%s: %s, no write load", b.name, tool)
		r, err := b.runTool(ctx, db, o, tool, fmt.Sprintf("ADD COLUMN bench_a%d INT NULL", i), nil)
		if err != nil {
			return res, fmt.Errorf("%s, no load: %w", tool, err)
		}
		r.run = tool + ", no load"
		res = append(res, r)
	}
	for i, bin := range o.checksumOsc {
		progress("%s: %s, no write load", b.name, bin)
		ob := o
		ob.oscBin = bin
		r, err := b.runOsc(ctx, db, ob, fmt.Sprintf("ADD COLUMN bench_k%d INT NULL", i), nil)
		if err != nil {
			return res, fmt.Errorf("%s, no load: %w", bin, err)
		}
		r.run = bin + ", no load"
		res = append(res, r)
	}
	for i, tool := range tools {
		progress("%s: %s under %d writes/s", b.name, tool, o.rate)
		w, err := load.Start(ctx, db, b.write, o.rate)
		if err != nil {
			return res, err
		}
		time.Sleep(time.Second)
		r, runErr := b.runTool(ctx, db, o, tool, fmt.Sprintf("ADD COLUMN bench_b%d INT NULL", i), nil)
		time.Sleep(time.Second) // writes keep landing on the new table
		st := w.Stop()
		r.run, r.load = fmt.Sprintf("%s, %d writes/s", tool, o.rate), &st
		if runErr != nil {
			return res, fmt.Errorf("%s under load: %w", tool, runErr)
		}
		if !r.cutFrom.IsZero() {
			r.cutStall = st.MaxDuring(r.cutFrom, r.cutTo)
			r.ckP99, r.ckStall = st.P99During(r.ckFrom, r.ckTo), st.MaxDuring(r.ckFrom, r.ckTo)
		}
		res = append(res, r)
		if st.Errors > 0 {
			return res, fmt.Errorf("%s under load: %d of %d writes failed; the first: %w", tool, st.Errors, st.Count, st.FirstErr)
		}
	}

	more, err := b.applyRuns(ctx, db, o)
	return append(res, more...), err
}

// threadRuns runs osc with no load once with each of o.copyThreads in turn,
// o.rounds times: alternating, so that a change in the machine's load
// colours every setting alike.
func (b bench) threadRuns(ctx context.Context, db *sql.DB, o options) (res []result, err error) {
	for round := 1; round <= o.rounds; round++ {
		for _, n := range o.copyThreads {
			progress("%s: osc --copy-threads %d, no write load (round %d of %d)", b.name, n, round, o.rounds)
			r, err := b.runOsc(ctx, db, o, fmt.Sprintf("ADD COLUMN bench_t%d_%d INT NULL", round, n), nil, "--copy-threads", strconv.Itoa(n))
			if err != nil {
				return res, fmt.Errorf("osc --copy-threads %d, no load: %w", n, err)
			}
			r.run = fmt.Sprintf("osc --copy-threads %d, no load (round %d)", n, round)
			res = append(res, r)
		}
	}
	return res, nil
}

// applyRuns times each of o.applyOsc's appliers on a backlog of o.applyRows
// changes (none when it is 0).
func (b bench) applyRuns(ctx context.Context, db *sql.DB, o options) (res []result, err error) {
	if o.applyRows == 0 {
		return nil, nil
	}
	n := min(o.applyRows, o.rows)
	for i, bin := range o.applyOsc {
		progress("%s: %s's applier on a backlog of %d changes (one UPDATE while the cut-over is postponed)", b.name, bin, n)
		r, err := b.applyBacklog(ctx, db, o, bin, fmt.Sprintf("ADD COLUMN bench_c%d INT NULL", i), n)
		if r.applied > 0 {
			res = append(res, r)
		}
		if err != nil {
			return res, fmt.Errorf("apply backlog (%s): %w", bin, err)
		}
	}
	return res, nil
}

// runTool runs osc or the peer on the table with alter, and settles the new
// table for the next run.
func (b bench) runTool(ctx context.Context, db *sql.DB, o options, tool, alter string, watch func(string, time.Time)) (result, error) {
	lag := b.startLag(ctx, db, b.replica)
	var (
		r   result
		err error
	)
	if tool == "osc" {
		r, err = b.runOsc(ctx, db, o, alter, watch)
	} else {
		r = result{db: b.name, tool: tool, rows: int64(o.rows), start: time.Now()}
		var wall time.Duration
		if wall, err = runTool(ctx, tool, b.peer.bin, b.peer.args(alter), watch); err == nil {
			r.wall, r.copy = wall, wall
			err = b.afterRun(ctx, db)
		}
	}
	r.lag, err = lagResult(lag, err)
	return r, err
}

// lagResult stops the lag sampler and joins its error to err.
func lagResult(l *lagSampler, err error) (time.Duration, error) {
	lag, lerr := l.done()
	return lag, errors.Join(err, lerr)
}

// afterRun drops the old table a run leaves behind and settles the new one.
func (b bench) afterRun(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, b.dropHelpers); err != nil {
		return fmt.Errorf("drop the old table: %w", err)
	}
	if _, err := db.ExecContext(ctx, b.settle); err != nil {
		return fmt.Errorf("settle the new table: %w", err)
	}
	return nil
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
	r.wall = r.copy
	if _, err := db.ExecContext(ctx, b.dropHelpers); err != nil {
		return result{}, err
	}
	return r, nil
}

// runOsc runs osc --execute with alter (and more flags), streaming its
// output to stderr and to watch, then drops the old table it leaves behind
// and settles the new one for the next run.
func (b bench) runOsc(ctx context.Context, db *sql.DB, o options, alter string, watch func(string, time.Time), more ...string) (result, error) {
	return b.runOscBin(ctx, db, o, o.oscBin, alter, watch, more...)
}

// runOscBin is runOsc with the osc binary bin.
func (b bench) runOscBin(ctx context.Context, db *sql.DB, o options, bin, alter string, watch func(string, time.Time), more ...string) (result, error) {
	// Replica-lag throttling is off: it would measure how fast the sandbox's
	// single-threaded replica replays the copy, not the copy itself (the raw
	// INSERT … SELECT does not wait for replicas either).
	// The copy is what is measured: the ALTER alone would run natively.
	args := append(append([]string{}, b.oscArgs...), "--alter", alter, "--execute", "--max-lag-millis", "0", "--strategy", "copy")
	if o.chunkSize > 0 {
		args = append(args, "--chunk-size", strconv.Itoa(o.chunkSize))
	}
	args = append(args, more...)
	r := result{db: b.name, tool: "osc", start: time.Now()}
	wall, err := runTool(ctx, "osc", bin, args, func(line string, at time.Time) {
		r.observe(line, at)
		if watch != nil {
			watch(line, at)
		}
	})
	if err != nil {
		return r, err
	}
	r.wall = wall
	if r.copy <= 0 || r.cutFrom.IsZero() || r.cutTo.IsZero() {
		return r, errors.New(`osc succeeded but its log lacks the "row copy complete" line (rows=, elapsed=) or the cutting-over state`)
	}
	return r, b.afterRun(ctx, db)
}

// observe reads one line of osc's log (slog text format).
func (r *result) observe(line string, at time.Time) {
	switch {
	case strings.Contains(line, `msg="row copy complete"`):
		r.rows, _ = strconv.ParseInt(field(line, "rows"), 10, 64)
		r.copy, _ = time.ParseDuration(field(line, "elapsed"))
		r.copyEnd = at
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
	fmt.Print("\n")
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	raw, baseline := map[string]float64{}, map[string]time.Duration{}
	peerRate := map[string]float64{} // db and run's load: the peer's rows/s over its whole run
	for _, r := range results {
		switch {
		case r.tool == "raw":
			raw[r.db] = r.rate()
		case r.tool == "baseline":
			baseline[r.db] = r.load.P99
		case r.tool != "osc" && r.tool != "apply":
			peerRate[r.db+strconv.FormatBool(r.load != nil)] = r.wallRate()
		}
	}

	table := func(header []string, rows [][]string) {
		fmt.Println()
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(header, "\t"))
		for _, cells := range rows {
			for len(cells) < len(header) {
				cells = append(cells, "-")
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
		tw.Flush()
	}
	var copies, writers, applies [][]string
	for _, r := range results {
		switch r.tool {
		case "baseline":
		case "apply":
			applies = append(applies, []string{r.db, r.run, strconv.FormatInt(r.applied, 10), ms(r.copy),
				fmt.Sprintf("%.0f", float64(r.applied)/r.copy.Seconds())})
			continue
		default:
			cells := []string{r.db, r.run, strconv.FormatInt(r.rows, 10), ms(r.copy), fmt.Sprintf("%.0f", r.rate()),
				fmt.Sprintf("%.2f×", r.rate()/raw[r.db]), ms(r.wall), fmt.Sprintf("%.0f", r.wallRate()), "-", "-", "-", "-"}
			if r.tool != "raw" {
				cells[9] = ms(r.lag)
			}
			if r.tool == "osc" {
				cells[10], cells[11] = ms(r.checksum()), fmt.Sprintf("%.0f%%", 100*r.checksumShare())
			}
			if p := peerRate[r.db+strconv.FormatBool(r.load != nil)]; r.tool == "osc" && p > 0 {
				cells[8] = fmt.Sprintf("%.2f×", r.wallRate()/p)
			}
			copies = append(copies, cells)
		}
		if r.load == nil {
			continue
		}
		cells := []string{r.db, r.run, strconv.FormatInt(r.load.Count, 10), strconv.FormatInt(r.load.Errors, 10),
			ms(r.load.P50), ms(r.load.P99), "-", ms(r.load.Max)}
		if b, ok := baseline[r.db]; ok && r.tool != "baseline" {
			cells[6] = fmt.Sprintf("%+dms", (r.load.P99 - b).Milliseconds())
		}
		if r.tool == "osc" {
			cells = append(cells, ms(r.cutTo.Sub(r.cutFrom)), ms(r.cutStall), ms(r.checksum()),
				fmt.Sprintf("%.0f%%", 100*r.checksumShare()), ms(r.ckBlocked), ms(r.ckP99), ms(r.ckStall))
		}
		writers = append(writers, cells)
	}
	table([]string{"database", "run", "rows", "copy time", "rows/s", "vs raw", "wall time", "rows/s over wall", "osc vs peer",
		"max replica lag", "checksum", "vs copy"}, copies)
	fmt.Println("rows/s = rows / copy time (osc: its \"row copy complete\" log line; raw: the INSERT … SELECT; a peer: its whole run).")
	fmt.Println("rows/s over wall = rows / the whole run (osc: inspection, copy, checksum and cut-over);")
	fmt.Println("osc vs peer compares those. checksum = osc's time in its checksumming state (its log); vs copy = that / copy time.")
	fmt.Println("max replica lag = the replica's (standby's) largest lag during the run, by a heartbeat written every 100ms;")
	fmt.Println("osc runs with --max-lag-millis 0 (no lag throttling), as the raw copy and the peers do not wait for replicas.")
	table([]string{"database", "run", "writes", "errors", "p50", "p99", "p99 vs baseline", "max", "cut-over",
		"max write during cut-over", "checksum", "vs copy", "checksum block", "p99 during checksum", "max during checksum"}, writers)
	fmt.Println("Latency counts from each write's scheduled start (open loop: a stall counts in full for every write due in it).")
	fmt.Println("cut-over / checksum = time in that state (osc's log); max write during = the longest write in flight in it;")
	fmt.Println("checksum block = the longest the checksum blocked writes (its log). The table is analyzed (PostgreSQL: vacuumed)")
	fmt.Println("before each run.")
	if len(applies) > 0 {
		table([]string{"database", "run", "changes applied", "time", "changes/s"}, applies)
		fmt.Println("One UPDATE of that many rows, committed while osc's cut-over is postponed; time from its commit until osc's")
		fmt.Println("/status counts the changes applied (capture included).")
	}

	fmt.Println("\nTargets (issue 12; the checksum's, issue 10):")
	for _, r := range results {
		if r.tool == "osc" {
			fmt.Printf("  %-8s %-22s checksum %.0f%% of the copy time ≤ %.0f%%: %s\n", r.db, r.run, 100*r.checksumShare(),
				100*maxChecksumShare, met(r.checksumShare() <= maxChecksumShare))
		}
		switch {
		case r.tool == "apply":
			rate := float64(r.applied) / r.copy.Seconds()
			fmt.Printf("  %-8s %s: %.0f changes/s ≥ %d: %s\n", r.db, r.run, rate, minApplyRate, met(rate >= minApplyRate))
		case r.tool != "osc":
		case r.load == nil:
			fmt.Printf("  %-8s %-22s %.2f× raw ≥ %.1f: %s\n", r.db, r.run, r.rate()/raw[r.db], minRatio, met(r.rate()/raw[r.db] >= minRatio))
			if p := peerRate[r.db+"false"]; p > 0 {
				fmt.Printf("  %-8s %-22s %.2f× the peer ≥ %.1f: %s\n", r.db, r.run, r.wallRate()/p, peerTarget(r.db), met(r.wallRate()/p >= peerTarget(r.db)))
			}
		default:
			if p := peerRate[r.db+"true"]; p > 0 {
				fmt.Printf("  %-8s %-22s %.2f× the peer ≥ %.1f: %s\n", r.db, r.run, r.wallRate()/p, peerTarget(r.db), met(r.wallRate()/p >= peerTarget(r.db)))
			}
			if b, ok := baseline[r.db]; ok {
				d := r.load.P99 - b
				fmt.Printf("  %-8s %-22s writers' p99 %s over the baseline ≤ %s: %s\n", r.db, r.run, ms(d), maxP99Rise, met(d <= maxP99Rise))
				d = r.ckP99 - b
				fmt.Printf("  %-8s %-22s writers' p99 during the checksum %s over the baseline ≤ %s: %s\n", r.db, r.run, ms(d), maxP99Rise, met(d <= maxP99Rise))
			}
			fmt.Printf("  %-8s %-22s checksum block %s ≤ %s: %s\n", r.db, r.run, ms(r.ckBlocked), maxChecksumBlock, met(r.ckBlocked <= maxChecksumBlock))
			fmt.Printf("  %-8s %-22s cut-over stall %s < %s: %s\n", r.db, r.run, ms(r.cutStall), maxCutStall, met(r.cutStall < maxCutStall))
		}
	}
}

// peerTarget is how many times its peer's rate osc aims at: twice gh-ost's,
// at least pg_repack's.
func peerTarget(db string) float64 {
	if db == "mysql" {
		return 2
	}
	return 1
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
