package cutover

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"osc/internal/testdb"
)

// nmyChild makes a parent and a child table as a cut-over leaves the child:
// its foreign keys and triggers under their planned names, over indexes made
// by ADD INDEX as the shadow's are (_nmy_fk for
// nmy_fk, nmy_fk2 for _nmy_fk2; _nmy_ai for nmy_ai, two BEFORE UPDATE
// triggers whose order shows in b), and an audit table its AFTER INSERT
// trigger writes. It returns the maps of planned names to own names.
func nmyChild(t *testing.T, db *sql.DB, child, parent, audit string) (fks, trgs map[string]string) {
	t.Helper()
	testdb.DropMySQLTables(t, db, child, parent, audit, "nmy_other")
	testdb.ExecMySQL(t, db, "CREATE TABLE "+parent+" (id INT PRIMARY KEY) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "INSERT INTO "+parent+" VALUES (1), (2)")
	testdb.ExecMySQL(t, db, "CREATE TABLE "+audit+" (seq INT AUTO_INCREMENT PRIMARY KEY, id INT) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "CREATE TABLE "+child+" (id INT PRIMARY KEY, p INT, q INT, a INT, b VARCHAR(20), KEY by_p (p), KEY by_q (q), "+
		"CONSTRAINT _nmy_fk FOREIGN KEY (p) REFERENCES "+parent+" (id), "+
		"CONSTRAINT nmy_fk2 FOREIGN KEY (q) REFERENCES "+parent+" (id) ON UPDATE NO ACTION) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "INSERT INTO "+child+" VALUES (1, 1, 1, 0, '')")
	testdb.ExecMySQL(t, db, "CREATE TRIGGER _nmy_ai AFTER INSERT ON "+child+" FOR EACH ROW INSERT INTO "+audit+" (id) VALUES (NEW.id)")
	testdb.ExecMySQL(t, db, "CREATE TRIGGER _nmy_bu1 BEFORE UPDATE ON "+child+" FOR EACH ROW SET NEW.b = CONCAT('x', NEW.a)")
	testdb.ExecMySQL(t, db, "CREATE TRIGGER _nmy_bu2 BEFORE UPDATE ON "+child+" FOR EACH ROW SET NEW.b = CONCAT(LEFT(NEW.b, 5), 'y')")
	t.Cleanup(func() { testdb.DropMySQLTables(t, db, child, parent, audit, "nmy_other") })
	return map[string]string{"_nmy_fk": "nmy_fk", "nmy_fk2": "_nmy_fk2"},
		map[string]string{"_nmy_ai": "nmy_ai", "_nmy_bu1": "nmy_bu1", "_nmy_bu2": "nmy_bu2"}
}

// nmyNames returns the table's foreign keys (name:update rule) and triggers
// (name:event:timing:order), each sorted, and its index names.
func nmyNames(t *testing.T, db *sql.DB, tbl string) (fks, trgs, indexes string) {
	t.Helper()
	q := func(query string) string {
		var s sql.NullString
		if err := db.QueryRow(query, "osc_test", tbl).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s.String
	}
	return q(`SELECT GROUP_CONCAT(CONCAT(CONSTRAINT_NAME, ':', UPDATE_RULE) ORDER BY BINARY CONSTRAINT_NAME)
			FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`),
		q(`SELECT GROUP_CONCAT(CONCAT(TRIGGER_NAME, ':', EVENT_MANIPULATION, ':', ACTION_TIMING, ':', ACTION_ORDER) ORDER BY BINARY TRIGGER_NAME)
			FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?`),
		q(`SELECT GROUP_CONCAT(DISTINCT INDEX_NAME ORDER BY BINARY INDEX_NAME)
			FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`)
}

// TestMySQLOwnNames: the carried foreign keys and triggers get their own
// names back while writers insert: each insert fires the AFTER INSERT
// trigger exactly once (under one name or the other), the BEFORE UPDATE
// triggers keep their order, the foreign keys their rules and the indexes
// they use their names.
func TestMySQLOwnNames(t *testing.T) {
	db := testMySQL(t)
	const child, parent, audit = "nmy_child", "nmy_parent", "nmy_audit"
	fks, trgs := nmyChild(t, db, child, parent, audit)
	_, _, indexes := nmyNames(t, db, child)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var inserts atomic.Int64
	errs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for id := 100; ctx.Err() == nil; id++ {
			if _, err := db.Exec("INSERT INTO "+child+" (id, p, q) VALUES (?, 1, 2)", id); err != nil {
				errs <- err
				return
			}
			inserts.Add(1)
		}
	}()
	for inserts.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	names, err := MySQLOwnNames(context.Background(), db, MySQLNamesOptions{Schema: "osc_test", Table: child,
		ForeignKeys: fks, Triggers: trgs, LockTimeout: 2 * time.Second, Retries: 3})
	at := inserts.Load()
	for inserts.Load() < at+20 {
		time.Sleep(time.Millisecond)
	}
	stop()
	wg.Wait()
	close(errs)
	if werr := <-errs; werr != nil {
		t.Fatalf("a writer failed: %v", werr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, ","); got != "_nmy_fk2,nmy_fk,nmy_ai,nmy_bu1,nmy_bu2" {
		t.Errorf("renamed %s", got)
	}
	gotFKs, gotTrgs, gotIndexes := nmyNames(t, db, child)
	if want := "_nmy_fk2:NO ACTION,nmy_fk:RESTRICT"; gotFKs != want {
		t.Errorf("foreign keys %s, want %s", gotFKs, want)
	}
	if want := "nmy_ai:INSERT:AFTER:1,nmy_bu1:UPDATE:BEFORE:1,nmy_bu2:UPDATE:BEFORE:2"; gotTrgs != want {
		t.Errorf("triggers %s, want %s", gotTrgs, want)
	}
	if gotIndexes != indexes {
		t.Errorf("indexes %s, were %s", gotIndexes, indexes)
	}
	var audited, rows int64
	if err := db.QueryRow("SELECT (SELECT COUNT(*) FROM "+audit+"), (SELECT COUNT(*) FROM "+child+" WHERE id >= 100)").Scan(&audited, &rows); err != nil {
		t.Fatal(err)
	}
	if audited != inserts.Load() || rows != inserts.Load() {
		t.Errorf("%d inserts, %d rows, %d audited", inserts.Load(), rows, audited)
	}
	testdb.ExecMySQL(t, db, "UPDATE "+child+" SET a = 7 WHERE id = 1")
	var b string
	if err := db.QueryRow("SELECT b FROM " + child + " WHERE id = 1").Scan(&b); err != nil || b != "x7y" {
		t.Errorf("b = %q (err %v), want x7y: the BEFORE UPDATE triggers fire out of order", b, err)
	}
	// Nothing left to rename: a second call changes nothing.
	if names, err := MySQLOwnNames(context.Background(), db, MySQLNamesOptions{Schema: "osc_test", Table: child,
		ForeignKeys: fks, Triggers: trgs, LockTimeout: time.Second, Retries: 1}); err != nil || len(names) != 0 {
		t.Errorf("again: renamed %v (err %v)", names, err)
	}
}

// TestMySQLOwnNamesLockTimeout: a transaction holding the table outlasts
// every attempt's lock wait: nothing changes, and the error gives the
// statements to run.
func TestMySQLOwnNamesLockTimeout(t *testing.T) {
	db := testMySQL(t)
	const child, parent, audit = "nmy_child", "nmy_parent", "nmy_audit"
	fks, trgs := nmyChild(t, db, child, parent, audit)
	fksBefore, trgsBefore, _ := nmyNames(t, db, child)

	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // only ends the transaction
	if _, err := tx.Exec("UPDATE " + child + " SET a = 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	_, err = MySQLOwnNames(ctx, db, MySQLNamesOptions{Schema: "osc_test", Table: child,
		ForeignKeys: fks, Triggers: trgs, LockTimeout: time.Second, Retries: 2})
	if err == nil {
		t.Fatal("renamed while a transaction held the table")
	}
	for _, want := range []string{"attempt 2 of 2", "Lock wait timeout", "run yourself", "LOCK TABLES `osc_test`.`nmy_child` WRITE",
		"DROP FOREIGN KEY `_nmy_fk`, ADD CONSTRAINT `nmy_fk` FOREIGN KEY (`p`) REFERENCES `osc_test`.`nmy_parent` (`id`)",
		"TRIGGER `osc_test`.`nmy_bu2` BEFORE UPDATE ON `osc_test`.`nmy_child` FOR EACH ROW FOLLOWS `_nmy_bu2`",
		"DROP TRIGGER `osc_test`.`_nmy_bu1`", "UNLOCK TABLES"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if fksAfter, trgsAfter, _ := nmyNames(t, db, child); fksAfter != fksBefore || trgsAfter != trgsBefore {
		t.Errorf("changed: foreign keys %s (were %s), triggers %s (were %s)", fksAfter, fksBefore, trgsAfter, trgsBefore)
	}
	// The statements, run as given in one session, give every name back.
	_, script, _ := strings.Cut(err.Error(), "run yourself (one session): ")
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer discard(c)
	for _, stmt := range strings.Split(script, "; ") {
		if _, err := c.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if fksAfter, trgsAfter, _ := nmyNames(t, db, child); fksAfter != "_nmy_fk2:NO ACTION,nmy_fk:RESTRICT" ||
		trgsAfter != "nmy_ai:INSERT:AFTER:1,nmy_bu1:UPDATE:BEFORE:1,nmy_bu2:UPDATE:BEFORE:2" {
		t.Errorf("after the statements: foreign keys %s, triggers %s", fksAfter, trgsAfter)
	}
}

// TestMySQLOwnNamesOneTaken: a trigger's own name is taken (by another
// table's trigger), so making it fails under the lock: that trigger keeps its
// planned name, in its place in the firing order; the foreign keys and the
// other triggers take their own names, each firing once; the error gives the
// statements for that trigger only, not retried.
func TestMySQLOwnNamesOneTaken(t *testing.T) {
	db := testMySQL(t)
	const child, parent, audit = "nmy_child", "nmy_parent", "nmy_audit"
	fks, trgs := nmyChild(t, db, child, parent, audit)
	testdb.ExecMySQL(t, db, "CREATE TABLE nmy_other (id INT PRIMARY KEY) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "CREATE TRIGGER nmy_bu1 BEFORE UPDATE ON nmy_other FOR EACH ROW SET NEW.id = NEW.id")

	names, err := MySQLOwnNames(context.Background(), db, MySQLNamesOptions{Schema: "osc_test", Table: child,
		ForeignKeys: fks, Triggers: trgs, LockTimeout: time.Second, Retries: 2})
	if err == nil || !strings.Contains(err.Error(), "nmy_bu1") || !strings.Contains(err.Error(), "attempt 1 of 2") {
		t.Fatalf("err %v, want the failure to make nmy_bu1, not retried", err)
	}
	if got := strings.Join(names, ","); got != "_nmy_fk2,nmy_fk,nmy_ai,nmy_bu2" {
		t.Errorf("renamed %s", got)
	}
	_, script, _ := strings.Cut(err.Error(), "run yourself (one session): ")
	if strings.Contains(script, "FOREIGN KEY") || strings.Contains(script, "nmy_bu2") || strings.Contains(script, "nmy_ai") ||
		!strings.Contains(script, "DROP TRIGGER `osc_test`.`_nmy_bu1`") {
		t.Errorf("statements %q: want those of nmy_bu1 only", script)
	}
	fksAfter, trgsAfter, _ := nmyNames(t, db, child)
	if want := "_nmy_fk2:NO ACTION,nmy_fk:RESTRICT"; fksAfter != want {
		t.Errorf("foreign keys %s, want %s", fksAfter, want)
	}
	if want := "_nmy_bu1:UPDATE:BEFORE:1,nmy_ai:INSERT:AFTER:1,nmy_bu2:UPDATE:BEFORE:2"; trgsAfter != want {
		t.Errorf("triggers %s, want %s", trgsAfter, want)
	}
	testdb.ExecMySQL(t, db, "INSERT INTO "+child+" (id, p, q) VALUES (50, 1, 1)")
	testdb.ExecMySQL(t, db, "UPDATE "+child+" SET a = 3 WHERE id = 1")
	var audited int
	var b string
	if err := db.QueryRow("SELECT (SELECT COUNT(*) FROM "+audit+" WHERE id = 50), (SELECT b FROM "+child+" WHERE id = 1)").Scan(&audited, &b); err != nil {
		t.Fatal(err)
	}
	if audited != 1 || b != "x3y" {
		t.Errorf("insert audited %d times, b = %q (want 1, x3y)", audited, b)
	}
}

// TestMySQLOwnNamesFKFailsTriggersRenamed: the foreign keys' ALTER fails for
// good (an own name is taken, by another table's foreign key): the triggers
// take their own names all the same, and the error's statements are the
// foreign keys' only.
func TestMySQLOwnNamesFKFailsTriggersRenamed(t *testing.T) {
	db := testMySQL(t)
	const child, parent, audit = "nmy_child", "nmy_parent", "nmy_audit"
	fks, trgs := nmyChild(t, db, child, parent, audit)
	ctx := context.Background()
	testdb.ExecMySQL(t, db, "CREATE TABLE nmy_other (id INT PRIMARY KEY, p INT, CONSTRAINT nmy_fk FOREIGN KEY (p) REFERENCES "+parent+" (id)) ENGINE=InnoDB")
	names, err := MySQLOwnNames(ctx, db, MySQLNamesOptions{Schema: "osc_test", Table: child,
		ForeignKeys: fks, Triggers: trgs, LockTimeout: time.Second, Retries: 2})
	if err == nil {
		t.Fatalf("the foreign keys were renamed to a name taken (renamed %v)", names)
	}
	if got := strings.Join(names, ","); got != "nmy_ai,nmy_bu1,nmy_bu2" || !strings.Contains(err.Error(), "attempt 1 of 2") {
		t.Errorf("renamed %s (err %v), want the triggers, not retried", got, err)
	}
	_, script, _ := strings.Cut(err.Error(), "run yourself (one session): ")
	if !strings.Contains(script, "DROP FOREIGN KEY `_nmy_fk`, ADD CONSTRAINT `nmy_fk`") || strings.Contains(script, "TRIGGER") {
		t.Errorf("statements %q: want the foreign keys' only", script)
	}
	fksAfter, trgsAfter, _ := nmyNames(t, db, child)
	if want := "_nmy_fk:RESTRICT,nmy_fk2:NO ACTION"; fksAfter != want {
		t.Errorf("foreign keys %s, want %s", fksAfter, want)
	}
	if want := "nmy_ai:INSERT:AFTER:1,nmy_bu1:UPDATE:BEFORE:1,nmy_bu2:UPDATE:BEFORE:2"; trgsAfter != want {
		t.Errorf("triggers %s, want %s", trgsAfter, want)
	}
	// The statements, run as given in one session once the name is free,
	// rename the foreign keys.
	testdb.ExecMySQL(t, db, "DROP TABLE nmy_other")
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer discard(c)
	for _, stmt := range strings.Split(script, "; ") {
		if _, err := c.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if fksAfter, _, _ := nmyNames(t, db, child); fksAfter != "_nmy_fk2:NO ACTION,nmy_fk:RESTRICT" {
		t.Errorf("after the statements: foreign keys %s", fksAfter)
	}
}

// TestMySQLOwnNamesCancelled: the migration is interrupted (Ctrl-C) while
// the triggers are made again under the lock. Cancelling a statement in
// flight closes its connection, and the server then releases the lock with
// the triggers dropped and not yet made again: writes would run without
// them. Once the lock is held the renaming runs to its end (metadata only):
// every trigger is there afterwards, under one name or the other, each firing
// once.
func TestMySQLOwnNamesCancelled(t *testing.T) {
	db := testMySQL(t)
	const tbl, n = "rvn_cancel", 40
	testdb.DropMySQLTables(t, db, tbl)
	t.Cleanup(func() { testdb.DropMySQLTables(t, db, tbl) })
	testdb.ExecMySQL(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0) ENGINE=InnoDB")
	trgs := map[string]string{}
	for i := range n {
		planned := fmt.Sprintf("_rvn_cancel_%d", i)
		testdb.ExecMySQL(t, db, "CREATE TRIGGER "+planned+" BEFORE INSERT ON "+tbl+" FOR EACH ROW SET NEW.n = NEW.n + 1")
		trgs[planned] = planned[1:]
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Interrupt once the first trigger is made under its own name: the
	// others are dropped, and being made again.
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		defer cancel()
		for ctx.Err() == nil {
			var own int
			if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'osc_test'
				AND EVENT_OBJECT_TABLE = ? AND TRIGGER_NAME LIKE 'rvn\_cancel\_%'`, tbl).Scan(&own); err != nil || own > 0 {
				return
			}
		}
	}()
	_, err := MySQLOwnNames(ctx, db, MySQLNamesOptions{Schema: "osc_test", Table: tbl, Triggers: trgs, LockTimeout: 5 * time.Second, Retries: 1})
	cancel()
	<-watched
	t.Logf("renaming: %v", err)
	var made int
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'osc_test' AND EVENT_OBJECT_TABLE = ?`,
		tbl).Scan(&made); err != nil {
		t.Fatal(err)
	}
	if made != n {
		t.Errorf("%d triggers after the interrupted renaming, want %d", made, n)
	}
	testdb.ExecMySQL(t, db, "INSERT INTO "+tbl+" (id) VALUES (1)")
	var fired int
	if err := db.QueryRow("SELECT n FROM " + tbl + " WHERE id = 1").Scan(&fired); err != nil || fired != n {
		t.Errorf("an insert fired %d triggers (err %v), want %d", fired, err, n)
	}
}

// TestMySQLOwnNamesMadeTwice: a renaming killed between a trigger's CREATE
// under its own name and its DROP under its planned one leaves it there
// twice, the own one right after the planned one; renaming again drops the
// planned one only: the triggers keep their order and fire once.
func TestMySQLOwnNamesMadeTwice(t *testing.T) {
	db := testMySQL(t)
	const tbl = "rvn_order"
	testdb.DropMySQLTables(t, db, tbl)
	t.Cleanup(func() { testdb.DropMySQLTables(t, db, tbl) })
	testdb.ExecMySQL(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, a INT, b VARCHAR(20)) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "INSERT INTO "+tbl+" VALUES (1, 0, '')")
	testdb.ExecMySQL(t, db, "CREATE TRIGGER _rvn_o1 BEFORE UPDATE ON "+tbl+" FOR EACH ROW SET NEW.b = CONCAT('x', NEW.a)")
	testdb.ExecMySQL(t, db, "CREATE TRIGGER _rvn_o2 BEFORE UPDATE ON "+tbl+" FOR EACH ROW SET NEW.b = CONCAT(LEFT(NEW.b, 5), 'y')")
	testdb.ExecMySQL(t, db, "CREATE TRIGGER rvn_o1 BEFORE UPDATE ON "+tbl+" FOR EACH ROW FOLLOWS _rvn_o1 SET NEW.b = CONCAT('x', NEW.a)")
	names, err := MySQLOwnNames(context.Background(), db, MySQLNamesOptions{Schema: "osc_test", Table: tbl,
		Triggers: map[string]string{"_rvn_o1": "rvn_o1", "_rvn_o2": "rvn_o2"}, LockTimeout: time.Second, Retries: 1})
	if err != nil || strings.Join(names, ",") != "rvn_o1,rvn_o2" {
		t.Fatalf("renamed %v, %v", names, err)
	}
	_, got, _ := nmyNames(t, db, tbl)
	if want := "rvn_o1:UPDATE:BEFORE:1,rvn_o2:UPDATE:BEFORE:2"; got != want {
		t.Errorf("triggers %s, want %s", got, want)
	}
	testdb.ExecMySQL(t, db, "UPDATE "+tbl+" SET a = 3 WHERE id = 1")
	var b string
	if err := db.QueryRow("SELECT b FROM " + tbl + " WHERE id = 1").Scan(&b); err != nil || b != "x3y" {
		t.Errorf("b = %q (err %v), want x3y: the triggers fire out of order or twice", b, err)
	}
}

// TestMySQLOwnNamesKilled: the renaming's session is killed on the server
// (as when osc is killed: its connection goes) while it makes the triggers
// again under the lock. The server releases the lock there; every trigger
// is still on the table, under one name or the other, at most one of them
// under both; renaming again (a resumed run) leaves each once, under its
// own name, firing in its order.
func TestMySQLOwnNamesKilled(t *testing.T) {
	db := testMySQL(t)
	const tbl, n = "rvn_kill", 30
	trgs, order := mysqlKillTriggers(t, db, tbl, n)
	ctx := context.Background()
	killed := killRenamingOnce(db, tbl)
	_, err := MySQLOwnNames(ctx, db, MySQLNamesOptions{Schema: "osc_test", Table: tbl, Triggers: trgs, LockTimeout: 5 * time.Second, Retries: 1})
	id, ok := <-killed
	if !ok {
		t.Fatalf("the renaming's session was not killed (renaming: %v)", err)
	}
	if err == nil || strings.Count(err.Error(), "make trigger") > 1 {
		t.Errorf("renaming killed: %v; want the failure of the trigger it was making, and no attempt at the others", err)
	}
	t.Logf("killed session %d", id)
	names := map[string]int{}
	rows, qerr := db.Query(`SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'osc_test' AND EVENT_OBJECT_TABLE = ?`, tbl)
	if qerr != nil {
		t.Fatal(qerr)
	}
	var twice []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		names[strings.TrimPrefix(name, "_")]++
		if names[strings.TrimPrefix(name, "_")] > 1 {
			twice = append(twice, name)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if len(names) != n || len(twice) > 1 {
		t.Errorf("after the kill: %d of %d triggers there, %v twice (at most one may be)", len(names), n, twice)
	}
	if _, err := MySQLOwnNames(ctx, db, MySQLNamesOptions{Schema: "osc_test", Table: tbl, Triggers: trgs, LockTimeout: 5 * time.Second, Retries: 1}); err != nil {
		t.Fatalf("renaming again: %v", err)
	}
	own, all := mysqlOwnTriggers(t, db, tbl)
	if own != n || all != n {
		t.Errorf("after renaming again: %d triggers, %d under their own names, want %d", all, own, n)
	}
	testdb.ExecMySQL(t, db, "INSERT INTO "+tbl+" (id) VALUES (1)")
	var s string
	if err := db.QueryRow("SELECT s FROM " + tbl + " WHERE id = 1").Scan(&s); err != nil || s != strings.Join(order, ",")+"," {
		t.Errorf("an insert fired %q (err %v), want each trigger once in order", s, err)
	}
}

// mysqlKillTriggers makes table tbl of osc_test with n BEFORE INSERT
// triggers under planned names (_<tbl>_NN), dropped when the test ends, each
// appending its number to s; it returns their planned and own names and
// their numbers in firing order.
func mysqlKillTriggers(t *testing.T, db *sql.DB, tbl string, n int) (map[string]string, []string) {
	t.Helper()
	testdb.DropMySQLTables(t, db, tbl)
	t.Cleanup(func() { testdb.DropMySQLTables(t, db, tbl) })
	testdb.ExecMySQL(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, s VARCHAR(200) NOT NULL DEFAULT '') ENGINE=InnoDB")
	trgs := map[string]string{}
	var order []string
	for i := range n {
		planned := fmt.Sprintf("_%s_%02d", tbl, i)
		testdb.ExecMySQL(t, db, "CREATE TRIGGER "+planned+" BEFORE INSERT ON "+tbl+fmt.Sprintf(" FOR EACH ROW SET NEW.s = CONCAT(NEW.s, '%d,')", i))
		trgs[planned] = planned[1:]
		order = append(order, fmt.Sprint(i))
	}
	return trgs, order
}

// mysqlOwnLike is the LIKE pattern of the own names mysqlKillTriggers gives
// tbl's triggers.
func mysqlOwnLike(tbl string) string { return strings.ReplaceAll(tbl, "_", `\_`) + `\_%` }

// killRenamingOnce kills the session renaming tbl's triggers once it has
// made five of them again under their own names: the channel gets the
// killed session's id, or is closed without one after 20 s.
func killRenamingOnce(db *sql.DB, tbl string) <-chan int64 {
	killed := make(chan int64, 1)
	go func() {
		defer close(killed)
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			var own int
			if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'osc_test'
				AND EVENT_OBJECT_TABLE = ? AND TRIGGER_NAME LIKE ?`, tbl, mysqlOwnLike(tbl)).Scan(&own); err != nil {
				return
			}
			if own < 5 {
				continue
			}
			var id int64
			if err := db.QueryRow("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE ? LIMIT 1",
				"%TRIGGER `osc_test`.`%"+mysqlOwnLike(tbl)).Scan(&id); err != nil {
				continue
			}
			if _, err := db.Exec(fmt.Sprintf("KILL CONNECTION %d", id)); err == nil {
				killed <- id
				return
			}
		}
	}()
	return killed
}

// mysqlOwnTriggers returns how many of tbl's triggers are under their own
// names (mysqlKillTriggers), and how many it has.
func mysqlOwnTriggers(t *testing.T, db *sql.DB, tbl string) (own, all int) {
	t.Helper()
	if err := db.QueryRow(`SELECT COALESCE(SUM(TRIGGER_NAME LIKE ?), 0), COUNT(*) FROM information_schema.TRIGGERS
		WHERE TRIGGER_SCHEMA = 'osc_test' AND EVENT_OBJECT_TABLE = ?`, mysqlOwnLike(tbl), tbl).Scan(&own, &all); err != nil {
		t.Fatal(err)
	}
	return own, all
}
