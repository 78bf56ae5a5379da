package localtests

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// nativeRows is the size of the native path's tables.
const nativeRows = 20000

// nativeTarget is one database for the native path's tests.
type nativeTarget struct {
	d      dialect
	create []string // creates and fills t, then t_ctl the same
	// idQuery identifies a table's storage ($1: ns, $2: table): a copy or a
	// rebuild changes it.
	idQuery string
	// definition describes table name of ns, for comparing definitions.
	definition func(ctx context.Context, db *sql.DB, ns, name string) (string, error)
	// alter: metadata only; copy: needs a copy; lockError is how a lock
	// wait that timed out reads.
	alter, copy, lockError string
	// plainSession is run before the plain ALTER on the control table: a
	// DBA's session.
	plainSession []string
}

func nativeTargets() []nativeTarget {
	return []nativeTarget{
		{
			d: mysqlDialect{},
			create: []string{
				"CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v INT NOT NULL, x VARCHAR(20), d DATETIME NULL, KEY v (v)) ENGINE=InnoDB",
				fmt.Sprintf("INSERT INTO t SELECT seq, seq %% 100, CONCAT('x', seq), '2026-01-01' + INTERVAL seq MINUTE FROM seq_1_to_%d", nativeRows),
				"CREATE TABLE t_ctl LIKE t",
				"INSERT INTO t_ctl SELECT * FROM t",
			},
			idQuery: "SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME = CONCAT(?, '/', ?)",
			definition: func(ctx context.Context, db *sql.DB, ns, name string) (string, error) {
				var n, def string
				err := db.QueryRowContext(ctx, "SHOW CREATE TABLE "+name).Scan(&n, &def)
				return strings.Replace(def, "CREATE TABLE `"+name+"`", "CREATE TABLE", 1), err
			},
			// The TIMESTAMP literal is a local time in the server's zone,
			// as in the plain ALTER.
			alter: "ADD COLUMN n INT NOT NULL DEFAULT 7, DROP COLUMN x, ALTER COLUMN d SET DEFAULT '2000-01-01 00:00:00', " +
				"ADD COLUMN ts TIMESTAMP NULL DEFAULT '2026-03-29 03:30:00'",
			copy:         "ADD COLUMN n INT NULL, ADD INDEX n (n)",
			lockError:    "Lock wait timeout exceeded",
			plainSession: []string{"SET SESSION time_zone = @@global.time_zone", "SET SESSION sql_mode = @@global.sql_mode"},
		},
		{
			d: pgDialect{dsn: pgDSN()},
			create: []string{
				"CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL, x varchar(20), d timestamp)",
				"CREATE INDEX t_v ON t (v)",
				fmt.Sprintf("INSERT INTO t SELECT g, g %% 100, 'x' || g, '2026-01-01'::timestamp + g * interval '1 minute' FROM generate_series(1, %d) g", nativeRows),
				"CREATE TABLE t_ctl (LIKE t INCLUDING ALL)",
				"INSERT INTO t_ctl SELECT * FROM t",
			},
			idQuery: "SELECT pg_relation_filenode(format('%I.%I', $1::text, $2::text))",
			definition: func(ctx context.Context, db *sql.DB, ns, name string) (string, error) {
				var def string
				err := db.QueryRowContext(ctx, `SELECT string_agg(format('%s %s %s %s', attname, format_type(atttypid, atttypmod), attnotnull,
						pg_get_expr(d.adbin, d.adrelid)), ', ' ORDER BY attnum)
						|| ' / ' || (SELECT string_agg(format('%s %s', contype, pg_get_constraintdef(oid)), ', ' ORDER BY contype, conname)
							FROM pg_constraint WHERE conrelid = a.attrelid)
					FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
					WHERE attrelid = format('%I.%I', $1::text, $2::text)::regclass AND attnum > 0 AND NOT attisdropped
					GROUP BY a.attrelid`, ns, name).Scan(&def)
				return def, err
			},
			alter: "ADD COLUMN n int NOT NULL DEFAULT 7, DROP COLUMN x, ALTER COLUMN d SET DEFAULT '2000-01-01', " +
				"ADD COLUMN ts timestamptz DEFAULT '2026-03-29 03:30:00+02', ADD CONSTRAINT v_pos CHECK (v >= 0) NOT VALID; " +
				"RENAME COLUMN n TO n2",
			copy:      "ADD COLUMN n int, ALTER COLUMN v TYPE bigint",
			lockError: "canceling statement due to lock timeout",
		},
	}
}

// nativeSetup makes table t and its control copy t_ctl (tg.create) in a
// fresh namespace osct_native_<name>.
func nativeSetup(ctx context.Context, t *testing.T, tg nativeTarget, name string) (admin, db *sql.DB, ns string) {
	t.Helper()
	return nativeSetupWith(ctx, t, tg, "osct_native_"+name, tg.create)
}

// nativeSetupWith makes namespace ns afresh and runs create in it.
func nativeSetupWith(ctx context.Context, t *testing.T, tg nativeTarget, ns string, create []string) (admin, db *sql.DB, _ string) {
	t.Helper()
	admin = tg.d.connectAdmin(t)
	if err := tg.d.resetNamespace(ctx, admin, ns); err != nil {
		t.Fatal(err)
	}
	var err error
	if db, err = tg.d.open(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := execScript(ctx, db, create); err != nil {
		t.Fatal(err)
	}
	return admin, db, ns
}

// runOscToEnd runs osc with args until it exits and logs its output (when
// the test fails or runs with -v).
func runOscToEnd(ctx context.Context, t *testing.T, bin string, args []string) *oscProcess {
	t.Helper()
	p, err := startOsc(ctx, bin, args)
	if err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.logOutput(t)
	return p
}

// tableID is the id of ns.t's storage.
func (tg nativeTarget) tableID(ctx context.Context, t *testing.T, db *sql.DB, ns string) int64 {
	t.Helper()
	var id int64
	if err := db.QueryRowContext(ctx, tg.idQuery, ns, "t").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// def is the definition of ns.name.
func (tg nativeTarget) def(ctx context.Context, t *testing.T, db *sql.DB, ns, name string) string {
	t.Helper()
	def, err := tg.definition(ctx, db, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return def
}

// compare compares t with the plain ALTER's t_ctl: definition and rows.
func (tg nativeTarget) compare(ctx context.Context, t *testing.T, db *sql.DB, ns string) {
	t.Helper()
	if a, b := tg.def(ctx, t, db, ns, "t"), tg.def(ctx, t, db, ns, "t_ctl"); a != b {
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

// plainAlter runs the plain ALTER on the control table.
func (tg nativeTarget) plainAlter(ctx context.Context, t *testing.T, db *sql.DB, alter string) {
	t.Helper()
	var stmts []string
	for _, c := range strings.Split(alter, ";") {
		stmts = append(stmts, "ALTER TABLE t_ctl "+c)
	}
	if err := execScript(ctx, db, append(slices.Clone(tg.plainSession), stmts...)); err != nil {
		t.Fatal(err)
	}
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

// TestNative runs --alters the server carries out without copying the table
// under writers at full speed: osc runs them natively, the table is not
// copied or rebuilt, no writer fails, and the result is what the plain ALTER
// gives an identical table (definition and every row). A dry run changes
// nothing.
func TestNative(t *testing.T) {
	for _, tg := range nativeTargets() {
		t.Run(tg.d.dir(), func(t *testing.T) {
			t.Parallel()
			bin := requireOsc(t)
			ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
			defer cancel()
			admin, db, ns := nativeSetup(ctx, t, tg, "run")
			before := tg.tableID(ctx, t, db, ns)
			baseline, err := leftovers(ctx, tg.d, db, ns, "t", true)
			if err != nil {
				t.Fatal(err)
			}
			dry := runOscToEnd(ctx, t, bin, append(tg.d.oscArgs(ns, "t"), "--alter", tg.alter, "--strategy", "auto"))
			if dry.err != nil || !dry.logged("the --alter can run natively; nothing was changed") {
				t.Fatalf("dry run: %s", dry.failure())
			}
			checkLeftovers(ctx, t, tg.d, db, ns, "t", true, baseline)

			stop := nativeWriters(ctx, db, 4)
			time.Sleep(300 * time.Millisecond)
			p, err := startOsc(ctx, bin, append(tg.d.oscArgs(ns, "t"), "--alter", tg.alter, "--execute", "--strategy", "auto"))
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
			if after := tg.tableID(ctx, t, db, ns); after != before {
				t.Errorf("the table was rewritten (storage id %d, then %d)", before, after)
			}
			checkLeftovers(ctx, t, tg.d, db, ns, "t", true, baseline)
			// The server is the oracle: the plain ALTER on the control
			// table, in a DBA's session.
			tg.plainAlter(ctx, t, db, tg.alter)
			tg.compare(ctx, t, db, ns)
			dropCase(ctx, t, tg.d, admin, ns)
		})
	}
}

// TestNativeLockWait: a transaction holds the table. Each attempt of the
// native ALTER waits at most the lock timeout, and osc retries; once the
// transaction ends it succeeds, and when it outlasts the attempts osc fails
// with the table unchanged and nothing left behind.
func TestNativeLockWait(t *testing.T) {
	for _, tg := range nativeTargets() {
		t.Run(tg.d.dir(), func(t *testing.T) {
			t.Parallel()
			bin := requireOsc(t)
			ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
			defer cancel()
			admin, db, ns := nativeSetup(ctx, t, tg, "lock")
			baseline, err := leftovers(ctx, tg.d, db, ns, "t", true)
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
			const alter = "ADD COLUMN n INT NULL"
			run := func(retries string) *oscProcess {
				p, err := startOsc(ctx, bin, append(tg.d.oscArgs(ns, "t"), "--alter", alter, "--execute", "--strategy", "native",
					"--cut-over-lock-timeout-seconds", "1", "--cut-over-retries", retries))
				if err != nil {
					t.Fatal(err)
				}
				return p
			}

			// The transaction outlasts both attempts.
			tx := hold()
			p := run("2")
			<-p.done
			p.logOutput(t)
			if code := p.exitCode(); code != 1 || !p.logged(tg.lockError) {
				t.Errorf("with the table held throughout: exit %d (%s), want 1 and a lock wait timeout", code, p.failure())
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			if got, want := tg.def(ctx, t, db, ns, "t"), tg.def(ctx, t, db, ns, "t_ctl"); got != want {
				t.Errorf("the failed run changed the table:\n%s\nwant\n%s", got, want)
			}
			checkLeftovers(ctx, t, tg.d, db, ns, "t", true, baseline)

			// The transaction ends during the retries.
			tx = hold()
			p = run("10")
			time.AfterFunc(2500*time.Millisecond, func() { tx.Rollback() })
			<-p.done
			p.logOutput(t)
			if p.err != nil {
				t.Errorf("with the table held for 2.5 s: %s", p.failure())
			}
			tg.plainAlter(ctx, t, db, alter)
			tg.compare(ctx, t, db, ns)
			checkLeftovers(ctx, t, tg.d, db, ns, "t", true, baseline)
			dropCase(ctx, t, tg.d, admin, ns)
		})
	}
}

// TestNativeNeedsCopy: an --alter the server cannot carry out without
// reading or copying the rows (a new index, SET NOT NULL) is copied under
// --strategy auto, and refused under --strategy native (exit 3, nothing
// changed, nothing left).
func TestNativeNeedsCopy(t *testing.T) {
	for _, tg := range nativeTargets() {
		t.Run(tg.d.dir(), func(t *testing.T) {
			t.Parallel()
			bin := requireOsc(t)
			ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
			defer cancel()
			admin, db, ns := nativeSetup(ctx, t, tg, "copy")
			baseline, err := leftovers(ctx, tg.d, db, ns, "t", true)
			if err != nil {
				t.Fatal(err)
			}
			p := runOscToEnd(ctx, t, bin, append(tg.d.oscArgs(ns, "t"), "--alter", tg.copy, "--execute", "--strategy", "native"))
			if code := p.exitCode(); code != 3 || !p.logged("needs a copy of the table") {
				t.Errorf("--strategy native: exit %d (%s), want 3 and a refusal", code, p.failure())
			}
			if got, want := tg.def(ctx, t, db, ns, "t"), tg.def(ctx, t, db, ns, "t_ctl"); got != want {
				t.Errorf("the refused run changed the table:\n%s\nwant\n%s", got, want)
			}
			checkLeftovers(ctx, t, tg.d, db, ns, "t", true, baseline)

			p = runOscToEnd(ctx, t, bin, append(tg.d.oscArgs(ns, "t"), "--alter", tg.copy, "--execute", "--strategy", "auto", "--ok-to-drop-table"))
			if p.err != nil || !p.logged("the --alter needs a copy of the table") || !p.logged("row copy complete") {
				t.Errorf("--strategy auto: %s, want a copy", p.failure())
			}
			tg.plainAlter(ctx, t, db, tg.copy)
			tg.compare(ctx, t, db, ns)
			checkLeftovers(ctx, t, tg.d, db, ns, "t", true, baseline)
			dropCase(ctx, t, tg.d, admin, ns)
		})
	}
}
