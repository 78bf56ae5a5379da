package localtests

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The native path's steps on PostgreSQL (table/postgres_native_plan.go):
// an --alter that adds a unique constraint, a CHECK, a foreign key and a
// NOT NULL runs as CREATE UNIQUE INDEX CONCURRENTLY, NOT VALID then VALIDATE
// and a helper CHECK, not as a copy, and not as the plain ALTER's scans under
// the ACCESS EXCLUSIVE lock.

// nativeStepsAlter reads every row four ways; none may hold writers.
func nativeStepsAlter(ns string) string {
	return "ADD UNIQUE (w), ADD CONSTRAINT v_pos CHECK (v >= 0), ADD FOREIGN KEY (v) REFERENCES " + ns + ".p, " +
		"ALTER COLUMN w SET NOT NULL, ADD COLUMN n int DEFAULT 1"
}

// nativeStepsTarget is PostgreSQL's native target, with a column w that a
// sequence fills (unique, never NULL) and a table p v references.
func nativeStepsTarget(t *testing.T) nativeTarget {
	for _, tg := range nativeTargets() {
		if _, ok := tg.d.(pgDialect); ok {
			tg.create = []string{
				"CREATE TABLE p (id int PRIMARY KEY)",
				"INSERT INTO p SELECT generate_series(0, 1000000)",
				fmt.Sprintf("CREATE SEQUENCE t_w START %d", nativeRows+1),
				"CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL, x varchar(20), d timestamp, w int DEFAULT nextval('t_w'))",
				fmt.Sprintf("INSERT INTO t SELECT g, g %% 100, 'x' || g, '2026-01-01'::timestamp + g * interval '1 minute', g FROM generate_series(1, %d) g", nativeRows),
				"CREATE TABLE t_ctl (LIKE t INCLUDING ALL)",
				"INSERT INTO t_ctl SELECT * FROM t",
				"ANALYZE t",
			}
			return tg
		}
	}
	t.Fatal("no PostgreSQL target")
	return nativeTarget{}
}

// timedWriters are nativeWriters that also report the longest a write
// transaction took; their new rows' ids start at nativeRows+from.
func timedWriters(ctx context.Context, db *sql.DB, n, from int) (stop func() (int64, time.Duration, error)) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg        sync.WaitGroup
		committed atomic.Int64
		longest   atomic.Int64
		mu        sync.Mutex
		first     error
	)
	for w := range n {
		wg.Go(func() {
			next := nativeRows + from + w
			for i := 0; ctx.Err() == nil; i++ {
				var stmt string
				switch i % 3 {
				case 0:
					stmt = fmt.Sprintf("INSERT INTO %%s (id, v, d) VALUES (%d, %d, NULL)", next, next%100)
					next += n
				case 1:
					stmt = fmt.Sprintf("UPDATE %%s SET v = v + 1 WHERE id = %d", 1+(i*7919+w)%nativeRows)
				default:
					stmt = fmt.Sprintf("DELETE FROM %%s WHERE id = %d", 1+(i*104729+w)%nativeRows)
				}
				start := time.Now()
				err := func() error {
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					defer tx.Rollback()
					for _, tbl := range []string{"t", "t_ctl"} {
						if _, err := tx.ExecContext(ctx, fmt.Sprintf(stmt, tbl)); err != nil {
							return err
						}
					}
					return tx.Commit()
				}()
				if err != nil && ctx.Err() == nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				if err == nil {
					committed.Add(1)
					for took := int64(time.Since(start)); ; {
						l := longest.Load()
						if took <= l || longest.CompareAndSwap(l, took) {
							break
						}
					}
				}
			}
		})
	}
	return func() (int64, time.Duration, error) {
		cancel()
		wg.Wait()
		return committed.Load(), time.Duration(longest.Load()), first
	}
}

// nativeStepsLeft lists what a failed run could leave on t: an index on w,
// a constraint osc or the --alter adds.
func nativeStepsLeft(ctx context.Context, t *testing.T, db *sql.DB) string {
	t.Helper()
	var left string
	if err := db.QueryRowContext(ctx, `SELECT coalesce(string_agg(name, ', ' ORDER BY name), '') FROM (
			SELECT relname::text AS name FROM pg_class WHERE relname LIKE 't_w%' AND relkind = 'i' AND relnamespace = current_schema()::regnamespace
			UNION ALL SELECT conname::text FROM pg_constraint WHERE conrelid = 't'::regclass AND conname <> 't_pkey') x`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	return left
}

// untilLockWait returns once a statement like pattern waits for a lock, or
// osc has exited, or after postponeTimeout (the checks that follow say what
// went wrong).
func untilLockWait(ctx context.Context, t *testing.T, db *sql.DB, p *oscProcess, pattern string) {
	t.Helper()
	for limit := time.After(postponeTimeout); ; {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND wait_event_type = 'Lock'`,
			pattern).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case <-p.done:
			return
		case <-limit:
			t.Errorf("no statement like %q waited for a lock within %v", pattern, postponeTimeout)
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestNativeStepsPostgres: under writers at full speed the --alter runs in
// its steps, no writer fails, the table is not rewritten (its relfilenode
// stays) and comes out as the plain ALTER leaves the control table.
func TestNativeStepsPostgres(t *testing.T) {
	tg := nativeStepsTarget(t)
	bin := requireOsc(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	admin, db, ns := nativeSetupWith(ctx, t, tg, "osct_native_steps", tg.create)
	before := tg.tableID(ctx, t, db, ns)
	// The dry run's preflight report gives the plan: the clauses, the
	// steps with their locks, an estimate.
	dry := runOscToEnd(ctx, t, bin, append(tg.d.oscArgs(ns, "t"), "--alter", nativeStepsAlter(ns)+", ALTER COLUMN v TYPE bigint",
		"--strategy", "auto", "--cut-over-lock-timeout-seconds", "1", "--cut-over-retries", "5"))
	dry.out.mu.Lock()
	report := dry.out.stdout.String()
	dry.out.mu.Unlock()
	for _, want := range []string{
		"plan:          copy the table: it rewrites the table\n",
		"clause:        ADD UNIQUE (w): online native: CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … USING INDEX\n",
		"clause:        ADD COLUMN n int DEFAULT 1: metadata-only\n",
		"clause:        ALTER COLUMN v TYPE bigint: copy: it rewrites the table\n",
		"locks:         the checksum and the cut-over each block writes at most 1s per attempt, up to 5 attempts (5s at worst)\n",
		"estimate:      ~",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the dry run's report lacks %q:\n%s", want, report)
		}
	}
	dry = runOscToEnd(ctx, t, bin, append(tg.d.oscArgs(ns, "t"), "--alter", nativeStepsAlter(ns),
		"--strategy", "auto", "--cut-over-lock-timeout-seconds", "1", "--cut-over-retries", "5"))
	dry.out.mu.Lock()
	report = dry.out.stdout.String()
	dry.out.mu.Unlock()
	for _, want := range []string{
		"plan:          native, no copy: 8 step(s)\n",
		"clause:        ALTER COLUMN w SET NOT NULL: online native: a validated CHECK (… IS NOT NULL), then SET NOT NULL without a scan\n",
		`step 1:        CREATE UNIQUE INDEX CONCURRENTLY "t_w_key" ON "osct_native_steps"."t" USING btree (w) [SHARE UPDATE EXCLUSIVE: writers go on; reads the whole table]`,
		`[ACCESS EXCLUSIVE: blocks writers at most 1s per attempt, up to 5 attempts (5s at worst)]`,
		"estimate:      ~",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the dry run's report lacks %q:\n%s", want, report)
		}
	}
	stop := timedWriters(ctx, db, 4, 1)
	time.Sleep(300 * time.Millisecond)
	p := runOscToEnd(ctx, t, bin, append(tg.d.oscArgs(ns, "t"), "--alter", nativeStepsAlter(ns), "--execute", "--strategy", "native",
		"--cut-over-lock-timeout-seconds", "1"))
	time.Sleep(300 * time.Millisecond)
	n, longest, werr := stop()
	if p.err != nil {
		t.Fatalf("osc: %s", p.failure())
	}
	if werr != nil {
		t.Errorf("a writer failed: %v", werr)
	}
	if n < 100 {
		t.Errorf("only %d writer transactions: the load proves nothing", n)
	}
	for _, step := range []string{"CREATE UNIQUE INDEX CONCURRENTLY", "NOT VALID", "VALIDATE CONSTRAINT", "_osc_nn_"} {
		if !p.logged(step) {
			t.Errorf("osc did not run a step with %s", step)
		}
	}
	p.out.mu.Lock()
	status := p.out.stdout.String()
	p.out.mu.Unlock()
	if !strings.Contains(status, "Native (no copy): step 8 of 8: ") {
		t.Errorf("the status lines do not say the native path runs, and its step:\n%s", status)
	}
	if after := tg.tableID(ctx, t, db, ns); after != before {
		t.Errorf("the table was rewritten (relfilenode %d, then %d)", before, after)
	}
	t.Logf("%d writer transactions, the longest %v", n, longest)
	tg.plainAlter(ctx, t, db, nativeStepsAlter(ns))
	// The rows differ in w (one sequence for both tables); the definitions
	// (columns, constraints and their names) must not.
	if a, b := tg.def(ctx, t, db, ns, "t"), tg.def(ctx, t, db, ns, "t_ctl"); a != b {
		t.Errorf("definitions differ:\n%s\nplain ALTER:\n%s", a, b)
	}
	var valid bool
	if err := db.QueryRowContext(ctx, "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_w_key'::regclass").Scan(&valid); err != nil || !valid {
		t.Errorf("index t_w_key: valid %v, %v", valid, err)
	}
	dropCase(ctx, t, tg.d, admin, ns)
}

// TestNativeStepsPostgresLockWait: a transaction holds the table. The steps
// that block writers wait at most the lock timeout per attempt and retry,
// so no writer waits much longer than that; once the transaction ends the
// --alter succeeds. When it outlasts the attempts, osc fails and undoes the
// steps done: the table is as it was.
func TestNativeStepsPostgresLockWait(t *testing.T) {
	tg := nativeStepsTarget(t)
	bin := requireOsc(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	admin, db, ns := nativeSetupWith(ctx, t, tg, "osct_native_stepslock", tg.create)
	defBefore := tg.def(ctx, t, db, ns, "t")
	hold := func() *sql.Tx {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "SELECT COUNT(*) FROM t WHERE id = 1"); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	run := func(retries string) *oscProcess {
		p, err := startOsc(ctx, bin, append(tg.d.oscArgs(ns, "t"), "--alter", nativeStepsAlter(ns), "--execute", "--strategy", "native",
			"--cut-over-lock-timeout-seconds", "1", "--cut-over-retries", retries))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Held throughout the attempts: the first blocking step gives up (in
	// about 2 × 1.25 s); dropping the index built before waits for the
	// transaction (blocking no writer), which ends only then, however long
	// osc took to get there; nothing is left.
	tx := hold()
	stop := timedWriters(ctx, db, 2, 1)
	p := run("2")
	untilLockWait(ctx, t, db, p, "DROP INDEX CONCURRENTLY %"+ns+"%")
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.logOutput(t)
	_, longest, werr := stop()
	if code := p.exitCode(); code != 1 || !p.logged("canceling statement due to lock timeout") {
		t.Errorf("with the table held throughout: exit %d (%s), want 1 and a lock timeout", code, p.failure())
	}
	if werr != nil {
		t.Errorf("a writer failed: %v", werr)
	}
	// A lock timeout of 1 s (and the attempt's deadline, a quarter more),
	// with slack for a loaded machine.
	if longest > 2500*time.Millisecond {
		t.Errorf("a writer waited %v, longer than the lock timeout allows", longest)
	}
	if got := tg.def(ctx, t, db, ns, "t"); got != defBefore {
		t.Errorf("the failed run changed the table:\n%s\nwant\n%s", got, defBefore)
	}
	if left := nativeStepsLeft(ctx, t, db); left != "" {
		t.Errorf("the failed run left %s", left)
	}

	// Held for 2.5 s: the steps wait and retry, then succeed.
	tx = hold()
	stop = timedWriters(ctx, db, 2, 1000000)
	p = run("10")
	time.AfterFunc(2500*time.Millisecond, func() { tx.Rollback() })
	<-p.done
	p.logOutput(t)
	_, longest, werr = stop()
	if p.err != nil {
		t.Errorf("with the table held for 2.5 s: %s", p.failure())
	}
	if werr != nil {
		t.Errorf("a writer failed: %v", werr)
	}
	if longest > 2500*time.Millisecond {
		t.Errorf("a writer waited %v, longer than the lock timeout allows", longest)
	}
	tg.plainAlter(ctx, t, db, nativeStepsAlter(ns))
	if a, b := tg.def(ctx, t, db, ns, "t"), tg.def(ctx, t, db, ns, "t_ctl"); a != b {
		t.Errorf("definitions differ:\n%s\nplain ALTER:\n%s", a, b)
	}
	dropCase(ctx, t, tg.d, admin, ns)
}

// TestNativeStepsPostgresInterrupted: osc interrupted (SIGTERM) between the
// steps, here while a transaction holding the table makes the first
// blocking step wait, undoes the steps done: the index it built is dropped
// (once the transaction ends: DROP INDEX CONCURRENTLY waits for it, holding
// no writer), and the table is as it was.
func TestNativeStepsPostgresInterrupted(t *testing.T) {
	tg := nativeStepsTarget(t)
	bin := requireOsc(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	admin, db, ns := nativeSetupWith(ctx, t, tg, "osct_native_stepsint", tg.create)
	defBefore := tg.def(ctx, t, db, ns, "t")
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT COUNT(*) FROM t WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	p, err := startOsc(ctx, bin, append(tg.d.oscArgs(ns, "t"), "--alter", nativeStepsAlter(ns), "--execute", "--strategy", "native",
		"--cut-over-lock-timeout-seconds", "1", "--cut-over-retries", "60"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	deadline := time.Now().Add(30 * time.Second)
	for !p.logged("native step 2 of 8") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if err := p.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(3*time.Second, func() { tx.Rollback() })
	<-p.done
	p.logOutput(t)
	if p.err == nil {
		t.Error("osc interrupted succeeded")
	}
	if got := tg.def(ctx, t, db, ns, "t"); got != defBefore {
		t.Errorf("the interrupted run changed the table:\n%s\nwant\n%s", got, defBefore)
	}
	if left := nativeStepsLeft(ctx, t, db); left != "" {
		t.Errorf("the interrupted run left %s", left)
	}
	dropCase(ctx, t, tg.d, admin, ns)
}
