package dialect

import (
	"context"
	"errors"
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
