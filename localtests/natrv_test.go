package localtests

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Tests from the review of the native path (--strategy auto/native): each
// showed a defect (fixed in c3fc658; the comments say what the review saw).
// Namespaces: osct_natrv_*.

// natrvSetup makes namespace osct_natrv_<name> afresh and runs create in it.
func natrvSetup(ctx context.Context, t *testing.T, tg nativeTarget, name string, create []string) (admin, db *sql.DB, ns string) {
	t.Helper()
	return nativeSetupWith(ctx, t, tg, "osct_natrv_"+name, create)
}

// natrvAlterWaits returns once osc's ALTER of pid in namespace ns waits for
// a lock.
func natrvAlterWaits(ctx context.Context, t *testing.T, db *sql.DB, p *oscProcess, ns string) {
	t.Helper()
	for {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE query LIKE 'ALTER TABLE %' || $1 || '%pid TYPE%' AND wait_event_type = 'Lock'`, ns).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case <-p.done:
			p.logOutput(t)
			t.Fatalf("osc ended before its ALTER waited: %s", p.failure())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// natrvForeignKey is a table t whose column pid references p: widening pid
// is catalog only, and takes a lock on p too.
var natrvForeignKey = []string{
	"CREATE TABLE p (id varchar(10) PRIMARY KEY)",
	"INSERT INTO p SELECT g::text FROM generate_series(1, 1000) g",
	"CREATE TABLE t (id int PRIMARY KEY, pid varchar(10) REFERENCES p (id), v int)",
	"INSERT INTO t SELECT g, g::text, g FROM generate_series(1, 1000) g",
}

// TestNatrvInstantOnScratchOnly: the scratch table (CREATE TABLE … LIKE)
// is not the table. On MariaDB a table keeps the columns it dropped
// instantly as hidden fields, and InnoDB refuses an instant ADD COLUMN once
// the fields would exceed its limit (1023), while the fresh scratch table,
// without the hidden fields, accepts it. osc then takes the native path and
// the real ALTER … ALGORITHM=INSTANT fails ("ALGORITHM=INSTANT is not
// supported for this operation"): under --strategy auto osc gives up with
// exit 1, where it should copy (a plain ALTER rebuilds the table in place).
func TestNatrvInstantOnScratchOnly(t *testing.T) {
	tg := nativeTargets()[0]
	bin := requireOsc(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	var cols, drops, adds []string
	for i := range 1000 {
		cols = append(cols, fmt.Sprintf("c%d INT NULL", i))
		if i >= 100 {
			drops = append(drops, fmt.Sprintf("DROP COLUMN c%d", i))
		}
	}
	for i := range 30 {
		adds = append(adds, fmt.Sprintf("ADD COLUMN n%d INT NULL", i))
	}
	var create []string
	for _, name := range []string{"t", "t_ctl"} {
		create = append(create,
			fmt.Sprintf("CREATE TABLE %s (id INT NOT NULL PRIMARY KEY, %s) ENGINE=InnoDB", name, strings.Join(cols, ", ")),
			fmt.Sprintf("INSERT INTO %s (id, c0, c99) SELECT seq, seq, seq FROM seq_1_to_200", name),
			// The table's history: columns dropped instantly stay hidden.
			fmt.Sprintf("ALTER TABLE %s %s, ALGORITHM=INSTANT", name, strings.Join(drops, ", ")))
	}
	admin, db, ns := natrvSetup(ctx, t, tg, "scratchonly", create)
	baseline, err := leftovers(ctx, tg.d, db, ns, "t", true)
	if err != nil {
		t.Fatal(err)
	}
	alter := strings.Join(adds, ", ")
	p := runOscToEnd(ctx, t, bin, append(tg.d.oscArgs(ns, "t"), "--alter", alter, "--execute", "--strategy", "auto", "--ok-to-drop-table"))
	if p.err != nil {
		t.Fatalf("--strategy auto on an --alter the table cannot take instantly (the scratch table can): %s; want a copy", p.failure())
	}
	tg.plainAlter(ctx, t, db, alter)
	tg.compare(ctx, t, db, ns)
	checkLeftovers(ctx, t, tg.d, db, ns, "t", true, baseline)
	dropCase(ctx, t, tg.d, admin, ns)
}

// TestNatrvThrottleHoldsNative: the README says "The cut-over also waits
// while throttled"; the native ALTER is the native path's cut-over (it
// queues writers behind it, it is what a lagging replica must replay), but
// osc runs it at once while the throttle flag file exists: the throttler is
// started only by the copy. Here the file exists until osc says it waits:
// the table must be unchanged then, and altered once the file is gone.
func TestNatrvThrottleHoldsNative(t *testing.T) {
	for _, tg := range nativeTargets() {
		t.Run(tg.d.dir(), func(t *testing.T) {
			t.Parallel()
			bin := requireOsc(t)
			ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
			defer cancel()
			admin, db, ns := natrvSetup(ctx, t, tg, "throttle", tg.create)
			flag := filepath.Join(t.TempDir(), "throttle")
			if err := os.WriteFile(flag, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			const alter = "ADD COLUMN n INT NULL"
			p, err := startOsc(ctx, bin, append(tg.d.oscArgs(ns, "t"), "--alter", alter, "--execute", "--strategy", "native",
				"--throttle-flag-file", flag))
			if err != nil {
				t.Fatal(err)
			}
			defer p.stop()
			// Held until osc says it waits (once the hold lasts a second),
			// however long osc takes to get there on a busy machine.
			if err := p.waitOutput(nativeThrottleWait, postponeTimeout); err != nil {
				p.logOutput(t)
				t.Fatalf("osc ran the native ALTER while throttled, or never waited for the flag file: %v", err)
			}
			if got, want := tg.def(ctx, t, db, ns, "t"), tg.def(ctx, t, db, ns, "t_ctl"); got != want {
				t.Errorf("the table was altered while throttled:\n%s", got)
			}
			if err := os.Remove(flag); err != nil {
				t.Fatal(err)
			}
			<-p.done
			p.logOutput(t)
			if p.err != nil {
				t.Errorf("osc after the throttle ended: %s", p.failure())
			}
			tg.plainAlter(ctx, t, db, alter)
			tg.compare(ctx, t, db, ns)
			dropCase(ctx, t, tg.d, admin, ns)
		})
	}
}

// TestNatrvPostgresLockWaitPerAttempt: --cut-over-lock-timeout-seconds is
// "the longest one cut-over attempt may hold writers", but lock_timeout
// bounds each lock wait, not the attempt. A type change of a foreign key
// column (varchar widened: catalog only, the native path) takes the table's
// ACCESS EXCLUSIVE lock and then, to re-add the foreign key, a SHARE ROW
// EXCLUSIVE lock on the referenced table, which any open write transaction
// on that table holds off: writers of the table wait for both lock waits,
// up to twice the lock timeout (and one more lock timeout per further table
// the --alter's clauses lock).
//
// A reader of t makes the ALTER wait for t's lock until release, and an open
// write transaction on p then for p's lock: the attempt's deadline (a
// quarter over the lock timeout) must end it, where p's lock timeout alone
// would end it at release plus the lock timeout. release is well within the
// lock timeout, so that t's lock timeout does not end the attempt first on a
// busy machine; the writer's wait is judged half-way between the two ends.
func TestNatrvPostgresLockWaitPerAttempt(t *testing.T) {
	tg := nativeTargets()[1]
	bin := requireOsc(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	admin, db, ns := natrvSetup(ctx, t, tg, "lockwait", natrvForeignKey)
	const alter = "ALTER COLUMN pid TYPE varchar(20)"
	dry := runOscToEnd(ctx, t, bin, append(tg.d.oscArgs(ns, "t"), "--alter", alter, "--strategy", "native"))
	if dry.err != nil || !dry.logged("the --alter can run natively") {
		t.Fatalf("dry run: %s; want the native path", dry.failure())
	}

	// A write transaction's lock on p, throughout: taken by LOCK TABLE, not
	// a write, so that the transaction has no id. Creating a logical slot
	// waits for every transaction with one on the server, and other tests
	// (other packages too) create slots meanwhile.
	onP, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer onP.Rollback()
	if _, err := onP.ExecContext(ctx, "LOCK TABLE p IN ROW EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	// A reader of t, until release after the ALTER starts waiting.
	onT, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer onT.Rollback()
	if _, err := onT.ExecContext(ctx, "SELECT count(*) FROM t"); err != nil {
		t.Fatal(err)
	}
	const (
		lockTimeout = 4 * time.Second
		release     = lockTimeout * 5 / 8
		attempt     = lockTimeout + lockTimeout/4 // the attempt's deadline
		perLock     = release + lockTimeout       // the writer's wait without it
	)
	p, err := startOsc(ctx, bin, append(tg.d.oscArgs(ns, "t"), "--alter", alter, "--execute", "--strategy", "native",
		"--cut-over-lock-timeout-seconds", strconv.Itoa(int(lockTimeout/time.Second)), "--cut-over-retries", "1"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	// Wait until the ALTER waits for t's lock.
	natrvAlterWaits(ctx, t, db, p, "osct_natrv_lockwait")
	writer := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		_, err := db.ExecContext(ctx, "INSERT INTO t (id, v) VALUES (100001, 1)")
		if err != nil {
			t.Errorf("writer: %v", err)
		}
		writer <- time.Since(start)
	}()
	time.Sleep(release)
	if err := onT.Rollback(); err != nil {
		t.Fatal(err)
	}
	blocked := <-writer
	<-p.done
	p.logOutput(t)
	t.Logf("a writer of t waited %v (the attempt's deadline %v, p's lock timeout %v after the release)", blocked.Round(time.Millisecond), attempt, perLock)
	if blocked > (attempt+perLock)/2 {
		t.Errorf("a writer of t waited %v behind one attempt of the native ALTER; the lock timeout is %v", blocked.Round(time.Millisecond), lockTimeout)
	}
	if code := p.exitCode(); code != 1 {
		t.Errorf("osc: exit %d (%s), want 1 (the write transaction on p outlasts the attempt)", code, p.failure())
	}
	if !p.logged("the attempt outlasted the lock timeout") {
		t.Errorf("osc: %s; want the attempt's deadline to have ended it, not a lock timeout", p.failure())
	}
	if err := onP.Rollback(); err != nil {
		t.Fatal(err)
	}
	dropCase(ctx, t, tg.d, admin, ns)
}

// TestNatrvPostgresNativeRejected: LIKE copies no views, so a type change
// of a column a view reads is catalog only on the scratch table, and osc
// takes the native path; the server rejects the real ALTER ("cannot alter
// type of a column used by a view or rule"). Nothing was changed, but osc
// exits 1 ("the migration failed"), while --strategy copy refuses the same
// --alter before changing anything, exit 3, naming the view. Under
// --strategy auto, a native ALTER the server rejects should be handed to the
// copy path (which refuses here, exit 3, and copies in
// TestNatrvInstantOnScratchOnly's case).
func TestNatrvPostgresNativeRejected(t *testing.T) {
	tg := nativeTargets()[1]
	bin := requireOsc(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	admin, _, ns := natrvSetup(ctx, t, tg, "view", []string{
		"CREATE TABLE t (id int PRIMARY KEY, x varchar(10))",
		"INSERT INTO t SELECT g, g::text FROM generate_series(1, 1000) g",
		"CREATE VIEW tv AS SELECT id, x FROM t",
	})
	const alter = "ALTER COLUMN x TYPE varchar(20)"
	for _, s := range []string{"copy", "auto"} {
		p := runOscToEnd(ctx, t, bin, append(tg.d.oscArgs(ns, "t"), "--alter", alter, "--execute", "--strategy", s, "--ok-to-drop-table"))
		if code := p.exitCode(); code != 3 {
			t.Errorf("--strategy %s: exit %d (%s), want 3: refused, nothing changed", s, code, p.failure())
		}
	}
	dropCase(ctx, t, tg.d, admin, ns)
}

// TestNatrvPostgresDeadlockRetried: the native path retries a lock timeout
// (55P03) only, where the cut-over retries every transient error
// (table.PostgresTransient: a deadlock too). A type change of a foreign key
// column (native: a varchar widened) holds the table's ACCESS EXCLUSIVE
// lock while it waits for the referenced table's; a transaction that wrote
// the referenced table and then writes the table closes a cycle, and the
// ALTER, which has waited longest, is the deadlock's victim: nothing was
// changed and the next attempt would succeed, but osc fails at once with
// attempts left.
func TestNatrvPostgresDeadlockRetried(t *testing.T) {
	tg := nativeTargets()[1]
	bin := requireOsc(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	admin, db, ns := natrvSetup(ctx, t, tg, "deadlock", natrvForeignKey)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "INSERT INTO p VALUES ('held')"); err != nil {
		t.Fatal(err)
	}
	const alter = "ALTER COLUMN pid TYPE varchar(20)"
	p, err := startOsc(ctx, bin, append(tg.d.oscArgs(ns, "t"), "--alter", alter, "--execute", "--strategy", "native",
		"--cut-over-lock-timeout-seconds", "5", "--cut-over-retries", "5"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	natrvAlterWaits(ctx, t, db, p, "osct_natrv_deadlock")
	// The transaction now writes t: a cycle, which the ALTER's deadlock
	// check (it has waited longest) breaks by aborting the ALTER.
	if _, err := tx.ExecContext(ctx, "INSERT INTO t (id, v) VALUES (100001, 1)"); err != nil {
		t.Fatalf("the transaction was the deadlock's victim, not the ALTER (the test proves nothing): %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.logOutput(t)
	if p.err != nil {
		t.Errorf("osc gave up after a deadlock with attempts left: %s", p.failure())
	}
	dropCase(ctx, t, tg.d, admin, ns)
}

// TestNatrvMySQLReplicatedAlgorithm: the native ALTER is binlogged as osc
// runs it, with ", ALGORITHM=INSTANT", and every replica must then do it
// instantly or stop replicating (error 1845/1846). Whether the server can do
// an ALTER instantly depends on the table's history (see
// TestNatrvInstantOnScratchOnly: columns dropped instantly stay hidden), which
// a replica's copy of the table need not share (one built from a logical
// dump, a table rebuilt on one side with sql_log_bin=0); there the plain
// ALTER the replica should replay would just rebuild the table. The
// statement the primary logs must not demand INSTANT of the replicas (on
// MariaDB, SET SESSION alter_algorithm = 'INSTANT' asks the same of the
// primary alone).
func TestNatrvMySQLReplicatedAlgorithm(t *testing.T) {
	tg := nativeTargets()[0]
	bin := requireOsc(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	admin, _, ns := natrvSetup(ctx, t, tg, "binlog", []string{
		"CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB",
		"INSERT INTO t SELECT seq, seq FROM seq_1_to_100",
	})
	var file string
	var pos int64
	var skip [2]sql.NullString
	if err := admin.QueryRowContext(ctx, "SHOW MASTER STATUS").Scan(&file, &pos, &skip[0], &skip[1]); err != nil {
		t.Fatalf("SHOW MASTER STATUS: %v", err)
	}
	const alter = "ADD COLUMN n INT NULL"
	p := runOscToEnd(ctx, t, bin, append(tg.d.oscArgs(ns, "t"), "--alter", alter, "--execute", "--strategy", "native"))
	if p.err != nil {
		t.Fatalf("osc: %s", p.failure())
	}
	rows, err := admin.QueryContext(ctx, fmt.Sprintf("SHOW BINLOG EVENTS IN '%s' FROM %d", file, pos))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		info := string(vals[len(vals)-1])
		if !strings.Contains(info, "`"+ns+"`.`t`") || !strings.Contains(info, "ADD COLUMN n") {
			continue
		}
		found = true
		if strings.Contains(strings.ToUpper(info), "ALGORITHM=INSTANT") {
			t.Errorf("the binlog demands INSTANT of every replica: %s", info)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatal("the native ALTER is not in the binlog after the position read before it")
	}
	dropCase(ctx, t, tg.d, admin, ns)
}

// TestNatrvPostgresColumnLimit: the PostgreSQL analogue of
// TestNatrvInstantOnScratchOnly. A table keeps the columns it dropped in its
// catalog, and counts them against the 1600 columns a table may have; the
// scratch table made LIKE it has none of them, so an ADD COLUMN is catalog
// only there and osc takes the native path, where the server refuses the
// real ALTER ("tables can have at most 1600 columns"). Nothing was changed,
// and a copy (a new table, without the dropped columns) would do it, but
// under --strategy auto osc gives up with exit 1.
func TestNatrvPostgresColumnLimit(t *testing.T) {
	tg := nativeTargets()[1]
	bin := requireOsc(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	var cols, drops []string
	for i := range 1599 {
		cols = append(cols, fmt.Sprintf("c%d int", i))
		if i >= 100 {
			drops = append(drops, fmt.Sprintf("DROP COLUMN c%d", i))
		}
	}
	admin, db, ns := natrvSetup(ctx, t, tg, "collimit", []string{
		fmt.Sprintf("CREATE TABLE t (id int PRIMARY KEY, %s)", strings.Join(cols, ", ")),
		"ALTER TABLE t " + strings.Join(drops, ", "),
		"INSERT INTO t (id, c0, c99) SELECT g, g, g FROM generate_series(1, 200) g",
	})
	const alter = "ADD COLUMN n int"
	p := runOscToEnd(ctx, t, bin, append(tg.d.oscArgs(ns, "t"), "--alter", alter, "--execute", "--strategy", "auto", "--ok-to-drop-table"))
	if p.err != nil {
		t.Fatalf("--strategy auto on an ADD COLUMN the table's dropped columns leave no room for natively: %s; want a copy", p.failure())
	}
	var n, sum int64
	if err := db.QueryRowContext(ctx, "SELECT count(*), sum(c0 + c99) FROM t WHERE n IS NULL").Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 200 || sum != 2*200*201/2 {
		t.Errorf("after the copy: %d rows, sum %d; want 200 rows, sum %d", n, sum, 200*201)
	}
	dropCase(ctx, t, tg.d, admin, ns)
}
