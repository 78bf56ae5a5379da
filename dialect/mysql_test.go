package dialect

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"osc/engine"
	"osc/internal/testdb"
	"osc/table"
)

const mysqlTestSchema = "osc_test"

func mysqlTestConn(t *testing.T) table.MySQLConn {
	t.Helper()
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	port, err := strconv.Atoi(env("OSC_MYSQL_PORT", "13306"))
	if err != nil {
		t.Fatalf("OSC_MYSQL_PORT: %v", err)
	}
	return table.MySQLConn{Host: env("OSC_MYSQL_HOST", "127.0.0.1"), Port: port,
		User: env("OSC_MYSQL_USER", "root"), Password: os.Getenv("OSC_MYSQL_PASSWORD")}
}

// mysqlTestDB opens the sandbox database and drops the named tables and
// their osc helper tables before and after the test.
func mysqlTestDB(t *testing.T, tables ...string) *sql.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	db, err := table.OpenMySQL(ctx, mysqlTestConn(t), mysqlTestSchema)
	if err != nil {
		testdb.Unreachable(t, "MySQL", err)
	}
	drop := func() {
		for _, n := range tables {
			shadow, changelog, old := table.MySQLNames(n)
			for _, x := range []string{n, shadow, changelog, old, table.MySQLCheckpointName(n)} {
				if _, err := db.Exec("DROP TABLE IF EXISTS " + table.QuoteMySQL(x)); err != nil {
					t.Errorf("drop %s: %v", x, err)
				}
			}
		}
	}
	drop()
	t.Cleanup(func() {
		drop()
		db.Close()
	})
	return db
}

func mustExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func tablesExist(t *testing.T, db *sql.DB, names ...string) []string {
	t.Helper()
	var found []string
	for _, n := range names {
		var c int
		if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
			mysqlTestSchema, n).Scan(&c); err != nil {
			t.Fatal(err)
		}
		if c > 0 {
			found = append(found, n)
		}
	}
	return found
}

func TestNewMySQLValidates(t *testing.T) {
	c := table.MySQLConn{Host: "127.0.0.1", Port: 13306, User: "root"}
	for _, tc := range []struct {
		cfg  engine.Config
		conn table.MySQLConn
		want string
	}{
		{engine.Config{Table: "t"}, c, "database is required"},
		{engine.Config{Schema: "d"}, c, "table is required"},
		{engine.Config{Schema: "d", Table: "t"}, table.MySQLConn{Host: "h", Port: 70000}, "port 70000 is out of range"},
	} {
		if _, err := NewMySQL(tc.cfg, tc.conn, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestMySQLDialectAdvisoryLock(t *testing.T) {
	const name = "tbl_mysqlplan_lockd"
	db := mysqlTestDB(t, name)
	mustExec(t, db, "CREATE TABLE "+name+" (id INT PRIMARY KEY) ENGINE=InnoDB")
	ctx := context.Background()
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN x INT"}
	first, err := NewMySQL(cfg, mysqlTestConn(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Inspect(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := NewMySQL(cfg, mysqlTestConn(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	var holder int64
	if err := db.QueryRow("SELECT IS_USED_LOCK('osc:osc_test." + name + "')").Scan(&holder); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("another osc is migrating osc_test.%s (advisory lock osc:osc_test.%s is held by session %d; "+
		"if that osc died with its host and the session lingers, KILL %d)", name, name, holder, holder)
	if err := second.Inspect(ctx); err == nil || err.Error() != want {
		t.Errorf("second Inspect: %v, want %q", err, want)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := second.Inspect(ctx); err != nil {
		t.Errorf("Inspect after the first closed: %v", err)
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMySQLDialectShadowAndCleanup(t *testing.T) {
	const name = "tbl_mysqlplan_dry"
	db := mysqlTestDB(t, name)
	shadow, changelog, old := table.MySQLNames(name)
	mustExec(t, db, "CREATE TABLE "+name+" (a INT NOT NULL, b INT NOT NULL, v INT, PRIMARY KEY (a, b)) ENGINE=InnoDB")
	ctx := context.Background()
	d, err := NewMySQL(engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN w INT, RENAME COLUMN v TO vv"}, mysqlTestConn(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Inspect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateShadow(ctx); err != nil {
		t.Fatal(err)
	}
	plan := d.(*mysqlDialect).plan
	if got := tablesExist(t, db, shadow, changelog); len(got) != 2 {
		t.Fatalf("after CreateShadow: %v", got)
	}
	if strings.Join(plan.Key, ",") != "a,b" || len(plan.Mapping) != 3 || plan.Mapping[2].Shadow != "vv" {
		t.Errorf("plan key %v mapping %+v", plan.Key, plan.Mapping)
	}
	// A sentry left by a failed cut-over goes too.
	mustExec(t, db, "CREATE TABLE "+old+" (id INT PRIMARY KEY) ENGINE=InnoDB COMMENT='osc cut-over sentry'")
	if err := d.Cleanup(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := tablesExist(t, db, shadow, changelog, old); len(got) != 0 {
		t.Errorf("left behind: %v", got)
	}
	// Idempotent.
	if err := d.Cleanup(ctx, false); err != nil {
		t.Errorf("second cleanup: %v", err)
	}
	// After a cut-over the old table is kept unless asked otherwise.
	mustExec(t, db, "CREATE TABLE "+old+" (id INT PRIMARY KEY) ENGINE=InnoDB COMMENT='the old data'")
	if err := d.Cleanup(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := d.Cleanup(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := tablesExist(t, db, old); len(got) != 1 {
		t.Errorf("old table dropped without --ok-to-drop-table")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2, err := NewMySQL(engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN w INT", OkToDropTable: true}, mysqlTestConn(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if err := d2.Inspect(ctx); err == nil || !strings.Contains(err.Error(), "kept its original table there") || !strings.Contains(err.Error(), "--initially-drop-old-table") {
		t.Errorf("Inspect with %s present: %v", old, err)
	}
	d2.(*mysqlDialect).plan = plan // as if d2 had made it
	if err := d2.Cleanup(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := tablesExist(t, db, old); len(got) != 0 {
		t.Errorf("old table kept with --ok-to-drop-table")
	}
}

// TestMySQLMigration runs a whole migration through the engine while writers
// insert, update (key included) and delete; the cut-over is postponed until
// the writers stop, and the new table must then equal the old one.
func TestMySQLMigration(t *testing.T) {
	const name = "tbl_mysqlplan_e2e"
	db := mysqlTestDB(t, name)
	_, _, old := table.MySQLNames(name)
	mustExec(t, db, "CREATE TABLE "+name+` (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL,
		s VARCHAR(40) NULL, junk TEXT) ENGINE=InnoDB`)
	var vals []string
	for i := range 2000 {
		vals = append(vals, fmt.Sprintf("(%d, 's%d', 'junk')", i, i))
	}
	mustExec(t, db, "INSERT INTO "+name+" (v, s, junk) VALUES "+strings.Join(vals, ","))

	flag := filepath.Join(t.TempDir(), "postpone")
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Execute: true, ChunkSize: 200, DMLBatchSize: 50,
		Alter:                   "CHANGE COLUMN v val BIGINT NOT NULL, DROP COLUMN junk, ADD COLUMN c INT NOT NULL DEFAULT 7",
		PostponeCutOverFlagFile: flag, CutOverLockTimeout: 2 * time.Second, CutOverRetries: 3, StatusInterval: time.Hour}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := NewMySQL(cfg, mysqlTestConn(t), log)
	if err != nil {
		t.Fatal(err)
	}
	m := engine.New(cfg, d, log, io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	werrs := make(chan error, 3)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for wctx.Err() == nil {
				id := 1 + r.IntN(2200)
				var err error
				switch r.IntN(10) {
				case 0, 1, 2:
					_, err = db.Exec("INSERT INTO "+name+" (v, s) VALUES (?, ?)", r.IntN(1000), "new")
				case 3, 4:
					_, err = db.Exec("DELETE FROM "+name+" WHERE id = ?", id)
				case 5:
					// Moves the row to a fresh key (ignored when taken).
					_, err = db.Exec("UPDATE IGNORE "+name+" SET id = id + 100000 WHERE id = ?", id)
				default:
					_, err = db.Exec("UPDATE "+name+" SET v = v + 1, s = NULL WHERE id = ?", id)
				}
				if err != nil {
					werrs <- err
					return
				}
			}
		}()
	}
	for m.State() != engine.StatePostponed {
		select {
		case err := <-done:
			stop()
			wg.Wait()
			t.Fatalf("migration ended before the cut-over: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	time.Sleep(200 * time.Millisecond) // writes while postponed
	stop()
	wg.Wait()
	close(werrs)
	for err := range werrs {
		t.Fatalf("writer: %v", err)
	}
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("migration: %v", err)
	}

	sameMySQLRows(t, db, "SELECT id, v, s FROM "+old+" ORDER BY id", "SELECT id, val, s FROM "+name+" ORDER BY id")
	var bad int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + name + " WHERE c <> 7").Scan(&bad); err != nil || bad != 0 {
		t.Errorf("added column: %d rows without its default (err %v)", bad, err)
	}
	shadow, changelog, _ := table.MySQLNames(name)
	if left := tablesExist(t, db, shadow, changelog); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// sameMySQLRows fails unless the rows (id, v, s) the two queries return, in
// order, are the same: want's the old table's, got's the new one's.
func sameMySQLRows(t *testing.T, db *sql.DB, want, got string) {
	t.Helper()
	dump := func(q string) []string {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id, v int64
			var s sql.NullString
			if err := rows.Scan(&id, &v, &s); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%d/%d/%v", id, v, s))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	w, g := dump(want), dump(got)
	if strings.Join(g, " ") != strings.Join(w, " ") {
		t.Errorf("new table differs from the old one: %d rows vs %d", len(g), len(w))
		for i := 0; i < len(g) && i < len(w); i++ {
			if g[i] != w[i] {
				t.Errorf("first difference at row %d: got %s want %s", i, g[i], w[i])
				break
			}
		}
	}
}
