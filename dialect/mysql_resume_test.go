package dialect

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"osc/cdc"
	"osc/engine"
	"osc/table"
)

// rsmyNames are the helper tables of name's migration.
func rsmyNames(name string) (shadow, changelog, old, ckp string) {
	shadow, changelog, old = table.MySQLNames(name)
	return shadow, changelog, old, table.MySQLCheckpointName(name)
}

// rsmyDialect returns an inspected MySQL dialect for cfg; closed at the end.
func rsmyDialect(t *testing.T, cfg engine.Config) (*mysqlDialect, error) {
	t.Helper()
	d, err := NewMySQL(cfg, mysqlTestConn(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	err = d.Inspect(context.Background())
	if err != nil {
		d.Close() // as the engine does: the advisory lock goes
	}
	return d.(*mysqlDialect), err
}

// rsmyBinlogPos is the server's current binlog position.
func rsmyBinlogPos(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query("SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		t.Fatalf("SHOW MASTER STATUS: no row (%v)", rows.Err())
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	return vals[0].String + ":" + vals[1].String
}

// rsmyKilled makes a run of cfg's migration that creates the shadow, saves
// ck and dies (no cleanup), as a kill -9 leaves it.
func rsmyKilled(t *testing.T, cfg engine.Config, ck *engine.Checkpoint) *table.Plan {
	t.Helper()
	d, err := rsmyDialect(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.CreateShadow(ctx); err != nil {
		t.Fatal(err)
	}
	if ck != nil {
		if err := d.SaveCheckpoint(ctx, ck); err != nil {
			t.Fatal(err)
		}
	}
	plan := d.plan
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// rsmyState is what a refused resume must leave unchanged: the helper
// tables and the checkpoint row.
func rsmyState(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	shadow, changelog, old, ckp := rsmyNames(name)
	state := strings.Join(tablesExist(t, db, name, shadow, changelog, old, ckp), ",")
	var ck sql.NullString
	if err := db.QueryRow("SELECT checkpoint FROM " + ckp).Scan(&ck); err == nil {
		state += " " + ck.String
	}
	return state
}

func TestMySQLResumeRoundTrip(t *testing.T) {
	const name = "rsmy_rt"
	db := mysqlTestDB(t, name)
	shadow, changelog, _, ckp := rsmyNames(name)
	mustExec(t, db, "CREATE TABLE "+name+" (a BIGINT UNSIGNED NOT NULL, b VARBINARY(10) NOT NULL, c DOUBLE NOT NULL, v INT, PRIMARY KEY (a, b, c)) ENGINE=InnoDB")
	// The added TIMESTAMP gets the ALTER's one time (a fill), which the
	// resumed plan must give it too.
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN w INT, ADD COLUMN ts TIMESTAMP(6) NULL DEFAULT CURRENT_TIMESTAMP(6)",
		Execute: true, Version: "test"}
	saved := time.Date(2026, 11, 29, 12, 0, 0, 123456000, time.UTC)
	ck := &engine.Checkpoint{Version: "test", Alter: cfg.Alter, After: []any{uint64(1) << 63, []byte("k\x00'"), 0.1},
		Position: rsmyBinlogPos(t, db), Copied: 1234, Applied: 56, Saved: saved}
	made := rsmyKilled(t, cfg, ck)
	if got := tablesExist(t, db, shadow, changelog, ckp); len(got) != 3 {
		t.Fatalf("after the killed run: %v", got)
	}

	// Without --resume: refused, naming both ways out.
	_, err := rsmyDialect(t, cfg)
	for _, want := range []string{"tables left by an earlier osc run on osc_test.rsmy_rt exist (rsmy_rt_osc_ckp, rsmy_rt_osc_log, rsmy_rt_osc_new)",
		"--resume to continue it (checkpoint saved 2026-11-29 12:00:00 UTC)", "--initially-drop-ghost-table"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Inspect without --resume: %v, want %q", err, want)
		}
	}

	cfg.Resume = true
	d, err := rsmyDialect(t, cfg)
	if err != nil {
		t.Fatalf("Inspect with --resume: %v", err)
	}
	p, got, err := d.Resume(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ck) {
		t.Errorf("resumed checkpoint %+v, want %+v", got, ck)
	}
	if !reflect.DeepEqual(d.plan, made) {
		t.Errorf("resumed plan %+v, want %+v", d.plan, made)
	}
	if p.Shadow != shadow || p.Table != name {
		t.Errorf("engine plan %+v", p)
	}
	if want, _ := cdc.ParseMySQLPos(ck.Position); d.from != want || d.sentry {
		t.Errorf("resumed capture from %v (sentry %v), want %v", d.from, d.sentry, want)
	}
	// Saving again replaces the checkpoint.
	ck2 := *ck
	ck2.After, ck2.CopyDone, ck2.Copied = nil, true, 2000
	if err := d.SaveCheckpoint(context.Background(), &ck2); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = rsmyDialect(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := d.Resume(context.Background()); err != nil || !reflect.DeepEqual(got, &ck2) {
		t.Errorf("second resume: %+v, %v; want %+v", got, err, ck2)
	}
	// A clean end drops the checkpoint table with the rest.
	if err := d.Cleanup(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if left := tablesExist(t, db, shadow, changelog, ckp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestMySQLCheckpointKeyTypes(t *testing.T) {
	in := []any{int64(-5), uint64(1) << 63, float32(0.1), 0.1, []byte{0, 0xff, '"'}, "é", nil}
	enc, err := table.EncodeMySQLKey(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := table.DecodeMySQLKey(enc)
	if err != nil || !reflect.DeepEqual(out, in) {
		t.Errorf("decoded %#v (%v), want %#v", out, err, in)
	}
	if out, err := table.DecodeMySQLKey([]byte("null")); err != nil || out != nil {
		t.Errorf("nil watermark decodes to %#v, %v", out, err)
	}
	if _, err := table.EncodeMySQLKey([]any{struct{}{}}); err == nil {
		t.Error("a value of an unknown type was encoded")
	}
}

// TestMySQLResumeRefusals: each refusal names the fix and keeps everything.
func TestMySQLResumeRefusals(t *testing.T) {
	const name = "rsmy_ref"
	db := mysqlTestDB(t, name)
	shadow, _, old, ckp := rsmyNames(name)
	ctx := context.Background()
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN w INT", Execute: true, Version: "test"}
	rcfg := cfg
	rcfg.Resume = true
	fresh := func() {
		mustExec(t, db, "DROP TABLE IF EXISTS "+name, "DROP TABLE IF EXISTS "+shadow, "DROP TABLE IF EXISTS "+name+"_osc_log",
			"DROP TABLE IF EXISTS "+old, "DROP TABLE IF EXISTS "+ckp,
			"CREATE TABLE "+name+" (id INT PRIMARY KEY, v INT) ENGINE=InnoDB", "INSERT INTO "+name+" VALUES (1, 1)")
	}
	ck := func() *engine.Checkpoint {
		return &engine.Checkpoint{Version: "test", Alter: cfg.Alter, After: []any{int64(1)}, Position: rsmyBinlogPos(t, db), Saved: time.Now()}
	}
	for _, tc := range []struct {
		name  string
		setup func()
		want  string
	}{
		{"nothing left", func() {}, "nothing to resume on osc_test.rsmy_ref: no osc run left anything"},
		{"no checkpoint table", func() {
			rsmyKilled(t, engine.Config{Schema: mysqlTestSchema, Table: name, Alter: cfg.Alter, Execute: true, NoCheckpoint: true}, nil)
		}, "but no checkpoint table rsmy_ref_osc_ckp"},
		{"no checkpoint saved", func() { rsmyKilled(t, cfg, nil) }, "the killed run saved no checkpoint"},
		{"shadow changed", func() {
			rsmyKilled(t, cfg, ck())
			mustExec(t, db, "ALTER TABLE "+shadow+" ADD COLUMN z INT")
		}, "the definition of the shadow table osc_test.rsmy_ref_osc_new changed since the killed run made the shadow"},
		{"original changed", func() {
			rsmyKilled(t, cfg, ck())
			mustExec(t, db, "ALTER TABLE "+name+" MODIFY v BIGINT")
		}, "the definition of the table osc_test.rsmy_ref changed"},
		{"binlog purged", func() {
			c := ck()
			c.Position = "rsmy-purged-bin.000001:4"
			rsmyKilled(t, cfg, c)
		}, "the binlog file rsmy-purged-bin.000001, where the checkpoint's capture restarts (rsmy-purged-bin.000001:4), is no longer on the server"},
		{"checkpoint of another server", func() {
			rsmyKilled(t, cfg, ck())
			mustExec(t, db, "UPDATE "+ckp+" SET server_id = server_id + 1000")
		}, "the killed run read the binlog of another server (server_id "},
		{"no event starts at the position", func() {
			c := ck() // the killed run's own statements follow it
			p, err := cdc.ParseMySQLPos(c.Position)
			if err != nil {
				t.Fatal(err)
			}
			p.Pos++
			c.Position = p.String()
			rsmyKilled(t, cfg, c)
		}, "is no place in this server's binlog where the capture can restart"},
		{"shadow gone", func() {
			rsmyKilled(t, cfg, ck())
			mustExec(t, db, "DROP TABLE "+shadow)
		}, "the shadow table rsmy_ref_osc_new is gone, and the tables were not swapped"},
		{"shadow gone, --alter kept the definition", func() {
			noop := cfg
			noop.Alter = "ENGINE=InnoDB"
			rsmyKilled(t, noop, ck())
			mustExec(t, db, "DROP TABLE "+shadow)
		}, "or the --alter did not change it but for its foreign keys, rsmy_ref_osc_old is gone"},
		{"foreign old table", func() {
			rsmyKilled(t, cfg, ck())
			mustExec(t, db, "CREATE TABLE "+old+" (id INT PRIMARY KEY) ENGINE=InnoDB")
		}, "osc_test.rsmy_ref_osc_old exists and is not osc's cut-over sentry"},
	} {
		fresh()
		tc.setup()
		before := rsmyState(t, db, name)
		d, err := rsmyDialect(t, rcfg)
		if err == nil {
			_, _, err = d.Resume(ctx)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		} else if !strings.Contains(err.Error(), "nothing was changed") {
			t.Errorf("%s: %v does not say that nothing was changed", tc.name, err)
		}
		d.Close()
		if after := rsmyState(t, db, name); after != before {
			t.Errorf("%s: the refusal changed %q to %q", tc.name, before, after)
		}
	}
}

// TestMySQLResumeCutOver: a kill inside the cut-over leaves the sentry (the
// rename did not run) or the swapped tables; resume tells them apart.
func TestMySQLResumeCutOver(t *testing.T) {
	const name = "rsmy_co"
	db := mysqlTestDB(t, name)
	shadow, changelog, old, ckp := rsmyNames(name)
	ctx := context.Background()
	mustExec(t, db, "CREATE TABLE "+name+" (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN w INT", Execute: true, Version: "test", Resume: true}
	kcfg := cfg
	kcfg.Resume = false
	rsmyKilled(t, kcfg, &engine.Checkpoint{Version: "test", Alter: cfg.Alter, CopyDone: true, Position: rsmyBinlogPos(t, db), Saved: time.Now()})

	// The sentry: resumed as before the cut-over; the sentry stays until
	// the resumed run's own cut-over drops it.
	mustExec(t, db, "CREATE TABLE "+old+" (id INT PRIMARY KEY) ENGINE=InnoDB COMMENT='"+table.MySQLSentryComment+"'")
	d, err := rsmyDialect(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, ck, err := d.Resume(ctx)
	if err != nil || ck.CutOver || !d.sentry {
		t.Fatalf("resume with the sentry: %+v, %v (sentry %v)", ck, err, d.sentry)
	}
	if got := tablesExist(t, db, old); len(got) != 1 {
		t.Errorf("the sentry was dropped by Resume")
	}
	if err := d.dropResumedSentry(ctx, d.plan); err != nil {
		t.Fatal(err)
	}
	if got := tablesExist(t, db, old); len(got) != 0 {
		t.Errorf("the sentry was not dropped before the cut-over")
	}
	d.Close()

	// Swapped: the table has the shadow's definition.
	mustExec(t, db, "RENAME TABLE "+name+" TO "+old+", "+shadow+" TO "+name)
	d, err = rsmyDialect(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, ck, err := d.Resume(ctx)
	if err != nil || !ck.CutOver {
		t.Fatalf("resume after the swap: %+v, %v", ck, err)
	}
	if p.Old != old || p.Table != name {
		t.Errorf("plan %+v", p)
	}
	if err := d.Cleanup(ctx, true); err != nil {
		t.Fatal(err)
	}
	if left := tablesExist(t, db, shadow, changelog, ckp, old); strings.Join(left, ",") != old {
		t.Errorf("after the cleanup: %v, want only %s (kept without --ok-to-drop-table)", left, old)
	}
}

// TestMySQLInitiallyDrop: --initially-drop-ghost-table drops what a killed
// run left; a kept old table is refused naming --initially-drop-old-table,
// which drops it.
func TestMySQLInitiallyDrop(t *testing.T) {
	const name = "rsmy_idrop"
	db := mysqlTestDB(t, name)
	shadow, changelog, old, ckp := rsmyNames(name)
	mustExec(t, db, "CREATE TABLE "+name+" (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN w INT", Execute: true, Version: "test"}
	rsmyKilled(t, cfg, &engine.Checkpoint{Version: "test", Alter: cfg.Alter, Position: rsmyBinlogPos(t, db), Saved: time.Now()})
	mustExec(t, db, "CREATE TABLE "+old+" (id INT PRIMARY KEY) ENGINE=InnoDB COMMENT='"+table.MySQLSentryComment+"'")
	// A killed run of a plan with a new unique key leaves its aside table.
	aside := table.MySQLAsideName(name)
	mustExec(t, db, "CREATE TABLE "+aside+" (id INT PRIMARY KEY) ENGINE=InnoDB")
	dcfg := cfg
	dcfg.InitiallyDropShadow = true
	dcfg.Execute = false
	var logs strings.Builder
	dry, err := NewMySQL(dcfg, mysqlTestConn(t), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	err = dry.Inspect(context.Background())
	dry.Close()
	if err == nil {
		t.Error("a dry run with --initially-drop-ghost-table did not refuse the leftovers")
	}
	if !strings.Contains(logs.String(), "would drop what a killed run left") || !strings.Contains(logs.String(), aside) {
		t.Errorf("the dry run does not name the aside table %s among what it would drop:\n%s", aside, logs.String())
	}
	if left := tablesExist(t, db, shadow, changelog, old, ckp, aside); len(left) != 5 {
		t.Errorf("a dry run dropped leftovers: %v left", left)
	}
	dcfg.Execute = true
	d, err := rsmyDialect(t, dcfg)
	if err != nil {
		t.Fatalf("Inspect with --initially-drop-ghost-table: %v", err)
	}
	d.Close()
	if left := tablesExist(t, db, shadow, changelog, old, ckp, aside); len(left) != 0 {
		t.Errorf("left: %v", left)
	}

	mustExec(t, db, "CREATE TABLE "+old+" (id INT PRIMARY KEY, v INT) ENGINE=InnoDB", "INSERT INTO "+old+" VALUES (1, 1), (2, 2)")
	_, err = rsmyDialect(t, dcfg)
	want := " rows) exists: an earlier migration of osc_test.rsmy_idrop kept its original table there"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "osc_test.rsmy_idrop_osc_old (about ") ||
		!strings.Contains(err.Error(), "--initially-drop-old-table") ||
		strings.Contains(err.Error(), "--resume") {
		t.Errorf("Inspect with a kept old table: %v, want %q", err, want)
	}
	if got := tablesExist(t, db, old); len(got) != 1 {
		t.Fatal("the old table was dropped without --initially-drop-old-table")
	}
	ocfg := cfg
	ocfg.InitiallyDropOld = true
	d, err = rsmyDialect(t, ocfg)
	if err != nil {
		t.Fatalf("Inspect with --initially-drop-old-table: %v", err)
	}
	d.Close()
	if got := tablesExist(t, db, old); len(got) != 0 {
		t.Error("--initially-drop-old-table kept the old table")
	}
	// A sentry is not an old table: that flag leaves it to the other.
	mustExec(t, db, "CREATE TABLE "+old+" (id INT PRIMARY KEY) ENGINE=InnoDB COMMENT='"+table.MySQLSentryComment+"'")
	if _, err := rsmyDialect(t, ocfg); err == nil || !strings.Contains(err.Error(), "--initially-drop-ghost-table") {
		t.Errorf("a sentry with --initially-drop-old-table: %v", err)
	}
}

// rsmyKill is the dialect of a run that is killed: nothing is cleaned up,
// connections just go (Close), as with kill -9.
type rsmyKill struct{ engine.Dialect }

func (rsmyKill) Cleanup(context.Context, bool) error { return nil }

// TestMySQLKillAndResume kills a migration twice during its copy and once
// after it (leaving a cut-over sentry), under writes that insert, delete
// and move keys, and resumes it each time from its checkpoint; the final
// table must equal the original row by row.
func TestMySQLKillAndResume(t *testing.T) {
	const name = "rsmy_e2e"
	db := mysqlTestDB(t, name)
	shadow, changelog, old, ckp := rsmyNames(name)
	mustExec(t, db, "CREATE TABLE "+name+` (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL, s VARCHAR(40) NULL) ENGINE=InnoDB`)
	for range 6 {
		var vals []string
		for i := range 5000 {
			vals = append(vals, fmt.Sprintf("(%d, 's%d')", i, i))
		}
		mustExec(t, db, "INSERT INTO "+name+" (v, s) VALUES "+strings.Join(vals, ","))
	}
	flag := filepath.Join(t.TempDir(), "postpone")
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Execute: true, ChunkSize: 100, DMLBatchSize: 50,
		Alter:                   "CHANGE COLUMN v val BIGINT NOT NULL, ADD COLUMN c INT NOT NULL DEFAULT 7",
		PostponeCutOverFlagFile: flag, CutOverLockTimeout: 2 * time.Second, CutOverRetries: 3, StatusInterval: time.Hour,
		CheckpointInterval: 50 * time.Millisecond, Version: "test"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	werrs := make(chan error, 3)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for wctx.Err() == nil {
				id := 1 + r.IntN(32000)
				var err error
				switch r.IntN(10) {
				case 0, 1, 2:
					_, err = db.Exec("INSERT INTO "+name+" (v, s) VALUES (?, ?)", r.IntN(1000), "new")
				case 3, 4:
					_, err = db.Exec("DELETE FROM "+name+" WHERE id = ?", id)
				case 5:
					_, err = db.Exec("UPDATE IGNORE "+name+" SET id = id + 100000 WHERE id = ?", id)
				default:
					_, err = db.Exec("UPDATE "+name+" SET v = v + 1, s = NULL WHERE id = ?", id)
				}
				if err != nil {
					werrs <- err
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	defer func() {
		stop()
		wg.Wait()
	}()

	// The copy's watermark in the saved checkpoint ("" before one, "done"
	// once the copy is complete).
	watermark := func() string {
		var ck sql.NullString
		if err := db.QueryRow("SELECT checkpoint FROM " + ckp).Scan(&ck); err != nil {
			return ""
		}
		var c mysqlCheckpoint
		if err := json.Unmarshal([]byte(ck.String), &c); err != nil {
			return ""
		}
		if c.CopyDone {
			return "done"
		}
		return string(c.After)
	}
	var logs strings.Builder
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	prev := "null"
	for run := range 4 {
		rcfg := cfg
		rcfg.Resume = run > 0
		d, err := NewMySQL(rcfg, mysqlTestConn(t), log)
		if err != nil {
			t.Fatal(err)
		}
		killed := run < 3
		if killed {
			d = rsmyKill{d}
		}
		m := engine.New(rcfg, d, log, io.Discard)
		rctx, kill := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- m.Run(rctx) }()
		if killed {
			// Runs 0 and 1 are killed once a checkpoint past the last one
			// is saved, mid-copy; run 2 once the copy is done, as if in
			// the cut-over, before its rename (it leaves the sentry).
			for w := watermark(); w == "" || w == "null" || w == prev || (run == 2) != (w == "done"); w = watermark() {
				select {
				case err := <-done:
					kill()
					t.Fatalf("run %d ended before it was killed: %v", run, err)
				case <-time.After(5 * time.Millisecond):
				}
			}
			prev = watermark()
			kill()
			_ = <-done // the kill's error
			if left := tablesExist(t, db, shadow, changelog, ckp); len(left) != 3 {
				t.Fatalf("run %d killed: left %v", run, left)
			}
			if run == 2 {
				mustExec(t, db, "CREATE TABLE "+old+" (id INT PRIMARY KEY) ENGINE=InnoDB COMMENT='"+table.MySQLSentryComment+"'")
			}
			time.Sleep(100 * time.Millisecond) // writes while no osc runs
			continue
		}
		for m.State() != engine.StatePostponed {
			select {
			case err := <-done:
				kill()
				t.Fatalf("resumed run ended before the cut-over: %v\n%s", err, logs.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		time.Sleep(200 * time.Millisecond) // writes while postponed
		stop()
		wg.Wait()
		if err := os.Remove(flag); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("resumed migration: %v", err)
		}
		kill()
	}
	close(werrs)
	for err := range werrs {
		t.Fatalf("writer: %v", err)
	}
	logMu.Lock()
	if n := strings.Count(logs.String(), "msg=resuming"); n != 3 {
		t.Errorf("%d runs resumed, want 3; the runs' log:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "dropped the cut-over sentry the killed run left") {
		t.Error("the sentry was not dropped by the resumed cut-over")
	}
	logMu.Unlock()
	sameMySQLRows(t, db, "SELECT id, v, s FROM "+old+" ORDER BY id", "SELECT id, val, s FROM "+name+" ORDER BY id")
	if left := tablesExist(t, db, shadow, changelog, ckp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
