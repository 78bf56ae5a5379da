package throttle

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// lagInterval is how often replica lag is read.
	lagInterval = 200 * time.Millisecond
	// generalInterval is how often load, the throttle query, the throttle
	// URL and the retained WAL are read.
	generalInterval = time.Second
	// evalInterval is how often the flag files are looked at and the throttle
	// decision is remade.
	evalInterval = 100 * time.Millisecond
	// ProbeTimeout bounds each measurement: a replica or URL that does not
	// answer in time throttles.
	ProbeTimeout = 2 * time.Second
)

// Status is the throttler's latest decision and measurements.
type Status struct {
	Throttled bool
	Reasons   []string  // why, one entry per check that throttles
	Since     time.Time // when the current throttled/released state began

	Lag      time.Duration // the largest replica lag read
	LagKnown bool          // at least one replica was read
	Replicas []ReplicaLag

	RetainedWAL      int64
	RetainedWALKnown bool
}

// Reason is the reasons joined for a status line ("" when not throttled).
func (s Status) Reason() string { return strings.Join(s.Reasons, "; ") }

// Throttler runs the checks and holds the copy while any of them says so.
// Settings are read through a function on every round, so the operator can
// change them at any time; Poke makes the change count at once.
type Throttler struct {
	probe    Probe
	settings func() Settings
	log      *slog.Logger
	http     *http.Client
	poke     chan struct{} // re-measure and re-decide now
	pokeLag  chan struct{}
	pokeGen  chan struct{}

	evalMu sync.Mutex // one decision at a time, so a stale one never lands last

	mu       sync.Mutex
	lags     []ReplicaLag
	general  []string // reasons found by the last general round
	retained int64
	retOK    bool
	status   Status
	ready    bool          // the first decision was made
	changed  chan struct{} // closed (and replaced) when the decision changes
}

// New returns a throttler over probe; settings is called for the thresholds
// in force each time they are needed.
func New(probe Probe, settings func() Settings, log *slog.Logger) *Throttler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Throttler{
		probe: probe, settings: settings, log: log,
		http:    &http.Client{Timeout: ProbeTimeout},
		poke:    make(chan struct{}, 1),
		pokeLag: make(chan struct{}, 1),
		pokeGen: make(chan struct{}, 1),
		changed: make(chan struct{}),
	}
}

// Poke makes the throttler re-measure and re-decide now (after a settings
// change).
func (t *Throttler) Poke() {
	for _, ch := range []chan struct{}{t.pokeLag, t.pokeGen, t.poke} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Status returns the latest decision.
func (t *Throttler) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.status
	s.Reasons = slices.Clone(s.Reasons)
	s.Replicas = slices.Clone(s.Replicas)
	return s
}

// Wait returns once the copy may proceed: the first decision was made and
// nothing throttles.
func (t *Throttler) Wait(ctx context.Context) error {
	for {
		t.mu.Lock()
		free := t.ready && !t.status.Throttled
		ch := t.changed
		t.mu.Unlock()
		if free {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-ch:
		}
	}
}

// Run writes heartbeats and runs the checks until ctx ends. It returns an
// error wrapping ErrCriticalLoad when critical load requires the migration to
// abort, and nil when ctx ends.
func (t *Throttler) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		critical criticalState
		failOnce sync.Once
		runErr   error
	)
	// A first round before the copy may start.
	t.heartbeat(ctx)
	t.collectLag(ctx)
	if err := t.collectGeneral(ctx, &critical); err != nil {
		return err
	}
	t.evaluate()

	var wg sync.WaitGroup
	loop := func(every func() time.Duration, poke chan struct{}, fn func() error) {
		wg.Go(func() {
			timer := time.NewTimer(every())
			defer timer.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-poke:
				case <-timer.C:
				}
				if err := fn(); err != nil {
					failOnce.Do(func() { runErr = err })
					cancel()
					return
				}
				timer.Reset(every())
			}
		})
	}
	fixed := func(d time.Duration) func() time.Duration { return func() time.Duration { return d } }
	loop(fixed(HeartbeatInterval), nil, func() error { t.heartbeat(ctx); return nil })
	loop(fixed(lagInterval), t.pokeLag, func() error { t.collectLag(ctx); t.evaluate(); return nil })
	loop(critical.next, t.pokeGen, func() error {
		err := t.collectGeneral(ctx, &critical)
		t.evaluate()
		return err
	})
	loop(fixed(evalInterval), t.poke, func() error { t.evaluate(); return nil })
	wg.Wait()
	return runErr
}

// heartbeat writes one heartbeat when lag is checked.
func (t *Throttler) heartbeat(ctx context.Context) {
	if t.settings().MaxLag <= 0 {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	if err := t.probe.Heartbeat(hctx, time.Now()); err != nil && ctx.Err() == nil {
		// A missing heartbeat shows as growing lag: the replicas throttle.
		t.log.Debug("heartbeat", "err", err)
	}
}

func (t *Throttler) collectLag(ctx context.Context) {
	s := t.settings()
	var lags []ReplicaLag
	if s.MaxLag > 0 {
		lctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
		lags = t.probe.ReplicaLags(lctx, s.Replicas)
		cancel()
		if ctx.Err() != nil {
			return
		}
	}
	t.mu.Lock()
	t.lags = lags
	t.mu.Unlock()
}

// criticalState is the critical-load check's memory between rounds: when the
// load was first seen critical, and so when to check again.
type criticalState struct {
	deadline time.Time // zero: not pending
}

func (c *criticalState) next() time.Duration {
	if c.deadline.IsZero() {
		return generalInterval
	}
	return max(min(generalInterval, time.Until(c.deadline)), time.Millisecond)
}

// collectGeneral reads load, critical load, the throttle query and URL and
// the retained WAL. It returns an error when critical load aborts.
func (t *Throttler) collectGeneral(ctx context.Context, critical *criticalState) error {
	s := t.settings()
	gctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	var reasons []string
	if len(s.CriticalLoad) > 0 {
		met, what, err := t.loadMet(gctx, s.CriticalLoad)
		switch {
		case err != nil:
			reasons = append(reasons, "critical-load: "+err.Error())
		case !met:
			if !critical.deadline.IsZero() {
				t.log.Info("critical load is over", "was", what)
			}
			critical.deadline = time.Time{}
		case s.CriticalLoadInterval <= 0:
			return fmt.Errorf("%w: %s", ErrCriticalLoad, what)
		case critical.deadline.IsZero():
			critical.deadline = time.Now().Add(s.CriticalLoadInterval)
			t.log.Warn("critical load met once; checking again before aborting", "load", what,
				"after", s.CriticalLoadInterval.String())
			reasons = append(reasons, "critical-load "+what)
		case !time.Now().Before(critical.deadline):
			return fmt.Errorf("%w: met again after %s: %s", ErrCriticalLoad, s.CriticalLoadInterval, what)
		default:
			reasons = append(reasons, "critical-load "+what)
		}
	}
	if len(s.MaxLoad) > 0 {
		met, what, err := t.loadMet(gctx, s.MaxLoad)
		switch {
		case err != nil:
			reasons = append(reasons, "max-load: "+err.Error())
		case met:
			reasons = append(reasons, "max-load "+what)
		}
	}
	if s.Query != "" {
		v, err := t.probe.Query(gctx, s.Query)
		switch {
		case err != nil:
			reasons = append(reasons, "throttle-query: "+err.Error())
		case v > 0:
			reasons = append(reasons, fmt.Sprintf("throttle-query returned %d", v))
		}
	}
	if s.HTTP != "" {
		if r := t.checkHTTP(gctx, s.HTTP); r != "" {
			reasons = append(reasons, r)
		}
	}
	retained, retOK, err := t.probe.RetainedWAL(gctx)
	switch {
	case err != nil:
		if s.MaxRetainedWAL > 0 {
			reasons = append(reasons, "retained-wal: "+err.Error())
		}
	case retOK && s.MaxRetainedWAL > 0 && retained > s.MaxRetainedWAL:
		reasons = append(reasons, fmt.Sprintf("retained-wal %s > %s", FormatBytes(retained), FormatBytes(s.MaxRetainedWAL)))
	}
	if ctx.Err() != nil {
		return nil
	}
	t.mu.Lock()
	t.general = reasons
	t.retained, t.retOK = retained, retOK && err == nil
	t.mu.Unlock()
	return nil
}

// evaluate makes the throttle decision from the latest measurements, the
// operator's command and the flag files.
func (t *Throttler) evaluate() {
	t.evalMu.Lock()
	defer t.evalMu.Unlock()
	s := t.settings()
	var reasons []string
	if s.Manual {
		reasons = append(reasons, "commanded by user")
	}
	for _, f := range []string{s.FlagFile, s.AdditionalFlagFile} {
		if f != "" && fileExists(f) {
			reasons = append(reasons, "flag-file "+f)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	reasons = append(reasons, t.general...)
	st := Status{Replicas: t.lags, RetainedWAL: t.retained, RetainedWALKnown: t.retOK}
	for _, l := range t.lags {
		if l.Err != nil {
			reasons = append(reasons, fmt.Sprintf("replica %s unreadable: %v", l.Name, l.Err))
			continue
		}
		st.Lag, st.LagKnown = max(st.Lag, l.Lag), true
		if s.MaxLag > 0 && l.Lag > s.MaxLag {
			reasons = append(reasons, fmt.Sprintf("replica-lag %s %s > %s", l.Name, roundLag(l.Lag), s.MaxLag))
		}
	}
	st.Throttled = len(reasons) > 0
	st.Reasons = reasons
	st.Since = t.status.Since
	changed := !t.ready || st.Throttled != t.status.Throttled
	if changed {
		st.Since = time.Now()
		if st.Throttled {
			t.log.Info("throttled: row copy paused", "reason", st.Reason())
		} else if t.ready {
			t.log.Info("throttle released: row copy resumes")
		}
	}
	t.status = st
	t.ready = true
	if changed {
		close(t.changed)
		t.changed = make(chan struct{})
	}
}

func roundLag(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(time.Second)
	}
	return d.Round(10 * time.Millisecond)
}
