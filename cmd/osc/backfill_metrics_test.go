package main

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"osc/engine"
)

type fixedBackfillStatus engine.BackfillStatus

func (f fixedBackfillStatus) Status() engine.BackfillStatus { return engine.BackfillStatus(f) }

// TestBackfillMetrics scrapes /metrics and /status of a backfill's status.
func TestBackfillMetrics(t *testing.T) {
	st := fixedBackfillStatus{
		State: engine.BackfillRunning, Scanned: 4200, Estimated: 10000, Updated: 4100, Chunks: 42, ChunkSize: 250,
		Retries: 3, Counted: 0, Lag: 1500 * time.Millisecond, LagKnown: true, Throttled: true, Throttle: "flag-file /tmp/x",
		Elapsed: 20 * time.Second,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	labels := prometheus.Labels{"schema": "shop", "table": "users"}
	stop, err := serveCollector(addr, newBackfillCollector(st, labels), func() string { return engine.BackfillStatus(st).JSON() }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	body := get(t, "http://"+addr+"/metrics")
	for _, want := range []string{
		`osc_backfill_rows_scanned_total{schema="shop",table="users"} 4200`,
		`osc_backfill_rows_estimated{schema="shop",table="users"} 10000`,
		`osc_backfill_rows_updated_total{schema="shop",table="users"} 4100`,
		`osc_backfill_chunks_total{schema="shop",table="users"} 42`,
		`osc_backfill_chunk_size{schema="shop",table="users"} 250`,
		`osc_backfill_retries_total{schema="shop",table="users"} 3`,
		`osc_backfill_replica_lag_seconds{schema="shop",table="users"} 1.5`,
		`osc_backfill_throttled{reason="flag-file /tmp/x",schema="shop",table="users"} 1`,
		`osc_backfill_state{schema="shop",state="backfilling",table="users"} 1`,
		`osc_backfill_state{schema="shop",state="verifying",table="users"} 0`,
		`osc_backfill_elapsed_seconds{schema="shop",table="users"} 20`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "osc_backfill_eta_seconds") {
		t.Error("/metrics reports an unknown ETA")
	}
	if s := get(t, "http://"+addr+"/status"); !strings.Contains(s, `"rows_scanned":4200`) {
		t.Errorf("/status: %s", s)
	}
}
