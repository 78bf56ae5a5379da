package localtests

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// nativeRows is the size of the native path's tables.
const nativeRows = 20000

// nativeSetup makes table t and its control copy t_ctl in a fresh
// namespace of MySQL.
func nativeSetup(ctx context.Context, t *testing.T, name string) (d mysqlDialect, admin, db *sql.DB, ns string) {
	t.Helper()
	admin = d.connectAdmin(t)
	ns = "osct_native_" + name
	if err := d.resetNamespace(ctx, admin, ns); err != nil {
		t.Fatal(err)
	}
	var err error
	if db, err = d.open(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := execScript(ctx, db, []string{
		"CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v INT NOT NULL, x VARCHAR(20), d DATETIME NULL, KEY v (v)) ENGINE=InnoDB",
		fmt.Sprintf("INSERT INTO t SELECT seq, seq %% 100, CONCAT('x', seq), '2026-01-01' + INTERVAL seq MINUTE FROM seq_1_to_%d", nativeRows),
		"CREATE TABLE t_ctl LIKE t",
		"INSERT INTO t_ctl SELECT * FROM t",
	}); err != nil {
		t.Fatal(err)
	}
	return d, admin, db, ns
}

// innodbTableID is InnoDB's id of ns.t: a copy or a rebuild of the table
// gives it a new one.
func innodbTableID(ctx context.Context, t *testing.T, db *sql.DB, ns string) int64 {
	t.Helper()
	var id int64
	if err := db.QueryRowContext(ctx, "SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME = ?", ns+"/t").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// nativeWriters writes to t and t_ctl alike, at full speed, on the columns
// every --alter here keeps (id, v, d), until stop is called, which returns the
// transactions committed and the first error.
func nativeWriters(ctx context.Context, db *sql.DB, n int) (stop func() (int64, error)) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg        sync.WaitGroup
		committed atomic.Int64
		mu        sync.Mutex
		first     error
	)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			next := int64(nativeRows + 1 + w)
			for ctx.Err() == nil {
				var stmts []string
				switch id := 1 + rng.IntN(nativeRows); rng.IntN(4) {
				case 0:
					// d given: an --alter may change its DEFAULT, which would
					// otherwise differ between the altered t and t_ctl.
					stmts = []string{fmt.Sprintf("INSERT INTO %%s (id, v, d) VALUES (%d, %d, NULL)", next, rng.IntN(100))}
					next += int64(n)
				case 1:
					stmts = []string{fmt.Sprintf("DELETE FROM %%s WHERE id = %d", id)}
				default:
					stmts = []string{fmt.Sprintf("UPDATE %%s SET v = v + 1 WHERE id = %d", id)}
				}
				err := func() error {
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					defer tx.Rollback()
					for _, s := range stmts {
						for _, tbl := range []string{"t", "t_ctl"} {
							if _, err := tx.ExecContext(ctx, fmt.Sprintf(s, tbl)); err != nil {
								return err
							}
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
				}
			}
		}()
	}
	return func() (int64, error) {
		cancel()
		wg.Wait()
		return committed.Load(), first
	}
}

// TestNative runs --alters the server carries out instantly (ALGORITHM=INSTANT)
// under writers at full speed: osc runs them natively, the table is not
// copied, no writer fails, and the result is what the plain ALTER gives an
// identical table (definition and every row). A dry run changes nothing.
func TestNative(t *testing.T) {
	const alter = "ADD COLUMN n INT NOT NULL DEFAULT 7, DROP COLUMN x, ALTER COLUMN d SET DEFAULT '2000-01-01 00:00:00', " +
		"ADD COLUMN ts TIMESTAMP NULL DEFAULT '2026-03-29 03:30:00'"
	bin := requireOsc(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	d, admin, db, ns := nativeSetup(ctx, t, "run")
	before := innodbTableID(ctx, t, db, ns)
	baseline, err := leftovers(ctx, d, db, ns, "t", true)
	if err != nil {
		t.Fatal(err)
	}
	dry, err := startOsc(ctx, bin, append(d.oscArgs(ns, "t"), "--alter", alter, "--strategy", "auto"))
	if err != nil {
		t.Fatal(err)
	}
	<-dry.done
	dry.logOutput(t)
	if dry.err != nil || !dry.logged("the --alter can run natively; nothing was changed") {
		t.Fatalf("dry run: %s", dry.failure())
	}
	checkLeftovers(ctx, t, d, db, ns, "t", true, baseline)

	stop := nativeWriters(ctx, db, 4)
	time.Sleep(300 * time.Millisecond)
	p, err := startOsc(ctx, bin, append(d.oscArgs(ns, "t"), "--alter", alter, "--execute", "--strategy", "auto"))
	if err != nil {
		t.Fatal(err)
	}
	<-p.done
	defer p.logOutput(t)
	time.Sleep(300 * time.Millisecond)
	n, werr := stop()
	if p.err != nil {
		t.Fatalf("osc: %s", p.failure())
	}
	if werr != nil {
		t.Errorf("a writer failed: %v", werr)
	}
	if n < 100 {
		t.Errorf("only %d writer transactions: the load proves nothing", n)
	}
	if !p.logged("migration complete: the table was altered natively") {
		t.Error("osc did not say it altered the table natively")
	}
	if after := innodbTableID(ctx, t, db, ns); after != before {
		t.Errorf("the table was rebuilt (InnoDB table id %d, then %d)", before, after)
	}
	checkLeftovers(ctx, t, d, db, ns, "t", true, baseline)
	// The server is the oracle: the plain ALTER on the control table, in the
	// server's zone and sql_mode, as a DBA's session runs it.
	if err := execScript(ctx, db, []string{"SET SESSION time_zone = @@global.time_zone", "SET SESSION sql_mode = @@global.sql_mode",
		"ALTER TABLE t_ctl " + alter}); err != nil {
		t.Fatal(err)
	}
	nativeCompare(ctx, t, db)
	dropCase(ctx, t, d, admin, ns)
}

// nativeCompare compares t with t_ctl: definition and rows.
func nativeCompare(ctx context.Context, t *testing.T, db *sql.DB) {
	t.Helper()
	if a, b := tableDefinition(ctx, t, db, "t"), tableDefinition(ctx, t, db, "t_ctl"); a != b {
		t.Errorf("definitions differ:\n%s\nplain ALTER:\n%s", a, b)
	}
	var diff int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (
		SELECT * FROM (SELECT * FROM t EXCEPT SELECT * FROM t_ctl) a
		UNION ALL SELECT * FROM (SELECT * FROM t_ctl EXCEPT SELECT * FROM t) b) x`).Scan(&diff); err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Errorf("%d rows differ between t and the plain ALTER's t_ctl", diff)
	}
}

// TestNativeLockWait: a transaction holds the table. Each attempt of the
// native ALTER waits at most the lock timeout, and osc retries; once the
// transaction ends it succeeds, and when it outlasts the attempts osc fails
// with the table unchanged and nothing left behind.
func TestNativeLockWait(t *testing.T) {
	bin := requireOsc(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	d, admin, db, ns := nativeSetup(ctx, t, "lock")
	baseline, err := leftovers(ctx, d, db, ns, "t", true)
	if err != nil {
		t.Fatal(err)
	}
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
	run := func(alter string, retries string) *oscProcess {
		p, err := startOsc(ctx, bin, append(d.oscArgs(ns, "t"), "--alter", alter, "--execute", "--strategy", "native",
			"--cut-over-lock-timeout-seconds", "1", "--cut-over-retries", retries))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	// The transaction outlasts both attempts.
	tx := hold()
	p := run("ADD COLUMN n INT NULL", "2")
	<-p.done
	p.logOutput(t)
	if code := p.exitCode(); code != 1 || !p.logged("Lock wait timeout exceeded") {
		t.Errorf("with the table held throughout: exit %d (%s), want 1 and a lock wait timeout", code, p.failure())
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got, want := tableDefinition(ctx, t, db, "t"), tableDefinition(ctx, t, db, "t_ctl"); got != want {
		t.Errorf("the failed run changed the table:\n%s\nwant\n%s", got, want)
	}
	checkLeftovers(ctx, t, d, db, ns, "t", true, baseline)

	// The transaction ends during the retries.
	tx = hold()
	p = run("ADD COLUMN n INT NULL", "10")
	time.AfterFunc(2500*time.Millisecond, func() { tx.Rollback() })
	<-p.done
	p.logOutput(t)
	if p.err != nil {
		t.Errorf("with the table held for 2.5 s: %s", p.failure())
	}
	if err := execScript(ctx, db, []string{"ALTER TABLE t_ctl ADD COLUMN n INT NULL"}); err != nil {
		t.Fatal(err)
	}
	nativeCompare(ctx, t, db)
	checkLeftovers(ctx, t, d, db, ns, "t", true, baseline)
	dropCase(ctx, t, d, admin, ns)
}

func tableDefinition(ctx context.Context, t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var n, s string
	if err := db.QueryRowContext(ctx, "SHOW CREATE TABLE "+name).Scan(&n, &s); err != nil {
		t.Fatal(err)
	}
	return strings.Replace(s, "CREATE TABLE `"+name+"`", "CREATE TABLE", 1)
}

// TestNativeNeedsCopy: an --alter the server cannot carry out instantly
// (a new index) is copied under --strategy auto, and refused under
// --strategy native (exit 3, nothing changed, nothing left).
func TestNativeNeedsCopy(t *testing.T) {
	bin := requireOsc(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	d, admin, db, ns := nativeSetup(ctx, t, "copy")
	baseline, err := leftovers(ctx, d, db, ns, "t", true)
	if err != nil {
		t.Fatal(err)
	}
	const alter = "ADD COLUMN n INT NULL, ADD INDEX n (n)"
	p, err := startOsc(ctx, bin, append(d.oscArgs(ns, "t"), "--alter", alter, "--execute", "--strategy", "native"))
	if err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.logOutput(t)
	if code := p.exitCode(); code != 3 || !p.logged("needs a copy of the table") {
		t.Errorf("--strategy native: exit %d (%s), want 3 and a refusal", code, p.failure())
	}
	if got, want := tableDefinition(ctx, t, db, "t"), tableDefinition(ctx, t, db, "t_ctl"); got != want {
		t.Errorf("the refused run changed the table:\n%s\nwant\n%s", got, want)
	}
	checkLeftovers(ctx, t, d, db, ns, "t", true, baseline)

	p, err = startOsc(ctx, bin, append(d.oscArgs(ns, "t"), "--alter", alter, "--execute", "--strategy", "auto", "--ok-to-drop-table"))
	if err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.logOutput(t)
	if p.err != nil || !p.logged("the --alter needs a copy of the table") || !p.logged("row copy complete") {
		t.Errorf("--strategy auto: %s, want a copy", p.failure())
	}
	if err := execScript(ctx, db, []string{"ALTER TABLE t_ctl " + alter}); err != nil {
		t.Fatal(err)
	}
	nativeCompare(ctx, t, db)
	checkLeftovers(ctx, t, d, db, ns, "t", true, baseline)
	dropCase(ctx, t, d, admin, ns)
}
