package dialect

import (
	"context"
	"strings"
	"testing"
	"time"

	"osc/engine"
)

// TestMySQLForeignKeysPreflight: the preflight report says what happens to a
// child table's foreign keys: carried under their planned names, or, with
// --discard-foreign-keys, not.
func TestMySQLForeignKeysPreflight(t *testing.T) {
	const child, parent = "cov_fk_child", "cov_fk_parent"
	db := mysqlTestDB(t, child, parent)
	mustExec(t, db, "CREATE TABLE "+parent+" (id INT PRIMARY KEY) ENGINE=InnoDB")
	mustExec(t, db, "CREATE TABLE "+child+" (id INT PRIMARY KEY, p INT, CONSTRAINT cov_fk_p FOREIGN KEY (p) REFERENCES "+parent+" (id)) ENGINE=InnoDB")
	ctx := context.Background()
	cfg := engine.Config{Schema: mysqlTestSchema, Table: child, Alter: "ADD COLUMN w INT"}
	for discard, want := range map[bool]string{
		false: "carried: cov_fk_p as _cov_fk_p (InnoDB's names are schema-wide), added to the new table at the cut-over while writes are blocked",
		true:  "the new table has none of cov_fk_p referencing osc_test.cov_fk_parent (--discard-foreign-keys)",
	} {
		conn := mysqlTestConn(t)
		conn.DiscardForeignKeys = discard
		dd, err := NewMySQL(cfg, conn, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := dd.(*mysqlDialect)
		if err := d.Inspect(ctx); err != nil {
			d.Close()
			t.Fatal(err)
		}
		r, err := d.Preflight(ctx, 0)
		d.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.ForeignKeys, want) || !strings.Contains(r.ForeignKeys, "those of the old table are dropped after the cut-over") ||
			!strings.Contains(r.ForeignKeys, "writes to osc_test.cov_fk_parent wait too") {
			t.Errorf("discard %v: preflight foreign keys %q, want %q", discard, r.ForeignKeys, want)
		}
	}
}

// TestMySQLResumeCarriedForeignKeys: a run killed in its cut-over after it
// added the carried foreign keys and triggers to the shadow, before the swap,
// is resumed: they come off the shadow (they belong there only while writes
// are blocked; a trigger would fire for the applier), and the shadow's
// definition is the saved one again.
func TestMySQLResumeCarriedForeignKeys(t *testing.T) {
	const name, parent = "rsmy_fk", "rsmy_fk_parent"
	db := mysqlTestDB(t, name, parent)
	shadow, changelog, _, ckp := rsmyNames(name)
	mustExec(t, db, "CREATE TABLE "+parent+" (id INT PRIMARY KEY) ENGINE=InnoDB")
	mustExec(t, db, "CREATE TABLE "+name+" (id INT PRIMARY KEY, p INT, CONSTRAINT rsmy_fk_p FOREIGN KEY (p) REFERENCES "+parent+" (id)) ENGINE=InnoDB")
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN w INT", Execute: true, Version: "test"}
	ck := &engine.Checkpoint{Version: "test", Alter: cfg.Alter, Position: rsmyBinlogPos(t, db), CopyDone: true, Saved: time.Now().UTC().Truncate(time.Second)}
	rsmyKilled(t, cfg, ck)
	mustExec(t, db, "SET SESSION foreign_key_checks = 0")
	mustExec(t, db, "ALTER TABLE "+shadow+" ADD CONSTRAINT _rsmy_fk_p FOREIGN KEY (p) REFERENCES "+parent+" (id)")
	mustExec(t, db, "CREATE TRIGGER _rsmy_fk_trg BEFORE INSERT ON "+shadow+" FOR EACH ROW SET NEW.p = NEW.p")

	cfg.Resume = true
	d, err := rsmyDialect(t, cfg)
	if err != nil {
		t.Fatalf("Inspect with --resume: %v", err)
	}
	if _, _, err := d.Resume(context.Background()); err != nil {
		t.Fatalf("resume: %v", err)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`,
		mysqlTestSchema, shadow).Scan(&n); err != nil || n != 0 {
		t.Errorf("the shadow keeps %d foreign keys (err %v)", n, err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?`,
		mysqlTestSchema, shadow).Scan(&n); err != nil || n != 0 {
		t.Errorf("the shadow keeps %d triggers (err %v)", n, err)
	}
	if err := d.Cleanup(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if left := tablesExist(t, db, shadow, changelog, ckp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
