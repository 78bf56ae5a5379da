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
	"osc/table"
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
		"DROP TRIGGER IF EXISTS `osc_test`.`_nmy_bu1`", "TRIGGER `osc_test`.`nmy_bu2` BEFORE UPDATE ON `osc_test`.`nmy_child`", "UNLOCK TABLES"} {
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
	// The statements, run as given, also make a trigger lost meanwhile
	// (a renaming whose connection died under its lock loses those it had
	// dropped): they run in one session and give every name back.
	testdb.ExecMySQL(t, db, "DROP TRIGGER _nmy_bu1")
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

// TestMySQLOwnNamesPutsBack: a trigger's own name is taken (by another
// table's trigger), so making it fails under the lock: the triggers are put
// back as they were, in their order, before the lock goes; the foreign keys,
// renamed in a statement of their own, keep their own names.
func TestMySQLOwnNamesPutsBack(t *testing.T) {
	db := testMySQL(t)
	const child, parent, audit = "nmy_child", "nmy_parent", "nmy_audit"
	fks, trgs := nmyChild(t, db, child, parent, audit)
	_, trgsBefore, _ := nmyNames(t, db, child)
	testdb.ExecMySQL(t, db, "CREATE TABLE nmy_other (id INT PRIMARY KEY) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "CREATE TRIGGER nmy_bu2 BEFORE UPDATE ON nmy_other FOR EACH ROW SET NEW.id = NEW.id")

	_, err := MySQLOwnNames(context.Background(), db, MySQLNamesOptions{Schema: "osc_test", Table: child,
		ForeignKeys: fks, Triggers: trgs, LockTimeout: time.Second, Retries: 2})
	if err == nil || !strings.Contains(err.Error(), "nmy_bu2") || !strings.Contains(err.Error(), "attempt 1 of 2") {
		t.Fatalf("err %v, want the failure to make nmy_bu2, not retried", err)
	}
	// The foreign keys have their own names: the statements to run are the
	// triggers' only (the foreign keys' ALTER would fail, before them).
	if strings.Contains(err.Error(), "FOREIGN KEY") || !strings.Contains(err.Error(), "_nmy_fk2, nmy_fk have their own names already") {
		t.Errorf("err %v: want the foreign keys said renamed, and no statement for them", err)
	}
	fksAfter, trgsAfter, _ := nmyNames(t, db, child)
	if want := "_nmy_fk2:NO ACTION,nmy_fk:RESTRICT"; fksAfter != want {
		t.Errorf("foreign keys %s, want %s", fksAfter, want)
	}
	if trgsAfter != trgsBefore {
		t.Errorf("triggers %s, were %s", trgsAfter, trgsBefore)
	}
	testdb.ExecMySQL(t, db, "INSERT INTO "+child+" (id, p, q) VALUES (50, 1, 1)")
	testdb.ExecMySQL(t, db, "UPDATE "+child+" SET a = 3 WHERE id = 1")
	var audited int
	var b string
	if err := db.QueryRow("SELECT (SELECT COUNT(*) FROM "+audit+" WHERE id = 50), (SELECT b FROM "+child+" WHERE id = 1)").Scan(&audited, &b); err != nil {
		t.Fatal(err)
	}
	if audited != 1 || b != "x3y" {
		t.Errorf("after the put-back: insert audited %d times, b = %q (want 1, x3y)", audited, b)
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

// TestMySQLOwnNamesDropFailsPutsBackInOrder: a DROP TRIGGER fails midway
// (here, of a trigger that is not there), after the first of two BEFORE
// UPDATE triggers was dropped: putting it back must make it fire before the
// second again, as it did, not after it.
func TestMySQLOwnNamesDropFailsPutsBackInOrder(t *testing.T) {
	db := testMySQL(t)
	const tbl = "rvn_order"
	testdb.DropMySQLTables(t, db, tbl)
	t.Cleanup(func() { testdb.DropMySQLTables(t, db, tbl) })
	testdb.ExecMySQL(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, a INT, b VARCHAR(20)) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "INSERT INTO "+tbl+" VALUES (1, 0, '')")
	testdb.ExecMySQL(t, db, "CREATE TRIGGER _rvn_o1 BEFORE UPDATE ON "+tbl+" FOR EACH ROW SET NEW.b = CONCAT('x', NEW.a)")
	testdb.ExecMySQL(t, db, "CREATE TRIGGER _rvn_o2 BEFORE UPDATE ON "+tbl+" FOR EACH ROW SET NEW.b = CONCAT(LEFT(NEW.b, 5), 'y')")
	ctx := context.Background()
	trgs, err := table.ReadMySQLTriggers(ctx, db, "osc_test", tbl)
	if err != nil || len(trgs) != 2 {
		t.Fatalf("triggers %+v, %v", trgs, err)
	}
	ghost := trgs[0]
	ghost.Name = "rvn_ghost"
	trgs = []table.MySQLTrigger{trgs[0], ghost, trgs[1]}
	for i := range trgs {
		trgs[i].Shadow = trgs[i].Name[1:]
	}
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer discard(c)
	testdb.ExecMySQL(t, db, "SELECT 1") // the pool has a connection besides c
	if _, err := c.ExecContext(ctx, "LOCK TABLES "+tbl+" WRITE"); err != nil {
		t.Fatal(err)
	}
	err = remakeMySQLTriggers(ctx, c, MySQLNamesOptions{Schema: "osc_test", Table: tbl}, trgs)
	if _, uerr := c.ExecContext(ctx, "UNLOCK TABLES"); uerr != nil {
		t.Fatal(uerr)
	}
	if err == nil || !strings.Contains(err.Error(), "rvn_ghost") || strings.Contains(err.Error(), "putting the triggers back failed") {
		t.Fatalf("err %v, want the failure to drop rvn_ghost, the triggers put back", err)
	}
	_, got, _ := nmyNames(t, db, tbl)
	if want := "_rvn_o1:UPDATE:BEFORE:1,_rvn_o2:UPDATE:BEFORE:2"; got != want {
		t.Errorf("triggers %s, want %s", got, want)
	}
	testdb.ExecMySQL(t, db, "UPDATE "+tbl+" SET a = 3 WHERE id = 1")
	var b string
	if err := db.QueryRow("SELECT b FROM " + tbl + " WHERE id = 1").Scan(&b); err != nil || b != "x3y" {
		t.Errorf("b = %q (err %v), want x3y: the triggers fire out of order", b, err)
	}
}
