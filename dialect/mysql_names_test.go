package dialect

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"osc/engine"
	"osc/table"
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
		"DROP FOREIGN KEY `_nmyd_fk`, ADD CONSTRAINT `nmyd_fk`", "FOR EACH ROW FOLLOWS `_nmyd_trg`", "DROP TRIGGER `osc_test`.`_nmyd_trg`"} {
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
// before they are dropped (a checkpoint table made by an earlier osc, which
// kept no names, is the case), and the migrated table takes them back.
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
	_, _, _, ckp := rsmyNames(name)
	mustExec(t, db, "ALTER TABLE "+ckp+" DROP COLUMN carried_names")
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

// nmkPlain is the database where the plain ALTER TABLE runs on an identical
// table, for the comparison (trigger and foreign key names are schema-wide).
const nmkPlain = "names_fix_plain"

// nmkTable makes parent <name>_p and table name, with a foreign key
// <name>_fk (unless name ends in _nofk) and triggers <name>_t1, <name>_t2 (BEFORE INSERT, in that order:
// m shows it) and <name>_t3 (BEFORE UPDATE), and rows, in schema.
func nmkTable(t *testing.T, db *sql.DB, schema, name string) {
	t.Helper()
	q := func(n string) string { return table.QuoteMySQL(schema, n) }
	fk := ", CONSTRAINT " + name + "_fk FOREIGN KEY (p) REFERENCES " + table.QuoteMySQL(name+"_p") + " (id)"
	if strings.HasSuffix(name, "_nofk") {
		fk = ""
	}
	mustExec(t, db, "CREATE TABLE "+q(name+"_p")+" (id INT PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO "+q(name+"_p")+" VALUES (1), (2), (3)",
		"CREATE TABLE "+q(name)+" (id INT PRIMARY KEY, p INT NOT NULL, n INT, m INT, KEY by_p (p)"+fk+") ENGINE=InnoDB")
	for _, trg := range nmkTriggers(name, "") {
		trg = strings.Replace(trg, "CREATE TRIGGER ", "CREATE TRIGGER "+table.QuoteMySQL(schema)+".", 1)
		mustExec(t, db, strings.Replace(trg, " ON "+table.QuoteMySQL(name)+" ", " ON "+q(name)+" ", 1))
	}
	var vals []string
	for i := 1; i <= 300; i++ {
		vals = append(vals, fmt.Sprintf("(%d, %d)", i, 1+i%3))
	}
	mustExec(t, db, "INSERT INTO "+q(name)+" (id, p) VALUES "+strings.Join(vals, ", "))
}

// nmkTriggers are the CREATE TRIGGER statements of nmkTable's triggers,
// named with prefix (the planned names: "_") on the table name (unqualified
// names: the caller qualifies).
func nmkTriggers(name, prefix string) []string {
	on := " ON " + table.QuoteMySQL(name) + " FOR EACH ROW "
	return []string{
		"CREATE TRIGGER " + prefix + name + "_t1 BEFORE INSERT" + on + "SET NEW.n = NEW.id + 1",
		"CREATE TRIGGER " + prefix + name + "_t2 BEFORE INSERT" + on + "SET NEW.m = NEW.n * 2",
		"CREATE TRIGGER " + prefix + name + "_t3 BEFORE UPDATE" + on + "SET NEW.n = NEW.id + NEW.p",
	}
}

// nmkShape is what the comparison with the plain ALTER reads of a table:
// SHOW CREATE TABLE and its triggers as SHOW TRIGGERS lists them (but for
// when each was made).
func nmkShape(t *testing.T, db *sql.DB, schema, name string) string {
	t.Helper()
	var n, def string
	if err := db.QueryRow("SHOW CREATE TABLE "+table.QuoteMySQL(schema, name)).Scan(&n, &def); err != nil {
		t.Fatal(err)
	}
	trgs := dumpMySQL(t, db, `SELECT TRIGGER_NAME, EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER, ACTION_STATEMENT, DEFINER, SQL_MODE,
		CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION FROM information_schema.TRIGGERS
		WHERE TRIGGER_SCHEMA = '`+schema+`' AND EVENT_OBJECT_TABLE = '`+name+`' ORDER BY TRIGGER_NAME`)
	return def + "\n" + strings.Join(trgs, "\n")
}

// TestMySQLResumeFinishesOwnNames: a run killed at each point of its
// cleanup after the swap (before the old table's foreign keys and triggers
// are dropped, after, with the old table dropped, after the foreign keys'
// renaming, in the triggers' renaming between one trigger's CREATE and its
// DROP, after it all) is resumed under writes: the resumed cleanup finishes
// the renaming, and the table equals, row by row, SHOW CREATE TABLE and
// triggers included, an identical table that a plain ALTER TABLE migrated
// and that took the same writes.
func TestMySQLResumeFinishesOwnNames(t *testing.T) {
	for _, tc := range []struct {
		name, point string
		dropOld     bool
	}{
		{"nmk_sw", "swapped", false},
		{"nmk_od", "old objects dropped", false},
		{"nmk_ot", "old table dropped", true},
		{"nmk_fk", "foreign keys renamed", false},
		{"nmk_mid", "mid triggers", false},
		{"nmk_all", "all renamed", true},
	} {
		t.Run(tc.point, func(t *testing.T) { nmkResume(t, tc.name, tc.point, tc.dropOld) })
	}
}

func nmkResume(t *testing.T, name, point string, dropOld bool) {
	db := mysqlTestDB(t, name, name+"_p")
	ctx := context.Background()
	shadow, _, old, ckp := rsmyNames(name)
	mustExec(t, db, "DROP DATABASE IF EXISTS "+nmkPlain, "CREATE DATABASE "+nmkPlain)
	t.Cleanup(func() { mustExec(t, db, "DROP DATABASE IF EXISTS "+nmkPlain) })
	nmkTable(t, db, mysqlTestSchema, name)
	nmkTable(t, db, nmkPlain, name)
	const alter = "ADD COLUMN w INT"
	mustExec(t, db, "ALTER TABLE "+table.QuoteMySQL(nmkPlain, name)+" "+alter)

	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: alter, Execute: true, Version: "test", Resume: true,
		OkToDropTable: dropOld, CutOverLockTimeout: 2 * time.Second, CutOverRetries: 3}
	kcfg := cfg
	kcfg.Resume = false
	rsmyKilled(t, kcfg, &engine.Checkpoint{Version: "test", Alter: alter, CopyDone: true, Position: rsmyBinlogPos(t, db), Saved: time.Now()})
	// The killed run's copy and cut-over: the rows, the foreign key and
	// the triggers under their planned names, then the swap.
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fk := func(fkName string) string {
		return "ADD CONSTRAINT " + fkName + " FOREIGN KEY (p) REFERENCES " + table.QuoteMySQL(name+"_p") + " (id)"
	}
	for _, s := range append([]string{"SET SESSION foreign_key_checks = 0",
		"INSERT INTO " + shadow + " (id, p, n, m) SELECT id, p, n, m FROM " + name,
		"ALTER TABLE " + shadow + " " + fk("_"+name+"_fk")},
		strings.ReplaceAll(strings.Join(nmkTriggers(name, "_"), "\x00"), " ON "+table.QuoteMySQL(name)+" ", " ON "+shadow+" ")) {
		for _, stmt := range strings.Split(s, "\x00") {
			if _, err := c.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}
	mustExec(t, db, "RENAME TABLE "+name+" TO "+old+", "+shadow+" TO "+name)
	// The cleanup, up to where the kill lands.
	steps := map[string][]string{
		"old objects dropped": {"ALTER TABLE " + old + " DROP FOREIGN KEY " + name + "_fk",
			"DROP TRIGGER " + name + "_t1", "DROP TRIGGER " + name + "_t2", "DROP TRIGGER " + name + "_t3"},
		"old table dropped": {"DROP TABLE " + old},
	}
	steps["foreign keys renamed"] = append(slices.Clone(steps["old objects dropped"]),
		"ALTER TABLE "+name+" DROP FOREIGN KEY _"+name+"_fk, "+fk(name+"_fk")+", ALGORITHM=INPLACE")
	steps["mid triggers"] = append(slices.Clone(steps["foreign keys renamed"]),
		"CREATE TRIGGER "+name+"_t1 BEFORE INSERT ON "+name+" FOR EACH ROW FOLLOWS _"+name+"_t1 SET NEW.n = NEW.id + 1",
		"DROP TRIGGER _"+name+"_t1",
		"CREATE TRIGGER "+name+"_t2 BEFORE INSERT ON "+name+" FOR EACH ROW FOLLOWS _"+name+"_t2 SET NEW.m = NEW.n * 2")
	steps["all renamed"] = append(slices.Clone(steps["old table dropped"]),
		"ALTER TABLE "+name+" DROP FOREIGN KEY _"+name+"_fk, "+fk(name+"_fk")+", ALGORITHM=INPLACE",
		"CREATE TRIGGER "+name+"_t1 BEFORE INSERT ON "+name+" FOR EACH ROW FOLLOWS _"+name+"_t1 SET NEW.n = NEW.id + 1",
		"DROP TRIGGER _"+name+"_t1",
		"CREATE TRIGGER "+name+"_t2 BEFORE INSERT ON "+name+" FOR EACH ROW FOLLOWS _"+name+"_t2 SET NEW.m = NEW.n * 2",
		"DROP TRIGGER _"+name+"_t2",
		"CREATE TRIGGER "+name+"_t3 BEFORE UPDATE ON "+name+" FOR EACH ROW FOLLOWS _"+name+"_t3 SET NEW.n = NEW.id + NEW.p",
		"DROP TRIGGER _"+name+"_t3")
	for _, stmt := range steps[point] {
		if _, err := c.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}

	// Writers: each write to the table and the same to the plain ALTER's.
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var writes atomic.Int64
	werrs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; wctx.Err() == nil; i++ {
				id := 1000 + w*100000 + i
				stmt, args := "INSERT INTO %s (id, p) VALUES (?, ?)", []any{id, 1 + i%3}
				if i%2 == 1 {
					stmt, args = "UPDATE %s SET p = ? WHERE id = ?", []any{1 + (i/2)%3, 1 + (w*150+i)%300}
				}
				for _, schema := range []string{mysqlTestSchema, nmkPlain} {
					if _, err := db.Exec(fmt.Sprintf(stmt, table.QuoteMySQL(schema, name)), args...); err != nil {
						werrs <- err
						return
					}
				}
				writes.Add(1)
			}
		}()
	}
	for writes.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	var logs strings.Builder
	d, err := NewMySQL(cfg, mysqlTestConn(t), slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: new(sync.Mutex)}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Inspect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ck, err := d.(*mysqlDialect).Resume(ctx); err != nil || !ck.CutOver {
		t.Fatalf("resume after the swap: %+v, %v", ck, err)
	}
	if err := d.Cleanup(ctx, true); err != nil {
		t.Fatal(err)
	}
	at := writes.Load()
	for writes.Load() < at+20 {
		time.Sleep(time.Millisecond)
	}
	stop()
	wg.Wait()
	close(werrs)
	for err := range werrs {
		t.Fatalf("writer: %v", err)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("the resumed cleanup warned:\n%s", logs.String())
	}
	nmkSameAsPlain(t, db, name)
	left := tablesExist(t, db, shadow, ckp, old)
	if wantLeft := map[bool]string{true: "", false: old}[dropOld]; strings.Join(left, ",") != wantLeft {
		t.Errorf("left %v, want [%s]", left, wantLeft)
	}
	if !dropOld {
		if trgs := dumpMySQL(t, db, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '"+mysqlTestSchema+
			"' AND EVENT_OBJECT_TABLE = '"+old+"'"); len(trgs) > 0 {
			t.Errorf("the old table, kept, has triggers %v", trgs)
		}
	}
}

// nmkKill is the dialect of a run killed in its cleanup after the swap: the
// cleanup runs up to the kill (upTo), and no further.
type nmkKill struct {
	engine.Dialect
	upTo func(context.Context)
}

func (k nmkKill) Cleanup(ctx context.Context, _ bool) error {
	k.upTo(ctx)
	return nil
}

// TestMySQLKilledAfterSwapResumed: a whole migration of a table with a
// foreign key and triggers, under writes to it (and the same writes to an
// identical table that a plain ALTER TABLE migrated), killed in its cleanup
// after the swap, right after it or once the old table's foreign key and
// triggers are dropped (with and without a foreign key); osc --resume then only cleans up, and the table
// equals the plain ALTER's, row by row, SHOW CREATE TABLE and triggers
// included.
func TestMySQLKilledAfterSwapResumed(t *testing.T) {
	for _, tc := range []struct {
		name, point string
	}{
		{"nmk_e1", "after the swap"},
		{"nmk_e2", "old objects dropped"},
		// Without a foreign key, the killed run is found swapped even by
		// an osc that compares the definitions with their foreign keys;
		// the names must come from the checkpoint table.
		{"nmk_e3_nofk", "old objects dropped"},
	} {
		t.Run(tc.name, func(t *testing.T) { nmkKilledRun(t, tc.name, tc.point) })
	}
}

func nmkKilledRun(t *testing.T, name, point string) {
	db := mysqlTestDB(t, name, name+"_p")
	shadow, changelog, old, ckp := rsmyNames(name)
	mustExec(t, db, "DROP DATABASE IF EXISTS "+nmkPlain, "CREATE DATABASE "+nmkPlain)
	t.Cleanup(func() { mustExec(t, db, "DROP DATABASE IF EXISTS "+nmkPlain) })
	nmkTable(t, db, mysqlTestSchema, name)
	nmkTable(t, db, nmkPlain, name)
	const alter = "ADD COLUMN w INT"
	mustExec(t, db, "ALTER TABLE "+table.QuoteMySQL(nmkPlain, name)+" "+alter)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var writes atomic.Int64
	werrs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; wctx.Err() == nil; i++ {
				id := 1000 + w*100000 + i
				stmt, args := "INSERT INTO %s (id, p) VALUES (?, ?)", []any{id, 1 + i%3}
				switch i % 3 {
				case 1:
					stmt, args = "UPDATE %s SET p = ? WHERE id = ?", []any{1 + (i/3)%3, 1 + (w*150+i)%300}
				case 2:
					stmt, args = "DELETE FROM %s WHERE id = ?", []any{id - 2}
				}
				for _, schema := range []string{mysqlTestSchema, nmkPlain} {
					if _, err := db.Exec(fmt.Sprintf(stmt, table.QuoteMySQL(schema, name)), args...); err != nil {
						werrs <- err
						return
					}
				}
				writes.Add(1)
				time.Sleep(time.Millisecond)
			}
		}()
	}
	defer func() {
		stop()
		wg.Wait()
	}()
	var logs strings.Builder
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: alter, Execute: true, Version: "test", ChunkSize: 50,
		CutOverLockTimeout: 2 * time.Second, CutOverRetries: 3, StatusInterval: time.Hour, CheckpointInterval: 50 * time.Millisecond}
	for run := range 2 {
		rcfg := cfg
		rcfg.Resume = run == 1
		d, err := NewMySQL(rcfg, mysqlTestConn(t), log)
		if err != nil {
			t.Fatal(err)
		}
		if run == 0 {
			md := d.(*mysqlDialect)
			d = nmkKill{Dialect: d, upTo: func(ctx context.Context) {
				if point == "old objects dropped" {
					md.dropOldForeignKeys(ctx, mysqlTestSchema, old)
					md.dropOldTriggers(ctx, mysqlTestSchema, old)
				}
			}}
		}
		for at := writes.Load(); writes.Load() < at+30; {
			time.Sleep(time.Millisecond)
		}
		err = engine.New(rcfg, d, log, io.Discard).Run(ctx)
		d.Close()
		if err != nil {
			logMu.Lock()
			t.Fatalf("run %d: %v\n%s", run, err, logs.String())
		}
		if run == 0 {
			if left := tablesExist(t, db, changelog, ckp, old); len(left) != 3 {
				t.Fatalf("the killed run left %v", left)
			}
		}
	}
	for at := writes.Load(); writes.Load() < at+30; {
		time.Sleep(time.Millisecond)
	}
	stop()
	wg.Wait()
	close(werrs)
	for err := range werrs {
		t.Fatalf("writer: %v", err)
	}
	logMu.Lock()
	if !strings.Contains(logs.String(), "the killed run had already cut over") {
		t.Errorf("the resumed run did not find the swap:\n%s", logs.String())
	}
	logMu.Unlock()
	nmkSameAsPlain(t, db, name)
	if left := tablesExist(t, db, shadow, changelog, ckp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// nmkSameAsPlain compares table name after the resumed cleanup with the
// plain ALTER's identical table: its shape (nmkShape) and every row.
func nmkSameAsPlain(t *testing.T, db *sql.DB, name string) {
	t.Helper()
	if got, want := nmkShape(t, db, mysqlTestSchema, name), nmkShape(t, db, nmkPlain, name); got != want {
		t.Errorf("the table after the resumed cleanup:\n%s\nthe plain ALTER's:\n%s", got, want)
	}
	rows := "SELECT id, p, n, m, w FROM %s ORDER BY id"
	got, want := dumpMySQL(t, db, fmt.Sprintf(rows, table.QuoteMySQL(mysqlTestSchema, name))), dumpMySQL(t, db, fmt.Sprintf(rows, table.QuoteMySQL(nmkPlain, name)))
	if len(got) != len(want) {
		t.Errorf("%d rows, the plain ALTER's table %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("row %d: %s, the plain ALTER's %s", i, got[i], want[i])
			break
		}
	}
}
