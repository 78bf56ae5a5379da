package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"osc/hooks"
	"osc/throttle"
)

// A backfill (osc backfill) is a batch UPDATE of one table, the step of an
// expand/contract change between dual-writing and reading the new columns:
// it walks the table in key order, chunk by chunk, each chunk one short
// transaction that updates the chunk's rows matching the --where, and saves
// in that same transaction the chunk's upper key in a small bookkeeping
// table, so that a run killed at any moment is resumed (--resume) right
// after its last committed chunk. The chunks are paced, throttled and
// steered as a migration's copy is: the same dynamic chunk size
// (chunksize.go), throttler (throttle/), socket commands (server.go), status
// lines and hooks. The SQL is the dialect's (package backfill).

// BackfillConfig is what the user asked of one backfill.
type BackfillConfig struct {
	Schema string // MySQL database, PostgreSQL schema
	Table  string

	// Set is the UPDATE's assignments, Where its predicate ("": every row),
	// Verify the boolean expression every row must satisfy afterwards ("":
	// no verification): SQL of the user's, passed to the server as is.
	Set, Where, Verify string

	Execute bool // false: report the plan (--noop) and change nothing
	Resume  bool // continue the backfill a killed run left

	ChunkSize   int           // rows per chunk (the first, when ChunkTarget is set)
	ChunkTarget time.Duration // each chunk aims at this long (0: ChunkSize fixed)
	// Retries is how often a chunk that met a lock wait timeout or a
	// deadlock is run again before the backfill gives up.
	Retries int
	// VerifyMaxKeys is how many failing keys --verify lists.
	VerifyMaxKeys int

	StatusInterval time.Duration
	Version        string
	Control        Control
}

// BackfillDialect is what a backfill needs of a database (package backfill).
type BackfillDialect interface {
	// Inspect connects, takes the table's advisory lock (held until Close),
	// reads the key the table is walked by and has the server check the
	// statements made of the expressions, running none of them.
	Inspect(ctx context.Context) (*BackfillPlan, error)
	// Estimate times the read of a sample chunk of (at most) size rows,
	// for the dry run.
	Estimate(ctx context.Context, size int) (*BackfillEstimate, error)
	// Begin creates the bookkeeping table, or with resume takes up the one a
	// killed run of the same backfill left and returns the key its last
	// committed chunk ended at (nil: none committed). It refuses leftovers
	// without resume, and a checkpoint of another --set or --where.
	Begin(ctx context.Context, resume bool) (after []any, err error)
	// UpdateChunk updates, in one transaction with a short lock wait
	// timeout, the rows matching the --where among the size rows after
	// after (nil: from the first) in key order, up to the highest key the
	// table had at the first chunk, and saves the chunk's last key as the
	// checkpoint in the same transaction.
	UpdateChunk(ctx context.Context, after []any, size int) (BackfillChunk, error)
	// Behind estimates, from the server's statistics (no scan), the rows
	// whose keys are up to after: what the killed run a resume continues
	// had walked.
	Behind(ctx context.Context, after []any) (int64, error)
	// CountChunk counts, among the size rows after after (nil: from the
	// first) in key order, those the --where selects, or with failing
	// those for which the --verify expression is not true, and returns
	// the first most (0: none) of the latter's keys, rendered. It reads,
	// in one statement at a time, and locks nothing.
	CountChunk(ctx context.Context, after []any, size int, failing bool, most int) (BackfillCount, error)
	// Cleanup drops the bookkeeping table; it works on a fresh context after
	// the run's was cancelled.
	Cleanup(ctx context.Context) error
	// Throttle returns the probe the throttler measures with.
	Throttle() (throttle.Probe, error)
	// Retryable reports whether err is a lock wait timeout or a deadlock:
	// the chunk rolled back whole and may run again.
	Retryable(err error) bool
	Driver() string
	replicaNames
	// Close releases the advisory lock and every connection.
	Close() error
}

// BackfillPlan is what the dialect found at inspection.
type BackfillPlan struct {
	Schema, Table string // as the server names them
	Key           []string
	EstimatedRows int64
	Bookkeeping   string // the checkpoint table's name
	Notes         []string
}

// BackfillEstimate is the dry run's measure of the work.
type BackfillEstimate struct {
	SampleRows int64         // rows of the sample chunk
	SampleTook time.Duration // how long reading it took
}

// BackfillCount is one counted chunk (CountChunk).
type BackfillCount struct {
	Last    []any    // the chunk's last key: the next chunk starts after it
	Scanned int64    // rows of the table in the chunk
	Counted int64    // rows the --where selects, or that fail --verify
	Keys    []string // the first failing rows' keys, rendered
	Done    bool     // the chunk reached the last key
}

// BackfillChunk is one chunk's result.
type BackfillChunk struct {
	Last    []any // the chunk's last key: the next chunk starts after it
	Scanned int64 // rows of the table in the chunk's range
	Updated int64 // rows the UPDATE changed (MySQL: not those it set to the values they had)
	Done    bool  // the chunk reached the highest key
}

// BackfillState is where a backfill is.
type BackfillState int32

const (
	BackfillInspecting BackfillState = iota
	BackfillRunning
	BackfillVerifying
	BackfillDone
	BackfillFailed
)

func (s BackfillState) String() string {
	switch s {
	case BackfillInspecting:
		return "inspecting"
	case BackfillRunning:
		return "backfilling"
	case BackfillVerifying:
		return "verifying"
	case BackfillDone:
		return "done"
	case BackfillFailed:
		return "failed"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// ErrVerify is a --verify that found rows failing the expression: Run's
// error wraps it, after the keys were printed.
var ErrVerify = errors.New("rows fail --verify")

// Backfill is one run of osc backfill.
type Backfill struct {
	cfg BackfillConfig
	d   BackfillDialect
	log *slog.Logger
	out io.Writer // status lines

	ctl     *control
	state   atomic.Int32
	started atomic.Int64 // unix nanos Run started

	estimated atomic.Int64
	behind    atomic.Int64 // rows a resumed run's killed one walked, estimated
	scanned   atomic.Int64
	updated   atomic.Int64
	chunks    atomic.Int64
	retries   atomic.Int64
	counted   atomic.Int64 // rows the dry run's or --verify's count walked
	runStart  atomic.Int64 // unix nanos the chunks started, 0 before
	runEnd    atomic.Int64 // unix nanos they ended, 0 while running

	lastStatusHook atomic.Int64
	plan           atomic.Pointer[BackfillPlan]
}

// defaultBackfillRetries bounds a chunk's attempts when the config says 0.
const defaultBackfillRetries = 60

// NewBackfill prepares a backfill; Run executes it.
func NewBackfill(cfg BackfillConfig, d BackfillDialect, log *slog.Logger, statusOut io.Writer) *Backfill {
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = 1000
	}
	if cfg.Retries <= 0 {
		cfg.Retries = defaultBackfillRetries
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = 5 * time.Second
	}
	if cfg.VerifyMaxKeys <= 0 {
		cfg.VerifyMaxKeys = 10
	}
	b := &Backfill{cfg: cfg, d: d, log: log, out: statusOut}
	b.ctl = newControl(&Config{ChunkSize: cfg.ChunkSize, DMLBatchSize: 1, ChecksumThreads: 1, Control: cfg.Control}, nil)
	return b
}

// State returns where the backfill is.
func (b *Backfill) State() BackfillState { return BackfillState(b.state.Load()) }

func (b *Backfill) setState(s BackfillState) {
	b.state.Store(int32(s))
	b.log.Info("state", "state", s.String())
}

// Run executes the backfill. Whatever happens short of a kill, it leaves
// nothing behind: the bookkeeping table is dropped on success, failure and
// cancellation alike (a killed run's is what --resume continues from).
func (b *Backfill) Run(ctx context.Context) (err error) {
	b.started.Store(time.Now().UnixNano())
	b.setState(BackfillInspecting)
	defer func() {
		if err != nil {
			b.setState(BackfillFailed)
		}
		if cerr := b.d.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	ctx, finish, err := b.startControl(ctx)
	if err != nil {
		return err
	}
	defer func() { err = finish(err) }()
	plan, err := b.d.Inspect(ctx)
	if err != nil {
		return refused(err)
	}
	b.plan.Store(plan)
	b.estimated.Store(plan.EstimatedRows)
	if err := b.hook(ctx, hooks.OnValidated, hooks.Env{}); err != nil {
		return refused(err)
	}
	for _, n := range plan.Notes {
		b.log.Info("plan: " + n)
	}
	if b.cfg.Set == "" {
		return b.verify(ctx)
	}
	if !b.cfg.Execute {
		return b.dryRun(ctx, plan)
	}
	// Cleanup drops only what Begin made or took up: a refused Begin
	// keeps a killed run's checkpoint.
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if cerr := b.d.Cleanup(cctx); cerr != nil {
			b.log.Error("drop the backfill's bookkeeping table", "table", plan.Bookkeeping, "err", cerr)
			err = errors.Join(err, cerr)
		}
	}()
	after, err := b.d.Begin(ctx, b.cfg.Resume)
	if err != nil {
		return refused(err)
	}
	if after != nil {
		b.log.Info("resuming after the last committed chunk", "after key", fmt.Sprint(after))
		// The status counts from where the killed run stopped: its
		// rows, its ETA the rest's.
		if n, err := b.d.Behind(ctx, after); err != nil {
			b.log.Warn("cannot estimate the rows the killed run walked: the status counts from 0", "err", err)
		} else {
			b.behind.Store(n)
		}
	}
	if err := b.run(ctx, after); err != nil {
		return err
	}
	if b.cfg.Verify != "" {
		return b.verify(ctx)
	}
	b.setState(BackfillDone)
	return nil
}

// throttled runs fn with the throttler (and the status lines) running.
func (b *Backfill) throttled(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	probe, err := b.d.Throttle()
	if err != nil {
		return fmt.Errorf("throttle: %w", err)
	}
	stopThrottle, err := b.ctl.startThrottler(ctx, probe, b.log, cancel, b.statusLoop)
	if err != nil {
		return err
	}
	defer stopThrottle()
	return fn(ctx)
}

// run updates the table chunk by chunk after key after.
func (b *Backfill) run(ctx context.Context, after []any) error {
	return b.throttled(ctx, func(ctx context.Context) error { return b.update(ctx, after) })
}

// update is run's loop.
func (b *Backfill) update(ctx context.Context, after []any) error {
	if err := b.hook(ctx, hooks.OnBeforeRowCopy, hooks.Env{}); err != nil {
		return err
	}
	b.setState(BackfillRunning)
	b.runStart.Store(time.Now().UnixNano())
	for {
		if err := b.ctl.waitThrottle(ctx); err != nil {
			return fmt.Errorf("backfill: %w", err)
		}
		size := int(b.ctl.copySize.Load())
		start := time.Now()
		var ch BackfillChunk
		if err := b.retry(ctx, func() (err error) {
			ch, err = b.d.UpdateChunk(ctx, after, size)
			return err
		}); err != nil {
			return fmt.Errorf("backfill: %w", err)
		}
		took := time.Since(start)
		b.scanned.Add(ch.Scanned)
		b.updated.Add(ch.Updated)
		b.chunks.Add(1)
		b.log.Debug("chunk", "after", fmt.Sprint(after), "last", fmt.Sprint(ch.Last), "scanned", ch.Scanned, "updated", ch.Updated, "took", took)
		if b.cfg.ChunkTarget > 0 {
			next := nextChunkSize(size, int(ch.Scanned), took, b.cfg.ChunkTarget, maxChunkSize)
			b.ctl.copySize.CompareAndSwap(int64(size), int64(next)) // an operator's chunk-size= meanwhile wins
		}
		after = ch.Last
		if ch.Done {
			break
		}
		if err := b.ctl.niceSleep(ctx, took); err != nil {
			return fmt.Errorf("backfill: %w", err)
		}
	}
	b.runEnd.Store(time.Now().UnixNano())
	b.printStatus()
	b.log.Info("backfill complete", "rows scanned", b.scanned.Load(), "rows updated", b.updated.Load(), "chunks", b.chunks.Load())
	if err := b.hook(ctx, hooks.OnRowCopyComplete, hooks.Env{}); err != nil {
		b.log.Warn("on-row-copy-complete hook failed", "err", err)
	}
	return nil
}

// retry runs fn until it succeeds, fails in a way the dialect does not call
// transient, or the attempts run out: a chunk waits for an application's
// transaction only its lock wait timeout at a time, then tries again.
func (b *Backfill) retry(ctx context.Context, fn func() error) error {
	backoff := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt >= b.cfg.Retries || !b.d.Retryable(err) || ctx.Err() != nil {
			if err != nil && b.d.Retryable(err) && ctx.Err() == nil {
				return fmt.Errorf("a chunk still waits for other transactions' locks after %d attempts (the chunks committed stay updated; the checkpoint goes with this run: run again, with a --where that selects only the rows still to do to skip them): %w", attempt, err)
			}
			return err
		}
		b.retries.Add(1)
		b.log.Info("chunk waited too long for a lock or was a deadlock victim: it rolled back, retrying", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// dryRun reports the plan and changes nothing.
func (b *Backfill) dryRun(ctx context.Context, plan *BackfillPlan) error {
	size := b.cfg.ChunkSize
	est, err := b.d.Estimate(ctx, size)
	if err != nil {
		return refused(err)
	}
	matching, _, err := b.count(ctx, false)
	if err != nil {
		return fmt.Errorf("count the rows --where selects: %w", err)
	}
	rows := max(plan.EstimatedRows, est.SampleRows)
	chunks := (rows + int64(size) - 1) / int64(size)
	fmt.Fprintf(b.out, "Backfill plan: %s.%s, key (%s)\n", plan.Schema, plan.Table, strings.Join(plan.Key, ", "))
	fmt.Fprintf(b.out, "  update:   SET %s\n", b.cfg.Set)
	if b.cfg.Where != "" {
		fmt.Fprintf(b.out, "  where:    %s\n", b.cfg.Where)
	}
	fmt.Fprintf(b.out, "  rows:     %d match now, of about %d in the table\n", matching, plan.EstimatedRows)
	sizing := "each"
	if b.cfg.ChunkTarget > 0 {
		sizing = fmt.Sprintf("at first, then sized to take %s each", b.cfg.ChunkTarget)
	}
	fmt.Fprintf(b.out, "  chunks:   about %d of %d rows %s, one transaction each, its checkpoint saved in %s\n", chunks, size, sizing, plan.Bookkeeping)
	if est.SampleRows > 0 && rows > 0 {
		// Writing a row costs a few times reading it; say so rather than
		// pretend to precision.
		read := time.Duration(float64(est.SampleTook) * float64(rows) / float64(est.SampleRows))
		fmt.Fprintf(b.out, "  duration: reading the table in key order takes about %s (sample: %d rows in %s); the updates take a few times longer, plus throttling\n",
			read.Round(time.Second), est.SampleRows, est.SampleTook.Round(time.Millisecond))
	}
	if b.cfg.Verify != "" {
		fmt.Fprintf(b.out, "  verify:   afterwards, every row must satisfy %s\n", b.cfg.Verify)
	}
	b.log.Info("dry run (--noop): nothing was changed. Run with --execute to backfill.")
	b.setState(BackfillDone)
	return nil
}

// verify counts the rows failing --verify and lists the first ones' keys.
func (b *Backfill) verify(ctx context.Context) error {
	if b.cfg.Verify == "" {
		return nil
	}
	b.setState(BackfillVerifying)
	failing, keys, err := b.count(ctx, true)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if failing == 0 {
		fmt.Fprintf(b.out, "verify: every row satisfies %s\n", b.cfg.Verify)
		b.setState(BackfillDone)
		return nil
	}
	if len(keys) == 0 {
		// Writers fixed the rows between a chunk's count and the read of
		// its keys: the count stands, there is no key to show.
		fmt.Fprintf(b.out, "verify: %d rows did not satisfy %s, but none failed it any more when osc read their keys\n", failing, b.cfg.Verify)
		return fmt.Errorf("%w: %d rows (fixed meanwhile: run --verify again)", ErrVerify, failing)
	}
	fmt.Fprintf(b.out, "verify: %d rows do not satisfy %s; the first:\n", failing, b.cfg.Verify)
	for _, k := range keys {
		fmt.Fprintf(b.out, "  key %s\n", k)
	}
	return fmt.Errorf("%w: %d rows, the first key %s", ErrVerify, failing, keys[0])
}

// startControl serves the socket and runs the on-startup hook, as a
// migration's does; finish runs on-success or on-failure and stops serving.
func (b *Backfill) startControl(ctx context.Context) (context.Context, func(error) error, error) {
	k := b.cfg.Control
	if err := checkPanicFlag(k.PanicFlagFile); err != nil {
		return ctx, nil, err
	}
	b.ctl.hooks = hooks.Runner{Dir: k.HooksPath, Timeout: k.HooksTimeout, Log: b.log}
	if err := b.ctl.hooks.Check(); err != nil {
		return ctx, nil, err
	}
	ctx, abort := context.WithCancelCause(ctx)
	b.ctl.abort = abort
	srv, err := serve(k, b, b.log)
	if err != nil {
		abort(nil)
		return ctx, nil, err
	}
	stopWatch := watchPanicFlag(k.PanicFlagFile, abort, b.log)
	finish := func(err error) error {
		stopWatch()
		err = panicked(ctx, err)
		if err == nil {
			if herr := b.hook(context.Background(), hooks.OnSuccess, hooks.Env{}); herr != nil {
				b.log.Error("on-success hook failed (the backfill succeeded)", "err", herr)
			}
		} else if herr := b.hook(context.Background(), hooks.OnFailure, hooks.Env{Error: err.Error(), State: BackfillFailed.String()}); herr != nil {
			b.log.Error("on-failure hook failed", "err", herr)
		}
		srv.close()
		abort(nil)
		return err
	}
	if err := b.hook(ctx, hooks.OnStartup, hooks.Env{}); err != nil {
		return ctx, nil, finish(err)
	}
	return ctx, finish, nil
}

// hook runs the hook name with the backfill's environment plus extra:
// OSC_DDL is the UPDATE's SET and WHERE, OSC_COPIED_ROWS the rows scanned.
func (b *Backfill) hook(ctx context.Context, name string, extra hooks.Env) error {
	if b.ctl.hooks.Dir == "" {
		return nil
	}
	env := extra
	s := b.Status()
	env.Database, env.Table = b.cfg.Schema, b.cfg.Table
	if p := b.plan.Load(); p != nil {
		env.Database, env.Table = p.Schema, p.Table
	}
	env.DDL = "SET " + b.cfg.Set
	if b.cfg.Where != "" {
		env.DDL += " WHERE " + b.cfg.Where
	}
	env.Elapsed = s.Elapsed
	env.EstimatedRows, env.CopiedRows = s.Estimated, s.Scanned
	env.MigratedHost, env.InspectedHost = b.cfg.Control.Host, b.cfg.Control.Host
	env.ExecutingHost, _ = os.Hostname()
	env.Hint, env.Driver = b.cfg.Control.HooksHint, b.d.Driver()
	if env.State == "" {
		env.State = s.State.String()
	}
	if err := b.ctl.hooks.Run(ctx, name, env.Vars()); err != nil {
		return fmt.Errorf("%s hook: %w", name, err)
	}
	return nil
}
