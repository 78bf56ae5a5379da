package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"osc/hooks"
	"osc/throttle"
)

// Control is how the operator steers a running migration: throttling, the
// interactive socket, hooks and the status output. The zero value checks
// nothing, serves nothing and runs no hook; the CLI sets osc's defaults.
type Control struct {
	// MaxLag throttles the copy while a replica lags more (0: not checked).
	MaxLag time.Duration
	// ThrottleControlReplicas are watched besides those the primary lists:
	// host:port, or for PostgreSQL also a connection string.
	ThrottleControlReplicas []string
	MaxLoad                 throttle.Thresholds
	CriticalLoad            throttle.Thresholds
	CriticalLoadInterval    time.Duration
	ThrottleFlagFile        string
	// ThrottleAdditionalFlagFile is typically shared by every osc on a host.
	ThrottleAdditionalFlagFile string
	ThrottleQuery              string
	ThrottleHTTP               string
	// NiceRatio: after each chunk, sleep this many times the chunk's duration.
	NiceRatio float64

	ServeSocketFile   string // "" serves no socket
	ServeTCPPort      int    // 0 serves no TCP port
	ServeTCPAddress   string // the address to bind the TCP port to ("" is 127.0.0.1)
	ForceNamedCutOver bool   // unpostpone/cut-over must name the table
	ForceNamedPanic   bool   // panic must name the table
	// PanicFlagFile: once this file exists, abort as the panic command
	// does (gh-ost's --panic-flag-file, though gh-ost leaves what it made
	// and osc removes it). A file there at the start is a refusal.
	PanicFlagFile string

	HooksPath    string
	HooksTimeout time.Duration
	HooksHint    string
	// HooksStatusInterval is how often on-status runs (0: every minute).
	HooksStatusInterval time.Duration
	// Host describes the server migrated on (host:port) for hooks.
	Host string

	// JSONStatus prints the status lines as JSON objects.
	JSONStatus bool
	// ProgressBar starts each text status line with a bar (for a terminal).
	ProgressBar bool
}

// ErrPanic is the cause of an abort the operator commanded (the panic
// command): Run's error wraps it.
var ErrPanic = errors.New("aborted by the operator's panic command")

// RefusedError is a migration refused before it changed anything: a failed
// precondition at inspection, a plan the shadow showed cannot be done
// exactly, a resume that cannot be exact. Everything is as it was (a refused
// resume keeps what the killed run left).
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// refused marks err as a refusal (nil stays nil).
func refused(err error) error {
	if err == nil {
		return nil
	}
	return &RefusedError{Err: err}
}

// control is the runtime side of Control: the settings the operator may
// change while the migration runs, and what acts on them.
type control struct {
	chunkSize atomic.Int64
	// copySize is the copy's chunk size now: chunkSize, or what the
	// dynamic size made of it (chunksize.go).
	copySize        atomic.Int64
	batchSize       atomic.Int64
	checksumThreads atomic.Int64
	copyThreads     atomic.Int64
	niceRatio       atomic.Uint64 // float64 bits

	mu        sync.Mutex
	settings  throttle.Settings
	throttler *throttle.Throttler // nil until the copy starts
	probe     throttle.Probe

	// What Run sets as it goes, for Status and the socket's goroutines.
	plan    *Plan
	src     Source
	started time.Time

	// dialectSettings are the dialect's own throttle thresholds, as the
	// status command lists them (throttleSettingsDialect).
	dialectSettings []Setting

	hooks hooks.Runner
	abort context.CancelCauseFunc // cancels the whole Run

	backlog      atomic.Int64 // the last marker round trip, nanoseconds
	backlogSince atomic.Int64 // unix nanos a marker in flight was emitted, 0: none

	lastStatusHook atomic.Int64 // unix nanos on-status last ran
}

func newControl(cfg *Config, d Dialect) *control {
	c := &control{}
	c.chunkSize.Store(int64(cfg.ChunkSize))
	c.copySize.Store(int64(cfg.ChunkSize))
	c.batchSize.Store(int64(cfg.DMLBatchSize))
	c.checksumThreads.Store(int64(cfg.ChecksumThreads))
	c.copyThreads.Store(int64(cfg.CopyThreads))
	c.niceRatio.Store(math.Float64bits(cfg.Control.NiceRatio))
	k := cfg.Control
	c.settings = throttle.Settings{
		MaxLag: k.MaxLag, Replicas: k.ThrottleControlReplicas, MaxLoad: k.MaxLoad, CriticalLoad: k.CriticalLoad,
		CriticalLoadInterval: k.CriticalLoadInterval, FlagFile: k.ThrottleFlagFile,
		AdditionalFlagFile: k.ThrottleAdditionalFlagFile, Query: k.ThrottleQuery, HTTP: k.ThrottleHTTP,
	}
	if ts, ok := d.(throttleSettingsDialect); ok {
		c.dialectSettings = ts.ThrottleSettings(&c.settings)
	}
	return c
}

// throttleSettings returns the thresholds in force.
func (c *control) throttleSettings() throttle.Settings {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.settings
	s.Replicas = append([]string(nil), s.Replicas...)
	return s
}

// updateThrottle changes the thresholds and makes the change count now.
func (c *control) updateThrottle(fn func(*throttle.Settings)) {
	c.mu.Lock()
	fn(&c.settings)
	th := c.throttler
	c.mu.Unlock()
	if th != nil {
		th.Poke()
	}
}

func (c *control) setPlan(p *Plan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.plan = p
}

func (c *control) setSource(s Source) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.src = s
}

// view returns the plan, the change capture and the start time, as far as
// Run has set them.
func (c *control) view() (*Plan, Source, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.plan, c.src, c.started
}

func (c *control) currentThrottler() (*throttle.Throttler, throttle.Probe) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.throttler, c.probe
}

func (c *control) nice() float64 { return math.Float64frombits(c.niceRatio.Load()) }

// chunkSize is the copy's chunk size in force.
func (m *Migration) chunkSize() int { return int(m.ctl.chunkSize.Load()) }

// checksumThreads is the number of chunks the checksum compares at once.
func (m *Migration) checksumThreads() int { return int(m.ctl.checksumThreads.Load()) }

// batchSize is the apply batch size in force.
func (m *Migration) batchSize() int { return int(m.ctl.batchSize.Load()) }

// startControl validates the operator settings, serves the socket and runs
// the on-startup hook. The returned context is cancelled by the panic
// command; finish runs the on-success or on-failure hook, stops serving and
// removes the socket, and returns err.
func (m *Migration) startControl(ctx context.Context) (context.Context, func(error) error, error) {
	k := m.cfg.Control
	m.ctl.mu.Lock()
	m.ctl.started = m.started
	m.ctl.mu.Unlock()
	if err := m.checkControl(); err != nil {
		return ctx, nil, err
	}
	if err := checkPanicFlag(k.PanicFlagFile); err != nil {
		return ctx, nil, err
	}
	m.ctl.hooks = hooks.Runner{Dir: k.HooksPath, Timeout: k.HooksTimeout, Log: m.log}
	if err := m.ctl.hooks.Check(); err != nil {
		return ctx, nil, err
	}
	ctx, abort := context.WithCancelCause(ctx)
	m.ctl.abort = abort
	srv, err := m.serve()
	if err != nil {
		abort(nil)
		return ctx, nil, err
	}
	stopWatch := watchPanicFlag(k.PanicFlagFile, abort, m.log)
	finish := func(err error) error {
		stopWatch()
		err = panicked(ctx, err)
		if err == nil {
			env := hooks.Env{}
			if m.reverted.Load() {
				env.State = stateReverted
			}
			if herr := m.hook(context.Background(), hooks.OnSuccess, env); herr != nil {
				m.log.Error("on-success hook failed (the migration succeeded)", "err", herr)
			}
		} else {
			if herr := m.hook(context.Background(), hooks.OnFailure, hooks.Env{Error: err.Error(), State: StateFailed.String()}); herr != nil {
				m.log.Error("on-failure hook failed", "err", herr)
			}
		}
		srv.close()
		abort(nil)
		return err
	}
	if err := m.hook(ctx, hooks.OnStartup, hooks.Env{}); err != nil {
		return ctx, nil, finish(err)
	}
	return ctx, finish, nil
}

// panicked returns err, naming the panic (the command or the flag file)
// when one ended ctx and err does not: a step that returns its context's
// error rather than its cause (an exact row count before the copy, the
// change capture's start, a hook) would otherwise end the run as a failure
// (exit 1) saying only "context canceled".
func panicked(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, ErrPanic) {
		return err
	}
	if c := context.Cause(ctx); errors.Is(c, ErrPanic) {
		return fmt.Errorf("%w (%w)", c, err)
	}
	return err
}

// panicFlagPoll is how often osc looks for the panic flag file.
const panicFlagPoll = time.Second

// checkPanicFlag refuses to start while the panic flag file exists: osc
// would abort at its first look, after making the shadow.
func checkPanicFlag(file string) error {
	if file == "" {
		return nil
	}
	if _, err := os.Stat(file); err == nil {
		return refused(fmt.Errorf("the panic flag file %s exists (--panic-flag-file): remove it to start; osc aborts as soon as it appears", file))
	}
	return nil
}

// watchPanicFlag aborts with ErrPanic once file exists, looking every
// panicFlagPoll until stop returns.
func watchPanicFlag(file string, abort context.CancelCauseFunc, log *slog.Logger) (stop func()) {
	if file == "" {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(panicFlagPoll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if _, err := os.Stat(file); err == nil {
				log.Warn("the panic flag file exists: aborting and cleaning up", "file", file)
				abort(fmt.Errorf("%w: the panic flag file %s exists", ErrPanic, file))
				return
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// checkControl validates what the Config says of control.
func (m *Migration) checkControl() error {
	k := m.cfg.Control
	var errs []error
	if _, err := m.d.ParseReplicas(strings.Join(k.ThrottleControlReplicas, ",")); err != nil {
		errs = append(errs, fmt.Errorf("throttle-control-replicas: %w", err))
	}
	if k.ThrottleHTTP != "" {
		if err := checkURL(k.ThrottleHTTP); err != nil {
			errs = append(errs, fmt.Errorf("throttle-http: %w", err))
		}
	}
	if k.NiceRatio < 0 || k.NiceRatio > maxNiceRatio {
		errs = append(errs, fmt.Errorf("nice-ratio %g: want 0 to %d", k.NiceRatio, maxNiceRatio))
	}
	if k.MaxLag < 0 || k.CriticalLoadInterval < 0 || k.HooksTimeout < 0 {
		errs = append(errs, errors.New("negative durations in the throttle settings"))
	}
	return errors.Join(errs...)
}

// maxNiceRatio bounds nice-ratio: more would stall the copy for hours.
const maxNiceRatio = 100

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want an http:// or https:// URL", s)
	}
	return nil
}

// startThrottle starts the throttler (heartbeats and checks) and the backlog
// measurement for the copy. Critical load cancels ctx through cancel. stop
// ends both and waits for them.
func (m *Migration) startThrottle(ctx context.Context, cancel context.CancelCauseFunc) (stop func(), err error) {
	probe, err := m.d.Throttle()
	if err != nil {
		return nil, fmt.Errorf("throttle: %w", err)
	}
	return m.ctl.startThrottler(ctx, probe, m.log, cancel, m.backlogLoop)
}

// startThrottler runs the throttler over probe, and loops beside it, until
// stop; critical load cancels ctx through cancel. stop closes the probe.
func (c *control) startThrottler(ctx context.Context, probe throttle.Probe, log *slog.Logger, cancel context.CancelCauseFunc, loops ...func(context.Context)) (stop func(), err error) {
	s := c.throttleSettings()
	for _, th := range []throttle.Thresholds{s.MaxLoad, s.CriticalLoad} {
		if len(th) == 0 {
			continue
		}
		lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := probe.Load(lctx, th.Names())
		lcancel()
		if err != nil {
			probe.Close()
			return nil, fmt.Errorf("throttle: load thresholds %s: %w", th, err)
		}
	}
	th := throttle.New(probe, c.throttleSettings, log)
	c.mu.Lock()
	c.throttler, c.probe = th, probe
	c.mu.Unlock()

	tctx, tcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := th.Run(tctx); err != nil {
			log.Error("aborting", "err", err)
			cancel(err)
		}
	})
	for _, loop := range loops {
		wg.Go(func() { loop(tctx) })
	}
	return func() {
		tcancel()
		wg.Wait()
		c.mu.Lock()
		c.throttler, c.probe = nil, nil
		c.mu.Unlock()
		if err := probe.Close(); err != nil {
			log.Debug("close throttle probe", "err", err)
		}
	}, nil
}

// backlogInterval is how often the backlog is measured.
const backlogInterval = time.Second

// backlogLoop measures how long a change committed now takes to reach the
// shadow: it sends a marker through the change stream every second and
// times it, until the cut-over starts.
func (m *Migration) backlogLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(backlogInterval):
		}
		switch m.State() {
		case StateCopying, StateCaughtUp, StatePostponed, StateRevertWindow:
		default:
			continue
		}
		start := time.Now()
		m.ctl.backlogSince.Store(start.UnixNano())
		err := m.drain(ctx)
		m.ctl.backlogSince.Store(0)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Debug("backlog marker", "err", err)
			}
			continue
		}
		m.ctl.backlog.Store(int64(time.Since(start)))
	}
}

// backlog is the latest marker round trip, or the age of the one in flight
// when that is longer.
func (c *control) backlogNow() time.Duration {
	d := time.Duration(c.backlog.Load())
	if since := c.backlogSince.Load(); since != 0 {
		d = max(d, time.Since(time.Unix(0, since)))
	}
	return d
}

// waitThrottle holds the copy while the throttler says so.
func (m *Migration) waitThrottle(ctx context.Context) error { return m.ctl.waitThrottle(ctx) }

// waitThrottle returns once the throttler (if running) lets the rows go on.
func (c *control) waitThrottle(ctx context.Context) error {
	th, _ := c.currentThrottler()
	if th == nil {
		return nil
	}
	return th.Wait(ctx)
}

// waitCutOverThrottle holds the cut-over while throttled (a lagging replica
// would lag further behind the swap).
func (m *Migration) waitCutOverThrottle(ctx context.Context) error {
	th, _ := m.ctl.currentThrottler()
	if th == nil {
		return nil
	}
	if st := th.Status(); st.Throttled {
		m.log.Info("cut-over waits while throttled", "reason", st.Reason())
	}
	return th.Wait(ctx)
}

// niceSleep sleeps nice-ratio times the chunk's duration.
func (m *Migration) niceSleep(ctx context.Context, chunk time.Duration) error {
	return m.ctl.niceSleep(ctx, chunk)
}

// niceSleep sleeps nice-ratio times the chunk's duration.
func (c *control) niceSleep(ctx context.Context, chunk time.Duration) error {
	r := c.nice()
	if r <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(time.Duration(r * float64(chunk))):
		return nil
	}
}

// hook runs the hook name with the migration's environment plus extra. A
// failing hook is an error; the caller decides whether it aborts.
func (m *Migration) hook(ctx context.Context, name string, extra hooks.Env) error {
	if m.ctl.hooks.Dir == "" {
		return nil
	}
	env := extra
	s := m.Status()
	env.Database, env.Table, env.DDL = m.cfg.Schema, m.cfg.Table, m.cfg.Alter
	if p, _, _ := m.ctl.view(); p != nil {
		env.Database, env.Table = p.Schema, p.Table
		env.GhostTable, env.OldTable = p.Shadow, p.Old
	}
	env.Elapsed = s.Elapsed
	if start := m.copyStart.Load(); start != 0 {
		end := time.Now()
		if e := m.copyEnd.Load(); e != 0 {
			end = time.Unix(0, e)
		}
		env.ElapsedCopy = end.Sub(time.Unix(0, start))
	}
	env.EstimatedRows, env.CopiedRows, env.AppliedEvents = s.Estimated, s.Copied, s.Applied
	env.MigratedHost, env.InspectedHost = m.cfg.Control.Host, m.cfg.Control.Host
	env.ExecutingHost, _ = os.Hostname()
	env.Hint, env.Driver = m.cfg.Control.HooksHint, m.d.Driver()
	if env.State == "" {
		env.State = s.State.String()
	}
	if err := m.ctl.hooks.Run(ctx, name, env.Vars()); err != nil {
		return fmt.Errorf("%s hook: %w", name, err)
	}
	return nil
}

// tableMatches reports whether a command's table argument names the
// migrated table (bare or schema-qualified).
func (m *Migration) tableMatches(arg string) bool {
	names := []string{m.cfg.Table}
	if p, _, _ := m.ctl.view(); p != nil {
		names = append(names, p.Table, p.Schema+"."+p.Table)
	} else if m.cfg.Schema != "" {
		names = append(names, m.cfg.Schema+"."+m.cfg.Table)
	}
	for _, n := range names {
		if arg == n {
			return true
		}
	}
	return false
}

// postpone creates the postpone flag file.
func (m *Migration) postpone() (string, error) {
	f := m.cfg.PostponeCutOverFlagFile
	if f == "" {
		return "", errors.New("cannot postpone: osc runs without --postpone-cut-over-flag-file")
	}
	if s := m.State(); s >= StateCuttingOver {
		return "", fmt.Errorf("cannot postpone: the migration is %s", s)
	}
	fh, err := os.OpenFile(f, os.O_CREATE|os.O_WRONLY, 0o600) //nolint:gosec // G304: the operator's own --postpone-cut-over-flag-file
	if err != nil {
		return "", fmt.Errorf("create the postpone flag file: %w", err)
	}
	if err := fh.Close(); err != nil {
		return "", fmt.Errorf("create the postpone flag file: %w", err)
	}
	return "Postponed: the cut-over waits while " + f + " exists", nil
}

// unpostpone removes the postpone flag file.
func (m *Migration) unpostpone(arg string) (string, error) {
	switch {
	case arg == "" && m.cfg.Control.ForceNamedCutOver:
		return "", fmt.Errorf("--force-named-cut-over is set: name the table, cut-over=%s", m.cfg.Table)
	case arg != "" && !m.tableMatches(arg):
		return "", fmt.Errorf("this osc migrates %s, not %s; nothing done", m.cfg.Table, arg)
	}
	f := m.cfg.PostponeCutOverFlagFile
	if f == "" {
		return "", errors.New("nothing to unpostpone: osc runs without --postpone-cut-over-flag-file")
	}
	if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("remove the postpone flag file: %w", err)
	}
	if m.State() == StatePostponed {
		return "Unpostponed: cutting over", nil
	}
	return "Unpostponed: osc cuts over as soon as the copy is complete and caught up", nil
}

// panicAbort aborts the migration as Ctrl-C does.
func (m *Migration) panicAbort(arg string) (string, error) {
	switch {
	case arg == "" && m.cfg.Control.ForceNamedPanic:
		return "", fmt.Errorf("--force-named-panic is set: name the table, panic=%s", m.cfg.Table)
	case arg != "" && !m.tableMatches(arg):
		return "", fmt.Errorf("this osc migrates %s, not %s; nothing done", m.cfg.Table, arg)
	}
	if m.ctl.abort == nil {
		return "", errors.New("the migration is not running")
	}
	m.log.Warn("panic commanded over the socket: aborting and cleaning up")
	m.ctl.abort(ErrPanic)
	return "Panic: aborting; osc removes what it created and exits", nil
}

// maxSocketPath is the longest unix socket path osc makes by default (the
// kernel's limit is 108 bytes on Linux, 104 on macOS).
const maxSocketPath = 100

// DefaultSocketFile is the socket osc serves by default for a table: one per
// database and table, in the temporary directory. Names too long for a socket
// path are shortened with a hash of the full name.
func DefaultSocketFile(database, table string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '/' || r == '\\' || r < ' ' {
				return '_'
			}
			return r
		}, s)
	}
	p := filepath.Join(os.TempDir(), "osc."+clean(database)+"."+clean(table)+".sock")
	if len(p) <= maxSocketPath {
		return p
	}
	sum := sha256.Sum256([]byte(database + "\x00" + table))
	return filepath.Join(os.TempDir(), "osc."+hex.EncodeToString(sum[:8])+".sock")
}
