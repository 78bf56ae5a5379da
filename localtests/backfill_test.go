package localtests

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The backfill cases (osc backfill, issue 16): the column split of an
// expand/contract change, full_name → first_name + last_name, on both
// databases. See README.md, "Backfill".

// backfillSQL is what differs between the databases in these cases.
type backfillSQL struct {
	create     string // the table users
	seed       string // rows 1..n, full_name 'F<i> L<i>', the new columns NULL; %d: n
	first      string // first_name from full_name
	last       string // last_name from full_name
	insert     string // a dual-writing insert: full_name, first_name, last_name
	update     string // a dual-writing update of one row: full_name, first_name, last_name, id
	checkpoint string // the checkpoint table's name
}

func backfillDialect(d dialect) backfillSQL {
	if _, ok := d.(mysqlDialect); ok {
		return backfillSQL{
			create: "CREATE TABLE users (id BIGINT AUTO_INCREMENT PRIMARY KEY, full_name VARCHAR(100) NOT NULL, " +
				"first_name VARCHAR(100) NULL, last_name VARCHAR(100) NULL, n INT NOT NULL DEFAULT 0)",
			seed:       "INSERT INTO users (full_name) SELECT CONCAT('F', seq, ' L', seq) FROM seq_1_to_%d",
			first:      "SUBSTRING_INDEX(full_name, ' ', 1)",
			last:       "SUBSTRING(full_name FROM LOCATE(' ', full_name) + 1)",
			insert:     "INSERT INTO users (full_name, first_name, last_name) VALUES (?, ?, ?)",
			update:     "UPDATE users SET full_name = ?, first_name = ?, last_name = ? WHERE id = ?",
			checkpoint: "users_osc_bf",
		}
	}
	return backfillSQL{
		create:     "CREATE TABLE users (id bigserial PRIMARY KEY, full_name text NOT NULL, first_name text, last_name text, n int NOT NULL DEFAULT 0)",
		seed:       "INSERT INTO users (id, full_name) SELECT g, 'F' || g || ' L' || g FROM generate_series(1, %d) g; SELECT setval('users_id_seq', (SELECT max(id) FROM users))",
		first:      "split_part(full_name, ' ', 1)",
		last:       "substring(full_name from position(' ' in full_name) + 1)",
		insert:     "INSERT INTO users (full_name, first_name, last_name) VALUES ($1, $2, $3)",
		update:     "UPDATE users SET full_name = $1, first_name = $2, last_name = $3 WHERE id = $4",
		checkpoint: "users_osc_bf",
	}
}

// setupBackfill makes the namespace backfill_<name> with users of n rows.
func setupBackfill(ctx context.Context, t *testing.T, d dialect, name string, n int) (string, *sql.DB, backfillSQL) {
	t.Helper()
	admin := d.connectAdmin(t)
	ns := "backfill_" + name
	if err := d.resetNamespace(ctx, admin, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			_ = d.dropNamespace(context.Background(), admin, ns)
		}
	})
	db, err := d.open(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b := backfillDialect(d)
	for _, q := range append([]string{b.create}, strings.Split(fmt.Sprintf(b.seed, n), "; ")...) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return ns, db, b
}

// startBackfill runs osc backfill with args after the connection flags.
func startBackfill(ctx context.Context, t *testing.T, d dialect, ns string, args ...string) *oscProcess {
	t.Helper()
	all := append(append([]string{"backfill"}, d.oscArgs(ns, "users")...),
		// The sandbox's replica lags behind the other tests' load: what is
		// tested here is the backfill, not the lag throttle.
		"--max-lag-millis", "0", "--throttle-additional-flag-file", "",
		"--serve-socket-file", filepath.Join(t.TempDir(), "bf.sock"))
	all = append(all, args...)
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, requireOsc(t), all...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	out := &output{postponed: make(chan struct{})}
	cmd.Stdout = out.writer(&out.stdout)
	cmd.Stderr = out.writer(&out.stderr)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start osc backfill: %v", err)
	}
	p := &oscProcess{args: all, out: out, postponed: out.postponed, done: make(chan struct{}), cancel: cancel, proc: cmd.Process}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		p.logOutput(t)
	})
	return p
}

// waitBackfill waits for osc backfill to exit and returns its exit status.
func waitBackfill(t *testing.T, p *oscProcess, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		t.Fatalf("osc backfill still runs after %s", limit)
	}
	return p.exitCode()
}

// exited reports whether osc has exited.
func exited(p *oscProcess) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stdout is what osc printed on its standard output so far.
func (p *oscProcess) stdout() string {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	return p.out.stdout.String()
}

// checkpointKey reads the checkpoint's saved key ("" when the table is
// missing, "null" before the first chunk).
func checkpointKey(ctx context.Context, db *sql.DB, b backfillSQL) (string, error) {
	var v string
	err := db.QueryRowContext(ctx, "SELECT value FROM "+b.checkpoint+" WHERE id = 1").Scan(&v)
	if err != nil {
		return "", err
	}
	return v, nil
}

// tableExists reports whether the namespace has table name.
func tableExists(ctx context.Context, d dialect, db *sql.DB, ns, name string) bool {
	ti, err := d.describe(ctx, db, ns, name)
	return err == nil && ti != nil
}

// TestBackfillColumnSplit: the column split on a table that writers change
// at full speed, dual-writing the new columns; the backfill starts paused by
// a throttle flag file. Every row must end with the right values, no writer
// may fail, --verify must pass and nothing may be left.
func TestBackfillColumnSplit(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			const rows = 20000
			ns, db, b := setupBackfill(ctx, t, d, "split", rows)

			// Writers: inserts and updates of full_name, each writing the
			// new columns too (the dual-write step).
			var writes atomic.Int64
			var werr error
			var wmu sync.Mutex
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var once sync.Once
			stopWriters := func() {
				once.Do(func() { close(stop) })
				wg.Wait()
			}
			for w := range 4 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 7))
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						f, l := fmt.Sprintf("W%d_%d", w, i), fmt.Sprintf("Z%d", rng.IntN(1000))
						var err error
						if i%3 == 0 {
							_, err = db.ExecContext(ctx, b.insert, f+" "+l, f, l)
						} else {
							_, err = db.ExecContext(ctx, b.update, f+" "+l, f, l, 1+rng.IntN(rows))
						}
						if err != nil {
							wmu.Lock()
							werr = errors.Join(werr, err)
							wmu.Unlock()
							return
						}
						writes.Add(1)
					}
				})
			}
			defer stopWriters()

			flag := filepath.Join(t.TempDir(), "throttle")
			if err := os.WriteFile(flag, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			p := startBackfill(ctx, t, d, ns,
				"--set", "first_name = "+b.first+", last_name = "+b.last,
				"--where", "first_name IS NULL",
				"--verify", "first_name = "+b.first+" AND last_name = "+b.last,
				"--chunk-size", "500", "--throttle-flag-file", flag, "--status-interval", "1", "--execute")
			// Paused: no chunk commits while the flag file exists.
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(p.stdout(), "Throttled: flag-file "+flag) {
				if exited(p) || time.Now().After(deadline) {
					t.Fatal("no status line says the backfill is throttled by the flag file")
				}
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(time.Second)
			if ck, err := checkpointKey(ctx, db, b); err != nil || !strings.Contains(ck, `"key":null`) {
				t.Fatalf("throttled by the flag file, the backfill saved checkpoint %q (%v), want none yet", ck, err)
			}
			if err := os.Remove(flag); err != nil {
				t.Fatal(err)
			}
			if code := waitBackfill(t, p, 2*time.Minute); code != 0 {
				t.Fatalf("osc backfill exited %d: %s", code, p.lastErrorLine())
			}
			stopWriters()
			if werr != nil {
				t.Fatalf("a writer failed: %v", werr)
			}
			if writes.Load() < 100 {
				t.Fatalf("only %d writes while the backfill ran: the case proves nothing", writes.Load())
			}
			var wrong int64
			q := "SELECT COUNT(*) FROM users WHERE first_name IS NULL OR last_name IS NULL OR first_name <> " + b.first + " OR last_name <> " + b.last
			if err := db.QueryRowContext(ctx, q).Scan(&wrong); err != nil {
				t.Fatal(err)
			}
			if wrong != 0 {
				t.Fatalf("%d rows have wrong first_name or last_name after the backfill", wrong)
			}
			if !strings.Contains(p.stdout(), "verify: every row satisfies") {
				t.Error("--verify did not report that every row passes")
			}
			if tableExists(ctx, d, db, ns, b.checkpoint) {
				t.Errorf("the checkpoint table %s is left after a successful backfill", b.checkpoint)
			}
			t.Logf("%d writes during the backfill", writes.Load())

			// A row left wrong on purpose: --verify alone finds it,
			// names its key and exits 1.
			if _, err := db.ExecContext(ctx, "UPDATE users SET last_name = 'WRONG' WHERE id = 4242"); err != nil {
				t.Fatal(err)
			}
			v := startBackfill(ctx, t, d, ns, "--verify", "first_name = "+b.first+" AND last_name = "+b.last)
			if code := waitBackfill(t, v, time.Minute); code != 1 {
				t.Fatalf("osc backfill --verify over a wrong row exited %d, want 1", code)
			}
			if out := v.stdout(); !strings.Contains(out, "verify: 1 rows do not satisfy") || !strings.Contains(out, "key (id=4242)") {
				t.Fatalf("osc backfill --verify did not name the wrong row's key: %s", out)
			}
		})
	}
}

// TestBackfillResume: a backfill killed with SIGKILL leaves its checkpoint,
// which is exactly where its committed chunks end; a run without --resume
// is refused; --resume finishes the job without redoing a committed chunk
// (the SET counts its updates of each row: every row must be updated once).
func TestBackfillResume(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			const rows = 3000
			ns, db, b := setupBackfill(ctx, t, d, "resume", rows)
			// Statistics, as a big table has: the resumed run's status
			// estimates from them the rows the killed run walked.
			analyze := "ANALYZE TABLE users"
			if _, ok := d.(pgDialect); ok {
				analyze = "ANALYZE users"
			}
			if _, err := db.ExecContext(ctx, analyze); err != nil {
				t.Fatal(err)
			}
			set := []string{"--set", "n = n + 1", "--chunk-size", "50", "--execute"}
			// Slow: each chunk is followed by a pause of 30 times its
			// duration, so that the kill lands in the middle.
			p := startBackfill(ctx, t, d, ns, append(set, "--nice-ratio", "30")...)
			deadline := time.Now().Add(time.Minute)
			for {
				var done int64
				if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE n > 0").Scan(&done); err != nil {
					t.Fatal(err)
				}
				if done >= 200 {
					break
				}
				if exited(p) || time.Now().After(deadline) {
					t.Fatalf("the backfill updated only %d rows in a minute", done)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := p.signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-p.done
			ck, err := checkpointKey(ctx, db, b)
			if err != nil {
				t.Fatalf("no checkpoint after a kill -9: %v", err)
			}
			// The committed chunks end exactly at the checkpoint's key.
			var upto, below, above, total int64
			if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0), COUNT(*) FROM users WHERE n > 0").Scan(&upto, &below); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) FROM users WHERE n = 0 AND id <= %d", upto)).Scan(&above); err != nil {
				t.Fatal(err)
			}
			if above != 0 || below != upto || !strings.Contains(ck, fmt.Sprint(upto)) {
				t.Fatalf("killed: rows 1..%d updated (%d of them, %d not), checkpoint %s: want the checkpoint at the last updated row and every row below updated", upto, below, above, ck)
			}
			if upto >= rows {
				t.Fatalf("the backfill finished before the kill")
			}

			// Without --resume: refused, nothing changed.
			r := startBackfill(ctx, t, d, ns, set...)
			if code := waitBackfill(t, r, time.Minute); code != 3 {
				t.Fatalf("a backfill over a killed one's checkpoint exited %d, want 3 (refused)", code)
			}
			if !strings.Contains(r.lastErrorLine(), "--resume") {
				t.Errorf("the refusal does not name --resume: %s", r.lastErrorLine())
			}

			res := startBackfill(ctx, t, d, ns, append(set, "--resume")...)
			if code := waitBackfill(t, res, 2*time.Minute); code != 0 {
				t.Fatalf("osc backfill --resume exited %d: %s", code, res.lastErrorLine())
			}
			if !res.logged("resuming after the last committed chunk") {
				t.Error("the resumed run does not say where it resumes")
			}
			// Its status counts the killed run's rows too (estimated).
			if n := lastBackfillScanned(t, res); res.logged("cannot estimate") || n < rows*97/100 || n > rows*103/100 {
				t.Errorf("the resumed run's last status counts %d rows scanned, want about %d", n, rows)
			}
			var wrong int64
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*), SUM(CASE WHEN n = 1 THEN 0 ELSE 1 END) FROM users").Scan(&total, &wrong); err != nil {
				t.Fatal(err)
			}
			if total != rows || wrong != 0 {
				t.Fatalf("after --resume %d of %d rows were not updated exactly once (a chunk redone or skipped)", wrong, total)
			}
			if tableExists(ctx, d, db, ns, b.checkpoint) {
				t.Errorf("the checkpoint table %s is left after the resumed backfill", b.checkpoint)
			}
		})
	}
}

// TestBackfillRefusesStatements: expressions that are more than one
// expression are refused before anything changes; a ';' in a string is not.
func TestBackfillRefusesStatements(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ns, db, b := setupBackfill(ctx, t, d, "refuse", 100)
			for _, args := range [][]string{
				{"--set", "first_name = 'x'; DROP TABLE users", "--execute"},
				{"--set", "first_name = 'x'", "--where", "1 = 1; DROP TABLE users", "--execute"},
				{"--set", "first_name = 'x'", "--where", "id = 1) OR (TRUE", "--execute"},
				{"--verify", "TRUE); DROP TABLE users; SELECT (1"},
			} {
				p := startBackfill(ctx, t, d, ns, args...)
				if code := waitBackfill(t, p, time.Minute); code != 3 {
					t.Fatalf("%q exited %d, want 3 (refused)", args, code)
				}
			}
			var changed int64
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE first_name IS NOT NULL").Scan(&changed); err != nil {
				t.Fatalf("the table: %v", err)
			}
			if changed != 0 || tableExists(ctx, d, db, ns, b.checkpoint) {
				t.Fatalf("a refused backfill changed %d rows or left its checkpoint table", changed)
			}
			p := startBackfill(ctx, t, d, ns, "--set", "first_name = ';'", "--where", "full_name <> ')'", "--execute")
			if code := waitBackfill(t, p, time.Minute); code != 0 {
				t.Fatalf("a ';' and a ')' in strings: exited %d: %s", code, p.lastErrorLine())
			}
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE first_name = ';'").Scan(&changed); err != nil || changed != 100 {
				t.Fatalf("%d rows updated (%v), want 100", changed, err)
			}
		})
	}
}

// TestBackfillWaitsForLongTransaction: an application's transaction holds a
// row of a chunk; the chunk gives way (its lock wait timeout), rolls back and
// is retried until the transaction ends, which commits without error, and
// the backfill then completes.
func TestBackfillWaitsForLongTransaction(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			ns, db, b := setupBackfill(ctx, t, d, "longtx", 2000)
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback() // committed below
			if _, err := tx.ExecContext(ctx, b.update, "A B", "A", "B", 1500); err != nil {
				t.Fatal(err)
			}
			p := startBackfill(ctx, t, d, ns, "--set", "first_name = "+b.first+", last_name = "+b.last,
				"--where", "first_name IS NULL", "--chunk-size", "100", "--lock-wait-timeout", "1s", "--execute")
			deadline := time.Now().Add(time.Minute)
			for !p.logged("retrying") {
				if exited(p) || time.Now().After(deadline) {
					t.Fatal("the backfill never gave way to the transaction holding a row of its chunk")
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err := tx.Commit(); err != nil {
				t.Fatalf("the application's transaction fails: %v", err)
			}
			if code := waitBackfill(t, p, time.Minute); code != 0 {
				t.Fatalf("osc backfill exited %d: %s", code, p.lastErrorLine())
			}
			var wrong int64
			q := "SELECT COUNT(*) FROM users WHERE first_name IS NULL OR first_name <> " + b.first + " OR last_name <> " + b.last
			if err := db.QueryRowContext(ctx, q).Scan(&wrong); err != nil || wrong != 0 {
				t.Fatalf("%d rows wrong (%v)", wrong, err)
			}
		})
	}
}

// TestBackfillInterrupt: Ctrl-C (SIGINT) in the middle stops the backfill
// with exit status 4 and removes its checkpoint table; the chunks committed
// stay updated.
func TestBackfillInterrupt(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			ns, db, b := setupBackfill(ctx, t, d, "interrupt", 2000)
			p := startBackfill(ctx, t, d, ns, "--set", "n = n + 1", "--chunk-size", "50", "--nice-ratio", "20", "--execute")
			deadline := time.Now().Add(time.Minute)
			for {
				var done int64
				if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE n > 0").Scan(&done); err != nil {
					t.Fatal(err)
				}
				if done >= 50 {
					break
				}
				if exited(p) || time.Now().After(deadline) {
					t.Fatalf("the backfill updated only %d rows", done)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := p.signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			if code := waitBackfill(t, p, time.Minute); code != 4 {
				t.Fatalf("interrupted osc backfill exited %d, want 4", code)
			}
			if tableExists(ctx, d, db, ns, b.checkpoint) {
				t.Fatalf("the checkpoint table %s is left after Ctrl-C", b.checkpoint)
			}
			var done, twice int64
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*), SUM(CASE WHEN n > 1 THEN 1 ELSE 0 END) FROM users WHERE n > 0").Scan(&done, &twice); err != nil {
				t.Fatal(err)
			}
			if done == 0 || done == 2000 || twice != 0 {
				t.Fatalf("after Ctrl-C %d rows updated (%d more than once): want the committed chunks only", done, twice)
			}
		})
	}
}
