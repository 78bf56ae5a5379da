package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"osc/hooks"
)

// controlStatus adds the throttler's and the backlog's view to a status.
func (m *Migration) controlStatus(s *Status) {
	if m.ctl == nil {
		return
	}
	s.Backlog = m.ctl.backlogNow()
	th, _ := m.ctl.currentThrottler()
	if th == nil {
		return
	}
	ts := th.Status()
	s.Lag, s.LagKnown = ts.Lag, ts.LagKnown
	s.RetainedWAL, s.RetainedWALKnown = ts.RetainedWAL, ts.RetainedWALKnown
	for _, r := range ts.Replicas {
		s.Replicas = append(s.Replicas, ReplicaLag{Name: m.d.DisplayReplica(r.Name), Lag: r.Lag, Known: r.Err == nil})
	}
	if ts.Throttled {
		s.Throttled, s.Throttle = true, ts.Reason()
	}
}

// statusJSON is a status line for log pipelines (--output json).
type statusJSON struct {
	Time           string   `json:"time"`
	State          string   `json:"state"`
	Native         string   `json:"native_step,omitempty"` // the native path's step; absent on a copy
	Copied         int64    `json:"rows_copied"`
	Estimated      int64    `json:"rows_estimated"`
	Percent        float64  `json:"percent"`
	Rate           float64  `json:"rows_per_second"`
	Applied        int64    `json:"events_applied"`
	BacklogSeconds float64  `json:"backlog_seconds"`
	LagSeconds     *float64 `json:"replica_lag_seconds"`
	Throttled      bool     `json:"throttled"`
	ThrottleReason string   `json:"throttle_reason,omitempty"`
	Capture        string   `json:"capture"`
	ElapsedSeconds float64  `json:"elapsed_seconds"`
	ETASeconds     *float64 `json:"eta_seconds"`
	Checksummed    int64    `json:"rows_checksummed"`
	ChecksumRate   float64  `json:"checksum_rows_per_second"`
	CheckpointAge  *float64 `json:"checkpoint_age_seconds"`
	// The cut-over's attempts at its lock, and the longest one.
	CutOverAttempts       int64   `json:"cut_over_attempts"`
	CutOverLongestSeconds float64 `json:"cut_over_longest_lock_seconds"`
	// The revert window's, while it is open (revert.go).
	RevertLeft    *float64 `json:"revert_window_seconds_left,omitempty"`
	RevertApplied *int64   `json:"reverse_events_applied,omitempty"`
	RevertRefused *int     `json:"unrevertable_rows,omitempty"`
}

// JSON renders the status as one JSON object.
func (s Status) JSON() string {
	j := statusJSON{
		Time: time.Now().UTC().Format(time.RFC3339Nano), State: s.State.String(),
		Copied: s.Copied, Estimated: s.Estimated, Percent: s.percent(), Rate: s.CopyRate, Applied: s.Applied,
		BacklogSeconds: s.Backlog.Seconds(), Throttled: s.Throttled, ThrottleReason: s.Throttle,
		Capture: s.Capture, ElapsedSeconds: s.Elapsed.Seconds(),
		Checksummed: s.Checksummed, ChecksumRate: s.ChecksumRate,
		CutOverAttempts: s.CutOverAttempts, CutOverLongestSeconds: s.CutOverLongest.Seconds(),
	}
	j.Native = s.Native
	if s.LagKnown {
		v := s.Lag.Seconds()
		j.LagSeconds = &v
	}
	if s.ETAKnown {
		v := s.ETA.Seconds()
		j.ETASeconds = &v
	}
	if s.CheckpointKnown {
		v := s.CheckpointAge.Seconds()
		j.CheckpointAge = &v
	}
	if s.RevertWindow {
		left, applied, refused := s.RevertLeft.Seconds(), s.RevertApplied, s.RevertRefused
		j.RevertLeft, j.RevertApplied, j.RevertRefused = &left, &applied, &refused
	}
	b, err := json.Marshal(j)
	if err != nil {
		// Only unsupported values fail to marshal; a status has none.
		return fmt.Sprintf(`{"error":%q}`, err.Error())
	}
	return string(b)
}

func (s Status) percent() float64 {
	if s.Estimated <= 0 {
		return 100
	}
	return 100 * float64(s.Copied) / float64(s.Estimated)
}

// progressWidth is the width of the progress bar, in characters.
const progressWidth = 30

// bar renders the copy's progress as [#####.....].
func (s Status) bar() string {
	n := int(s.percent() * progressWidth / 100)
	n = min(max(n, 0), progressWidth)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", progressWidth-n) + "] "
}

// emitStatus prints one status line as configured and, every
// HooksStatusInterval, runs the on-status hook.
func (m *Migration) emitStatus(s Status) {
	k := m.cfg.Control
	switch {
	case k.JSONStatus:
		fmt.Fprintln(m.out, s.JSON())
	case k.ProgressBar:
		fmt.Fprintln(m.out, s.bar()+s.String())
	default:
		fmt.Fprintln(m.out, s.String())
	}
	if m.ctl == nil || m.ctl.hooks.Dir == "" {
		return
	}
	every := k.HooksStatusInterval
	if every <= 0 {
		every = time.Minute
	}
	last := m.ctl.lastStatusHook.Load()
	if last != 0 && time.Since(time.Unix(0, last)) < every {
		return
	}
	m.ctl.lastStatusHook.Store(time.Now().UnixNano())
	if err := m.hook(context.Background(), hooks.OnStatus, hooks.Env{Status: s.String()}); err != nil {
		m.log.Warn("on-status hook failed", "err", err)
	}
}
