package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"osc/change"
	"osc/hooks"
)

// State is where a migration is.
type State int32

const (
	StateInspecting State = iota
	StateCopying
	StateCaughtUp
	StatePostponed
	StateChecksumming
	StateCuttingOver
	StateDone
	StateFailed
)

func (s State) String() string {
	switch s {
	case StateInspecting:
		return "inspecting"
	case StateCopying:
		return "migrating"
	case StateCaughtUp:
		return "caught up"
	case StatePostponed:
		return "postponed"
	case StateChecksumming:
		return "checksumming"
	case StateCuttingOver:
		return "cutting over"
	case StateDone:
		return "done"
	case StateFailed:
		return "failed"
	case StateRevertWindow:
		return "revert window"
	case StateReverting:
		return "reverting"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// cleanupTimeout bounds cleanup, which runs on a fresh context after the
// migration's own context may have been cancelled (Ctrl-C).
const cleanupTimeout = time.Minute

// Migration is one run of osc against one table.
type Migration struct {
	cfg Config
	d   Dialect
	log *slog.Logger
	out io.Writer // status lines

	plan *Plan
	src  Source
	cp   Copier
	ap   Applier

	state     atomic.Int32
	started   time.Time
	copied    atomic.Int64 // rows the copy covered
	applied   atomic.Int64 // changes applied
	copyStart atomic.Int64 // unix nanos the copy started
	copyEnd   atomic.Int64 // unix nanos the copy finished, 0 while copying
	// exactRows is the original's rows as counted (--exact-rowcount),
	// once exactKnown.
	exactRows  atomic.Int64
	exactKnown atomic.Bool

	retries atomic.Int64 // statements run again after a transient failure
	// The cut-over's attempts at its lock: how many, and how long they
	// took in all and at most (nanoseconds).
	cutOverAttempts, cutOverLocked, cutOverLongest atomic.Int64
	// settlePatience is settlePatience, shorter in tests.
	settlePatience time.Duration

	checksummed   atomic.Int64 // rows of the original the checksum pass compared
	checksumStart atomic.Int64 // unix nanos the checksum started, 0 before

	// applyMu serialises applying captured changes with the replays that follow
	// each chunk, so a replayed change is always the latest for its key.
	// Chunks of an applierHoldingCopier hold it shared while they copy: they
	// run at once, the applier not meanwhile (a waiting Lock blocks new
	// RLocks, so the chunks do not starve it).
	applyMu sync.RWMutex
	// chunkMu lets a chunk copy alone: chunks hold it shared while they
	// copy, and a chunk retried after a transient failure (a deadlock, a
	// lock wait timeout) holds it exclusive, so that two chunks whose rows
	// wait on each other in a unique index (writers moving values between
	// their ranges) cannot deadlock again on the retry. Taken before
	// applyMu, which the applier takes alone.
	chunkMu sync.RWMutex
	// windowMu guards the replay window and the copy's ranges; taken after
	// applyMu when both are, and alone where applyMu, held shared by the
	// chunks copying, would wait for them (handing out the next range).
	windowMu sync.Mutex
	window   *replayWindow
	ranges   *rangeTracker // the copy's ranges in flight (copyrange.go)
	// applyIdle: the apply loop waits for changes (Source.Next) rather than
	// applying them (see yieldToApplier).
	applyIdle atomic.Bool
	// markerPos is the position of the last marker the applier passed.
	markerPos change.Position

	markerMu sync.Mutex
	markers  map[string]chan struct{}
	markerN  atomic.Int64
	// runID makes marker ids unique across runs: PostgreSQL delivers a
	// logical message to every slot of the database, so another osc's marker
	// with the same id would release this run's drain early.
	runID string

	ctl *control // the operator's runtime settings (control.go)

	nativeAt atomic.Pointer[nativeProgress] // the native path's step (native.go), nil on a copy

	ckpt            *checkpoints // nil when checkpoints are off (checkpoint.go)
	checkpointSaved atomic.Int64 // unix nanos the last checkpoint was saved, 0 before

	rev      *revertState // the open revert window (revert.go), under ctl.mu; nil: none
	reverted atomic.Bool  // a revert window swapped the tables back (the on-success hook's OSC_STATE)
}

// New prepares a migration; Run executes it.
func New(cfg Config, d Dialect, log *slog.Logger, statusOut io.Writer) *Migration {
	cfg.Defaults()
	m := &Migration{cfg: cfg, d: d, log: log, out: statusOut, markers: map[string]chan struct{}{}, runID: rand.Text(),
		settlePatience: settlePatience}
	m.ctl = newControl(&m.cfg, d)
	return m
}

// State returns where the migration is.
func (m *Migration) State() State { return State(m.state.Load()) }

func (m *Migration) setState(s State) {
	m.state.Store(int32(s))
	m.log.Info("state", "state", s.String())
}

// Run executes the migration. Whatever happens, it leaves nothing behind but
// what the user asked to keep: on failure or cancellation the shadow, the
// change capture and every bookkeeping object are dropped.
func (m *Migration) Run(ctx context.Context) (err error) {
	m.started = time.Now()
	m.setState(StateInspecting)
	defer func() {
		if err != nil {
			m.setState(StateFailed)
		}
		if cerr := m.d.Close(); cerr != nil {
			switch {
			case err == nil && m.State() == StateDone:
				m.log.Warn("the migration succeeded; closing its connections failed", "err", cerr)
			case err == nil:
				err = fmt.Errorf("close: %w", cerr)
			}
		}
	}()
	ctx, finish, err := m.startControl(ctx)
	if err != nil {
		return err
	}
	defer func() { err = finish(err) }()
	if err := m.d.Inspect(ctx); err != nil {
		return refused(err)
	}
	if err := m.hook(ctx, hooks.OnValidated, hooks.Env{}); err != nil {
		return refused(err)
	}
	np, err := m.planNative(ctx)
	if err != nil {
		return err
	}
	m.preflight(ctx, np)
	if done, err := m.native(ctx, np); done || err != nil {
		return err
	}
	var plan *Plan
	var ck *Checkpoint
	if m.cfg.Resume {
		// A refusal keeps everything the killed run left: m.plan stays nil,
		// so nothing is cleaned up.
		if plan, ck, err = m.d.Resume(ctx); err != nil {
			return refused(err)
		}
		if err := m.checkResumable(ck); err != nil {
			return refused(err)
		}
	} else if plan, err = m.d.CreateShadow(ctx); err != nil {
		// CreateShadow drops what it made when it fails.
		return refused(err)
	}
	if ck != nil && ck.CutOver {
		m.log.Info("the killed run had already cut over: the table is migrated; cleaning up what it left", "table", plan.Table, "old table", plan.Old)
		if !m.cfg.Execute {
			m.log.Info("dry run (--noop): nothing was changed. Run with --execute to clean up.")
			m.setState(StateDone)
			return nil
		}
		m.plan = plan
		if err := m.cleanup(true); err != nil {
			return err
		}
		m.setState(StateDone)
		return nil
	}
	m.plan = plan
	m.ctl.setPlan(plan)
	if err := m.planRevert(ctx); err != nil {
		// A resumed run keeps what the killed run left, as any refusal of
		// a resume does.
		if !m.cfg.Resume {
			if cerr := m.cleanup(false); cerr != nil {
				m.log.Error("cleanup after the refusal", "err", cerr)
			}
		}
		return refused(err)
	}
	for _, n := range plan.Notes {
		m.log.Info("plan: " + n)
	}
	if m.cfg.NoChecksum {
		m.log.Warn("plan: no checksum before the cut-over (--checksum=false)")
	} else {
		sizing := ""
		if m.checksumChunkTarget() > 0 {
			sizing = fmt.Sprintf(" at first, then sized to take %s each", m.checksumChunkTarget())
		}
		m.log.Info(fmt.Sprintf("plan: before the cut-over, compare the shadow with the table in chunks of %d rows%s, %d at a time; recopy chunks that differ up to %d time(s), then abort",
			checksumChunkFactor*m.chunkSize(), sizing, m.cfg.ChecksumThreads, m.cfg.ChecksumMaxRepairs))
	}
	if ck != nil {
		m.log.Info("resuming", "checkpoint saved", ck.Saved.Format(time.RFC3339), "ago", time.Since(ck.Saved).Round(time.Second).String(),
			"rows copied", ck.Copied, "copy done", ck.CopyDone, "capture from", ck.Position)
		if !m.cfg.Execute {
			m.log.Info("dry run (--noop): the killed run can be resumed; nothing was changed. Run with --execute to resume.")
			m.setState(StateDone)
			return nil
		}
	}
	if !m.cfg.Execute {
		m.log.Info("dry run (--noop): the shadow table was created and altered successfully; dropping it. Run with --execute to migrate.")
		if err := m.cleanup(false); err != nil {
			return err
		}
		m.setState(StateDone)
		return nil
	}

	cutOver, err := m.migrate(ctx, ck)
	for n := 1; err != nil && !cutOver && m.mayStartOver(ctx, err); n++ {
		if n > maxStartOvers {
			// The error says so: its own words (PostgreSQL's: a new slot
			// does not meet it) read as if nothing had been tried.
			err = fmt.Errorf("the migration started over %d times and failed each time: %w", maxStartOvers, err)
			break
		}
		if err = m.startOver(ctx, err, n); err != nil {
			break
		}
		cutOver, err = m.migrate(ctx, nil)
	}
	if err == nil && cutOver && m.cfg.RevertWindow > 0 {
		return m.endRevertWindow(ctx)
	}
	if cerr := m.cleanup(cutOver); cerr != nil {
		switch {
		case cutOver:
			// The table is migrated: a failure now must not send the
			// operator to run osc again on the altered table.
			m.log.Warn("the migration succeeded, but cleaning up after it failed; drop what is listed by hand", "err", cerr)
		case err == nil:
			err = cerr
		default:
			m.log.Error("cleanup after failure", "err", cerr)
		}
	}
	if err == nil {
		m.setState(StateDone)
		m.log.Info("migration complete", "table", plan.Table, "old table", plan.Old,
			"rows copied", m.copied.Load(), "changes applied", m.applied.Load(),
			"elapsed", time.Since(m.started).Round(time.Millisecond).String())
	}
	return err
}

// maxStartOvers bounds how many times a migration starts over after a
// failure its dialect says another start would not meet (startOverDialect).
const maxStartOvers = 3

// mayStartOver reports whether the migration, which failed with err before
// its cut-over, is to start over: the dialect says a new start would not
// meet the failure, and the operator did not stop it (Run bounds how many
// times, maxStartOvers).
func (m *Migration) mayStartOver(ctx context.Context, err error) bool {
	so, ok := m.d.(startOverDialect)
	return ok && ctx.Err() == nil && so.StartOver(err)
}

// startOver drops what the failed migration made, the shadow included, and
// makes a new shadow to migrate into from the start, as a new run of osc
// would. The counters of the copy, the apply, the checksum and the cut-over start
// again from zero.
func (m *Migration) startOver(ctx context.Context, cause error, n int) error {
	m.log.Warn(fmt.Sprintf("starting the migration over with a new shadow table (%d of %d)", n, maxStartOvers), "err", cause)
	if err := m.cleanup(false); err != nil {
		return errors.Join(cause, fmt.Errorf("start over: %w", err))
	}
	// The dialect's own cleanup is done: Run's must not drop anything
	// again unless a new shadow is made.
	m.plan = nil
	for _, c := range []*atomic.Int64{&m.copied, &m.applied, &m.copyStart, &m.copyEnd, &m.checksummed, &m.checksumStart,
		&m.checkpointSaved, &m.cutOverAttempts, &m.cutOverLocked, &m.cutOverLongest} {
		c.Store(0)
	}
	m.markerPos = nil
	plan, err := m.d.CreateShadow(ctx)
	if err != nil {
		return errors.Join(cause, fmt.Errorf("start over: %w", err))
	}
	m.plan = plan
	m.ctl.setPlan(plan)
	if err := m.planRevert(ctx); err != nil {
		return errors.Join(cause, fmt.Errorf("start over: %w", err))
	}
	return nil
}

// cleanup drops what must not outlive the migration, on a context of its own.
// The dialect's own cleanup runs only once the shadow was made.
func (m *Migration) cleanup(cutOver bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	var errs []error
	if m.src != nil {
		if err := m.src.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop change capture: %w", err))
		}
		m.src = nil
		m.ctl.setSource(nil)
	}
	if m.plan != nil {
		if err := m.d.Cleanup(ctx, cutOver); err != nil {
			errs = append(errs, fmt.Errorf("cleanup: %w", err))
		}
	}
	return errors.Join(errs...)
}

// countRows counts the original's rows for the status's total and ETA
// (--exact-rowcount): before the copy, or with ConcurrentRowCount alongside
// it, until stop (which may be called again) cancels the count and waits
// for it to end. The copy's end calls it: the count's statement would hold
// a lock the cut-over's waits for (MySQL's metadata lock, PostgreSQL's
// ACCESS SHARE), and the checksum would read the table alongside it. A count that fails leaves the estimate; the
// error is ctx's, when it ended a count made before the copy.
func (m *Migration) countRows(ctx context.Context) (stop func(), err error) {
	if !m.cfg.ExactRowCount {
		return func() {}, nil
	}
	count := func(ctx context.Context) {
		start := time.Now()
		n, err := m.d.CountRows(ctx)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("exact row count failed: progress keeps the estimate", "err", err)
			}
			return
		}
		m.exactRows.Store(n)
		m.exactKnown.Store(true)
		m.log.Info("exact row count", "rows", n, "elapsed", time.Since(start).Round(time.Millisecond).String())
	}
	if !m.cfg.ConcurrentRowCount {
		count(ctx)
		return func() {}, ctx.Err()
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { count(ctx) })
	return sync.OnceFunc(func() {
		cancel()
		wg.Wait()
	}), nil
}

// migrate runs capture, copy and apply, waits for the cut-over to be allowed
// and cuts over; from ck when resuming (nil: from the start). It reports
// whether the tables were swapped.
func (m *Migration) migrate(parent context.Context, ck *Checkpoint) (bool, error) {
	var err error
	stopCount, err := m.countRows(parent)
	defer stopCount()
	if err != nil {
		return false, err
	}
	if err := m.hook(parent, hooks.OnRowCountComplete, hooks.Env{}); err != nil {
		return false, err
	}
	if m.src, err = m.d.NewSource(); err != nil {
		return false, fmt.Errorf("change capture: %w", err)
	}
	m.ctl.setSource(m.src)
	if m.cp, err = m.d.NewCopier(); err != nil {
		return false, fmt.Errorf("copier: %w", err)
	}
	if m.ap, err = m.d.NewApplier(); err != nil {
		return false, fmt.Errorf("applier: %w", err)
	}
	m.window = newReplayWindow(m.plan.KeyIndex)
	m.log.Info("starting change capture")
	if err := m.src.Start(parent); err != nil {
		return false, fmt.Errorf("start change capture: %w", err)
	}
	m.log.Info("change capture started", "position", m.src.Lag())
	var after []any
	copyDone := false
	if ck != nil {
		after, copyDone = ck.After, ck.CopyDone
		m.copied.Store(ck.Copied)
		m.applied.Store(ck.Applied)
	}

	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	stopThrottle, err := m.startThrottle(ctx, cancel)
	if err != nil {
		return false, err
	}
	defer stopThrottle()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := m.applyLoop(ctx); err != nil {
			cancel(err)
		}
	}()
	go func() {
		defer wg.Done()
		m.statusLoop(ctx)
	}()
	defer wg.Wait()
	defer cancel(nil)
	m.ckpt = m.startCheckpoints(ctx)
	defer m.ckpt.end()

	if err := m.hook(ctx, hooks.OnBeforeRowCopy, hooks.Env{}); err != nil {
		return false, err
	}
	m.setState(StateCopying)
	err = m.copyLoop(ctx, after, copyDone)
	stopCount()
	if err != nil {
		return false, m.cause(ctx, err)
	}
	if err := m.buildIndexes(ctx); err != nil {
		return false, m.cause(ctx, err)
	}
	if err := m.hook(ctx, hooks.OnRowCopyComplete, hooks.Env{}); err != nil {
		return false, err
	}
	if err := m.drain(ctx); err != nil {
		return false, m.cause(ctx, fmt.Errorf("catch up: %w", err))
	}
	if cd, ok := m.ap.(copyDoneApplier); ok {
		// Every change any chunk's read saw has been applied now.
		m.applyMu.Lock()
		cd.CopyDone()
		m.applyMu.Unlock()
	}
	if err := m.restore(ctx, false); err != nil {
		return false, m.cause(ctx, err)
	}
	m.setState(StateCaughtUp)
	m.printStatus()
	// A postpone sent while the cut-over waited for the throttle, for the
	// checksum or to lock holds it again: the checksum that gates the
	// cut-over is the one after the last release.
	for {
		for {
			if err := m.waitPostponed(ctx); err != nil {
				return false, m.cause(ctx, err)
			}
			if err := m.waitCutOverThrottle(ctx); err != nil {
				return false, m.cause(ctx, err)
			}
			if m.postponeRequested() {
				continue
			}
			if err := m.verify(ctx); err != nil {
				return false, m.cause(ctx, err)
			}
			if !m.postponeRequested() {
				break
			}
		}
		if err := m.hook(ctx, hooks.OnBeforeCutOver, hooks.Env{}); err != nil {
			return false, err
		}
		// The cut-over renames the tables: no checkpoint is saved during an
		// attempt at its lock (only while it waits to lock, cutOverReady).
		// A run killed in one is resumed from the last one, or, when the
		// tables were swapped, only cleaned up (Dialect.Resume).
		m.ckpt.hold(ctx)
		m.setState(StateCuttingOver)
		// The first attempt first catches up without the lock
		// (cutOverReady): a long postpone or throttle, or writers faster
		// than the applier, leave a backlog that the cut-over's own drain
		// would apply while holding writers.
		err := m.d.CutOver(ctx, m.cutOverReady(), m.drainLocked, m.cutOverAttempted)
		if errors.Is(err, errPostponedToLock) {
			m.ckpt.release()
			continue
		}
		if err != nil {
			return false, m.cutOverCause(ctx, fmt.Errorf("cut-over: %w", err))
		}
		return true, nil
	}
}

// cutOverAttempted counts one cut-over attempt that took d, for the status
// and the metrics.
func (m *Migration) cutOverAttempted(d time.Duration) {
	m.cutOverAttempts.Add(1)
	m.cutOverLocked.Add(int64(d))
	for {
		longest := m.cutOverLongest.Load()
		if int64(d) <= longest || m.cutOverLongest.CompareAndSwap(longest, int64(d)) {
			return
		}
	}
}

// cause prefers the error that cancelled ctx (an apply failure) over the
// context error it caused elsewhere.
func (m *Migration) cause(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}

// cutOverCause is cause for the cut-over's error, which is kept with the
// error that cancelled ctx unless it already holds it: a cut-over that
// swapped the tables and then failed (PostgreSQL: foreign keys left NOT
// VALID, which the validation cancelled by ctx leaves too) says so and what
// to run, while the error that cancelled ctx (an apply or capture failure
// after the swap) would tell the operator to run osc again. A cut-over
// error that is only ctx's end adds nothing.
func (m *Migration) cutOverCause(ctx context.Context, err error) error {
	c := m.cause(ctx, err)
	if errors.Is(err, c) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return c
	}
	return errors.Join(c, err)
}

// copyLoop copies the table in ranges of keys, from after (nil: the first
// row; done: nothing is left, a resumed run's copy was complete), up to
// --copy-threads at once (copyRanges); after each range's chunk it
// re-applies the changes the chunk may have overwritten with an older row
// (see replayWindow), and publishes the checkpoint it may be resumed from.
func (m *Migration) copyLoop(ctx context.Context, after []any, done bool) error {
	m.copyStart.Store(time.Now().UnixNano())
	m.windowMu.Lock()
	m.ranges = newRangeTracker(after, m.copied.Load())
	m.windowMu.Unlock()
	if done {
		m.ckpt.publishCopyDone()
	} else {
		m.publishCopy()
		if err := m.copyRanges(ctx, after); err != nil {
			return err
		}
	}
	m.applyMu.Lock()
	m.copyEnd.Store(time.Now().UnixNano())
	m.windowMu.Lock()
	m.window.reset()
	most := m.ranges.most
	m.windowMu.Unlock()
	m.applyMu.Unlock()
	m.ckpt.publishCopyDone()
	m.log.Info("row copy complete", "rows", m.copied.Load(),
		"elapsed", time.Duration(m.copyEnd.Load()-m.copyStart.Load()).Round(time.Millisecond).String(), "chunks at once", most)
	return nil
}

// buildIndexes has an indexBuildingCopier build the indexes it left out. The
// applier keeps running: its writes to the shadow wait for each build, and
// the changes wait in the capture meanwhile.
func (m *Migration) buildIndexes(ctx context.Context) error {
	b, ok := m.cp.(indexBuildingCopier)
	if !ok {
		return nil
	}
	start := time.Now()
	n, err := b.BuildIndexes(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		m.log.Info("indexes built after the copy", "indexes", n, "elapsed", time.Since(start).Round(time.Millisecond).String())
	}
	return nil
}

// snapshotCopier is a Copier whose chunks report the snapshot they read
// (Chunk.Snapshot): the replay window then needs no marker per chunk.
type snapshotCopier interface {
	Copier
	ReportsSnapshots()
}

// yieldToApplier, before a chunk that holds the applier off, waits until the
// apply loop has applied what the capture had for it (it waits for more), at
// most as long as the last chunk held it off: the applier keeps up with
// writers while the copy runs, and gets at least half the time when it
// cannot. Only when the chunk runs depends on it.
func (m *Migration) yieldToApplier(ctx context.Context, most time.Duration) error {
	deadline := time.Now().Add(most)
	for !m.applyIdle.Load() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// applierHoldingCopier is a Copier whose chunks are cheaper when the
// applier writes nothing to the shadow meanwhile (PostgreSQL's anti-join):
// the engine holds the applier off (applyMu) while each chunk is copied. The
// copy's correctness does not rest on it: it only narrows which of the
// interleavings the argument (README, "Why nothing is lost") covers happen.
type applierHoldingCopier interface {
	Copier
	HoldsApplier()
}

// snapshotTaker is a snapshotCopier that can take the source's current
// snapshot between chunks: while the copy is throttled the window forgets
// what it sees (forgetSeen), so that the oldest change the window holds, which
// bounds a checkpoint's position, moves on without a chunk.
type snapshotTaker interface {
	snapshotCopier
	CurrentSnapshot(ctx context.Context) (change.Snapshot, error)
}

// replay re-applies, after the chunk stamped tick (replayWindow.start)
// committed, the changes it may not have seen (replayWindow.finish).
func (m *Migration) replay(ctx context.Context, tick uint64, snap change.Snapshot, marker string) error {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.windowMu.Lock()
	changes := m.window.finish(tick, snap, marker)
	m.windowMu.Unlock()
	if len(changes) == 0 {
		return nil
	}
	if err := m.retry(ctx, "re-apply", func() error { return m.ap.Apply(ctx, changes) }); err != nil {
		return fmt.Errorf("re-apply %d changes after the chunk: %w", len(changes), err)
	}
	return nil
}

// refresh has the applier write the chunk's stale rows (Chunk.Stale) as the
// source holds them now. A clash the applier cannot resolve
// (change.ErrChunkClash) is with a shadow row the applier has not yet
// brought up to the read: it is drained, and the rows read again, up to
// chunkClashDrains times.
func (m *Migration) refresh(ctx context.Context, stale [][]string) error {
	if len(stale) == 0 {
		return nil
	}
	r, ok := m.ap.(refreshingApplier)
	if !ok {
		return fmt.Errorf("the copier skipped %d rows that clash with the shadow, which the applier cannot refresh", len(stale))
	}
	for drains := 0; ; drains++ {
		m.applyMu.Lock()
		err := m.retry(ctx, "refresh stale rows", func() error { return r.Refresh(ctx, stale) })
		m.applyMu.Unlock()
		if !errors.Is(err, change.ErrChunkClash) || drains == chunkClashDrains {
			if err != nil {
				return fmt.Errorf("refresh %d rows that clashed: %w", len(stale), err)
			}
			return nil
		}
		m.log.Info("a row read from the source clashed with a row the applier wrote; draining the applier and reading it again", "rows", len(stale), "attempt", drains+1, "err", err)
		if err := m.drain(ctx); err != nil {
			return fmt.Errorf("drain after a clash: %w", err)
		}
	}
}

// applyLoop applies captured changes in batches until ctx ends; batches
// grow while a backlog lasts (batchLimit).
//
// A batch the applier cannot write because it ends inside a transaction
// (change.ErrMidTransaction: rows hold a value twice that a DEFERRABLE
// unique constraint lets the source hold until the statement or transaction
// ends) is held, unacknowledged, and applied again with the changes that
// follow. The source sends only committed transactions, each whole, so the
// rest of that transaction follows at once; when the next change is of
// another transaction (Xid) the batch ended where the source's constraints
// held, and the error is the applier's to report. The held batch is
// applied again only with at least as many changes as it holds, or with the
// rest of its transaction (moreChanges), so that a transaction of many
// batches is applied a few times (its size doubling each time), not once
// per batch that follows it.
func (m *Migration) applyLoop(ctx context.Context) error {
	var (
		limit   batchLimit
		held    []change.Change
		heldErr error
	)
	n := m.batchSize()
	for {
		m.applyIdle.Store(len(held) == 0)
		changes, err := m.moreChanges(ctx, max(n, len(held)), held)
		m.applyIdle.Store(false)
		if err != nil {
			if ctx.Err() != nil {
				return nil //nolint:nilerr // ctx ended: the loop's normal end, not a capture failure
			}
			return fmt.Errorf("change capture: %w", err)
		}
		if len(held) > 0 {
			last := &held[len(held)-1]
			if x := last.Xid; x == 0 || changes[0].Xid != x {
				if !last.Cut {
					return heldErr
				}
				// The transaction the source was still reading ended
				// with the held batch: it is whole, and applies as such.
			}
			last.Cut = false
			changes = append(held, changes...)
			held, heldErr = nil, nil
		}
		start := time.Now()
		// Rows before a marker are applied before the marker is released.
		rows := changes[:0:0]
		for _, c := range changes {
			if c.Op != change.Marker {
				rows = append(rows, c)
				continue
			}
			if err := m.applyBatch(ctx, rows); err != nil {
				return err
			}
			rows = rows[:0]
			m.applyMu.Lock()
			m.windowMu.Lock()
			m.window.passed(c.Marker)
			m.windowMu.Unlock()
			m.markerPos = c.Pos
			m.applyMu.Unlock()
			m.releaseMarker(c.Marker)
		}
		done := len(changes)
		if err := m.applyBatch(ctx, rows); errors.Is(err, change.ErrMidTransaction) {
			held, heldErr = rows, err
			done -= len(rows)
			m.log.Info("the batch ends inside a transaction, where its rows hold a value twice; applying it with the changes that follow", "changes", len(rows), "err", err)
		} else if err != nil {
			return err
		}
		if done > 0 {
			m.src.Ack(changes[done-1].Pos)
		}
		n = limit.next(m.batchSize(), len(changes), time.Since(start))
	}
}

// moreChanges returns the source's next changes, up to limit; after a held
// batch (applyLoop) it takes changes until it has limit of them or its
// last ends the held batch's transaction. The source may return fewer than
// limit while some are still to come: PostgreSQL's returns at most what its
// queue holds, a transaction larger than the queue in parts, each ending
// with a change marked Cut.
func (m *Migration) moreChanges(ctx context.Context, limit int, held []change.Change) ([]change.Change, error) {
	changes, err := m.src.Next(ctx, limit)
	if err != nil || len(held) == 0 {
		return changes, err
	}
	xid := held[len(held)-1].Xid
	for len(changes) < limit {
		if last := changes[len(changes)-1]; xid == 0 || last.Xid != xid || !last.Cut {
			break
		}
		more, err := m.src.Next(ctx, limit-len(changes))
		if err != nil {
			return nil, err
		}
		changes = append(changes, more...)
	}
	return changes, nil
}

func (m *Migration) applyBatch(ctx context.Context, rows []change.Change) error {
	if len(rows) == 0 {
		return nil
	}
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	if err := m.retry(ctx, "apply", func() error { return m.ap.Apply(ctx, rows) }); err != nil {
		return fmt.Errorf("apply %d changes: %w", len(rows), err)
	}
	if m.copyEnd.Load() == 0 {
		m.windowMu.Lock()
		m.window.record(rows)
		m.windowMu.Unlock()
	}
	m.applied.Add(int64(len(rows)))
	return nil
}

// drain returns once every change committed before it was called has been
// applied to the shadow: it emits a marker into the change stream and waits
// for the apply loop to reach it.
func (m *Migration) drain(ctx context.Context) error {
	_, err := m.drainWithin(ctx, 0)
	return err
}

// drainLocked is drain for the cut-over, which holds the original's writes
// blocked until the swap: once the applier has passed the marker, the rows a
// new unique key turned away go back into the shadow (restore, final), so
// that the shadow then equals the original. (The checksum's lock, which the
// writers outlive, restores without final: verify.)
func (m *Migration) drainLocked(ctx context.Context) error {
	if err := m.drain(ctx); err != nil {
		return err
	}
	return m.restore(ctx, true)
}

// restore moves the rows a new unique key turned away back into the shadow
// (restoringApplier; final as there), holding the applier off.
func (m *Migration) restore(ctx context.Context, final bool) error {
	r, ok := m.ap.(restoringApplier)
	if !ok {
		return nil
	}
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	if err := m.retry(ctx, "restore", func() error { return r.Restore(ctx, final) }); err != nil {
		return fmt.Errorf("move back the rows the new unique key turned away: %w", err)
	}
	return nil
}

// drainWithin is drain that stops waiting after limit (none when 0): it
// reports whether the applier reached the marker in time. A marker given up
// on is passed later like any other.
func (m *Migration) drainWithin(ctx context.Context, limit time.Duration) (bool, error) {
	id := m.markerID()
	ch := make(chan struct{})
	m.markerMu.Lock()
	m.markers[id] = ch
	m.markerMu.Unlock()
	defer func() {
		m.markerMu.Lock()
		delete(m.markers, id)
		m.markerMu.Unlock()
	}()
	if err := m.src.EmitMarker(ctx, id); err != nil {
		return false, fmt.Errorf("emit marker: %w", err)
	}
	var expired <-chan time.Time
	if limit > 0 {
		t := time.NewTimer(limit)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-ch:
		return true, nil
	case <-expired:
		return false, nil
	case <-ctx.Done():
		return false, context.Cause(ctx)
	}
}

// settlePatience is how long settle drains an applier that does not
// settle while writes go on before it leaves it to settleBlocked.
const settlePatience = 5 * time.Second

// settle drains until the applier is settled (settlingApplier), or just
// drains for an applier that always is. It returns how long the drain that
// found it settled took: the drains and pauses before it, while it was not,
// are no measure of what a drain takes. A drain that lasts longer than limit
// (when not 0) is given up on: settle then returns limit and false, the
// applier neither drained nor known to be settled. After patience (when not
// 0) of drains that did not find it settled, settle returns the last one's
// time and true: drained, not settled.
func (m *Migration) settle(ctx context.Context, limit, patience time.Duration) (time.Duration, bool, error) {
	began := time.Now()
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		start := time.Now()
		drained, err := m.drainWithin(ctx, limit)
		if err != nil {
			return 0, false, err
		}
		if !drained {
			return limit, false, nil
		}
		took := time.Since(start)
		if m.settled() || patience > 0 && time.Since(began) >= patience {
			return took, true, nil
		}
		if wait == 10*time.Millisecond {
			m.log.Info("waiting for the applier to settle before the cut-over: it still has to read the source for some changes")
		}
		select {
		case <-ctx.Done():
			return 0, false, context.Cause(ctx)
		case <-time.After(wait):
		}
	}
}

// settleBlocked settles the applier before the cut-over's lock, which
// blocks its reads of the source. One that did not settle while writes went
// on settles with writes blocked (writeBlockingDialect): no change then comes
// that needs another read, and a drain or two settle it. When blocking them
// fails (its attempts at the lock ran out, as the cut-over's may), it drains
// while writes go on for settlePatience more, and fails with the block's
// error unless that settled the applier: waiting longer may wait for as long
// as the writes go on. Without a dialect that can block writes alone, it
// waits for the applier to settle while writes go on.
func (m *Migration) settleBlocked(ctx context.Context) error {
	if m.settled() {
		return nil
	}
	b, ok := m.d.(writeBlockingDialect)
	if !ok {
		_, _, err := m.settle(ctx, 0, 0)
		return err
	}
	m.log.Info("the applier still has to read the source for changes that keep coming: blocking writes (not reads) until it has settled")
	start := time.Now()
	err := b.BlockWrites(ctx, func(ctx context.Context) error {
		_, _, err := m.settle(ctx, 0, 0)
		return err
	})
	if err == nil {
		m.log.Info("the applier settled with writes blocked", "blocked for", time.Since(start).Round(time.Millisecond).String())
		return nil
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	m.log.Warn("could not settle the applier with writes blocked: draining while they go on", "err", err)
	if _, _, serr := m.settle(ctx, 0, m.settlePatience); serr != nil {
		return serr
	}
	if m.settled() {
		return nil
	}
	return fmt.Errorf("the applier must still read the source, which the cut-over's lock blocks, and writes could not be blocked for it to settle: %w", err)
}

// settled reports whether the applier is settled (settlingApplier): always,
// for an applier that needs no reads of the source.
func (m *Migration) settled() bool {
	s, ok := m.ap.(settlingApplier)
	if !ok {
		return true
	}
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	return s.Settled(m.markerPos)
}

// readyToLock waits at most lockDrainPatience for a drain at most a
// lockDrainShare of the lock timeout long (see waitToLock).
const (
	lockDrainShare    = 4
	lockDrainPatience = 10 * time.Second
)

// readyToLock returns the checksum's ready callback: before its first
// attempt at the lock it waits until a lock attempt should start
// (waitToLock); before a retry it returns at once. A failed attempt held the
// writers while the applier caught up, so the backlog is then at its
// smallest: draining first would let it grow again.
func (m *Migration) readyToLock() func(context.Context) error {
	first := true
	return func(ctx context.Context) error {
		if !first {
			return nil
		}
		first = false
		return m.waitToLock(ctx, nil)
	}
}

// errPostponedToLock is a cut-over postponed while it waited to lock.
var errPostponedToLock = errors.New("cut-over postponed while it waited to lock")

// cutOverReady returns the cut-over's ready callback, readyToLock's but
// for a wait that may be long: while it waits checkpoints are saved (a run
// killed meanwhile resumes from a recent one, and a PostgreSQL permanent
// slot is confirmed on instead of retaining WAL for the whole wait), and a
// postpone requested meanwhile holds the cut-over (errPostponedToLock), as
// does a throttle, before every attempt.
func (m *Migration) cutOverReady() func(context.Context) error {
	first := true
	before := func(ctx context.Context) error {
		if m.postponeRequested() {
			return errPostponedToLock
		}
		return m.waitCutOverThrottle(ctx)
	}
	return func(ctx context.Context) error {
		m.ckpt.release()
		defer m.ckpt.hold(ctx)
		wait := before
		if first {
			first = false
			wait = func(ctx context.Context) error { return m.waitToLock(ctx, before) }
		}
		if err := wait(ctx); err != nil {
			return err
		}
		if err := m.settleBlocked(ctx); err != nil {
			return fmt.Errorf("catch up: %w", err)
		}
		// What the lock's final restore has to move back is then only
		// what was turned away since.
		return m.restore(ctx, false)
	}
}

// waitToLock is readyToLock, calling before (when not nil) before each
// drain: an error from it ends the wait.
//
// The drain under the lock applies what was written since the last drain
// without it, which takes about as long as that drain when the applier keeps
// pace: a lock after a short drain holds writers briefly, where one taken
// while the applier is far behind holds them for its whole lock timeout and
// may roll back. So while drains get shorter (the applier is gaining on the
// writers), osc waits, up to lockDrainPatience, for one at most a quarter of
// the lock timeout. Once a drain is no shorter than the one before, the
// writers outpace the applier and waiting only lets the backlog grow: only a
// lock, which holds the writers while the applier catches up (up to the lock
// timeout per attempt), gets the migration done, so osc locks then, as it
// would at once without this wait. A drain is not waited out past the length
// of the one before, nor past the patience: by then it is known to be no
// shorter, and with writers that outpace the applier each drain would be
// longer than the last (the wait, and the backlog the lock then applies,
// would grow without bound).
func (m *Migration) waitToLock(ctx context.Context, before func(context.Context) error) error {
	budget := m.cfg.CutOverLockTimeout / lockDrainShare
	began := time.Now()
	var last time.Duration
	for n := 0; ; n++ {
		if before != nil {
			if err := before(ctx); err != nil {
				return err
			}
		}
		limit := max(lockDrainPatience-time.Since(began), time.Millisecond)
		if n > 0 {
			limit = min(limit, last)
		}
		took, drained, err := m.settle(ctx, limit, m.settlePatience)
		if err != nil {
			return fmt.Errorf("catch up: %w", err)
		}
		// A postpone or a throttle that came during the last drain still
		// holds the lock back.
		lock := func() error {
			if before != nil {
				return before(ctx)
			}
			return nil
		}
		if drained && took <= budget {
			return lock()
		}
		if !drained || n > 0 && (took >= last || time.Since(began) >= lockDrainPatience) {
			m.log.Warn("taking the lock with the applier behind: writes arrive about as fast as osc applies them, so the lock holds writers while it catches up (at most the lock timeout per attempt); lower the write rate for a shorter lock",
				"last catch-up took", catchUpText(took, drained), "the one before", last.Round(time.Millisecond).String(),
				"waited", time.Since(began).Round(time.Millisecond).String(), "state", m.State().String())
			return lock()
		}
		last = took
	}
}

// catchUpText describes a drain that took took, or was given up on then.
func catchUpText(took time.Duration, drained bool) string {
	s := took.Round(time.Millisecond).String()
	if !drained {
		return "more than " + s
	}
	return s
}

// markerID returns a marker id unique to this run.
func (m *Migration) markerID() string {
	return fmt.Sprintf("osc-%s-%d", m.runID, m.markerN.Add(1))
}

func (m *Migration) releaseMarker(id string) {
	m.markerMu.Lock()
	defer m.markerMu.Unlock()
	if ch, ok := m.markers[id]; ok {
		close(ch)
		delete(m.markers, id)
	}
}

// postponeRequested reports whether the postpone flag file exists.
func (m *Migration) postponeRequested() bool {
	f := m.cfg.PostponeCutOverFlagFile
	if f == "" {
		return false
	}
	_, err := os.Stat(f)
	return !errors.Is(err, os.ErrNotExist)
}

// waitPostponed holds the cut-over while the postpone flag file exists; the
// apply loop keeps the shadow current meanwhile.
func (m *Migration) waitPostponed(ctx context.Context) error {
	f := m.cfg.PostponeCutOverFlagFile
	if f == "" {
		return nil
	}
	announced := false
	for {
		if !m.postponeRequested() {
			if announced {
				m.log.Info("postpone flag file removed; proceeding to cut-over", "file", f)
			}
			return nil
		}
		if !announced {
			m.setState(StatePostponed)
			m.log.Info("cut-over postponed: copy complete and caught up; applying changes until the flag file is removed", "file", f)
			announced = true
			if err := m.hook(ctx, hooks.OnBeginPostponed, hooks.Env{}); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
