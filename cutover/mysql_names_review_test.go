package cutover

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"osc/internal/testdb"
)

// rn2Triggers returns the table's triggers as information_schema.TRIGGERS
// describes them, without their names and creation times: one line each, in
// firing order.
func rn2Triggers(t *testing.T, db *sql.DB, tbl string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT CONCAT_WS('|', EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER, ACTION_STATEMENT, DEFINER, SQL_MODE,
			CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION)
		FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'osc_test' AND EVENT_OBJECT_TABLE = ?
		ORDER BY EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER`, tbl)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMySQLOwnNamesLatin1Names: a trigger made by a latin1 client under a
// name that is not ASCII (é). Its CREATE under its own name is converted to
// latin1, in a session set to latin1 as the trigger was made; the DROP of
// its planned name that follows must not be read as latin1 too (é sent as
// UTF-8 would name another trigger): the trigger is renamed, once, keeping
// its definer, sql_mode, character set and collation, as a plain ALTER
// TABLE keeps them.
func TestMySQLOwnNamesLatin1Names(t *testing.T) {
	db := testMySQL(t)
	const tbl = "rn2_latin1"
	testdb.DropMySQLTables(t, db, tbl)
	t.Cleanup(func() { testdb.DropMySQLTables(t, db, tbl) })
	testdb.ExecMySQL(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, s VARCHAR(50) NOT NULL DEFAULT '') ENGINE=InnoDB")
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Made by a latin1 client: the statement's bytes are latin1 (é is
	// 0xE9), and so is the session.
	for _, q := range []string{
		"SET SESSION sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES', character_set_client = latin1, collation_connection = latin1_swedish_ci",
		"CREATE DEFINER='rn2_nobody'@'%' TRIGGER _rn2_tr\xe9 BEFORE INSERT ON " + tbl + " FOR EACH ROW SET NEW.s = CONCAT(NEW.s, 'caf\xe9,')",
		"CREATE TRIGGER _rn2_second BEFORE INSERT ON " + tbl + " FOR EACH ROW SET NEW.s = CONCAT(NEW.s, '2,')",
	} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	discard(c)
	before := rn2Triggers(t, db, tbl)
	names, err := MySQLOwnNames(ctx, db, MySQLNamesOptions{Schema: "osc_test", Table: tbl,
		Triggers: map[string]string{"_rn2_tré": "rn2_tré", "_rn2_second": "rn2_second"}, LockTimeout: time.Second, Retries: 1})
	if err != nil {
		t.Errorf("renaming: %v (renamed %v)", err, names)
	}
	_, got, _ := nmyNames(t, db, tbl)
	if want := "rn2_second:INSERT:BEFORE:2,rn2_tré:INSERT:BEFORE:1"; got != want {
		t.Errorf("triggers %s, want %s", got, want)
	}
	if after := rn2Triggers(t, db, tbl); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("triggers were\n%s\nare\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	// Each fires once (the definer does not exist: made again as root's).
	testdb.ExecMySQL(t, db, "DROP TRIGGER rn2_tré")
	testdb.ExecMySQL(t, db, "CREATE TRIGGER rn2_tré BEFORE INSERT ON "+tbl+" FOR EACH ROW PRECEDES rn2_second SET NEW.s = CONCAT(NEW.s, 'café,')")
	testdb.ExecMySQL(t, db, "INSERT INTO "+tbl+" (id) VALUES (1)")
	var s string
	if err := db.QueryRow("SELECT s FROM " + tbl + " WHERE id = 1").Scan(&s); err != nil || s != "café,2," {
		t.Errorf("an insert fired %q (err %v), want café,2,", s, err)
	}
}

// TestMySQLOwnNamesSessionLostRetried: the renaming's session is killed on
// the server mid-way (a DBA's KILL, a pt-kill of long lock holders, a
// proxy's failover) while osc lives on: the server releases the lock with
// one trigger there twice, firing twice for each write. osc then drops the
// checkpoint table, so no --resume would ever drop the second: the renaming
// tries again on a fresh session, as for a lock wait, and finishes: each
// trigger once, under its own name, in its order.
func TestMySQLOwnNamesSessionLostRetried(t *testing.T) {
	db := testMySQL(t)
	const tbl, n = "rn2_kill", 30
	trgs, order := mysqlKillTriggers(t, db, tbl, n)
	killed := killRenamingOnce(db, tbl)
	names, err := MySQLOwnNames(context.Background(), db, MySQLNamesOptions{Schema: "osc_test", Table: tbl, Triggers: trgs,
		LockTimeout: 5 * time.Second, Retries: 3})
	if _, ok := <-killed; !ok {
		t.Fatalf("the renaming's session was not killed (renaming: %v)", err)
	}
	if err != nil {
		t.Errorf("renaming with its session killed once, 3 attempts: %v", err)
	}
	if len(names) < n-1 {
		t.Errorf("renamed %d, want %d or more (the one whose DROP the kill cut may have run unseen)", len(names), n-1)
	}
	own, all := mysqlOwnTriggers(t, db, tbl)
	if own != n || all != n {
		t.Errorf("%d triggers, %d under their own names, want %d", all, own, n)
	}
	testdb.ExecMySQL(t, db, "INSERT INTO "+tbl+" (id) VALUES (1)")
	var s string
	if err := db.QueryRow("SELECT s FROM " + tbl + " WHERE id = 1").Scan(&s); err != nil || s != strings.Join(order, ",")+"," {
		t.Errorf("an insert fired %q (err %v), want each trigger once in order", s, err)
	}
}
