package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"osc/engine"
)

// backfillStatusReader is what a backfill's metrics are read from.
type backfillStatusReader interface {
	Status() engine.BackfillStatus
}

// allBackfillStates are the states osc_backfill_state reports, one series
// each.
var allBackfillStates = []engine.BackfillState{
	engine.BackfillInspecting, engine.BackfillRunning, engine.BackfillVerifying, engine.BackfillDone, engine.BackfillFailed,
}

// backfillCollector turns a backfill's status into Prometheus metrics at
// every scrape, as statusCollector does a migration's; the series are named
// osc_backfill_*.
type backfillCollector struct {
	b backfillStatusReader

	scanned, estimated, updated, rate, chunks, chunkSize, retries, counted *prometheus.Desc
	lag, throttled, state, elapsed, eta                                    *prometheus.Desc
}

func newBackfillCollector(b backfillStatusReader, labels prometheus.Labels) *backfillCollector {
	d := func(name, help string, variable ...string) *prometheus.Desc {
		return prometheus.NewDesc("osc_backfill_"+name, help, variable, labels)
	}
	return &backfillCollector{
		b:         b,
		scanned:   d("rows_scanned_total", "Rows of the table the chunks have covered (a resumed run: with the killed run's, estimated)."),
		estimated: d("rows_estimated", "Rows the table is estimated to hold."),
		updated:   d("rows_updated_total", "Rows the chunks' UPDATEs changed."),
		rate:      d("rows_per_second", "Rows scanned per second since the chunks started."),
		chunks:    d("chunks_total", "Chunks committed."),
		chunkSize: d("chunk_size", "Rows the next chunk covers."),
		retries:   d("retries_total", "Chunks run again after a lock wait timeout or a deadlock."),
		counted:   d("rows_counted", "Rows the count of --verify (or of the dry run's plan) has walked."),
		lag:       d("replica_lag_seconds", "Replication lag the throttler last read."),
		throttled: d("throttled", "1 while the backfill is throttled, with the reason.", "reason"),
		state:     d("state", "1 for the backfill's current state.", "state"),
		elapsed:   d("elapsed_seconds", "Time since the backfill started."),
		eta:       d("eta_seconds", "Estimated time to the end of the chunks."),
	}
}

func (c *backfillCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *backfillCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.b.Status()
	e := emitter(ch)
	gauge, counter := e.gauge, e.counter
	counter(c.scanned, float64(s.Scanned))
	gauge(c.estimated, float64(s.Estimated))
	counter(c.updated, float64(s.Updated))
	gauge(c.rate, s.Rate)
	counter(c.chunks, float64(s.Chunks))
	gauge(c.chunkSize, float64(s.ChunkSize))
	counter(c.retries, float64(s.Retries))
	gauge(c.counted, float64(s.Counted))
	if s.LagKnown {
		gauge(c.lag, s.Lag.Seconds())
	}
	gauge(c.throttled, flag(s.Throttled), s.Throttle)
	states := make([]string, len(allBackfillStates))
	for i, st := range allBackfillStates {
		states[i] = st.String()
	}
	e.oneOf(c.state, states, s.State.String())
	gauge(c.elapsed, s.Elapsed.Seconds())
	if s.ETAKnown {
		gauge(c.eta, s.ETA.Seconds())
	}
}
