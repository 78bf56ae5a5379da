package probe

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/internal/testdb"
	"osc/table"
	"osc/throttle"
)

func pgTestDSN(port string) string {
	return fmt.Sprintf("postgres://%s@%s:%s/osc_test?sslmode=disable",
		testEnv("OSC_PG_USER", "postgres"), testEnv("OSC_PG_HOST", "127.0.0.1"), port)
}

func pgProbePool(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	dsn := pgTestDSN(testEnv("OSC_PG_PORT", "15432"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool, err := table.OpenPostgres(ctx, dsn)
	if err != nil {
		testdb.Unreachable(t, "PostgreSQL", err)
	}
	t.Cleanup(pool.Close)
	return pool, dsn
}

// beatUntil writes heartbeats every 50 ms until cond holds on the lags read
// (10 s at most).
func beatUntil(t *testing.T, p *PostgresProbe, given []string, what string, cond func([]throttle.ReplicaLag) bool) []throttle.ReplicaLag {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := p.Heartbeat(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		lags := p.ReplicaLags(ctx, given)
		if cond(lags) {
			return lags
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, lags)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPostgresProbe(t *testing.T) {
	pool, dsn := pgProbePool(t)
	ctx := context.Background()
	p := NewPostgres(pool, dsn, "osc_tbl_ctl_probe", nil)
	defer p.Close()
	standbyPort := testEnv("OSC_PG_STANDBY_PORT", "15433")
	standby := "127.0.0.1:" + standbyPort
	standbyDSN := pgTestDSN(standbyPort)
	given := []string{standby, standbyDSN}

	all := func(max time.Duration) func([]throttle.ReplicaLag) bool {
		return func(lags []throttle.ReplicaLag) bool {
			streaming := 0
			for _, l := range lags {
				if l.Err != nil || l.Lag > max {
					return false
				}
				if strings.HasPrefix(l.Name, "walreceiver@") {
					streaming++
				}
			}
			return len(lags) == 3 && streaming == 1
		}
	}
	// The streaming standby (pg_stat_replication; osc's own logical
	// walsenders are not listed) and the same standby given twice.
	lags := beatUntil(t, p, given, "the standby to be current", all(time.Second))
	if lags[1].Name != standby || lags[2].Name != "127.0.0.1:"+standbyPort {
		t.Errorf("names %q %q (the connection string is shown as host:port)", lags[1].Name, lags[2].Name)
	}

	// A paused replay shows as growing lag, everywhere.
	sb, err := pgx.Connect(ctx, standbyDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(ctx)
	if _, err := sb.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Always, even when the test failed: other tests share the standby.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, standbyDSN)
		if err == nil {
			_, err = c.Exec(ctx, "SELECT pg_wal_replay_resume()")
			c.Close(ctx)
		}
		if err != nil {
			t.Errorf("resume replay on the standby: %v", err)
		}
	})
	beatUntil(t, p, given, "lag over 700ms on a paused standby", func(lags []throttle.ReplicaLag) bool {
		for _, l := range lags {
			if l.Err != nil || l.Lag < 700*time.Millisecond {
				return false
			}
		}
		return len(lags) == 3
	})
	if _, err := sb.Exec(ctx, "SELECT pg_wal_replay_resume()"); err != nil {
		t.Fatal(err)
	}
	beatUntil(t, p, given, "the standby to catch up", all(time.Second))

	// The primary is not a standby.
	lags = p.ReplicaLags(ctx, []string{"127.0.0.1:" + testEnv("OSC_PG_PORT", "15432")})
	if last := lags[len(lags)-1]; last.Err == nil || !strings.Contains(last.Err.Error(), "not a standby") {
		t.Errorf("primary as a replica: %+v", last)
	}

	v, err := p.Load(ctx, []string{"active_backends", "Threads_connected"})
	if err != nil || v[0] < 0 || v[1] < 1 {
		t.Errorf("load %v %v", v, err)
	}
	if _, err := p.Load(ctx, []string{"Innodb_rows_read"}); err == nil || !strings.Contains(err.Error(), "active_backends") {
		t.Errorf("unknown metric: %v", err)
	}
	for q, want := range map[string]int64{"SELECT 2": 2, "SELECT NULL": 0, "SELECT 2.9::numeric": 2, "SELECT 1 WHERE false": 0} {
		if got, err := p.Query(ctx, q); err != nil || got != want {
			t.Errorf("%s: %d %v", q, got, err)
		}
	}
	if _, err := p.Query(ctx, "SELECT nope"); err == nil {
		t.Error("bad query accepted")
	}

	// Retained WAL: none without the slot; measured with it.
	if _, ok, err := p.RetainedWAL(ctx); ok || err != nil {
		t.Errorf("RetainedWAL without the slot: %v %v", ok, err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_create_logical_replication_slot('osc_tbl_ctl_probe', 'pgoutput', true)"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "SELECT pg_logical_emit_message(false, 'osc_tbl_ctl_probe', repeat('x', 100000))"); err != nil {
		t.Fatal(err)
	}
	n, ok, err := p.RetainedWAL(ctx)
	if err != nil || !ok || n < 50000 {
		t.Errorf("RetainedWAL with the slot: %d %v %v", n, ok, err)
	}
}

func TestPostgresLagAt(t *testing.T) {
	p := NewPostgres(nil, "", "", nil)
	t0 := time.Now().Add(-time.Second)
	if _, err := p.lagAt(100, t0); err == nil {
		t.Error("lag without heartbeats")
	}
	// Heartbeats at t0, +100ms, +200ms ending at 100, 200, 300.
	for i := range 3 {
		p.beats = append(p.beats, pgBeat{at: t0.Add(time.Duration(i) * 100 * time.Millisecond), lsn: int64(100 * (i + 1))})
	}
	now := t0.Add(time.Second)
	for _, tc := range []struct {
		replayed int64
		want     time.Duration
	}{
		{50, time.Second},              // before the first: at least since it
		{100, time.Second},             // the first replayed
		{250, 900 * time.Millisecond},  // the second replayed, not the third
		{300, 800 * time.Millisecond},  // all replayed
		{1000, 800 * time.Millisecond}, // beyond
	} {
		if got, err := p.lagAt(tc.replayed, now); err != nil || got != tc.want {
			t.Errorf("replayed %d: %v %v, want %v", tc.replayed, got, err, tc.want)
		}
	}
}

func TestDisplayReplica(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h1:5433/db": "h1:5433",
		"host=h2 port=5 password=secret": "h2:5",
		"r1:3306":                        "r1:3306",
	} {
		if got := DisplayReplica(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
