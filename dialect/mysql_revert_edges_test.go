package dialect

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"osc/engine"
	"osc/table"
)

// revertWindowRun migrates name with alter and a revert window, and waits
// for the window to open.
func revertWindowRun(t *testing.T, name, alter string) *ctlRun {
	t.Helper()
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: alter, RevertWindow: time.Minute, OkToDropTable: true, Execute: true}
	d, err := NewMySQL(cfg, mysqlTestConn(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := startCtl(t, cfg, d)
	r.until(t, "the revert window", func() bool { return r.m.State() == engine.StateRevertWindow })
	return r
}

// TestMySQLRevertStaleRowUniqueClash: a refused change leaves the row's
// earlier state in the old table, with a value of a unique index that the
// table's row has given up since. A row inserted with that value must not
// meet the stale row in the old table's upsert (INSERT … ON DUPLICATE KEY
// UPDATE would rewrite the stale row, of another key, into the new one,
// giving it the other row's values of the dropped column): the new row is
// refused, naming the clash, until written again; the reverted table equals
// a control table that took the same writes, once fitting.
func TestMySQLRevertStaleRowUniqueClash(t *testing.T) {
	const name, ctl = "rvreview_uq", "rvreview_uq_ctl"
	db := mysqlTestDB(t, name, ctl)
	for _, n := range []string{name, ctl} {
		mustExec(t, db, "CREATE TABLE "+n+" (id INT NOT NULL PRIMARY KEY, u INT NOT NULL, a INT NOT NULL, c INT NULL, UNIQUE KEY (u)) ENGINE=InnoDB",
			"INSERT INTO "+n+" VALUES (1, 5, 1, 100), (3, 7, 3, 300)")
	}
	r := revertWindowRun(t, name, "DROP COLUMN c, MODIFY COLUMN a BIGINT NOT NULL")
	_, _, old := table.MySQLNames(name)

	// Row 1 gives up u = 5 with a value the old table's INT cannot hold:
	// the old table keeps row 1 with u = 5.
	mustExec(t, db, "UPDATE "+name+" SET u = 6, a = 5000000000 WHERE id = 1")
	r.until(t, "the unfit row to be refused", func() bool { return r.m.Status().RevertRefused == 1 })
	// Row 2 takes u = 5, which the old table's row 1 still holds: it is
	// refused; row 1 is written again so that it fits.
	mustExec(t, db, "INSERT INTO "+name+" (id, u, a) VALUES (2, 5, 2)", "UPDATE "+name+" SET a = 1 WHERE id = 1")
	r.until(t, "row 1 in the old table", func() bool {
		var u int
		return db.QueryRow("SELECT u FROM "+old+" WHERE id = 1").Scan(&u) == nil && u == 6
	})
	reply := send(t, r.sock, "revert")
	if !strings.Contains(reply, "cannot revert exactly: 1 row(s)") || !strings.Contains(reply, "key (id=2)") || !strings.Contains(reply, "unique values") {
		t.Fatalf("revert with row 2 refused: %q", reply)
	}
	// A write of row 2 lifts its refusal.
	mustExec(t, db, "UPDATE "+name+" SET a = 20 WHERE id = 2")
	mustExec(t, db, "UPDATE "+ctl+" SET u = 6, a = 1 WHERE id = 1",
		"INSERT INTO "+ctl+" (id, u, a) VALUES (2, 5, 2)",
		"UPDATE "+ctl+" SET a = 20 WHERE id = 2")
	r.until(t, "the last write in the old table", func() bool {
		var a int
		return db.QueryRow("SELECT a FROM "+old+" WHERE id = 2").Scan(&a) == nil && a == 20
	})
	r.until(t, "no refusal", func() bool { return r.m.Status().RevertRefused == 0 })
	if reply := send(t, r.sock, "revert"); !strings.HasPrefix(reply, "Reverted") {
		t.Fatalf("revert: %q", reply)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	want := dumpMySQL(t, db, "SELECT id, u, a, c FROM "+ctl+" ORDER BY id")
	if got := dumpMySQL(t, db, "SELECT id, u, a, c FROM "+name+" ORDER BY id"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("reverted table:\n%s\nwant (the control table):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMySQLRevertWindowRoundingRefusal: an --alter whose type change the
// server carries out by rounding (1.25 to 1.3) is refused with a revert
// window, before anything is copied: a row written during the window would
// go back into the old table rounded in a column the write left alone (on
// main a revert gave back 1.30 and a DATETIME without its fraction where a
// table never migrated kept 1.25 and .4).
func TestMySQLRevertWindowRoundingRefusal(t *testing.T) {
	const name = "rvreview_lo"
	db := mysqlTestDB(t, name)
	mustExec(t, db, "CREATE TABLE "+name+" (id INT NOT NULL PRIMARY KEY, p DECIMAL(10,2) NOT NULL, ts DATETIME(6) NOT NULL, a INT NOT NULL) ENGINE=InnoDB",
		"INSERT INTO "+name+" VALUES (1, 1.25, '2020-01-01 00:00:00.400000', 1)")
	for _, tc := range []struct{ alter, want string }{
		{"MODIFY COLUMN p DECIMAL(10,1) NOT NULL", "column p from decimal(10,2) to decimal(10,1), which rounds to fewer decimal places"},
		{"MODIFY COLUMN ts DATETIME NOT NULL", "column ts from datetime(6) to datetime, which drops fractional seconds"},
	} {
		cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: tc.alter, RevertWindow: time.Minute, Execute: true}
		d, err := NewMySQL(cfg, mysqlTestConn(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = engine.New(cfg, d, slog.New(slog.DiscardHandler), nil).Run(ctx)
		cancel()
		var refused *engine.RefusedError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), "--revert-window") || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: want a refusal naming %q, got %v", tc.alter, tc.want, err)
		}
		shadow, changelog, old := table.MySQLNames(name)
		if left := tablesExist(t, db, shadow, changelog, old, table.MySQLCheckpointName(name)); len(left) != 0 {
			t.Fatalf("%s: left behind: %v", tc.alter, left)
		}
	}
}

// TestMySQLRevertTypeChangesAndMoves: an --alter that reorders an ENUM's
// and a SET's members, converts a column's character set, renames a column
// and drops one, with writes during the window that move rows to other keys
// (the dropped column's values go with them), delete a key and insert it
// again, and insert new rows: the reverted table equals a control table
// that took the same writes and was never migrated.
func TestMySQLRevertTypeChangesAndMoves(t *testing.T) {
	const name, ctl = "rvreview_ty", "rvreview_ty_ctl"
	db := mysqlTestDB(t, name, ctl)
	for _, n := range []string{name, ctl} {
		mustExec(t, db, "CREATE TABLE "+n+" (id INT NOT NULL PRIMARY KEY, e ENUM('a','b','c') NOT NULL, s SET('x','y','z') NOT NULL, "+
			"l VARCHAR(20) CHARACTER SET latin1 NULL, b VARCHAR(20) NULL, c INT NOT NULL DEFAULT 42) ENGINE=InnoDB",
			"INSERT INTO "+n+" VALUES (1, 'a', 'x,z', 'caf\u00e9', 'b1', 101), (2, 'b', '', NULL, 'b2', 102), (3, 'c', 'y', 'l3', NULL, 103), (4, 'a', 'z', 'l4', 'b4', 104)")
	}
	r := revertWindowRun(t, name, "MODIFY COLUMN e ENUM('c','b','a','d') NOT NULL, MODIFY COLUMN s SET('z','y','x') NOT NULL, "+
		"MODIFY COLUMN l VARCHAR(20) CHARACTER SET utf8mb4 NULL, CHANGE COLUMN b bb VARCHAR(20) NULL, DROP COLUMN c")
	_, _, old := table.MySQLNames(name)
	for _, q := range []string{
		"UPDATE %s SET id = 10, e = 'b' WHERE id = 1",  // a move: c = 101 goes with it
		"UPDATE %s SET id = 11 WHERE id = 10",          // and again
		"UPDATE %s SET id = 1, s = 'x,y' WHERE id = 2", // a move onto the first key freed
		"DELETE FROM %s WHERE id = 3",                  // deleted, then inserted again: c = 42
		"INSERT INTO %s (id, e, s, l, %s) VALUES (3, 'c', 'x', 'n\u00e8', 'new')",
		"UPDATE %s SET l = CONCAT(l, '\u00ff'), e = 'c' WHERE id = 4",
		"INSERT INTO %s (id, e, s, l, %s) VALUES (5, 'b', 'z,x', NULL, 'b5')",
		"UPDATE %s SET %s = 'done' WHERE id = 5",
	} {
		if strings.Count(q, "%s") == 2 {
			mustExec(t, db, fmt.Sprintf(q, name, "bb"), fmt.Sprintf(q, ctl, "b"))
		} else {
			mustExec(t, db, fmt.Sprintf(q, name), fmt.Sprintf(q, ctl))
		}
	}
	r.until(t, "the last write in the old table", func() bool {
		var b sql.NullString
		return db.QueryRow("SELECT b FROM "+old+" WHERE id = 5").Scan(&b) == nil && b.String == "done"
	})
	if reply := send(t, r.sock, "revert"); !strings.HasPrefix(reply, "Reverted") {
		t.Fatalf("revert: %q", reply)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	if got, want := createTable(t, db, name, "x"), createTable(t, db, ctl, "x"); got != want {
		t.Errorf("the reverted table's definition differs from the original's:\n%s\nwant\n%s", got, want)
	}
	want := dumpMySQL(t, db, "SELECT id, e, s, HEX(l), b, c FROM "+ctl+" ORDER BY id")
	if got := dumpMySQL(t, db, "SELECT id, e, s, HEX(l), b, c FROM "+name+" ORDER BY id"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("reverted table:\n%s\nwant (the control table):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMySQLRevertAutoIncrement: an id the table handed out during the window
// to a row the old table refused, and that was then deleted, is never in the
// old table; after the revert the table must not hand it out again (the
// application has seen it). The reverted table numbers new rows as a
// control table that took the same writes does.
func TestMySQLRevertAutoIncrement(t *testing.T) {
	const name, ctl = "leftovers_ai", "leftovers_ai_ctl"
	db := mysqlTestDB(t, name, ctl)
	for _, n := range []string{name, ctl} {
		mustExec(t, db, "CREATE TABLE "+n+" (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, a INT NOT NULL, c INT NULL) ENGINE=InnoDB",
			"INSERT INTO "+n+" (a, c) VALUES (1, 10), (2, 20)")
	}
	r := revertWindowRun(t, name, "DROP COLUMN c, MODIFY COLUMN a BIGINT NOT NULL")
	// Id 3 goes to a row the old table's INT refuses, then the row goes.
	mustExec(t, db, "INSERT INTO "+name+" (a) VALUES (5000000000)")
	r.until(t, "the unfit row to be refused", func() bool { return r.m.Status().RevertRefused == 1 })
	mustExec(t, db, "DELETE FROM "+name+" WHERE id = 3")
	r.until(t, "the refusal to lift", func() bool { return r.m.Status().RevertRefused == 0 })
	mustExec(t, db, "INSERT INTO "+ctl+" (a) VALUES (3)", "DELETE FROM "+ctl+" WHERE id = 3")
	if reply := send(t, r.sock, "revert"); !strings.HasPrefix(reply, "Reverted") {
		t.Fatalf("revert: %q", reply)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	for _, n := range []string{name, ctl} {
		mustExec(t, db, "INSERT INTO "+n+" (a) VALUES (4)")
	}
	want := dumpMySQL(t, db, "SELECT id, a, c FROM "+ctl+" ORDER BY id")
	if got := dumpMySQL(t, db, "SELECT id, a, c FROM "+name+" ORDER BY id"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("reverted table:\n%s\nwant (the control table):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
