package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"osc/engine"
)

// statusReader is what the metrics are read from: a running migration.
type statusReader interface {
	Status() engine.Status
}

// allStates are the states osc_state reports, one series each (1 for the
// current one), so that an alert can watch one state.
var allStates = []engine.State{
	engine.StateInspecting, engine.StateCopying, engine.StateCaughtUp, engine.StatePostponed,
	engine.StateChecksumming, engine.StateCuttingOver, engine.StateDone, engine.StateFailed,
	engine.StateRevertWindow, engine.StateReverting,
}

// statusCollector turns the migration's status into Prometheus metrics at
// every scrape: the status is the one source of the numbers, as for the
// status lines.
type statusCollector struct {
	m      statusReader
	labels prometheus.Labels // database, table

	copied, estimated, rate, applied, backlog, lag, throttled, state *prometheus.Desc
	checksummed, checksumRate, checkpointAge, elapsed, eta           *prometheus.Desc
	retries, retainedWAL                                             *prometheus.Desc
	cutOverAttempts, cutOverLocked, cutOverLongest                   *prometheus.Desc
}

func newStatusCollector(m statusReader, labels prometheus.Labels) *statusCollector {
	d := func(name, help string, variable ...string) *prometheus.Desc {
		return prometheus.NewDesc("osc_"+name, help, variable, labels)
	}
	return &statusCollector{
		m: m, labels: labels,
		copied:          d("rows_copied_total", "Rows the copy has covered."),
		estimated:       d("rows_estimated", "Rows the table is estimated to hold."),
		rate:            d("copy_rows_per_second", "Copy rate since the copy started."),
		applied:         d("changes_applied_total", "Captured changes applied to the shadow table."),
		backlog:         d("backlog_seconds", "How long a change committed now takes to reach the shadow table."),
		lag:             d("replica_lag_seconds", "Replication lag of each replica the throttler watches, as last read.", "replica"),
		throttled:       d("throttled", "1 while the copy is throttled, with the reason.", "reason"),
		state:           d("state", "1 for the migration's current state.", "state"),
		checksummed:     d("rows_checksummed", "Rows of the table the current checksum pass has compared."),
		checksumRate:    d("checksum_rows_per_second", "Checksum rate of the current pass."),
		checkpointAge:   d("checkpoint_age_seconds", "Time since the last checkpoint was saved."),
		elapsed:         d("elapsed_seconds", "Time since the migration started."),
		eta:             d("eta_seconds", "Estimated time to the end of the copy (or of the checksum pass)."),
		retries:         d("retries_total", "Statements run again after a transient failure (deadlock, lock wait timeout)."),
		retainedWAL:     d("retained_wal_bytes", "WAL the replication slot retains (PostgreSQL)."),
		cutOverAttempts: d("cutover_attempts_total", "Attempts the cut-over made at its lock, failed ones included."),
		cutOverLocked: d("cutover_lock_seconds_total",
			"Time the cut-over's attempts took, from the lock request to its release, in all: writers wait at most an attempt's time."),
		cutOverLongest: d("cutover_longest_lock_seconds", "The longest cut-over attempt so far, from the lock request to its release."),
	}
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

// emitter sends a collector's constant metrics at a scrape.
type emitter chan<- prometheus.Metric

func (e emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (e emitter) counter(d *prometheus.Desc, v float64) {
	e <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
}

// oneOf sends d as 1 for the label value current and 0 for the others.
func (e emitter) oneOf(d *prometheus.Desc, all []string, current string) {
	for _, v := range all {
		e.gauge(d, map[bool]float64{true: 1}[v == current], v)
	}
}

// flag is 1 for true.
func flag(b bool) float64 { return map[bool]float64{true: 1}[b] }

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.Status()
	e := emitter(ch)
	gauge, counter := e.gauge, e.counter
	counter(c.copied, float64(s.Copied))
	gauge(c.estimated, float64(s.Estimated))
	gauge(c.rate, s.CopyRate)
	counter(c.applied, float64(s.Applied))
	gauge(c.backlog, s.Backlog.Seconds())
	for _, r := range s.Replicas {
		if r.Known {
			gauge(c.lag, r.Lag.Seconds(), r.Name)
		}
	}
	gauge(c.throttled, flag(s.Throttled), s.Throttle)
	states := make([]string, len(allStates))
	for i, st := range allStates {
		states[i] = st.String()
	}
	e.oneOf(c.state, states, s.State.String())
	gauge(c.checksummed, float64(s.Checksummed))
	gauge(c.checksumRate, s.ChecksumRate)
	if s.CheckpointKnown {
		gauge(c.checkpointAge, s.CheckpointAge.Seconds())
	}
	gauge(c.elapsed, s.Elapsed.Seconds())
	if s.ETAKnown {
		gauge(c.eta, s.ETA.Seconds())
	}
	counter(c.retries, float64(s.Retries))
	counter(c.cutOverAttempts, float64(s.CutOverAttempts))
	counter(c.cutOverLocked, s.CutOverLocked.Seconds())
	gauge(c.cutOverLongest, s.CutOverLongest.Seconds())
	if s.RetainedWALKnown {
		gauge(c.retainedWAL, float64(s.RetainedWAL))
	}
}

// metricLabels labels every series with the table's schema (MySQL: its
// database) and name; a PostgreSQL --table schema.t is split, and the schema
// defaults to public, as the migration names them.
func metricLabels(cfg engine.Config, postgres bool) prometheus.Labels {
	schema, name := cfg.Schema, cfg.Table
	if postgres && schema == "" {
		schema = "public"
		if s, t, ok := strings.Cut(name, "."); ok {
			schema, name = s, t
		}
	}
	return prometheus.Labels{"schema": schema, "table": name}
}

// metricsAddress checks --metrics-address; a missing host is loopback, as
// for --serve-tcp-address: the metrics say what the table holds and how
// busy the server is.
func metricsAddress(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--metrics-address %q: want host:port (e.g. 127.0.0.1:9108): %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// serveMetrics serves a migration's /metrics (Prometheus text format) and
// /status (the JSON status line) on addr until stop is called.
func serveMetrics(addr string, m statusReader, labels prometheus.Labels, log *slog.Logger) (stop func(), err error) {
	return serveCollector(addr, newStatusCollector(m, labels), func() string { return m.Status().JSON() }, log)
}

// serveCollector serves c's metrics at /metrics and status's JSON at
// /status on addr until stop is called.
func serveCollector(addr string, c prometheus.Collector, status func() string, log *slog.Logger) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, status()+"\n") //nolint:errcheck // the client went away
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "address", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx) //nolint:errcheck // exiting anyway
		<-done
	}, nil
}
