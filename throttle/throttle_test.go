package throttle

import (
	"strings"
	"testing"
)

func TestParseThresholds(t *testing.T) {
	th, err := ParseThresholds(" Threads_running=25, Threads_connected = 500 ,")
	if err != nil {
		t.Fatal(err)
	}
	if th.String() != "Threads_running=25,Threads_connected=500" || strings.Join(th.Names(), " ") != "Threads_running Threads_connected" {
		t.Errorf("got %s", th)
	}
	if th, err := ParseThresholds(""); err != nil || len(th) != 0 {
		t.Errorf("empty: %v %v", th, err)
	}
	for _, bad := range []string{"Threads_running", "Threads_running=x", "Threads_running=-1", "a b=1", "=3", "x=1,X=2"} {
		if _, err := ParseThresholds(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseReplicas(t *testing.T) {
	r, err := ParseReplicas("127.0.0.1:13307, db2:3306,127.0.0.1:13307,[::1]:3307", false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(r, " ") != "127.0.0.1:13307 db2:3306 [::1]:3307" {
		t.Errorf("got %v", r)
	}
	for _, bad := range []string{"db2", "db2:x", ":3306", "db2:0", "db2:70000", "postgres://u@h/db"} {
		if _, err := ParseReplicas(bad, false); err == nil {
			t.Errorf("%q accepted for MySQL", bad)
		}
	}
	r, err = ParseReplicas("postgres://u@standby:5432/db?sslmode=disable,host=s2 port=5433,s3:5432", true)
	if err != nil || len(r) != 3 {
		t.Errorf("PostgreSQL entries: %v %v", r, err)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1GB": 1 << 30, "512MB": 512 << 20, "1048576": 1 << 20, "1.5g": 3 << 29, "2 kb": 2048, "0": 0} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "GB", "-1GB", "ten"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if FormatBytes(3<<29) != "1.5GB" || FormatBytes(100) != "100B" {
		t.Errorf("FormatBytes: %s %s", FormatBytes(3<<29), FormatBytes(100))
	}
}
