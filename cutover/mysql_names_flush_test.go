package cutover

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"osc/internal/testdb"
)

// MariaDB parses a table's triggers whenever it opens the table, and a KILL
// that lands mid-parse leaves that copy of the table in the table cache with
// only the triggers it parsed: writes taking it fail, and a DROP TRIGGER run
// on it rewrites the trigger file without the others. The renaming flushes
// the table under its lock first: here a copy left so is in the cache, with
// a trigger there under both names (a renaming killed between its CREATE and
// its DROP), and the renaming drops the planned one and loses nothing.
func TestMySQLOwnNamesFlushesHalfParsedTable(t *testing.T) {
	db := testMySQL(t)
	const tbl, n = "rn3_half", 250
	testdb.DropMySQLTables(t, db, tbl)
	t.Cleanup(func() { testdb.DropMySQLTables(t, db, tbl) })
	testdb.ExecMySQL(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, k INT NOT NULL DEFAULT 0) ENGINE=InnoDB")
	for i := range n {
		testdb.ExecMySQL(t, db, fmt.Sprintf("CREATE TRIGGER %s_%03d BEFORE INSERT ON %s FOR EACH ROW SET NEW.k = NEW.k + 1", tbl, i, tbl))
	}
	// The state a renaming killed between its CREATE and its DROP leaves.
	testdb.ExecMySQL(t, db, "CREATE TRIGGER _"+tbl+"_x BEFORE INSERT ON "+tbl+" FOR EACH ROW SET NEW.k = NEW.k + 1000")
	testdb.ExecMySQL(t, db, "CREATE TRIGGER "+tbl+"_x BEFORE INSERT ON "+tbl+" FOR EACH ROW FOLLOWS _"+tbl+"_x SET NEW.k = NEW.k + 1000")
	ctx := context.Background()
	if !mysqlHalfParse(t, db, tbl) {
		t.Skip("no KILL landed while the server parsed the table's triggers")
	}
	_, err := MySQLOwnNames(ctx, db, MySQLNamesOptions{Schema: "osc_test", Table: tbl, Triggers: map[string]string{"_" + tbl + "_x": tbl + "_x"},
		LockTimeout: 5 * time.Second, Retries: 1})
	if err != nil {
		t.Fatalf("renaming with a half-parsed copy of the table cached: %v", err)
	}
	testdb.ExecMySQL(t, db, "FLUSH TABLES "+tbl)
	var all, planned int
	if err := db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(TRIGGER_NAME LIKE '\_%'), 0) FROM information_schema.TRIGGERS
		WHERE TRIGGER_SCHEMA = 'osc_test' AND EVENT_OBJECT_TABLE = ?`, tbl).Scan(&all, &planned); err != nil {
		t.Fatal(err)
	}
	if all != n+1 || planned != 0 {
		t.Errorf("%d triggers, %d under a planned name, want %d and none", all, planned, n+1)
	}
	testdb.ExecMySQL(t, db, "INSERT INTO "+tbl+" (id) VALUES (1)")
	var k int
	if err := db.QueryRow("SELECT k FROM " + tbl + " WHERE id = 1").Scan(&k); err != nil || k != n+1000 {
		t.Errorf("an insert made k %d (err %v), want %d: each trigger once", k, err, n+1000)
	}
}

// mysqlHalfParse makes the server leave a half-parsed copy of tbl in its
// table cache: it flushes the table, opens it in a session that it kills
// after a delay, and tries an insert, which fails on such a copy, and again
// with longer delays. It reports whether it did.
func mysqlHalfParse(t *testing.T, db *sql.DB, tbl string) bool {
	t.Helper()
	ctx := context.Background()
	for d := time.Duration(0); d < 40*time.Millisecond; d += 250 * time.Microsecond {
		testdb.ExecMySQL(t, db, "FLUSH TABLES "+tbl)
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		if err := c.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			var n int
			_ = c.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+tbl).Scan(&n)
		}()
		time.Sleep(d)
		_, _ = db.Exec(fmt.Sprintf("KILL CONNECTION %d", id))
		<-done
		discard(c)
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			var left int
			if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&left); err != nil {
				t.Fatal(err)
			}
			if left == 0 {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("killed session %d still there", id)
			}
		}
		_, err = db.Exec("INSERT INTO " + tbl + " (id) VALUES (-1)")
		if err != nil && strings.Contains(err.Error(), "has an error in its body") {
			t.Logf("half-parsed after a KILL %v into opening it", d)
			return true
		}
		if err != nil {
			t.Fatal(err)
		}
		testdb.ExecMySQL(t, db, "DELETE FROM "+tbl+" WHERE id = -1")
	}
	return false
}
