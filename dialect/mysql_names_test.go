package dialect

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"osc/engine"
)

// TestMySQLOwnNamesWarns: after the swap, a transaction holding the migrated
// table outlasts every attempt to give its foreign key and trigger their own
// names back: the migration is not failed, osc warns with the statements to
// run, and the table keeps the planned names, its foreign key and trigger
// working.
func TestMySQLOwnNamesWarns(t *testing.T) {
	const name, parent, old = "nmyd_t", "nmyd_parent", "nmyd_t_osc_old"
	db := mysqlTestDB(t, name, parent)
	mustExec(t, db, "CREATE TABLE "+parent+" (id INT PRIMARY KEY) ENGINE=InnoDB")
	mustExec(t, db, "INSERT INTO "+parent+" VALUES (1)")
	mustExec(t, db, "CREATE TABLE "+name+" (id INT PRIMARY KEY, p INT, n INT, KEY by_p (p), CONSTRAINT nmyd_fk FOREIGN KEY (p) REFERENCES "+parent+" (id)) ENGINE=InnoDB")
	mustExec(t, db, "CREATE TRIGGER nmyd_trg BEFORE INSERT ON "+name+" FOR EACH ROW SET NEW.n = NEW.id + 1")
	var logs strings.Builder
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN w INT", CutOverLockTimeout: time.Second, CutOverRetries: 2}
	dd, err := NewMySQL(cfg, mysqlTestConn(t), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	d := dd.(*mysqlDialect)
	t.Cleanup(func() { d.Close() })
	if err := d.Inspect(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The table as the cut-over leaves it: the foreign key and the trigger
	// under their planned names.
	mustExec(t, db, "ALTER TABLE "+name+" DROP FOREIGN KEY nmyd_fk, ADD CONSTRAINT _nmyd_fk FOREIGN KEY (p) REFERENCES "+parent+" (id)")
	mustExec(t, db, "DROP TRIGGER nmyd_trg")
	mustExec(t, db, "CREATE TRIGGER _nmyd_trg BEFORE INSERT ON "+name+" FOR EACH ROW SET NEW.n = NEW.id + 1")

	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // only ends the transaction
	if _, err := tx.Exec("SELECT COUNT(*) FROM " + name); err != nil {
		t.Fatal(err)
	}
	fks, trgs := d.carriedNames(ctx, mysqlTestSchema, old)
	d.ownNames(ctx, mysqlTestSchema, name, fks, trgs)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"level=WARN", "keeps the names some of its foreign keys and triggers were carried under", "run yourself",
		"DROP FOREIGN KEY `_nmyd_fk`, ADD CONSTRAINT `nmyd_fk`", "DROP TRIGGER IF EXISTS `osc_test`.`_nmyd_trg`"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	var fk, trg string
	if err := db.QueryRow(`SELECT (SELECT GROUP_CONCAT(CONSTRAINT_NAME) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?),
		(SELECT GROUP_CONCAT(TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?)`,
		mysqlTestSchema, name, mysqlTestSchema, name).Scan(&fk, &trg); err != nil {
		t.Fatal(err)
	}
	if fk != "_nmyd_fk" || trg != "_nmyd_trg" {
		t.Errorf("foreign keys %s, triggers %s; want the planned names", fk, trg)
	}
	mustExec(t, db, "INSERT INTO "+name+" (id, p) VALUES (5, 1)")
	var n int
	if err := db.QueryRow("SELECT n FROM " + name + " WHERE id = 5").Scan(&n); err != nil || n != 6 {
		t.Errorf("n = %d (err %v): the trigger did not fire", n, err)
	}
	if _, err := db.Exec("INSERT INTO " + name + " (id, p) VALUES (6, 99)"); err == nil {
		t.Error("the foreign key let a row without parent in")
	}
}

// TestMySQLRevertWindowFinishOwnNames: during a revert window the migrated
// table keeps the planned names (a revert gives the old table its own back,
// TestMySQLRevertWindowTriggers); a window that ends without a revert
// gives the migrated table its foreign key's and trigger's own names, and
// the trigger fires once per write.
func TestMySQLRevertWindowFinishOwnNames(t *testing.T) {
	const name, parent = "nmyd_rw", "nmyd_rw_p"
	db := mysqlTestDB(t, name, parent)
	mustExec(t, db, "CREATE TABLE "+parent+" (id INT PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO "+parent+" VALUES (1), (2)",
		"CREATE TABLE "+name+" (id INT PRIMARY KEY, pid INT NOT NULL, u INT NOT NULL, CONSTRAINT nmyd_rw_fk FOREIGN KEY (pid) REFERENCES "+parent+" (id)) ENGINE=InnoDB",
		"CREATE TRIGGER nmyd_rw_bi BEFORE INSERT ON "+name+" FOR EACH ROW SET NEW.u = NEW.u + 1",
		"INSERT INTO "+name+" VALUES (1, 1, 0), (2, 2, 0)")
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN v INT", RevertWindow: time.Minute, OkToDropTable: true, Execute: true}
	d, err := NewMySQL(cfg, mysqlTestConn(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	links := func() string {
		var fks, trgs string
		if err := db.QueryRow(`SELECT (SELECT COALESCE(GROUP_CONCAT(CONSTRAINT_NAME), '') FROM information_schema.REFERENTIAL_CONSTRAINTS
			WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?), (SELECT COALESCE(GROUP_CONCAT(TRIGGER_NAME), '') FROM information_schema.TRIGGERS
			WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?)`, mysqlTestSchema, name, mysqlTestSchema, name).Scan(&fks, &trgs); err != nil {
			t.Fatal(err)
		}
		return "foreign keys [" + fks + "], triggers [" + trgs + "]"
	}
	r := startCtl(t, cfg, d)
	r.until(t, "the revert window", func() bool { return r.m.State() == engine.StateRevertWindow })
	if got, want := links(), "foreign keys [_nmyd_rw_fk], triggers [_nmyd_rw_bi]"; got != want {
		t.Errorf("in the window the migrated table has %s, want %s", got, want)
	}
	mustExec(t, db, "INSERT INTO "+name+" (id, pid, u) VALUES (10, 2, 1)")
	if reply := send(t, r.sock, "finish"); !strings.HasPrefix(reply, "Finishing") {
		t.Fatalf("finish: %q", reply)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	if got, want := links(), "foreign keys [nmyd_rw_fk], triggers [nmyd_rw_bi]"; got != want {
		t.Errorf("after the window the table has %s, want %s", got, want)
	}
	mustExec(t, db, "INSERT INTO "+name+" (id, pid, u) VALUES (11, 2, 1)")
	if got := dumpMySQL(t, db, "SELECT id, u FROM "+name+" WHERE id >= 10 ORDER BY id"); strings.Join(got, " ") != "'10','2' '11','2'" {
		t.Errorf("rows written in and after the window: %v, want u = 2 (the trigger fired once)", got)
	}
}

// TestMySQLResumeSwappedOwnNames: a run killed after its cut-over swapped
// the tables, before its cleanup, is resumed without an inspection (only the
// cleanup is left): the own names are read from the old table's triggers
// before they are dropped, and the migrated table takes them back. (With a
// carried foreign key, which SHOW CREATE TABLE shows, such a resume cannot
// tell the tables swapped, and refuses, naming --initially-drop-ghost-table.)
func TestMySQLResumeSwappedOwnNames(t *testing.T) {
	const name = "rsmy_on"
	db := mysqlTestDB(t, name)
	shadow, _, old, _ := rsmyNames(name)
	ctx := context.Background()
	mustExec(t, db, "CREATE TABLE "+name+" (id INT PRIMARY KEY, n INT) ENGINE=InnoDB",
		"CREATE TRIGGER rsmy_on_bi BEFORE INSERT ON "+name+" FOR EACH ROW SET NEW.n = NEW.id + 1",
		"CREATE TRIGGER _rsmy_on_bi2 BEFORE INSERT ON "+name+" FOR EACH ROW SET NEW.n = NEW.n * 2")
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN w INT", Execute: true, Version: "test", Resume: true,
		CutOverLockTimeout: time.Second, CutOverRetries: 2}
	kcfg := cfg
	kcfg.Resume = false
	rsmyKilled(t, kcfg, &engine.Checkpoint{Version: "test", Alter: cfg.Alter, CopyDone: true, Position: rsmyBinlogPos(t, db), Saved: time.Now()})
	// The killed run's cut-over: the triggers on the shadow under their
	// planned names, then the swap.
	mustExec(t, db, "CREATE TRIGGER _rsmy_on_bi BEFORE INSERT ON "+shadow+" FOR EACH ROW SET NEW.n = NEW.id + 1",
		"CREATE TRIGGER rsmy_on_bi2 BEFORE INSERT ON "+shadow+" FOR EACH ROW SET NEW.n = NEW.n * 2",
		"RENAME TABLE "+name+" TO "+old+", "+shadow+" TO "+name)
	d, err := rsmyDialect(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ck, err := d.Resume(ctx); err != nil || !ck.CutOver {
		t.Fatalf("resume after the swap: %+v, %v", ck, err)
	}
	if err := d.Cleanup(ctx, true); err != nil {
		t.Fatal(err)
	}
	triggers := func(tbl string) string {
		var trgs string
		if err := db.QueryRow(`SELECT COALESCE(GROUP_CONCAT(TRIGGER_NAME ORDER BY ACTION_ORDER), '') FROM information_schema.TRIGGERS
			WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?`, mysqlTestSchema, tbl).Scan(&trgs); err != nil {
			t.Fatal(err)
		}
		return trgs
	}
	if got, want := triggers(name), "rsmy_on_bi,_rsmy_on_bi2"; got != want {
		t.Errorf("the migrated table has triggers %s, want %s", got, want)
	}
	if got := triggers(old); got != "" {
		t.Errorf("the old table, kept, has triggers %s", got)
	}
	mustExec(t, db, "INSERT INTO "+name+" (id) VALUES (5)")
	var n int
	if err := db.QueryRow("SELECT n FROM " + name + " WHERE id = 5").Scan(&n); err != nil || n != 12 {
		t.Errorf("n = %d (err %v), want 12: the triggers fire out of order", n, err)
	}
}
