package dialect

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"osc/engine"
	"osc/internal/testdb"
	"osc/table"
	"osc/throttle"
)

// ctlRun is a migration running in the background for a control test.
type ctlRun struct {
	m    *engine.Migration
	done chan error
	sock string
}

// wait returns the migration's result (the test fails after a minute).
func (r *ctlRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(time.Minute):
		t.Fatal("the migration did not end within a minute")
		return nil
	}
}

// startCtl runs a migration of table name in the background with a socket in
// a temporary directory; the test waits for it to end before cleaning up.
func startCtl(t *testing.T, cfg engine.Config, d engine.Dialect) *ctlRun {
	t.Helper()
	if cfg.Control.ServeSocketFile == "" {
		cfg.Control.ServeSocketFile = filepath.Join(t.TempDir(), "osc.sock")
	}
	cfg.Execute = true
	cfg.StatusInterval = time.Hour
	cfg.CutOverLockTimeout, cfg.CutOverRetries = 2*time.Second, 3
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r := &ctlRun{m: engine.New(cfg, d, log, io.Discard), done: make(chan error, 1), sock: cfg.Control.ServeSocketFile}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	go func() { r.done <- r.m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			r.done <- err
		case <-time.After(time.Minute):
			t.Error("the migration did not stop")
		}
	})
	return r
}

// send sends one command over the socket and returns the reply.
func send(t *testing.T, sock, command string) string {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Fatalf("connect to %s: %v", sock, err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(bufio.NewReader(c))
	if err != nil {
		t.Fatal(err)
	}
	return string(reply)
}

// until waits up to 20 s for cond, failing early if the migration ends.
func (r *ctlRun) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("the migration ended (%v) while waiting for %s", err, what)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; status: %s", what, r.m.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// throttledBy reports whether the copy is throttled for a reason containing s.
func (r *ctlRun) throttledBy(s string) func() bool {
	return func() bool { st := r.m.Status(); return st.Throttled && strings.Contains(st.Throttle, s) }
}

// still checks that the copy does not advance for d.
func (r *ctlRun) still(t *testing.T, d time.Duration) {
	t.Helper()
	before := r.m.Status().Copied
	time.Sleep(d)
	if after := r.m.Status().Copied; after != before {
		t.Fatalf("the copy went on while throttled: %d rows, then %d", before, after)
	}
}

func seedMySQL(t *testing.T, db *sql.DB, name string, rows int) {
	t.Helper()
	mustExec(t, db, "CREATE TABLE "+name+" (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB")
	var vals []string
	for i := range rows {
		vals = append(vals, fmt.Sprintf("(%d)", i))
	}
	mustExec(t, db, "INSERT INTO "+name+" (v) VALUES "+strings.Join(vals, ","))
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

func mysqlCtlRun(t *testing.T, name string, rows int, cfg engine.Config) (*ctlRun, *sql.DB) {
	t.Helper()
	db := mysqlTestDB(t, name)
	seedMySQL(t, db, name, rows)
	cfg.Schema, cfg.Table = mysqlTestSchema, name
	if cfg.Alter == "" {
		cfg.Alter = "ADD COLUMN w INT"
	}
	d, err := NewMySQL(cfg, mysqlTestConn(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return startCtl(t, cfg, d), db
}

// TestControlMySQLFlagFileAndSocket: the flag file pauses the copy and its
// removal resumes it; chunk-size and throttle over the socket take effect; bad
// commands change nothing; the socket is 0600 and gone after exit.
func TestControlMySQLFlagFileAndSocket(t *testing.T) {
	const name = "tbl_ctl_pause"
	flag := filepath.Join(t.TempDir(), "throttle")
	touch(t, flag)
	r, db := mysqlCtlRun(t, name, 3000, engine.Config{ChunkSize: 50, Control: engine.Control{ThrottleFlagFile: flag, NiceRatio: 3}})

	r.until(t, "the flag file to throttle", r.throttledBy("flag-file "+flag))
	fi, err := os.Stat(r.sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	r.still(t, 300*time.Millisecond)
	if got := r.m.Status().Copied; got != 0 {
		t.Fatalf("%d rows copied under the flag file", got)
	}
	if reply := send(t, r.sock, "sup"); !strings.Contains(reply, "Throttled: flag-file "+flag) || strings.Count(reply, "\n") != 1 {
		t.Errorf("sup: %q", reply)
	}
	if reply := send(t, r.sock, "status"); !strings.Contains(reply, "# chunk-size: 50\n") || !strings.Contains(reply, "# throttle-flag-file: "+flag+" (exists)") {
		t.Errorf("status: %q", reply)
	}
	// Bad commands: an error line, nothing changed.
	for _, bad := range []string{"chunk-size=0", "chunk-size=x", "nice-ratio=-1", "max-lag-millis=soon", "max-load=Threads_running",
		"max-load=No_such_status=3", "throttle-http=ftp://x", "throttle-control-replicas=nohost", "throttle-query=SELEC 1",
		"bogus", "throttle=1", "coordinates=x"} {
		reply := send(t, r.sock, bad)
		if !strings.HasPrefix(reply, "error: ") || strings.Count(reply, "\n") != 1 {
			t.Errorf("%s: %q, want a one-line error", bad, reply)
		}
	}
	if got := send(t, r.sock, "chunk-size=?"); got != "50\n" {
		t.Errorf("chunk-size after bad commands: %q", got)
	}
	if got := send(t, r.sock, "max-load=?"); got != "\n" {
		t.Errorf("max-load after bad commands: %q", got)
	}
	if got := send(t, r.sock, "chunk-size=7"); got != "chunk-size set to 7\n" {
		t.Errorf("chunk-size=7: %q", got)
	}
	if got := send(t, r.sock, "coordinates"); !strings.HasPrefix(got, "binlog ") {
		t.Errorf("coordinates: %q", got)
	}

	// Resumes when the file goes, in chunks of the new size.
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	r.until(t, "the copy to resume", func() bool { return r.m.Status().Copied >= 70 })
	for range 5 {
		if n := r.m.Status().Copied; n%7 != 0 && n < 3000 {
			t.Fatalf("%d rows copied: not chunks of 7", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Throttled by hand, the copy stops after the chunk in flight.
	if got := send(t, r.sock, "throttle"); !strings.HasPrefix(got, "Throttled by hand") {
		t.Errorf("throttle: %q", got)
	}
	r.until(t, "the throttle command", r.throttledBy("commanded by user"))
	time.Sleep(100 * time.Millisecond)
	r.still(t, 300*time.Millisecond)
	send(t, r.sock, "chunk-size=1000")
	send(t, r.sock, "nice-ratio=0")
	if got := send(t, r.sock, "no-throttle"); !strings.HasPrefix(got, "Throttling by hand ended") {
		t.Errorf("no-throttle: %q", got)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	if _, err := os.Stat(r.sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after exit: %v", err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + name + " WHERE w IS NULL").Scan(&n); err != nil || n != 3000 {
		t.Errorf("migrated table: %d rows (%v)", n, err)
	}
}

// TestControlMySQLPanic: panic over the socket aborts and cleans up.
func TestControlMySQLPanic(t *testing.T) {
	const name = "tbl_ctl_panic"
	flag := filepath.Join(t.TempDir(), "throttle")
	touch(t, flag)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r, db := mysqlCtlRun(t, name, 100, engine.Config{Control: engine.Control{ThrottleFlagFile: flag, ForceNamedPanic: true, ServeTCPPort: port}})
	r.until(t, "throttled", r.throttledBy("flag-file"))
	// The TCP port answers too, on loopback.
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "sup\n"); err != nil {
		t.Fatal(err)
	}
	reply, _ := io.ReadAll(c)
	c.Close()
	if !strings.Contains(string(reply), "Throttled: flag-file") {
		t.Errorf("sup over TCP: %q", reply)
	}
	if got := send(t, r.sock, "panic"); !strings.HasPrefix(got, "error: --force-named-panic") {
		t.Errorf("unnamed panic: %q", got)
	}
	if got := send(t, r.sock, "panic=other"); !strings.HasPrefix(got, "error: this osc migrates "+name+", not other") {
		t.Errorf("panic of another table: %q", got)
	}
	if got := send(t, r.sock, "panic="+name); !strings.HasPrefix(got, "Panic: aborting") {
		t.Errorf("panic: %q", got)
	}
	err = r.wait(t)
	if !errors.Is(err, engine.ErrPanic) {
		t.Fatalf("migration: %v, want the panic", err)
	}
	shadow, changelog, _ := table.MySQLNames(name)
	if left := tablesExist(t, db, shadow, changelog); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if _, err := os.Stat(r.sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after exit: %v", err)
	}
}

// TestControlMySQLPostpone: postpone creates the flag file, the cut-over
// waits until a correctly named unpostpone removes it.
func TestControlMySQLPostpone(t *testing.T) {
	const name = "tbl_ctl_postpone"
	dir := t.TempDir()
	flag, postpone := filepath.Join(dir, "throttle"), filepath.Join(dir, "postpone")
	touch(t, flag)
	r, db := mysqlCtlRun(t, name, 500, engine.Config{PostponeCutOverFlagFile: postpone,
		Control: engine.Control{ThrottleFlagFile: flag, ForceNamedCutOver: true}})
	r.until(t, "throttled", r.throttledBy("flag-file"))
	if got := send(t, r.sock, "postpone"); !strings.HasPrefix(got, "Postponed") {
		t.Fatalf("postpone: %q", got)
	}
	if _, err := os.Stat(postpone); err != nil {
		t.Fatalf("postpone did not create the flag file: %v", err)
	}
	os.Remove(flag)
	r.until(t, "postponed", func() bool { return r.m.State() == engine.StatePostponed })
	time.Sleep(500 * time.Millisecond)
	if s := r.m.State(); s != engine.StatePostponed {
		t.Fatalf("state %s while the postpone flag file exists", s)
	}
	mustExec(t, db, "INSERT INTO "+name+" (v) VALUES (-1)") // applied while postponed
	for cmd, want := range map[string]string{
		"unpostpone":         "error: --force-named-cut-over is set",
		"cut-over=other":     "error: this osc migrates " + name + ", not other",
		"unpostpone=osc_x.t": "error: this osc migrates",
	} {
		if got := send(t, r.sock, cmd); !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want %q", cmd, got, want)
		}
	}
	if r.m.State() != engine.StatePostponed {
		t.Fatal("a refused unpostpone went ahead")
	}
	if got := send(t, r.sock, "cut-over="+mysqlTestSchema+"."+name); !strings.HasPrefix(got, "Unpostponed") {
		t.Errorf("cut-over: %q", got)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + name + " WHERE w IS NULL").Scan(&n); err != nil || n != 501 {
		t.Errorf("migrated table: %d rows (%v), want 501", n, err)
	}
}

// TestControlMySQLReplicaLag: stopping the replica's SQL thread throttles on
// lag, starting it again releases the copy.
func TestControlMySQLReplicaLag(t *testing.T) {
	const name = "tbl_ctl_lag"
	conn := mysqlTestConn(t)
	replicaPort := 13307
	if p := os.Getenv("OSC_MYSQL_REPLICA_PORT"); p != "" {
		if _, err := fmt.Sscan(p, &replicaPort); err != nil {
			t.Fatalf("OSC_MYSQL_REPLICA_PORT=%q: %v", p, err)
		}
	}
	rc := conn
	rc.Port = replicaPort
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	replica, err := table.OpenMySQL(ctx, rc, "")
	cancel()
	if err != nil {
		testdb.Unreachable(t, "MySQL replica", err)
	}
	defer replica.Close()
	flag := filepath.Join(t.TempDir(), "throttle")
	touch(t, flag)
	r, _ := mysqlCtlRun(t, name, 500, engine.Config{Control: engine.Control{ThrottleFlagFile: flag, MaxLag: 1500 * time.Millisecond}})
	r.until(t, "the replica's lag to be read", func() bool { st := r.m.Status(); return st.LagKnown && st.Lag < 1500*time.Millisecond })

	mustExec(t, replica, "STOP SLAVE SQL_THREAD")
	var once sync.Once
	restart := func() {
		once.Do(func() {
			if _, err := replica.Exec("START SLAVE SQL_THREAD"); err != nil {
				t.Errorf("START SLAVE SQL_THREAD: %v", err)
			}
		})
	}
	t.Cleanup(restart) // other tests share the replica
	replicaName := fmt.Sprintf("127.0.0.1:%d", replicaPort)
	r.until(t, "lag to throttle", r.throttledBy("replica-lag "+replicaName))
	os.Remove(flag)
	r.until(t, "the flag file reason to go", func() bool { return !strings.Contains(r.m.Status().Throttle, "flag-file") })
	if !r.m.Status().Throttled {
		t.Fatal("released while the replica lags")
	}
	r.still(t, 300*time.Millisecond)
	if got := r.m.Status().Copied; got != 0 {
		t.Fatalf("%d rows copied while the replica lagged", got)
	}
	if reply := send(t, r.sock, "sup"); !strings.Contains(reply, "Throttled: replica-lag "+replicaName) {
		t.Errorf("sup: %q", reply)
	}
	restart()
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
}

// TestControlMySQLCriticalLoad: critical load aborts cleanly; an unknown
// load variable is refused before the copy.
func TestControlMySQLCriticalLoad(t *testing.T) {
	const name = "tbl_ctl_critical"
	r, db := mysqlCtlRun(t, name, 100, engine.Config{Control: engine.Control{CriticalLoad: throttle.Thresholds{{Name: "Threads_connected", Value: 1}}}})
	err := r.wait(t)
	if !errors.Is(err, throttle.ErrCriticalLoad) || !strings.Contains(err.Error(), "Threads_connected=") {
		t.Fatalf("migration: %v, want critical load", err)
	}
	shadow, changelog, _ := table.MySQLNames(name)
	if left := tablesExist(t, db, shadow, changelog); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}

	mustExec(t, db, "DROP TABLE "+name)
	r2, _ := mysqlCtlRun(t, name, 10, engine.Config{Control: engine.Control{MaxLoad: throttle.Thresholds{{Name: "Threads_runing", Value: 9}}}})
	if err := r2.wait(t); err == nil || !strings.Contains(err.Error(), "Threads_runing: no such global status variable") {
		t.Fatalf("unknown max-load variable: %v", err)
	}
}

// TestControlHooks: hooks run at their points with the documented
// environment; a failing hook before the cut-over aborts it.
func TestControlHooks(t *testing.T) {
	const name = "tbl_ctl_hooks"
	dir, out := t.TempDir(), t.TempDir()
	log := filepath.Join(out, "log")
	for _, h := range []string{"on-startup", "on-validated", "on-rowcount-complete", "on-before-row-copy",
		"on-row-copy-complete", "on-before-checksum", "on-checksum-complete", "on-before-cut-over", "on-success", "on-failure"} {
		script := fmt.Sprintf("#!/bin/sh\necho \"%s $OSC_HOOK $OSC_TABLE_NAME $OSC_COPIED_ROWS $OSC_ERROR\" >> %s\n", h, log)
		if err := os.WriteFile(filepath.Join(dir, h), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "on-before-cut-over-env"), []byte("#!/bin/sh\nenv | grep ^OSC_ | sort > "+filepath.Join(out, "env")+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, db := mysqlCtlRun(t, name, 300, engine.Config{Control: engine.Control{HooksPath: dir, HooksHint: "ticket-42", Host: "127.0.0.1:13306"}})
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	got, _ := os.ReadFile(log)
	want := "on-startup on-startup tbl_ctl_hooks 0 \non-validated on-validated tbl_ctl_hooks 0 \n" +
		"on-rowcount-complete on-rowcount-complete tbl_ctl_hooks 0 \non-before-row-copy on-before-row-copy tbl_ctl_hooks 0 \n" +
		"on-row-copy-complete on-row-copy-complete tbl_ctl_hooks 300 \non-before-checksum on-before-checksum tbl_ctl_hooks 300 \n" +
		"on-checksum-complete on-checksum-complete tbl_ctl_hooks 300 \non-before-cut-over on-before-cut-over tbl_ctl_hooks 300 \n" +
		"on-success on-success tbl_ctl_hooks 300 \n"
	if string(got) != want {
		t.Errorf("hooks ran:\n%s\nwant:\n%s", got, want)
	}
	env, _ := os.ReadFile(filepath.Join(out, "env"))
	hostname, _ := os.Hostname()
	for _, v := range []string{"OSC_DATABASE_NAME=osc_test", "OSC_TABLE_NAME=" + name, "OSC_GHOST_TABLE_NAME=" + name + "_osc_new",
		"OSC_OLD_TABLE_NAME=" + name + "_osc_old", "OSC_DDL=ADD COLUMN w INT", "OSC_COPIED_ROWS=300",
		"OSC_MIGRATED_HOST=127.0.0.1:13306", "OSC_INSPECTED_HOST=127.0.0.1:13306", "OSC_EXECUTING_HOST=" + hostname,
		"OSC_HOOKS_HINT=ticket-42", "OSC_DRIVER=mysql", "OSC_STATE=caught up", "OSC_HOOK=on-before-cut-over"} {
		if !strings.Contains(string(env), v+"\n") {
			t.Errorf("hook environment lacks %s:\n%s", v, env)
		}
	}
	// The estimate is the server's statistics: near 300, not exact.
	for _, v := range []string{"OSC_ELAPSED_SECONDS=", "OSC_ELAPSED_COPY_SECONDS=", "OSC_ESTIMATED_ROWS="} {
		if !strings.Contains(string(env), v) {
			t.Errorf("hook environment lacks %s", v)
		}
	}

	// A failing on-before-cut-over aborts: the table stays as it was.
	const name2 = "tbl_ctl_hookfail"
	os.Remove(log)
	if err := os.WriteFile(filepath.Join(dir, "on-before-cut-over"), []byte("#!/bin/sh\necho not today >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r2, _ := mysqlCtlRun(t, name2, 10, engine.Config{Control: engine.Control{HooksPath: dir}})
	err := r2.wait(t)
	if err == nil || !strings.Contains(err.Error(), "on-before-cut-over hook") || !strings.Contains(err.Error(), "not today") {
		t.Fatalf("migration: %v, want the hook's failure", err)
	}
	var cols int
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
		mysqlTestSchema, name2).Scan(&cols); err != nil || cols != 2 {
		t.Errorf("%s has %d columns after the aborted cut-over (%v)", name2, cols, err)
	}
	shadow, changelog, old := table.MySQLNames(name2)
	if left := tablesExist(t, db, shadow, changelog, old); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	got, _ = os.ReadFile(log)
	if !strings.Contains(string(got), "on-failure on-failure "+name2+" 10 on-before-cut-over hook") {
		t.Errorf("on-failure did not run with OSC_ERROR:\n%s", got)
	}
}

// ctlPGSchema is the PostgreSQL schema of the control tests.
const ctlPGSchema = "tbl_ctl_pg"

// TestControlPostgres: the flag file pauses the PostgreSQL copy, the socket
// answers, the streaming standby's lag is read, and the copy completes once
// released.
func TestControlPostgres(t *testing.T) {
	const name = "tbl_ctl_pgpause"
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgEngineDSN())
	if err != nil {
		testdb.Unreachable(t, "PostgreSQL", err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	drop := func() {
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+ctlPGSchema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	}
	drop()
	t.Cleanup(drop)
	for _, s := range []string{"CREATE SCHEMA " + ctlPGSchema,
		"CREATE TABLE " + ctlPGSchema + "." + name + " (id int PRIMARY KEY, v int)",
		"INSERT INTO " + ctlPGSchema + "." + name + " SELECT g, g FROM generate_series(1, 2000) g"} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	flag := filepath.Join(t.TempDir(), "throttle")
	touch(t, flag)
	cfg := engine.Config{Schema: ctlPGSchema, Table: name, Alter: "ADD COLUMN w int", ChunkSize: 100,
		Control: engine.Control{ThrottleFlagFile: flag, MaxLag: 1500 * time.Millisecond}}
	d, err := NewPostgres(cfg, PostgresOptions{DSN: pgEngineDSN(), MaxRetainedWAL: 1 << 30}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := startCtl(t, cfg, d)
	r.until(t, "the flag file to throttle", r.throttledBy("flag-file "+flag))
	r.until(t, "the standby's lag", func() bool { return r.m.Status().LagKnown })
	r.still(t, 300*time.Millisecond)
	if got := r.m.Status().Copied; got != 0 {
		t.Fatalf("%d rows copied under the flag file", got)
	}
	if reply := send(t, r.sock, "status"); !strings.Contains(reply, "Throttled: flag-file") || !strings.Contains(reply, "# max-retained-wal: 1.0GB") ||
		!strings.Contains(reply, "# replica walreceiver@") {
		t.Errorf("status: %q", reply)
	}
	if reply := send(t, r.sock, "max-load=active_backends=1000"); !strings.HasPrefix(reply, "max-load set to") {
		t.Errorf("max-load: %q", reply)
	}
	if reply := send(t, r.sock, "max-load=Innodb_rows_read=5"); !strings.HasPrefix(reply, "error: max-load: Innodb_rows_read: PostgreSQL load metrics are") {
		t.Errorf("MySQL-only max-load: %q", reply)
	}
	if reply := send(t, r.sock, "throttle-control-replicas=127.0.0.1:15433"); !strings.HasPrefix(reply, "throttle-control-replicas set to") {
		t.Errorf("throttle-control-replicas: %q", reply)
	}
	os.Remove(flag)
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+ctlPGSchema+"."+name+" WHERE w IS NULL").Scan(&n); err != nil || n != 2000 {
		t.Errorf("migrated table: %d rows (%v)", n, err)
	}
}
