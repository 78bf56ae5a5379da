package engine

import (
	"fmt"
	"time"
)

// The preflight report's plan: which path the --alter takes, clause by
// clause, the statements and their locks, and an estimate of how long.

// Rates for the estimate, in rows per second, as `make bench` measured them
// on a 2-core sandbox (README, Performance): osc's copy without load, and the
// server's own INSERT … SELECT (an index build or a validation reads the
// table at about that rate). A real server differs; the report says so.
var (
	estimateCopyRate = map[string]float64{"mysql": 158_000, "postgres": 256_000}
	estimateScanRate = map[string]float64{"mysql": 222_000, "postgres": 410_000}
)

// estimateChecksumShare is the checksum's time as a share of the copy's
// (the benchmark's: 21 to 37 %).
const estimateChecksumShare = 0.3

// planEstimate is the estimated duration of the plan, without lock waits,
// and how it was made; ok is false when the rows are unknown.
func planEstimate(np *NativePlan, rows int64, driver string) (d time.Duration, how string, ok bool) {
	reads := 0
	for _, s := range np.Steps {
		if s.Reads {
			reads++
		}
	}
	if np.Native() && reads == 0 {
		return 0, "catalog changes only: milliseconds once the locks are taken", true
	}
	if rows < 0 {
		return 0, "the row count is unknown (the table was never analyzed)", false
	}
	secs := func(rows int64, rate float64) time.Duration {
		return time.Duration(float64(rows) / rate * float64(time.Second))
	}
	if np.Native() {
		rate := estimateScanRate[driver]
		return time.Duration(reads) * secs(rows, rate),
			fmt.Sprintf("%d read(s) of ~%s rows at ~%s rows/s (the server's raw rate in `make bench` on a 2-core sandbox; yours differs)",
				reads, thousands(rows), thousands(int64(rate))), true
	}
	rate := estimateCopyRate[driver]
	copyTime := secs(rows, rate)
	return copyTime + time.Duration(float64(copyTime)*estimateChecksumShare),
		fmt.Sprintf("the copy of ~%s rows at ~%s rows/s and the checksum (~%d%% more), as `make bench` measured on a 2-core sandbox without load (yours differs; writes slow it)",
			thousands(rows), thousands(int64(rate)), int(estimateChecksumShare*100)), true
}

// planText renders the plan's lines of the report.
func planText(line func(name, format string, a ...any), np *NativePlan, cfg Config, rows int64, driver string) {
	worst := cfg.CutOverLockTimeout * time.Duration(cfg.CutOverRetries)
	switch {
	case np == nil:
		line("plan", "copy (resuming a killed run)")
	case np.Native():
		line("plan", "native, no copy: %d step(s)", len(np.Steps))
	default:
		line("plan", "copy the table: %s", np.Why)
	}
	if np != nil {
		for _, c := range np.Clauses {
			d := c.Path
			if c.Detail != "" {
				d += ": " + c.Detail
			}
			line("clause", "%s: %s", c.Clause, d)
		}
	}
	if np.Native() {
		for i, s := range np.Steps {
			lock := "writers go on"
			if s.BlocksWriters {
				lock = fmt.Sprintf("blocks writers at most %s per attempt, up to %d attempts (%s at worst)", cfg.CutOverLockTimeout, cfg.CutOverRetries, worst)
			}
			if s.Reads {
				lock += "; reads the whole table"
			}
			line(fmt.Sprintf("step %d", i+1), "%s [%s: %s]", s.SQL, s.Lock, lock)
		}
	} else {
		line("locks", "the checksum and the cut-over each block writes at most %s per attempt, up to %d attempts (%s at worst)",
			cfg.CutOverLockTimeout, cfg.CutOverRetries, worst)
	}
	if np == nil {
		return
	}
	if d, how, ok := planEstimate(np, rows, driver); ok {
		line("estimate", "~%s, plus any lock waits: %s", d.Round(100*time.Millisecond), how)
	} else {
		line("estimate", "none: %s", how)
	}
}

// planJSON is the plan in the JSON report.
type planJSON struct {
	Path             string       `json:"path"` // "native" or "copy"
	Why              string       `json:"why,omitempty"`
	Clauses          []clauseJSON `json:"clauses"`
	Steps            []stepJSON   `json:"steps"`
	EstimatedSeconds *float64     `json:"estimated_seconds"` // null: unknown
	Estimate         string       `json:"estimate"`
}

type clauseJSON struct {
	Clause string `json:"clause"`
	Path   string `json:"path"`
	Detail string `json:"detail,omitempty"`
}

type stepJSON struct {
	SQL             string  `json:"sql"`
	Lock            string  `json:"lock"`
	BlocksWriters   bool    `json:"blocks_writers"`
	MaxBlockSeconds float64 `json:"max_block_seconds_per_attempt"`
	Attempts        int     `json:"attempts"`
	ReadsTable      bool    `json:"reads_table"`
}

func planToJSON(np *NativePlan, cfg Config, rows int64, driver string) *planJSON {
	if np == nil {
		return &planJSON{Path: "copy", Why: "resuming a killed run", Clauses: []clauseJSON{}, Steps: []stepJSON{}}
	}
	p := &planJSON{Path: "copy", Why: np.Why, Clauses: []clauseJSON{}, Steps: []stepJSON{}}
	if np.Native() {
		p.Path, p.Why = "native", ""
	}
	for _, c := range np.Clauses {
		p.Clauses = append(p.Clauses, clauseJSON(c))
	}
	for _, s := range np.Steps {
		j := stepJSON{SQL: s.SQL, Lock: s.Lock, BlocksWriters: s.BlocksWriters, ReadsTable: s.Reads, Attempts: cfg.CutOverRetries}
		if s.BlocksWriters {
			j.MaxBlockSeconds = cfg.CutOverLockTimeout.Seconds()
		}
		p.Steps = append(p.Steps, j)
	}
	d, how, ok := planEstimate(np, rows, driver)
	p.Estimate = how
	if ok {
		secs := d.Seconds()
		p.EstimatedSeconds = &secs
	}
	return p
}
