package cutover

import (
	"context"
	"testing"
	"time"

	"osc/internal/testdb"
	"osc/table"
)

// A parent's writer that arrives while the cut-over holds its lock waits
// without holding a lock on the shadow (a child of the parent once the
// carried foreign keys are on it), so that the carried triggers can still be
// made on the shadow: before the parents were locked too, the writer waited
// for the table holding the shadow's lock, the trigger's CREATE waited for
// the writer, every attempt timed out, and the failed attempt's cleanup
// (which had no lock timeout) kept the writers waiting until theirs ran out.
func TestMySQLCutOverParentWriters(t *testing.T) {
	db := testMySQL(t)
	const par, tbl, shadow, old, audit = "tbl_mysqlplan_cut_par", "tbl_mysqlplan_cut_p", "tbl_mysqlplan_cut_p_osc_new",
		"tbl_mysqlplan_cut_p_osc_old", "tbl_mysqlplan_cut_paudit"
	testdb.DropMySQLTables(t, db, tbl, shadow, old, audit, par)
	t.Cleanup(func() { testdb.DropMySQLTables(t, db, tbl, shadow, old, audit, par) })
	testdb.ExecMySQL(t, db, "CREATE TABLE "+par+" (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "INSERT INTO "+par+" VALUES (1, 'a'), (2, 'b')")
	testdb.ExecMySQL(t, db, "CREATE TABLE "+audit+" (id INT NOT NULL) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, pid INT NOT NULL, KEY (pid), "+
		"CONSTRAINT tbl_mysqlplan_cut_p_fk FOREIGN KEY (pid) REFERENCES "+par+" (id)) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "INSERT INTO "+tbl+" VALUES (1, 1), (2, 2)")
	testdb.ExecMySQL(t, db, "CREATE TRIGGER tbl_mysqlplan_cut_p_ai AFTER INSERT ON "+tbl+" FOR EACH ROW INSERT INTO "+audit+" VALUES (NEW.id)")
	// The shadow has the carried foreign key already (the cut-over adds
	// only those it lacks): the parent's writer below finds it a child.
	testdb.ExecMySQL(t, db, "CREATE TABLE "+shadow+" (id INT PRIMARY KEY, pid INT NOT NULL, KEY (pid), "+
		"CONSTRAINT _tbl_mysqlplan_cut_p_fk FOREIGN KEY (pid) REFERENCES "+par+" (id)) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "INSERT INTO "+shadow+" VALUES (1, 1), (2, 2)")
	ctx := context.Background()
	trgs, err := table.ReadMySQLTriggers(ctx, db, "osc_test", tbl)
	if err != nil || len(trgs) != 1 {
		t.Fatalf("triggers %v: %v", trgs, err)
	}
	trgs[0].Shadow = "_" + trgs[0].Name

	// The writer's own session gives up after 5s: on the old code the
	// cleanup waited for it that long.
	writers := testMySQL(t)
	w, err := writers.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.ExecContext(ctx, "SET SESSION lock_wait_timeout = 5"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	drain := func(ctx context.Context) error {
		go func() {
			_, err := w.ExecContext(context.Background(), "UPDATE "+par+" SET name = 'z' WHERE id = 1")
			done <- err
		}()
		// Under the cut-over's lock: the writer is seen waiting.
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			var n int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.PROCESSLIST
				WHERE STATE = 'Waiting for table metadata lock' AND INFO LIKE 'UPDATE `+par+`%'`).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
		}
		t.Error("the parent's writer was never seen waiting for the cut-over's lock")
		return nil
	}
	start := time.Now()
	err = MySQL(ctx, db, MySQLOptions{Schema: "osc_test", Table: tbl, Shadow: shadow, Old: old,
		LockTimeout: time.Second, Retries: 1,
		ForeignKeys:     []string{"ADD CONSTRAINT _tbl_mysqlplan_cut_p_fk FOREIGN KEY (pid) REFERENCES " + par + " (id)"},
		ForeignKeyNames: []string{"_tbl_mysqlplan_cut_p_fk"},
		Triggers:        trgs}, nil, drain)
	if err != nil {
		t.Fatalf("cut-over with a parent's writer waiting (after %s): %v", time.Since(start), err)
	}
	if werr := <-done; werr != nil {
		t.Fatalf("the parent's writer failed: %v", werr)
	}
	// The triggers moved with the swap: the table fires the carried one.
	testdb.ExecMySQL(t, db, "INSERT INTO "+tbl+" VALUES (3, 1)")
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + audit + " WHERE id = 3").Scan(&n); err != nil || n != 1 {
		t.Fatalf("audit rows of the insert after the swap: %d, %v; want 1", n, err)
	}
}
