package cutover

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"osc/internal/testdb"
	"osc/table"
)

func testMySQL(t *testing.T) *sql.DB {
	t.Helper()
	srv := testdb.MySQL(t)
	db := testdb.Connect(t, "MySQL", func(ctx context.Context) (*sql.DB, error) {
		return table.OpenMySQL(ctx, table.MySQLConn{Host: srv.Host, Port: srv.Port, User: srv.User, Password: srv.Password}, "osc_test")
	})
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMySQLCutOverUnderWrites(t *testing.T) {
	db := testMySQL(t)
	const tbl, shadow, old = "tbl_mysqlplan_cut_t", "tbl_mysqlplan_cut_t_osc_new", "tbl_mysqlplan_cut_t_osc_old"
	testdb.DropMySQLTables(t, db, tbl, shadow, old)
	testdb.ExecMySQL(t, db, "CREATE TABLE "+tbl+" (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB COMMENT='original'")
	testdb.ExecMySQL(t, db, "CREATE TABLE "+shadow+" (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL, extra INT NULL) ENGINE=InnoDB COMMENT='shadow'")
	testdb.ExecMySQL(t, db, "INSERT INTO "+tbl+" (v) VALUES (1), (2), (3)")

	// Writers insert and update through the name for the whole cut-over;
	// none may fail.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var writes atomic.Int64
	type span struct{ start, end time.Time }
	var mu sync.Mutex
	var spans []span
	errs := make(chan error, 4)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				var err error
				start := time.Now()
				if i%2 == 0 {
					_, err = db.Exec("INSERT INTO "+tbl+" (v) VALUES (?)", w*1000000+i)
				} else {
					_, err = db.Exec("UPDATE "+tbl+" SET v = v + 1 WHERE id = ?", 1+i%3)
				}
				if err != nil {
					errs <- err
					return
				}
				writes.Add(1)
				mu.Lock()
				spans = append(spans, span{start, time.Now()})
				mu.Unlock()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)

	drained := 0
	var locked span
	drain := func(ctx context.Context) error {
		drained++
		// Writers are blocked now: no write may start and end meanwhile.
		locked.start = time.Now()
		time.Sleep(100 * time.Millisecond)
		locked.end = time.Now()
		return nil
	}
	err := MySQL(context.Background(), db, MySQLOptions{Schema: "osc_test", Table: tbl, Shadow: shadow, Old: old,
		LockTimeout: 2 * time.Second, Retries: 3, Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}, nil, drain)
	time.Sleep(50 * time.Millisecond)
	stop()
	wg.Wait()
	close(errs)
	for werr := range errs {
		t.Errorf("writer failed: %v", werr)
	}
	if err != nil {
		t.Fatalf("cut-over: %v", err)
	}
	if drained != 1 {
		t.Errorf("drain called %d times, want 1", drained)
	}
	if writes.Load() == 0 {
		t.Fatal("no write went through")
	}
	for _, sp := range spans {
		if sp.start.After(locked.start) && sp.end.Before(locked.end) {
			t.Errorf("a write ran while the table was locked: %v", sp)
		}
	}

	comment := func(name string) string {
		var c string
		if err := db.QueryRow(`SELECT TABLE_COMMENT FROM information_schema.TABLES
			WHERE TABLE_SCHEMA = 'osc_test' AND TABLE_NAME = ?`, name).Scan(&c); err != nil {
			t.Fatalf("table %s: %v", name, err)
		}
		return c
	}
	if c := comment(tbl); c != "shadow" {
		t.Errorf("%s is %q, want the former shadow", tbl, c)
	}
	if c := comment(old); c != "original" {
		t.Errorf("%s is %q, want the former original", old, c)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = 'osc_test' AND TABLE_NAME = ?`, shadow).Scan(&n); err != nil || n != 0 {
		t.Errorf("shadow name still exists (n=%d, err=%v)", n, err)
	}
	// The writers went on into the new table after the swap.
	if err := db.QueryRow("SELECT COUNT(*) FROM " + tbl).Scan(&n); err != nil || n == 0 {
		t.Errorf("no write reached the new table (n=%d, err=%v)", n, err)
	}
}

// Writers queued on the table while it is locked must all land in the new
// table: a write that reaches the old table after the drain is lost. It did
// with gh-ost's names (_t_del sorts before t, so the RENAME waited on the
// sentry and asked for t only after the unlock had let the writers in):
// about one cut-over in ten under this load.
func TestMySQLCutOverQueuedWritersReachNewTable(t *testing.T) {
	db := testMySQL(t)
	const tbl, shadow, old = "tbl_mysqlplan_cut_q", "tbl_mysqlplan_cut_q_osc_new", "tbl_mysqlplan_cut_q_osc_old"
	writers := testMySQL(t) // a pool of their own: the cut-over needs connections while they wait
	for round := range 10 {
		testdb.DropMySQLTables(t, db, tbl, shadow, old)
		testdb.ExecMySQL(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB")
		testdb.ExecMySQL(t, db, "CREATE TABLE "+shadow+" (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB")

		var lockedAt atomic.Int64 // unix nanos the drain started: the table was locked
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		started := map[int]time.Time{} // id → when its insert was sent
		errs := make(chan error, 8)
		var next atomic.Int64
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					id := int(next.Add(1))
					mu.Lock()
					started[id] = time.Now()
					mu.Unlock()
					if _, err := writers.Exec("INSERT INTO "+tbl+" (id, v) VALUES (?, 1)", id); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		time.Sleep(20 * time.Millisecond)
		drain := func(context.Context) error {
			lockedAt.Store(time.Now().UnixNano())
			time.Sleep(50 * time.Millisecond) // let writers queue up
			return nil
		}
		err := MySQL(context.Background(), db, MySQLOptions{Schema: "osc_test", Table: tbl, Shadow: shadow, Old: old,
			LockTimeout: 2 * time.Second, Retries: 3}, nil, drain)
		time.Sleep(20 * time.Millisecond)
		stop()
		wg.Wait()
		close(errs)
		for werr := range errs {
			t.Fatalf("round %d: writer failed: %v", round, werr)
		}
		if err != nil {
			t.Fatalf("round %d: cut-over: %v", round, err)
		}
		rows, err := db.Query("SELECT id FROM " + old)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int
		for rows.Next() {
			var id int
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		locked := time.Unix(0, lockedAt.Load())
		for _, id := range ids {
			if s := started[id]; s.After(locked) {
				t.Errorf("round %d: row %d, inserted %s after the table was locked, reached the old table after the drain",
					round, id, s.Sub(locked))
			}
		}
	}
}

// The shadow's statistics date from when it was empty; the cut-over refreshes
// them, or writers' key lookups turn into full scans after the swap.
func TestMySQLCutOverAnalyzesShadow(t *testing.T) {
	db := testMySQL(t)
	const tbl, shadow, old = "tbl_mysqlplan_cut_a", "tbl_mysqlplan_cut_a_osc_new", "tbl_mysqlplan_cut_a_osc_old"
	testdb.DropMySQLTables(t, db, tbl, shadow, old)
	testdb.ExecMySQL(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "CREATE TABLE "+shadow+" (id INT PRIMARY KEY) ENGINE=InnoDB STATS_PERSISTENT=1 STATS_AUTO_RECALC=0")
	testdb.ExecMySQL(t, db, "INSERT INTO "+shadow+" SELECT seq FROM seq_1_to_5000")
	stats := func(name string) int {
		var n int
		if err := db.QueryRow(`SELECT n_rows FROM mysql.innodb_table_stats WHERE database_name = 'osc_test' AND table_name = ?`,
			name).Scan(&n); err != nil {
			t.Fatalf("statistics of %s: %v", name, err)
		}
		return n
	}
	if n := stats(shadow); n != 0 {
		t.Fatalf("the shadow's statistics say %d rows before the cut-over; the test needs them stale", n)
	}
	if err := MySQL(context.Background(), db, MySQLOptions{Schema: "osc_test", Table: tbl, Shadow: shadow, Old: old,
		LockTimeout: 2 * time.Second, Retries: 3}, nil, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if n := stats(tbl); n < 4000 {
		t.Errorf("the new table's statistics say %d rows, want about 5000", n)
	}
}

// Names that sort before the table would let queued writers reach the old
// table: the cut-over refuses them.
func TestMySQLCutOverRefusesNamesSortingFirst(t *testing.T) {
	err := MySQL(context.Background(), nil, MySQLOptions{Schema: "s", Table: "t", Shadow: "_t_gho", Old: "_t_del"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "must sort after") {
		t.Fatalf("err = %v, want a refusal of names sorting before the table", err)
	}
}

// A lock the cut-over cannot get makes each attempt time out; the cut-over
// gives up after its retries and leaves neither sentry nor lock behind.
func TestMySQLCutOverGivesUp(t *testing.T) {
	db := testMySQL(t)
	const tbl, shadow, old = "tbl_mysqlplan_cut_g", "tbl_mysqlplan_cut_g_osc_new", "tbl_mysqlplan_cut_g_osc_old"
	testdb.DropMySQLTables(t, db, tbl, shadow, old)
	testdb.ExecMySQL(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "CREATE TABLE "+shadow+" (id INT PRIMARY KEY) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "INSERT INTO "+tbl+" VALUES (1)")

	// An open transaction holds a metadata lock on the table.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var id int
	if err := tx.QueryRow("SELECT id FROM " + tbl + " WHERE id = 1").Scan(&id); err != nil {
		t.Fatal(err)
	}
	drain := func(context.Context) error { t.Error("drain called without the lock"); return nil }
	var attempts []time.Duration
	err = MySQL(context.Background(), db, MySQLOptions{Schema: "osc_test", Table: tbl, Shadow: shadow, Old: old,
		LockTimeout: time.Second, Retries: 2, Attempted: func(d time.Duration) { attempts = append(attempts, d) }}, nil, drain)
	if err == nil {
		t.Fatal("cut-over succeeded under a held lock")
	}
	t.Logf("cut-over error: %v", err)
	// Each attempt is reported with its wait for the lock, the lock timeout.
	if len(attempts) != 2 || attempts[0] < time.Second || attempts[1] < time.Second {
		t.Errorf("attempts reported: %v, want 2 of at least the 1s lock timeout", attempts)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = 'osc_test' AND TABLE_NAME = ?`, old).Scan(&n); err != nil || n != 0 {
		t.Errorf("sentry left behind (n=%d, err=%v)", n, err)
	}
	// No lock left: a write goes through at once.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "INSERT INTO "+tbl+" VALUES (2)"); err != nil {
		t.Errorf("write after the failed cut-over: %v", err)
	}
}

// Cancelled while the rename waits: the rename is killed, the lock released,
// the sentry dropped, and the tables stay as they were.
func TestMySQLCutOverCancelled(t *testing.T) {
	db := testMySQL(t)
	const tbl, shadow, old = "tbl_mysqlplan_cut_c", "tbl_mysqlplan_cut_c_osc_new", "tbl_mysqlplan_cut_c_osc_old"
	testdb.DropMySQLTables(t, db, tbl, shadow, old)
	testdb.ExecMySQL(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "CREATE TABLE "+shadow+" (id INT PRIMARY KEY) ENGINE=InnoDB")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	drain := func(context.Context) error { cancel(); return nil }
	err := MySQL(ctx, db, MySQLOptions{Schema: "osc_test", Table: tbl, Shadow: shadow, Old: old,
		LockTimeout: time.Second, Retries: 3}, nil, drain)
	if err == nil {
		t.Fatal("cut-over succeeded after cancellation")
	}
	t.Logf("cut-over error: %v", err)
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = 'osc_test' AND TABLE_NAME IN (?, ?, ?)`, tbl, shadow, old).Scan(&n); err != nil || n != 2 {
		t.Errorf("tables after the cancelled cut-over: %d of original+shadow+sentry (err %v), want 2", n, err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'RENAME TABLE%tbl_mysqlplan_cut_c%'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rename still running (n=%d, err=%v)", n, err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer wcancel()
	if _, err := db.ExecContext(wctx, "INSERT INTO "+tbl+" VALUES (1)"); err != nil {
		t.Errorf("write after the cancelled cut-over: %v", err)
	}
}
