package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"osc/hooks"
)

// BackfillStatus is a snapshot of a backfill's progress.
type BackfillStatus struct {
	State     BackfillState
	Scanned   int64 // rows of the table the chunks covered (a resume: with the killed run's, estimated)
	Estimated int64 // rows in the table, estimated
	Updated   int64 // rows the chunks updated
	Chunks    int64
	ChunkSize int64 // the next chunk's
	Retries   int64 // chunks run again after a lock wait timeout or a deadlock
	Counted   int64 // rows the count (--verify's, or the dry run's) walked
	Elapsed   time.Duration
	Rate      float64 // rows scanned per second since the chunks started
	ETA       time.Duration
	ETAKnown  bool

	Throttled bool
	Throttle  string
	Lag       time.Duration
	LagKnown  bool
}

// Status returns the backfill's progress now.
func (b *Backfill) Status() BackfillStatus {
	scanned := b.scanned.Load() // by this run
	s := BackfillStatus{
		State: b.State(), Scanned: b.behind.Load() + scanned, Estimated: b.estimated.Load(), Updated: b.updated.Load(),
		Chunks: b.chunks.Load(), ChunkSize: b.ctl.copySize.Load(), Retries: b.retries.Load(), Counted: b.counted.Load(),
	}
	if t := b.started.Load(); t != 0 {
		s.Elapsed = time.Since(time.Unix(0, t))
	}
	s.Estimated = max(s.Estimated, s.Scanned)
	if start := b.runStart.Load(); start != 0 {
		end, done := time.Now(), false
		if e := b.runEnd.Load(); e != 0 {
			end, done = time.Unix(0, e), true
		}
		if d := end.Sub(time.Unix(0, start)); d > 0 {
			s.Rate = float64(scanned) / d.Seconds()
		}
		switch {
		case done:
			s.ETA, s.ETAKnown = 0, true
		case s.Rate > 0:
			s.ETA, s.ETAKnown = time.Duration(float64(s.Estimated-s.Scanned)/s.Rate*float64(time.Second)), true
		}
	}
	if th, _ := b.ctl.currentThrottler(); th != nil {
		ts := th.Status()
		s.Lag, s.LagKnown = ts.Lag, ts.LagKnown
		if ts.Throttled {
			s.Throttled, s.Throttle = true, ts.Reason()
		}
	}
	return s
}

func (s BackfillStatus) percent() float64 {
	if s.Estimated <= 0 {
		return 100
	}
	return 100 * float64(s.Scanned) / float64(s.Estimated)
}

// String renders the status line.
func (s BackfillStatus) String() string {
	eta := "N/A"
	if s.ETAKnown {
		eta = s.ETA.Round(time.Second).String()
	}
	lag := "n/a"
	if s.LagKnown {
		lag = fmt.Sprintf("%.2fs", s.Lag.Seconds())
	}
	line := fmt.Sprintf("Backfill: %d/%d %.1f%%; Updated: %d; Rate: %.0f rows/s; Chunks: %d; Chunk size: %d; Lag: %s; State: %s; Elapsed: %s; ETA: %s",
		s.Scanned, s.Estimated, s.percent(), s.Updated, s.Rate, s.Chunks, s.ChunkSize, lag, s.State,
		s.Elapsed.Round(time.Second), eta)
	if s.Retries > 0 {
		line += fmt.Sprintf("; Retries: %d", s.Retries)
	}
	if s.Counted > 0 {
		line += fmt.Sprintf("; Counted: %d", s.Counted)
	}
	if s.Throttled {
		line += "; Throttled: " + s.Throttle
	}
	return line
}

// backfillJSON is a status line for log pipelines (--output json).
type backfillJSON struct {
	Time           string   `json:"time"`
	State          string   `json:"state"`
	Scanned        int64    `json:"rows_scanned"`
	Estimated      int64    `json:"rows_estimated"`
	Percent        float64  `json:"percent"`
	Updated        int64    `json:"rows_updated"`
	Rate           float64  `json:"rows_per_second"`
	Chunks         int64    `json:"chunks"`
	ChunkSize      int64    `json:"chunk_size"`
	Retries        int64    `json:"retries"`
	Counted        int64    `json:"rows_counted"`
	LagSeconds     *float64 `json:"replica_lag_seconds"`
	Throttled      bool     `json:"throttled"`
	ThrottleReason string   `json:"throttle_reason,omitempty"`
	ElapsedSeconds float64  `json:"elapsed_seconds"`
	ETASeconds     *float64 `json:"eta_seconds"`
}

// JSON renders the status as one JSON object.
func (s BackfillStatus) JSON() string {
	j := backfillJSON{
		Time: time.Now().UTC().Format(time.RFC3339Nano), State: s.State.String(),
		Scanned: s.Scanned, Estimated: s.Estimated, Percent: s.percent(), Updated: s.Updated, Rate: s.Rate,
		Chunks: s.Chunks, ChunkSize: s.ChunkSize, Retries: s.Retries, Counted: s.Counted,
		Throttled: s.Throttled, ThrottleReason: s.Throttle, ElapsedSeconds: s.Elapsed.Seconds(),
	}
	if s.LagKnown {
		v := s.Lag.Seconds()
		j.LagSeconds = &v
	}
	if s.ETAKnown {
		v := s.ETA.Seconds()
		j.ETASeconds = &v
	}
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Sprintf(`{"error":%q}`, err.Error())
	}
	return string(b)
}

// printStatus prints one status line as configured and, every
// HooksStatusInterval, runs the on-status hook.
func (b *Backfill) printStatus() {
	if b.out == nil {
		return
	}
	s := b.Status()
	k := b.cfg.Control
	switch {
	case k.JSONStatus:
		fmt.Fprintln(b.out, s.JSON())
	case k.ProgressBar:
		fmt.Fprintln(b.out, Status{Copied: s.Scanned, Estimated: s.Estimated}.bar()+s.String())
	default:
		fmt.Fprintln(b.out, s.String())
	}
	if b.ctl.hooks.Dir == "" {
		return
	}
	every := k.HooksStatusInterval
	if every <= 0 {
		every = time.Minute
	}
	if last := b.lastStatusHook.Load(); last != 0 && time.Since(time.Unix(0, last)) < every {
		return
	}
	b.lastStatusHook.Store(time.Now().UnixNano())
	if err := b.hook(context.Background(), hooks.OnStatus, hooks.Env{Status: s.String()}); err != nil {
		b.log.Warn("on-status hook failed", "err", err)
	}
}

// statusLoop prints a status line every StatusInterval, every second during
// the first minute.
func (b *Backfill) statusLoop(ctx context.Context) {
	for {
		wait := b.cfg.StatusInterval
		if time.Since(time.Unix(0, b.started.Load())) < time.Minute && wait > time.Second {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
			b.printStatus()
		}
	}
}

const backfillHelpText = `available commands:
status                               # print the status line and the settings in force
sup                                  # print the status line
chunk-size=<rows>                    # set the chunk size
nice-ratio=<ratio>                   # sleep ratio × each chunk's duration after it (0: none, 1: half as fast)
max-lag-millis=<ms>                  # throttle while a replica lags more (0: do not check)
throttle-control-replicas=<list>     # replicas to watch besides those discovered (host:port,...; PostgreSQL also DSNs)
max-load=<name=value,...>            # throttle while a load metric reaches its threshold
critical-load=<name=value,...>       # abort the backfill when a load metric reaches its threshold
throttle-query=<query>               # throttle while the query returns a value > 0 (empty: none)
throttle-http=<url>                  # throttle unless a HEAD of the URL answers 200 (empty: none)
throttle                             # throttle by hand
no-throttle                          # end throttling by hand (other reasons may still throttle)
panic                                # abort now and clean up, as Ctrl-C
help                                 # this message
- "name=?" prints the value of a setting instead of changing it.
`

// command runs one operator command (server.go) and returns the reply.
func (b *Backfill) command(line string) (string, error) {
	name, arg, hasArg, query, err := parseCommand(line)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	if err := b.hook(ctx, hooks.OnInteractiveCommand, hooks.Env{Command: line}); err != nil {
		return "", err
	}
	noArg := func() error {
		if hasArg {
			return fmt.Errorf("%s takes no value", name)
		}
		return nil
	}
	switch name {
	case "help":
		return backfillHelpText, noArg()
	case "status", "info":
		if err := noArg(); err != nil {
			return "", err
		}
		return b.Status().String() + "\n" + b.settingsText(), nil
	case "sup":
		if err := noArg(); err != nil {
			return "", err
		}
		return b.Status().String() + "\n", nil
	case "panic":
		if arg != "" && arg != b.cfg.Table && arg != b.cfg.Schema+"."+b.cfg.Table {
			return "", fmt.Errorf("this osc backfills %s, not %s; nothing done", b.cfg.Table, arg)
		}
		if arg == "" && b.cfg.Control.ForceNamedPanic {
			return "", fmt.Errorf("--force-named-panic is set: name the table, panic=%s", b.cfg.Table)
		}
		b.log.Warn("panic commanded over the socket: aborting and cleaning up")
		b.ctl.abort(ErrPanic)
		return "Panic: aborting; osc removes what it created and exits\n", nil
	}
	reply, ok, err := b.ctl.settingCommand(ctx, b.d, name, arg, hasArg, query)
	if !ok {
		return "", fmt.Errorf("unknown command %q; try help", name)
	}
	if err == nil && !query && name != "throttle-control-replicas" {
		b.log.Info("operator command", "command", line)
	}
	if err == nil && strings.HasPrefix(reply, "Throttled by hand") {
		reply = "Throttled by hand: the backfill pauses after the chunk in progress\n"
	}
	return reply, err
}

// settingsText lists the settings in force, one "# name: value" a line.
func (b *Backfill) settingsText() string {
	c := b.ctl
	var sb strings.Builder
	line := func(name string, v any) { fmt.Fprintf(&sb, "# %s: %v\n", name, v) }
	line("backfilling", b.cfg.Table)
	line("set", b.cfg.Set)
	line("where", b.cfg.Where)
	line("chunk-size", c.chunkSize.Load())
	if b.cfg.ChunkTarget > 0 {
		line("target-chunk-time", b.cfg.ChunkTarget)
		line("chunk size now", c.copySize.Load())
	}
	line("nice-ratio", c.nice())
	c.throttleSettingsText(line, b.d)
	line("panic-flag-file", flagState(b.cfg.Control.PanicFlagFile))
	c.throttleStateText(line)
	return sb.String()
}
