package engine

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"osc/throttle"
)

// TestControlCommands checks the command protocol without a database.
func TestControlCommands(t *testing.T) {
	cfg := Config{Schema: "d", Table: "t", Alter: "ADD COLUMN c INT", ChunkSize: 100,
		Control: Control{MaxLag: 1500 * time.Millisecond}}
	m := New(cfg, &fakeDialect{db: newFakeDB(0)}, slog.New(slog.DiscardHandler), io.Discard)
	for _, tc := range []struct{ cmd, want string }{
		{"help", "available commands:"},
		{"chunk-size=?", "100\n"},
		{" chunk-size = 250 ", "chunk-size set to 250\n"},
		{"chunk-size=?", "250\n"},
		{"dml-batch-size=20", "dml-batch-size set to 20\n"},
		{"dml-batch-size=?", "20\n"},
		{"nice-ratio=0.5", "nice-ratio set to 0.5\n"},
		{"nice-ratio=?", "0.5\n"},
		{"max-lag-millis=?", "1500\n"},
		{"copy-threads=?", "1\n"},
		{"copy-threads=3", "copy-threads set to 3\n"},
		{"copy-threads=65", "error: copy-threads=\"65\": want an integer from 1 to 64"},
		{"checksum-threads=?", "2\n"},
		{"checksum-threads=4", "checksum-threads set to 4\n"},
		{"checksum-threads=0", "error: checksum-threads=\"0\": want an integer from 1 to 64"},
		{"max-lag-millis=2000", "max-lag-millis set to 2000\n"},
		{"max-load=Threads_running=30", "max-load set to \"Threads_running=30\"\n"},
		{"max-load=?", "Threads_running=30\n"},
		{"critical-load=Threads_running=300", "critical-load set to"},
		{"throttle-query=\"SELECT 0\"", "throttle-query set to \"SELECT 0\"\n"},
		{"throttle-query=?", "SELECT 0\n"},
		{"throttle-http=http://127.0.0.1:1/check", "throttle-http set to"},
		{"throttle-control-replicas=r1:3306,r2:3306", "throttle-control-replicas set to \"r1:3306,r2:3306\"\n"},
		{"throttle-control-replicas=?", "r1:3306,r2:3306\n"},
		{"throttle", "Throttled by hand"},
		{"no-throttle", "Throttling by hand ended"},
		{"coordinates", "change capture not started\n"},
		{"postpone", "error: cannot postpone: osc runs without --postpone-cut-over-flag-file"},
		{"unpostpone", "error: nothing to unpostpone"},
		{"", "error: empty command"},
		{"chunk-size=2000000", "error: chunk-size=\"2000000\": want an integer from 1 to 1000000"},
		{"nice-ratio=101", "error: nice-ratio"},
		{"max-lag-millis=-1", "error: max-lag-millis"},
		{"throttle-control-replicas=postgres://h/db", "error: throttle-control-replicas"},
		{"sup=1", "error: sup takes no value"},
		{"frobnicate", "error: unknown command \"frobnicate\"; try help"},
	} {
		reply, err := m.command(tc.cmd)
		if err != nil {
			reply = "error: " + err.Error()
		}
		if !strings.HasPrefix(reply, tc.want) {
			t.Errorf("%q: %q, want %q", tc.cmd, reply, tc.want)
		}
	}
	s := m.ctl.throttleSettings()
	if s.MaxLag != 2*time.Second || s.MaxLoad.String() != "Threads_running=30" || s.Query != "SELECT 0" || s.Manual ||
		strings.Join(s.Replicas, ",") != "r1:3306,r2:3306" || m.chunkSize() != 250 || m.batchSize() != 20 {
		t.Errorf("settings after the commands: %+v chunk %d batch %d", s, m.chunkSize(), m.batchSize())
	}
	status, _ := m.command("status")
	for _, want := range []string{"State: inspecting", "# chunk-size: 250", "# max-lag-millis: 2000", "# max-load: Threads_running=30", "# nice-ratio: 0.5", "# checksum-threads: 4", "# copy-threads: 3"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
}

// TestControlStatusOutput checks the JSON status line and the progress bar.
func TestControlStatusOutput(t *testing.T) {
	s := Status{State: StateCopying, Copied: 50, Estimated: 200, CopyRate: 10, Applied: 3, Backlog: 20 * time.Millisecond,
		Lag: 300 * time.Millisecond, LagKnown: true, Throttled: true, Throttle: "flag-file /f", Elapsed: 5 * time.Second,
		ETA: 15 * time.Second, ETAKnown: true, Capture: "binlog x:4"}
	var j map[string]any
	if err := json.Unmarshal([]byte(s.JSON()), &j); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"state": "migrating", "rows_copied": 50.0, "rows_estimated": 200.0, "percent": 25.0,
		"rows_per_second": 10.0, "events_applied": 3.0, "backlog_seconds": 0.02, "replica_lag_seconds": 0.3,
		"throttled": true, "throttle_reason": "flag-file /f", "elapsed_seconds": 5.0, "eta_seconds": 15.0, "capture": "binlog x:4"} {
		if j[k] != want {
			t.Errorf("%s: %v, want %v", k, j[k], want)
		}
	}
	s.LagKnown, s.ETAKnown = false, false
	if err := json.Unmarshal([]byte(s.JSON()), &j); err != nil || j["replica_lag_seconds"] != nil || j["eta_seconds"] != nil {
		t.Errorf("unknown lag and ETA: %v %v (%v)", j["replica_lag_seconds"], j["eta_seconds"], err)
	}
	line := s.String()
	for _, want := range []string{"Copy: 50/200 25.0%", "Backlog: 20ms", "Lag: n/a", "State: migrating", "Throttled: flag-file /f"} {
		if !strings.Contains(line, want) {
			t.Errorf("status line lacks %q: %s", want, line)
		}
	}
	if b := s.bar(); b != "["+strings.Repeat("#", 7)+strings.Repeat(".", 23)+"] " {
		t.Errorf("bar %q", b)
	}
	var out bytes.Buffer
	m := &Migration{cfg: Config{Control: Control{JSONStatus: true}}, out: &out, ctl: &control{}}
	m.emitStatus(s)
	if !json.Valid(bytes.TrimSpace(out.Bytes())) {
		t.Errorf("--output json printed %q", out.String())
	}
}

func TestControlSocketFile(t *testing.T) {
	if got, want := DefaultSocketFile("app", "public.orders"), filepath.Join(os.TempDir(), "osc.app.public.orders.sock"); got != want {
		t.Errorf("DefaultSocketFile: %s, want %s", got, want)
	}
	if got := DefaultSocketFile("a/b", "t\n"); filepath.Base(got) != "osc.a_b.t_.sock" {
		t.Errorf("unsafe characters: %s", got)
	}
	long := strings.Repeat("x", 64)
	a, b := DefaultSocketFile(long, long), DefaultSocketFile(long, long+"y")
	if len(a) > maxSocketPath || a == b || !strings.HasPrefix(filepath.Base(a), "osc.") {
		t.Errorf("long names: %s, %s", a, b)
	}

	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s")
	l, err := listenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := listenUnix(path); err == nil || !strings.Contains(err.Error(), "served by another osc") {
		t.Errorf("second listener: %v", err)
	}
	l.Close() // as if osc died: the file stays, nobody answers
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the socket file went with the listener: %v", err)
	}
	l2, err := listenUnix(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left in the directory: %v", entries)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := listenUnix(filepath.Join(dir, "f")); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("a regular file: %v", err)
	}
	if _, err := listenUnix(filepath.Join(dir, strings.Repeat("y", 120))); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("a long path: %v", err)
	}
}

// walDialect is a fake dialect with a throttle threshold of its own, as
// PostgreSQL has --max-retained-wal.
type walDialect struct{ *fakeDialect }

func (walDialect) ThrottleSettings(s *throttle.Settings) []Setting {
	s.MaxRetainedWAL = 5 << 20
	return []Setting{{Name: "max-retained-wal", Value: throttle.FormatBytes(s.MaxRetainedWAL)}}
}

// TestControlDialectSettings: a dialect's own throttle thresholds reach the
// throttler's settings and the status command's list, after the throttle
// settings every dialect has; a dialect without any lists none.
func TestControlDialectSettings(t *testing.T) {
	cfg := Config{Schema: "d", Table: "t", Alter: "ADD COLUMN c INT"}
	m := New(cfg, walDialect{&fakeDialect{db: newFakeDB(0)}}, slog.New(slog.DiscardHandler), io.Discard)
	if got := m.ctl.throttleSettings().MaxRetainedWAL; got != 5<<20 {
		t.Errorf("MaxRetainedWAL %d", got)
	}
	status, _ := m.command("status")
	if !strings.Contains(status, "# throttled by hand: false\n# max-retained-wal: 5.0MB\n# postpone-cut-over-flag-file:") {
		t.Errorf("status:\n%s", status)
	}
	plain := New(cfg, &fakeDialect{db: newFakeDB(0)}, slog.New(slog.DiscardHandler), io.Discard)
	if status, _ := plain.command("status"); strings.Contains(status, "max-retained-wal") {
		t.Errorf("status of a dialect without its own settings:\n%s", status)
	}
}
