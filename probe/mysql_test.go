package probe

import (
	"context"
	"database/sql"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"osc/internal/testdb"
	"osc/table"
)

func testEnv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// mysqlProbeDB opens osc_test on the sandbox primary and creates a changelog
// table like osc's, dropped at the end.
func mysqlProbeDB(t *testing.T, changelog string) (*sql.DB, table.MySQLConn) {
	t.Helper()
	port, err := strconv.Atoi(testEnv("OSC_MYSQL_PORT", "13306"))
	if err != nil {
		t.Fatal(err)
	}
	conn := table.MySQLConn{Host: testEnv("OSC_MYSQL_HOST", "127.0.0.1"), Port: port,
		User: testEnv("OSC_MYSQL_USER", "root"), Password: os.Getenv("OSC_MYSQL_PASSWORD")}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	db, err := table.OpenMySQL(ctx, conn, "osc_test")
	if err != nil {
		testdb.Unreachable(t, "MySQL", err)
	}
	drop := func() {
		if _, err := db.Exec("DROP TABLE IF EXISTS " + table.QuoteMySQL(changelog)); err != nil {
			t.Errorf("drop: %v", err)
		}
	}
	drop()
	t.Cleanup(func() { drop(); db.Close() })
	if _, err := db.Exec("CREATE TABLE " + table.QuoteMySQL(changelog) + ` (id BIGINT AUTO_INCREMENT PRIMARY KEY,
		ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), hint VARCHAR(64) NOT NULL, value VARCHAR(4096) NOT NULL) ENGINE=InnoDB`); err != nil {
		t.Fatal(err)
	}
	return db, conn
}

func TestMySQLProbe(t *testing.T) {
	const changelog = "_tbl_ctl_probe_ghc"
	db, conn := mysqlProbeDB(t, changelog)
	ctx := context.Background()
	p := NewMySQL(db, conn, "osc_test", changelog, 0, nil)
	defer p.Close()

	// A marker row (as cdc writes them) is left alone by the heartbeat.
	if _, err := db.Exec("INSERT INTO " + changelog + " (hint, value) VALUES ('marker', 'm1')"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := p.Heartbeat(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var rows, beats int
	if err := db.QueryRow("SELECT COUNT(*), SUM(hint = 'heartbeat') FROM "+changelog).Scan(&rows, &beats); err != nil {
		t.Fatal(err)
	}
	if rows != 2 || beats != 1 {
		t.Errorf("changelog has %d rows, %d heartbeats; want the marker and one heartbeat", rows, beats)
	}

	// The sandbox replica is discovered (it reports 127.0.0.1:13307) and
	// its lag read from the replicated heartbeat.
	replica := "127.0.0.1:" + testEnv("OSC_MYSQL_REPLICA_PORT", "13307")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := p.Heartbeat(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		lags := p.ReplicaLags(ctx, nil)
		if len(lags) == 1 && lags[0].Name == replica && lags[0].Err == nil && lags[0].Lag < time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica not discovered or lagging: %+v", lags)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Given explicitly too, it is read once; an unreachable one fails.
	lags := p.ReplicaLags(ctx, []string{replica, "127.0.0.1:1"})
	if len(lags) != 2 || lags[0].Name != replica || lags[0].Err != nil || lags[1].Err == nil {
		t.Errorf("lags %+v", lags)
	}

	v, err := p.Load(ctx, []string{"Threads_connected", "threads_running"})
	if err != nil || v[0] < 1 || v[1] < 1 {
		t.Errorf("load %v %v", v, err)
	}
	if _, err := p.Load(ctx, []string{"No_such_variable"}); err == nil || !strings.Contains(err.Error(), "no such global status variable") {
		t.Errorf("unknown variable: %v", err)
	}
	for q, want := range map[string]int64{"SELECT 3": 3, "SELECT NULL": 0, "SELECT 1.7": 1, "SELECT 1 FROM DUAL WHERE 0": 0} {
		if got, err := p.Query(ctx, q); err != nil || got != want {
			t.Errorf("%s: %d %v", q, got, err)
		}
	}
	if _, err := p.Query(ctx, "SELECT nope"); err == nil {
		t.Error("bad query accepted")
	}
	if _, ok, err := p.RetainedWAL(ctx); ok || err != nil {
		t.Errorf("RetainedWAL on MySQL: %v %v", ok, err)
	}
}
