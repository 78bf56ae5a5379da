package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"osc/engine"
)

type fixedStatus engine.Status

func (f fixedStatus) Status() engine.Status { return engine.Status(f) }

// TestMetrics scrapes /metrics and /status of a migration's status: the
// numbers, the state and throttle labels, each replica's lag.
func TestMetrics(t *testing.T) {
	st := fixedStatus{
		State: engine.StateCopying, Copied: 4200, Estimated: 10000, Applied: 17, Retries: 2,
		Throttled: true, Throttle: "max-lag 2.1s > 1.5s",
		Replicas:      []engine.ReplicaLag{{Name: "db2:3306", Lag: 2100 * time.Millisecond, Known: true}, {Name: "db3:3306"}},
		CheckpointAge: 3 * time.Second, CheckpointKnown: true,
		CutOverAttempts: 2, CutOverLocked: 1500 * time.Millisecond, CutOverLongest: 1200 * time.Millisecond,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	stop, err := serveMetrics(addr, st, prometheus.Labels{"schema": "shop", "table": "orders"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	body := get(t, "http://"+addr+"/metrics")
	for _, want := range []string{
		`osc_rows_copied_total{schema="shop",table="orders"} 4200`,
		`osc_rows_estimated{schema="shop",table="orders"} 10000`,
		`osc_changes_applied_total{schema="shop",table="orders"} 17`,
		`osc_retries_total{schema="shop",table="orders"} 2`,
		`osc_state{schema="shop",state="migrating",table="orders"} 1`,
		`osc_state{schema="shop",state="done",table="orders"} 0`,
		`osc_throttled{reason="max-lag 2.1s > 1.5s",schema="shop",table="orders"} 1`,
		`osc_replica_lag_seconds{replica="db2:3306",schema="shop",table="orders"} 2.1`,
		`osc_checkpoint_age_seconds{schema="shop",table="orders"} 3`,
		`osc_cutover_attempts_total{schema="shop",table="orders"} 2`,
		`osc_cutover_lock_seconds_total{schema="shop",table="orders"} 1.5`,
		`osc_cutover_longest_lock_seconds{schema="shop",table="orders"} 1.2`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "db3:3306") {
		t.Error("/metrics reports the lag of a replica that could not be read")
	}
	if strings.Contains(body, "osc_eta_seconds") {
		t.Error("/metrics reports an unknown ETA")
	}
	if s := get(t, "http://"+addr+"/status"); !strings.Contains(s, `"rows_copied":4200`) {
		t.Errorf("/status: %s", s)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

func TestMetricsAddress(t *testing.T) {
	for in, want := range map[string]string{":9108": "127.0.0.1:9108", "0.0.0.0:9108": "0.0.0.0:9108", "[::1]:1": "[::1]:1"} {
		if got, err := metricsAddress(in); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := metricsAddress("9108"); err == nil {
		t.Error("a bare port was accepted")
	}
}

func TestMetricLabels(t *testing.T) {
	for _, tc := range []struct {
		cfg                 engine.Config
		postgres            bool
		wantSchema, wantTab string
	}{
		{engine.Config{Schema: "shop", Table: "orders"}, false, "shop", "orders"},
		{engine.Config{Table: "sales.orders"}, true, "sales", "orders"},
		{engine.Config{Table: "orders"}, true, "public", "orders"},
	} {
		l := metricLabels(tc.cfg, tc.postgres)
		if l["schema"] != tc.wantSchema || l["table"] != tc.wantTab {
			t.Errorf("%+v: %v", tc.cfg, l)
		}
	}
}
