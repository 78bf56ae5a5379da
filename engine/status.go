package engine

import (
	"context"
	"fmt"
	"time"
)

// Status is a snapshot of a migration's progress.
type Status struct {
	State      State
	Copied     int64
	Estimated  int64
	Applied    int64
	Elapsed    time.Duration
	CopyRate   float64 // rows/s since the copy started
	ETA        time.Duration
	ETAKnown   bool
	Capture    string // change capture position
	CopyFinish bool

	// Checksummed is the number of rows the checksum compared in its
	// current pass, of Estimated; ChecksumRate is rows/s.
	Checksummed  int64
	ChecksumRate float64

	// CheckpointAge is how long ago the last checkpoint was saved
	// (CheckpointKnown: one was).
	CheckpointAge   time.Duration
	CheckpointKnown bool

	// Retries counts statements run again after a transient failure
	// (deadlock, lock wait timeout).
	Retries int64

	// CutOverAttempts counts the cut-over's attempts at its lock so far;
	// CutOverLocked is how long they took in all, CutOverLongest the
	// longest one: each is the longest a writer waited on that attempt.
	CutOverAttempts int64
	CutOverLocked   time.Duration
	CutOverLongest  time.Duration

	// Operator control (filled by control.go).
	Throttled bool
	Throttle  string        // why the copy is paused
	Lag       time.Duration // the largest replica lag read
	LagKnown  bool
	Replicas  []ReplicaLag  // each replica's lag, as last read
	Backlog   time.Duration // how long a change committed now takes to reach the shadow
	// RetainedWAL is what PostgreSQL's replication slot retains, in bytes
	// (RetainedWALKnown: it was read).
	RetainedWAL      int64
	RetainedWALKnown bool

	// The revert window (revert.go): open, how long it has left, the
	// changes applied to the old table since the cut-over, and the rows the
	// old table could not take (a revert is refused while there is one).
	RevertWindow  bool
	RevertLeft    time.Duration
	RevertApplied int64
	RevertRefused int

	// Native is the native path's step ("step i of n: statement"), "" on a
	// copy.
	Native string
}

// ReplicaLag is one replica's lag as the throttler last read it. Name is as
// the status shows it (no password).
type ReplicaLag struct {
	Name  string
	Lag   time.Duration
	Known bool // false: the last read failed
}

// Status returns the migration's progress now.
func (m *Migration) Status() Status {
	// The socket asks from its own goroutines: read what Run sets through
	// the control's lock.
	plan, src, started := m.ctl.view()
	s := Status{
		State:   m.State(),
		Copied:  m.copied.Load(),
		Applied: m.applied.Load(),
		Retries: m.retries.Load(),

		CutOverAttempts: m.cutOverAttempts.Load(),
		CutOverLocked:   time.Duration(m.cutOverLocked.Load()),
		CutOverLongest:  time.Duration(m.cutOverLongest.Load()),
	}
	if !started.IsZero() {
		s.Elapsed = time.Since(started)
	}
	if plan != nil {
		s.Estimated = plan.EstimatedRows
	}
	if m.exactKnown.Load() {
		s.Estimated = m.exactRows.Load()
	}
	if s.Copied > s.Estimated {
		s.Estimated = s.Copied
	}
	if src != nil {
		s.Capture = src.Lag()
	}
	if start := m.copyStart.Load(); start != 0 {
		end := time.Now()
		if e := m.copyEnd.Load(); e != 0 {
			end = time.Unix(0, e)
			s.CopyFinish = true
		}
		if d := end.Sub(time.Unix(0, start)); d > 0 {
			s.CopyRate = float64(s.Copied) / d.Seconds()
		}
	}
	switch {
	case s.CopyFinish:
		s.ETA, s.ETAKnown = 0, true
	case s.CopyRate > 0:
		s.ETA = time.Duration(float64(s.Estimated-s.Copied) / s.CopyRate * float64(time.Second))
		s.ETAKnown = true
	}
	if start := m.checksumStart.Load(); start != 0 {
		s.Checksummed = m.checksummed.Load()
		if d := time.Since(time.Unix(0, start)); d > 0 {
			s.ChecksumRate = float64(s.Checksummed) / d.Seconds()
		}
		if s.State == StateChecksumming && s.ChecksumRate > 0 {
			s.ETA = time.Duration(float64(max(s.Estimated-s.Checksummed, 0)) / s.ChecksumRate * float64(time.Second))
			s.ETAKnown = true
		}
	}
	if p := m.nativeAt.Load(); p != nil {
		s.Native, s.Elapsed = p.step, time.Since(p.start)
	}
	if t := m.checkpointSaved.Load(); t != 0 {
		s.CheckpointAge, s.CheckpointKnown = time.Since(time.Unix(0, t)), true
	}
	m.controlStatus(&s)
	m.revertStatus(&s)
	return s
}

// String renders the status line, gh-ost style.
func (s Status) String() string {
	pct := 100.0
	if s.Estimated > 0 {
		pct = 100 * float64(s.Copied) / float64(s.Estimated)
	}
	eta := "N/A"
	if s.ETAKnown {
		eta = s.ETA.Round(time.Second).String()
	}
	lag := "n/a"
	if s.LagKnown {
		lag = fmt.Sprintf("%.2fs", s.Lag.Seconds())
	}
	if s.Native != "" {
		line := fmt.Sprintf("Native (no copy): %s; Lag: %s; State: %s; Elapsed: %s", s.Native, lag, s.State, s.Elapsed.Round(time.Second))
		if s.Throttled {
			line += "; Throttled: " + s.Throttle
		}
		return line
	}
	line := fmt.Sprintf("Copy: %d/%d %.1f%%; Rate: %.0f rows/s; Applied: %d; Backlog: %s; Lag: %s; Capture: %s; State: %s; Elapsed: %s; ETA: %s",
		s.Copied, s.Estimated, pct, s.CopyRate, s.Applied, s.Backlog.Round(time.Millisecond), lag, s.Capture, s.State,
		s.Elapsed.Round(time.Second), eta)
	if s.State == StateChecksumming {
		cpct := 100.0
		if s.Estimated > 0 {
			cpct = min(100*float64(s.Checksummed)/float64(s.Estimated), 100)
		}
		line += fmt.Sprintf("; Checksum: %d/%d %.1f%% at %.0f rows/s", s.Checksummed, s.Estimated, cpct, s.ChecksumRate)
	}
	if s.CheckpointKnown {
		line += "; Checkpoint: " + s.CheckpointAge.Round(time.Second).String() + " ago"
	}
	if s.CutOverAttempts > 0 {
		line += fmt.Sprintf("; Cut-over: %d attempts, longest %s", s.CutOverAttempts, s.CutOverLongest.Round(time.Millisecond))
	}
	if s.Throttled {
		line += "; Throttled: " + s.Throttle
	}
	return line + s.revertText()
}

func (m *Migration) printStatus() {
	if m.out != nil {
		m.emitStatus(m.Status())
	}
}

// statusLoop prints a status line every StatusInterval, every second during
// the first minute.
func (m *Migration) statusLoop(ctx context.Context) {
	for {
		wait := m.cfg.StatusInterval
		if time.Since(m.started) < time.Minute && wait > time.Second {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
			m.printStatus()
		}
	}
}
