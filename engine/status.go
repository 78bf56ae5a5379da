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
}

// Status returns the migration's progress now.
func (m *Migration) Status() Status {
	s := Status{
		State:   m.State(),
		Copied:  m.copied.Load(),
		Applied: m.applied.Load(),
		Elapsed: time.Since(m.started),
	}
	if m.plan != nil {
		s.Estimated = m.plan.EstimatedRows
	}
	if s.Copied > s.Estimated {
		s.Estimated = s.Copied
	}
	if src := m.src; src != nil {
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
	return fmt.Sprintf("Copy: %d/%d %.1f%%; Rate: %.0f rows/s; Applied: %d; Capture: %s; State: %s; Elapsed: %s; ETA: %s",
		s.Copied, s.Estimated, pct, s.CopyRate, s.Applied, s.Capture, s.State, s.Elapsed.Round(time.Second), eta)
}

func (m *Migration) printStatus() {
	if m.out != nil {
		fmt.Fprintln(m.out, m.Status().String())
	}
}

// statusLoop prints a status line every StatusInterval, every second during
// the first ten seconds.
func (m *Migration) statusLoop(ctx context.Context) {
	for {
		wait := m.cfg.StatusInterval
		if time.Since(m.started) < 10*time.Second && wait > time.Second {
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
