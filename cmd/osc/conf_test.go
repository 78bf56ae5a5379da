package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConf(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "osc.cnf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConf: [client] gives the MySQL login, [osc] any flag, the command
// line wins, values are literal, and mistakes are named without the value.
func TestConf(t *testing.T) {
	path := writeConf(t, `# osc settings
[client]
user = osc
password = "s3cr#t;x"
socket = /var/run/mysqld/mysqld.sock

[mysqld]
datadir = /var/lib/mysql

[osc]
database = shop
chunk-size = 500
max-lag-millis = 2500
ok-to-drop-table
`)
	o, _, err := parseFlags([]string{"--conf", path, "--table", "orders", "--alter", "ADD c INT", "--chunk-size", "200"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.user != "osc" || o.password != "s3cr#t;x" || o.database != "shop" || !o.cfg.OkToDropTable {
		t.Errorf("user %q, password %q, database %q, ok-to-drop-table %v", o.user, o.password, o.database, o.cfg.OkToDropTable)
	}
	if o.cfg.ChunkSize != 200 {
		t.Errorf("chunk size %d: the command line's 200 must win", o.cfg.ChunkSize)
	}
	if o.cfg.Control.MaxLag.Milliseconds() != 2500 {
		t.Errorf("max lag %v", o.cfg.Control.MaxLag)
	}

	for text, want := range map[string]string{
		"[osc]\nchunk-sise = 5\n":          "[osc] chunk-sise is not an osc flag",
		"[osc]\nchunk-size = many\n":       "[osc] chunk-size: not a valid value for --chunk-size",
		"[client]\nport = hunter2\n":       "[client] port: not a valid value for --port",
		"chunk-size = 10\n[osc]\nconf = x": "[osc] conf is not an osc flag",
	} {
		_, _, err := parseFlags([]string{"--conf", writeConf(t, text), "--table", "t", "--alter", "ADD c INT"}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: %v, want %q (and never the value)", text, err, want)
		}
	}
	if _, _, err := parseFlags([]string{"--conf", "/nonexistent/osc.cnf", "--table", "t", "--alter", "ADD c INT"}, io.Discard); err == nil {
		t.Error("a missing --conf file was accepted")
	}
}
