package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"osc/engine"
)

func parse(t *testing.T, args ...string) (*options, error) {
	t.Helper()
	o, _, err := parseFlags(append([]string{"--table", "t", "--alter", "ADD COLUMN c INT"}, args...), io.Discard)
	return o, err
}

func TestControlFlagDefaults(t *testing.T) {
	o, err := parse(t, "--database", "d")
	if err != nil {
		t.Fatal(err)
	}
	k := o.cfg.Control
	if k.MaxLag != 1500*time.Millisecond || o.maxRetainedWAL != 1<<30 || k.ServeSocketFile != engine.DefaultSocketFile("d", "t") ||
		k.ThrottleAdditionalFlagFile != filepath.Join(os.TempDir(), "osc.throttle") || k.Host != "127.0.0.1:3306" ||
		k.JSONStatus || k.ServeTCPPort != 0 || k.HooksTimeout != time.Minute || k.HooksStatusInterval != time.Minute {
		t.Errorf("defaults: %+v", k)
	}
	if want := filepath.Join(os.TempDir(), "osc.d.t.sock"); k.ServeSocketFile != want {
		t.Errorf("socket %s, want %s", k.ServeSocketFile, want)
	}

	o, err = parse(t, "--dsn", "postgres://u@db1:5433/app", "--throttle-control-replicas", "db2:5432,host=db3 port=5432",
		"--max-load", "active_backends=30", "--critical-load", "Threads_running=200", "--critical-load-interval-millis", "500",
		"--nice-ratio", "0.5", "--output", "json", "--serve-tcp-port", "7777", "--max-retained-wal", "512MB")
	if err != nil {
		t.Fatal(err)
	}
	k = o.cfg.Control
	if k.ServeSocketFile != engine.DefaultSocketFile("app", "public.t") || k.Host != "db1:5433" || len(k.ThrottleControlReplicas) != 2 ||
		k.MaxLoad.String() != "active_backends=30" || k.CriticalLoad.String() != "Threads_running=200" ||
		k.CriticalLoadInterval != 500*time.Millisecond || k.NiceRatio != 0.5 || !k.JSONStatus || k.ServeTCPPort != 7777 ||
		k.ServeTCPAddress != "127.0.0.1" || o.maxRetainedWAL != 512<<20 {
		t.Errorf("PostgreSQL flags: %+v", k)
	}
	o, err = parse(t, "--database", "d", "--serve-socket-file", "", "--max-lag-millis", "0")
	if err != nil || o.cfg.Control.ServeSocketFile != "" || o.cfg.Control.MaxLag != 0 {
		t.Errorf("no socket, no lag check: %+v %v", o.cfg.Control, err)
	}
}

func TestControlFlagErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-lag-millis", "-1"}, "--max-lag-millis must be 0"},
		{[]string{"--throttle-control-replicas", "replica1"}, "--throttle-control-replicas: replica \"replica1\": want host:port"},
		{[]string{"--throttle-control-replicas", "postgres://r/db"}, "want host:port"},
		{[]string{"--max-load", "Threads_running"}, "--max-load: \"Threads_running\": want name=value"},
		{[]string{"--critical-load", "Threads_running=lots"}, "--critical-load"},
		{[]string{"--critical-load-interval-millis", "-5"}, "--critical-load-interval-millis"},
		{[]string{"--throttle-http", "localhost:8080/x"}, "want an http:// or https:// URL"},
		{[]string{"--max-retained-wal", "lots"}, "--max-retained-wal"},
		{[]string{"--nice-ratio", "1000"}, "--nice-ratio must be from 0 to 100"},
		{[]string{"--serve-tcp-port", "70000"}, "--serve-tcp-port"},
		{[]string{"--hooks-path", filepath.Join(dir, "nope")}, "--hooks-path"},
		{[]string{"--hooks-timeout-seconds", "0"}, "--hooks-timeout-seconds"},
		{[]string{"--output", "xml"}, "--output \"xml\": want text or json"},
	} {
		_, err := parse(t, append([]string{"--database", "d"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// fakeOsc answers one command on a unix socket with reply.
func fakeOsc(t *testing.T, path, reply string) chan string {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		got <- line
		// A failed write shows as a wrong reply to the client under test
		// (this goroutine may outlive the test, so it does not report).
		_, _ = io.WriteString(c, reply)
	}()
	return got
}

func TestCtl(t *testing.T) {
	dir, err := os.MkdirTemp("", "ctl") // short: a socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s")
	got := fakeOsc(t, sock, "chunk-size set to 5\n")
	var out bytes.Buffer
	if err := run([]string{"ctl", "--socket", sock, "chunk-size=5"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if line := <-got; line != "chunk-size=5\n" || out.String() != "chunk-size set to 5\n" {
		t.Errorf("sent %q, printed %q", line, out.String())
	}

	os.Remove(sock)
	fakeOsc(t, sock, "error: unknown command \"x\"; try help\n")
	if err := run([]string{"ctl", "--socket", sock, "x"}, io.Discard, io.Discard); err == nil || err.Error() != "unknown command \"x\"; try help" {
		t.Errorf("an error reply: %v", err)
	}
	// Words are joined into one command line.
	os.Remove(sock)
	got = fakeOsc(t, sock, "ok\n")
	if err := run([]string{"ctl", "--socket", sock, "throttle-query=SELECT", "1"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if line := <-got; line != "throttle-query=SELECT 1\n" {
		t.Errorf("sent %q", line)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ctl", "--socket", sock}, "no command"},
		{[]string{"ctl", "status"}, "give exactly one of --socket, --tcp, or --database with --table"},
		{[]string{"ctl", "--socket", sock, "--tcp", "127.0.0.1:1", "status"}, "give exactly one"},
		{[]string{"ctl", "--database", "d", "status"}, "--database and --table go together"},
		{[]string{"ctl", "--database", "osc_ctl_none", "--table", "t", "status"}, "no osc serves osc_ctl_none.t here"},
		{[]string{"ctl", "--socket", filepath.Join(dir, "none"), "status"}, "is osc running?"},
	} {
		if err := run(tc.args, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestCtlFindsDefaultSocket(t *testing.T) {
	// A PostgreSQL table in public is found by its bare name.
	sock := engine.DefaultSocketFile("osc_ctl_db", "public.tbl_ctl_find")
	os.Remove(sock)
	got := fakeOsc(t, sock, "Copy: 1/1\n")
	t.Cleanup(func() { os.Remove(sock) })
	var out bytes.Buffer
	if err := run([]string{"ctl", "--database", "osc_ctl_db", "--table", "tbl_ctl_find", "sup"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if <-got != "sup\n" || out.String() != "Copy: 1/1\n" {
		t.Errorf("printed %q", out.String())
	}
}

// A dry run samples the writes for its report; an --execute run does not
// wait for them unless told to.
func TestPreflightSampleDefault(t *testing.T) {
	for _, c := range []struct {
		args []string
		want time.Duration
	}{
		{nil, 2 * time.Second},
		{[]string{"--execute"}, 0},
		{[]string{"--execute", "--preflight-sample", "3s"}, 3 * time.Second},
		{[]string{"--preflight-sample", "0"}, 0},
	} {
		o, err := parse(t, append([]string{"--database", "d"}, c.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if o.cfg.PreflightSample != c.want {
			t.Errorf("%v: --preflight-sample %s, want %s", c.args, o.cfg.PreflightSample, c.want)
		}
	}
}
