package dialect

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"osc/engine"
	"osc/table"
)

// revertAlter drops a column (c: its values must come back), renames one (b:
// renamed back), changes a type (a: BIGINT, whose big values do not fit back)
// and adds one (d: not written back).
const revertAlter = "DROP COLUMN c, CHANGE COLUMN b bb VARCHAR(40) NULL, MODIFY COLUMN a BIGINT NOT NULL, ADD COLUMN d INT NOT NULL DEFAULT 7"

// revertSeed creates name and its control table with the same rows.
func revertSeed(t *testing.T, db *sql.DB, rows int, names ...string) {
	t.Helper()
	var vals []string
	for i := 1; i <= rows; i++ {
		c := "NULL"
		if i%3 != 0 {
			c = fmt.Sprint(i * 11)
		}
		vals = append(vals, fmt.Sprintf("(%d, %d, 'b%d', %s)", i, i, i, c))
	}
	for _, n := range names {
		mustExec(t, db, "CREATE TABLE "+n+" (id INT NOT NULL PRIMARY KEY, a INT NOT NULL, b VARCHAR(20) NULL, c INT NULL, KEY (a)) ENGINE=InnoDB",
			"INSERT INTO "+n+" VALUES "+strings.Join(vals, ","))
	}
}

// revertWriter writes the same random changes (inserts, updates, key changes,
// deletes) into the migrated table and
// into the control table, which is never migrated: each statement runs on
// the table first and, when it succeeded there, on the control table. It
// names the renamed column as the table has it now (b before the cut-over
// and after a revert, bb between).
type revertWriter struct {
	db            *sql.DB
	table, ctl    string
	rows          int
	next          int
	stop, stopped chan struct{}
	mu            sync.Mutex // held for each statement pair
	writes        atomic.Int64
	err           error
}

func startRevertWriter(db *sql.DB, tbl, ctl string, rows int) *revertWriter {
	w := &revertWriter{db: db, table: tbl, ctl: ctl, rows: rows, next: rows + 1, stop: make(chan struct{}), stopped: make(chan struct{})}
	go w.run()
	return w
}

func (w *revertWriter) run() {
	defer close(w.stopped)
	rng := rand.New(rand.NewPCG(1, 2))
	col := "b"
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		id := 1 + rng.IntN(w.next-1)
		var stmt string
		switch rng.IntN(6) {
		case 5:
			// A key change: the dropped column's value moves with the row.
			stmt = fmt.Sprintf("UPDATE %%s SET id = %d WHERE id = %d AND %%s IS NOT NULL", w.next, id)
			w.next++
		case 0:
			stmt = fmt.Sprintf("INSERT INTO %%s (id, a, %%s) VALUES (%d, %d, 'n%d')", w.next, rng.IntN(1000), w.next)
			w.next++
		case 1:
			stmt = fmt.Sprintf("DELETE FROM %%s WHERE id = %d AND %%s IS NOT NULL", id)
		case 2:
			stmt = fmt.Sprintf("UPDATE %%s SET %%s = 'u%d' WHERE id = %d", rng.IntN(1000), id)
		default:
			stmt = fmt.Sprintf("UPDATE %%s SET a = a + 1, %%s = CONCAT(COALESCE(%%[2]s, ''), 'x') WHERE id = %d", id)
		}
		w.mu.Lock()
		err := w.pair(stmt, &col)
		w.mu.Unlock()
		if err != nil {
			w.err = err
			return
		}
		w.writes.Add(1)
		time.Sleep(time.Millisecond)
	}
}

// pair runs stmt on the table (switching the renamed column's name once when
// the table has the other one) and then on the control table.
func (w *revertWriter) pair(stmt string, col *string) error {
	for try := 0; ; try++ {
		_, err := w.db.Exec(fmt.Sprintf(stmt, w.table, *col))
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1054 && try == 0 {
			*col = map[string]string{"b": "bb", "bb": "b"}[*col]
			continue
		}
		if errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", fmt.Sprintf(stmt, w.table, *col), err)
		}
		break
	}
	if _, err := w.db.Exec(fmt.Sprintf(stmt, w.ctl, "b")); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	return nil
}

func (w *revertWriter) finish(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.stopped
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
}

// dumpMySQL renders every row of the query, NULL apart from every value.
func dumpMySQL(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(cols))
		for i, v := range vals {
			parts[i] = "NULL"
			if v.Valid {
				parts[i] = "'" + v.String + "'"
			}
		}
		out = append(out, strings.Join(parts, ","))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTables fails unless both tables hold the same rows, in key order.
func sameTables(t *testing.T, db *sql.DB, want, got string) {
	t.Helper()
	w := dumpMySQL(t, db, "SELECT id, a, b, c FROM "+want+" ORDER BY id")
	g := dumpMySQL(t, db, "SELECT id, a, b, c FROM "+got+" ORDER BY id")
	if len(w) < 100 {
		t.Fatalf("the control table has only %d rows", len(w))
	}
	if strings.Join(w, "\n") == strings.Join(g, "\n") {
		return
	}
	t.Errorf("%s has %d rows, %s %d", got, len(g), want, len(w))
	for i := 0; i < len(g) || i < len(w); i++ {
		var gi, wi string
		if i < len(g) {
			gi = g[i]
		}
		if i < len(w) {
			wi = w[i]
		}
		if gi != wi {
			t.Fatalf("first difference at row %d: %s has %s, %s has %s", i, got, gi, want, wi)
		}
	}
}

var autoIncrementOption = regexp.MustCompile(` AUTO_INCREMENT=\d+`)

// createTable is SHOW CREATE TABLE of name, with name in it replaced by as.
func createTable(t *testing.T, db *sql.DB, name, as string) string {
	t.Helper()
	var n, ddl string
	if err := db.QueryRow("SHOW CREATE TABLE "+table.QuoteMySQL(name)).Scan(&n, &ddl); err != nil {
		t.Fatal(err)
	}
	return autoIncrementOption.ReplaceAllString(strings.Replace(ddl, table.QuoteMySQL(name), table.QuoteMySQL(as), 1), "")
}

// revertRun starts a migration of name with a revert window and a writer
// into name and ctl, and waits for the window to open.
func revertRun(t *testing.T, name, ctl string, okToDrop bool) (*ctlRun, *sql.DB, *revertWriter) {
	t.Helper()
	db := mysqlTestDB(t, name, ctl)
	const rows = 3000
	revertSeed(t, db, rows, name, ctl)
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: revertAlter, RevertWindow: time.Minute,
		OkToDropTable: okToDrop, ChunkSize: 200, Execute: true}
	d, err := NewMySQL(cfg, mysqlTestConn(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := startRevertWriter(db, name, ctl, rows)
	t.Cleanup(func() {
		select {
		case <-w.stop:
		default:
			close(w.stop)
			<-w.stopped
		}
	})
	r := startCtl(t, cfg, d)
	r.until(t, "the revert window", func() bool { return r.m.State() == engine.StateRevertWindow })
	// Writes into the altered table, through the window.
	before := w.writes.Load()
	r.until(t, "writes after the cut-over", func() bool { return w.writes.Load() > before+200 })
	return r, db, w
}

// TestMySQLRevert: with writes going on through the migration, the window
// and the revert, the reverted table equals a control table that took the
// same writes and was never migrated — rows (the dropped column's values
// included) and definition; a change the old table cannot take is refused,
// naming its key, and the window stays open until it is written again; and
// nothing is left behind.
func TestMySQLRevert(t *testing.T) {
	const name, ctl = "revert_t", "revert_t_ctl"
	r, db, w := revertRun(t, name, ctl, true)
	shadow, changelog, old := table.MySQLNames(name)

	// A value of the BIGINT that the old INT cannot hold, in a row the
	// writer leaves alone: written to the table only (the control table could
	// not hold it either).
	w.mu.Lock()
	mustExec(t, db, "INSERT INTO "+name+" (id, a, bb) VALUES (1000007, 1, 'z')", "INSERT INTO "+ctl+" (id, a, b) VALUES (1000007, 1, 'z')",
		"UPDATE "+name+" SET a = 5000000000 WHERE id = 1000007")
	w.mu.Unlock()
	r.until(t, "the unfit row to be refused", func() bool { return r.m.Status().RevertRefused == 1 })
	reply := send(t, r.sock, "revert")
	if !strings.Contains(reply, "cannot revert exactly") || !strings.Contains(reply, "key (id=1000007)") || !strings.Contains(reply, "range value") {
		t.Fatalf("revert with an unfit row: %q", reply)
	}
	if s := r.m.Status(); s.State != engine.StateRevertWindow || !strings.Contains(s.String(), "Unrevertable rows: 1") {
		t.Fatalf("after the refusal: %s", s)
	}
	// Written again so that it fits, in both: the refusal is lifted.
	w.mu.Lock()
	mustExec(t, db, "UPDATE "+name+" SET a = 70 WHERE id = 1000007", "UPDATE "+ctl+" SET a = 70 WHERE id = 1000007")
	w.mu.Unlock()
	r.until(t, "the refusal to be lifted", func() bool { return r.m.Status().RevertRefused == 0 })

	if reply := send(t, r.sock, "revert"); !strings.HasPrefix(reply, "Reverted") {
		t.Fatalf("revert: %q", reply)
	}
	// Writes go on into the reverted table.
	before := w.writes.Load()
	deadline := time.Now().Add(20 * time.Second)
	for w.writes.Load() < before+100 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	w.finish(t)
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	if got, want := createTable(t, db, name, "x"), createTable(t, db, ctl, "x"); got != want {
		t.Errorf("the reverted table's definition differs from the original's:\n%s\nwant\n%s", got, want)
	}
	sameTables(t, db, ctl, name)
	if left := tablesExist(t, db, shadow, changelog, old, table.MySQLCheckpointName(name)); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestMySQLRevertFinish: finish ends the window with the old table current
// (equal to a control table that took the same writes) and kept, and leaves
// nothing else behind.
func TestMySQLRevertFinish(t *testing.T) {
	const name, ctl = "revert_f", "revert_f_ctl"
	r, db, w := revertRun(t, name, ctl, false)
	shadow, changelog, old := table.MySQLNames(name)
	w.finish(t)
	if st := send(t, r.sock, "status"); !strings.Contains(st, "State: revert window") || !strings.Contains(st, "Revert window: ") ||
		!strings.Contains(st, "Reverse backlog: ") || !strings.Contains(st, "# revert-window: 1m0s") {
		t.Errorf("status without the window: %s", st)
	}
	// finish applies every change written before it to the old table.
	if reply := send(t, r.sock, "finish"); !strings.HasPrefix(reply, "Finishing") {
		t.Fatalf("finish: %q", reply)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	if got, want := createTable(t, db, old, "x"), createTable(t, db, ctl, "x"); got != want {
		t.Errorf("the old table's definition differs from the original's:\n%s\nwant\n%s", got, want)
	}
	sameTables(t, db, ctl, old)
	if left := tablesExist(t, db, shadow, changelog, table.MySQLCheckpointName(name)); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestMySQLRevertWindowRefusal: an --alter whose old table the reverse
// apply could not keep exact is refused before anything is copied.
func TestMySQLRevertWindowRefusal(t *testing.T) {
	const name = "revert_u"
	db := mysqlTestDB(t, name)
	mustExec(t, db, "CREATE TABLE "+name+" (id INT PRIMARY KEY, u INT NOT NULL, UNIQUE KEY (u)) ENGINE=InnoDB", "INSERT INTO "+name+" VALUES (1, 1)")
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "DROP INDEX u", RevertWindow: time.Minute, Execute: true}
	d, err := NewMySQL(cfg, mysqlTestConn(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = engine.New(cfg, d, slog.New(slog.DiscardHandler), nil).Run(ctx)
	var refused *engine.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "--revert-window") || !strings.Contains(err.Error(), "UNIQUE key u") {
		t.Fatalf("want a refusal naming the unique key, got %v", err)
	}
	shadow, changelog, old := table.MySQLNames(name)
	if left := tablesExist(t, db, shadow, changelog, old, table.MySQLCheckpointName(name)); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestMySQLRevertWindowTriggers: a table with a foreign key and a trigger of
// its own gets a revert window. While it is open the old table has neither:
// its trigger would fire a second time for the window's writes (a row would
// come back with u incremented twice), and its foreign key would refuse the
// parent's delete that follows the child's in one transaction, before the
// window has applied the child's delete. The revert carries both back under
// their own names: the reverted table equals a control table that took the
// same writes, fires its trigger once, and the migrated table, kept, has
// neither left.
func TestMySQLRevertWindowTriggers(t *testing.T) {
	const name, ctl = "leftovers_rvt", "leftovers_rvt_ctl"
	parent := map[string]string{name: "leftovers_rvt_p", ctl: "leftovers_rvt_cp"}
	db := mysqlTestDB(t, name, ctl, parent[name], parent[ctl])
	for _, n := range []string{name, ctl} {
		mustExec(t, db, "CREATE TABLE "+parent[n]+" (id INT PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO "+parent[n]+" VALUES (1), (2), (3)",
			"CREATE TABLE "+n+" (id INT PRIMARY KEY, pid INT NOT NULL, u INT NOT NULL, CONSTRAINT "+n+"_fk FOREIGN KEY (pid) REFERENCES "+parent[n]+" (id)) ENGINE=InnoDB",
			"CREATE TRIGGER "+n+"_bi BEFORE INSERT ON "+n+" FOR EACH ROW SET NEW.u = NEW.u + 1",
			"INSERT INTO "+n+" VALUES (1, 1, 0), (2, 2, 0), (3, 3, 0)")
	}
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN v INT", RevertWindow: time.Minute, Execute: true}
	d, err := NewMySQL(cfg, mysqlTestConn(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := startCtl(t, cfg, d)
	r.until(t, "the revert window", func() bool { return r.m.State() == engine.StateRevertWindow })
	for _, n := range []string{name, ctl} {
		mustExec(t, db, "INSERT INTO "+n+" (id, pid, u) VALUES (10, 2, 1)")
	}
	for _, n := range []string{name, ctl} {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec("DELETE FROM " + n + " WHERE pid = 3"); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec("DELETE FROM " + parent[n] + " WHERE id = 3"); err != nil {
			t.Fatalf("the parent's delete after its child's in %s: %v", n, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	_, _, old := table.MySQLNames(name)
	r.until(t, "the window's writes in the old table", func() bool {
		var n int
		return db.QueryRow("SELECT COUNT(*) FROM "+old+" WHERE id IN (3, 10)").Scan(&n) == nil && n == 1
	})
	if reply := send(t, r.sock, "revert"); !strings.HasPrefix(reply, "Reverted") {
		t.Fatalf("revert: %q", reply)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	for _, n := range []string{name, ctl} {
		mustExec(t, db, "INSERT INTO "+n+" (id, pid, u) VALUES (11, 2, 1)")
	}
	want := dumpMySQL(t, db, "SELECT id, pid, u FROM "+ctl+" ORDER BY id")
	if got := dumpMySQL(t, db, "SELECT id, pid, u FROM "+name+" ORDER BY id"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("reverted table:\n%s\nwant (the control table):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	links := func(tbl string) string {
		var fks, trgs string
		if err := db.QueryRow(`SELECT COALESCE(GROUP_CONCAT(CONSTRAINT_NAME ORDER BY CONSTRAINT_NAME), '') FROM information_schema.REFERENTIAL_CONSTRAINTS
			WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, mysqlTestSchema, tbl).Scan(&fks); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`SELECT COALESCE(GROUP_CONCAT(TRIGGER_NAME ORDER BY TRIGGER_NAME), '') FROM information_schema.TRIGGERS
			WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?`, mysqlTestSchema, tbl).Scan(&trgs); err != nil {
			t.Fatal(err)
		}
		return "foreign keys [" + fks + "], triggers [" + trgs + "]"
	}
	if got, want := links(name), "foreign keys ["+name+"_fk], triggers ["+name+"_bi]"; got != want {
		t.Errorf("the reverted table has %s, want %s", got, want)
	}
	migrated, _, _ := table.MySQLNames(name)
	if got := links(migrated); got != "foreign keys [], triggers []" {
		t.Errorf("the migrated table, kept, has %s", got)
	}
}

// TestMySQLRevertWindowEnds: a window that elapses ends as finish does, and
// so does an interruption (the panic command, as Ctrl-C): the table stays
// migrated, and nothing is left behind but the old table, when kept.
func TestMySQLRevertWindowEnds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		panic bool
	}{{"revert_e", false}, {"revert_p", true}} {
		t.Run(tc.name, func(t *testing.T) {
			db := mysqlTestDB(t, tc.name)
			revertSeed(t, db, 100, tc.name)
			window := 2 * time.Second
			if tc.panic {
				window = time.Hour
			}
			cfg := engine.Config{Schema: mysqlTestSchema, Table: tc.name, Alter: revertAlter, RevertWindow: window,
				OkToDropTable: !tc.panic, Execute: true}
			d, err := NewMySQL(cfg, mysqlTestConn(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			r := startCtl(t, cfg, d)
			r.until(t, "the revert window", func() bool { return r.m.State() == engine.StateRevertWindow })
			mustExec(t, db, "UPDATE "+tc.name+" SET a = 1000, bb = 'w' WHERE id = 5")
			if tc.panic {
				send(t, r.sock, "panic")
			}
			if err := r.wait(t); err != nil {
				t.Fatalf("migration: %v", err)
			}
			var cols int
			if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = 'bb'`,
				mysqlTestSchema, tc.name).Scan(&cols); err != nil || cols != 1 {
				t.Fatalf("the table is not the migrated one (%d, %v)", cols, err)
			}
			shadow, changelog, old := table.MySQLNames(tc.name)
			kept := tablesExist(t, db, shadow, changelog, old, table.MySQLCheckpointName(tc.name))
			if want := map[bool]string{true: old, false: ""}[tc.panic]; strings.Join(kept, ",") != want {
				t.Errorf("left behind: %v, want only %q", kept, want)
			}
			if tc.panic {
				got := dumpMySQL(t, db, "SELECT id, a, b, c FROM "+old+" WHERE id = 5")
				if len(got) != 1 || got[0] != "'5','1000','w','55'" {
					t.Errorf("the kept old table lacks the last write: %v", got)
				}
			}
		})
	}
}

// TestMySQLRevertWindowCopiesUnderAuto: an --alter the server could run in
// place (MariaDB drops a column instantly) is copied when a revert window is
// asked for, so that there is an old table to swap back.
func TestMySQLRevertWindowCopiesUnderAuto(t *testing.T) {
	const name = "revert_a"
	db := mysqlTestDB(t, name)
	revertSeed(t, db, 100, name)
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "DROP COLUMN c", RevertWindow: time.Minute,
		Strategy: engine.StrategyAuto, Execute: true}
	d, err := NewMySQL(cfg, mysqlTestConn(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := startCtl(t, cfg, d)
	r.until(t, "the revert window", func() bool { return r.m.State() == engine.StateRevertWindow })
	if reply := send(t, r.sock, "revert"); !strings.HasPrefix(reply, "Reverted") {
		t.Fatalf("revert: %q", reply)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	if got := dumpMySQL(t, db, "SELECT id, a, b, c FROM "+name+" WHERE id IN (1, 3) ORDER BY id"); strings.Join(got, " ") != "'1','1','b1','11' '3','3','b3',NULL" {
		t.Errorf("reverted rows: %v", got)
	}
	shadow, changelog, _ := table.MySQLNames(name)
	if left := tablesExist(t, db, changelog, table.MySQLCheckpointName(name)); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if kept := tablesExist(t, db, shadow); len(kept) != 1 {
		t.Errorf("the migrated table is not kept as %s", shadow)
	}
}
