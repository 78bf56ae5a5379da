package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Checkpoint is what a run saves every CheckpointInterval so that, killed,
// it can be continued with --resume: where the copy is and where the capture
// can restart, such that restarting the capture at Position and the copy
// after After leaves the shadow exactly as an uninterrupted run would.
//
// Why the pair is safe. The copy publishes it whenever its watermark moves
// (publishCopy): every range up to After has been copied and replayed.
// Position is the source's position when the oldest range still in flight
// was handed out (now, when none is), no later than any change the replay
// window held then; every change before it has been applied. A range past
// After either finished before the kill (copied and replayed: as good as one
// up to After), or was copied, before the kill or after the resume, by a
// chunk that read the original after every change before Position committed
// and became visible (one a later read may not see yet is held by the
// window until every chunk in flight sees it, and Position precedes it), so
// it holds nothing older than them; every change at or after Position is
// applied again on resume (each apply is idempotent: an upsert of the row
// image, or a delete by key), after whatever such a chunk wrote, and the copy
// past After never overwrites. Once the copy is done, any Position the source
// reports will do.
type Checkpoint struct {
	Version  string // osc's version that saved it
	Alter    string // the --alter
	After    []any  // the copy's watermark: chunks up to and including this key are copied (nil: none yet)
	CopyDone bool   // the copy is complete
	Position string // Source.Checkpoint: where the capture restarts
	Copied   int64  // rows copied so far
	Applied  int64  // changes applied so far
	Saved    time.Time
	// CutOver is set by Dialect.Resume only: the killed run had swapped the
	// tables, and all that is left is cleaning up.
	CutOver bool
}

// sameAlter compares two --alter texts, ignoring differences in spacing.
func sameAlter(a, b string) bool {
	return strings.Join(strings.Fields(a), " ") == strings.Join(strings.Fields(b), " ")
}

// checkResumable refuses a checkpoint the engine cannot continue from
// exactly: another osc version (whose copy or apply may convert differently),
// another --alter, or one older than ResumeMaxAge. Everything is kept. When
// the killed run had already cut over only the --alter must match: cleaning
// up is the same for every version and at any age.
func (m *Migration) checkResumable(ck *Checkpoint) error {
	keep := "; nothing was changed (to start afresh instead, run without --resume and with --initially-drop-ghost-table)"
	switch {
	case ck == nil:
		return fmt.Errorf("no checkpoint to resume from%s", keep)
	case ck.CutOver && !sameAlter(ck.Alter, m.cfg.Alter):
		return fmt.Errorf("the killed run migrated the table with --alter %q, not %q: run --resume with that --alter to clean up after it%s", ck.Alter, m.cfg.Alter, keep)
	case ck.CutOver:
		return nil
	case ck.Version != m.cfg.Version:
		return fmt.Errorf("the checkpoint was saved by osc %s, this is osc %s: resume with that version%s", ck.Version, m.cfg.Version, keep)
	case !sameAlter(ck.Alter, m.cfg.Alter):
		return fmt.Errorf("the checkpoint is of a migration with --alter %q, not %q: resume with the same --alter%s", ck.Alter, m.cfg.Alter, keep)
	case m.cfg.ResumeMaxAge > 0 && time.Since(ck.Saved) > m.cfg.ResumeMaxAge:
		return fmt.Errorf("the checkpoint was saved %s ago, more than --resume-max-age %s%s",
			time.Since(ck.Saved).Round(time.Second), m.cfg.ResumeMaxAge, keep)
	}
	return nil
}

// checkpoints saves the latest safe checkpoint every CheckpointInterval. The
// copy loop publishes the pairs it may be resumed from (publish); once the
// copy is done, the source's position at the time of the save is used.
type checkpoints struct {
	m *Migration

	mu       sync.Mutex
	after    []any
	position string
	copied   int64 // rows copied up to after
	copyDone bool
	ready    bool // a pair was published
	// due: a pair published to be saved at once (publish) is not saved
	// yet; the cut-over's hold saves it if the loop has not.
	due bool
	// kick asks the loop to save now (publish).
	kick chan struct{}

	stop func() // ends the loop and waits for a save in flight
	// saving is held by a save, and by the cut-over during its attempts at
	// the lock (hold): a save due then is skipped.
	saving sync.Mutex
}

// publish records a pair the run may be resumed from (see Checkpoint), with
// the rows copied up to after.
func (c *checkpoints) publish(after []any, position string, copied int64, copyDone bool) {
	c.mu.Lock()
	// The first pair and the copy's end are saved at once: a run killed
	// before the next interval is then resumable, and does not copy again.
	now := !c.ready || copyDone && !c.copyDone
	c.after, c.position, c.copied, c.copyDone, c.ready = after, position, copied, copyDone, true
	c.due = c.due || now
	c.mu.Unlock()
	if now {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// startCheckpoints starts saving checkpoints, unless they are off. The
// returned checkpoints is nil then; its methods work on nil.
func (m *Migration) startCheckpoints(ctx context.Context) *checkpoints {
	if m.cfg.NoCheckpoint {
		return nil
	}
	c := &checkpoints{m: m, kick: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(m.cfg.CheckpointInterval):
			case <-c.kick:
				if !c.isDue() {
					continue // the cut-over's hold saved it
				}
			}
			c.save(ctx)
		}
	}()
	c.stop = func() {
		cancel()
		<-done
	}
	return c
}

// save stores the last published pair. A failure is logged, not fatal: the
// migration goes on, resumable from the checkpoint before.
func (c *checkpoints) save(ctx context.Context) {
	if !c.saving.TryLock() {
		return // held by the cut-over, which saved what was due (hold)
	}
	defer c.saving.Unlock()
	c.saveHeld(ctx)
}

// isDue reports whether a pair due at once is not saved yet.
func (c *checkpoints) isDue() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.due
}

// saveHeld is save with saving held.
func (c *checkpoints) saveHeld(ctx context.Context) {
	c.mu.Lock()
	if !c.ready {
		c.mu.Unlock()
		return
	}
	due := c.due
	c.due = false
	ck := &Checkpoint{
		Version: c.m.cfg.Version, Alter: c.m.cfg.Alter,
		After: c.after, CopyDone: c.copyDone, Position: c.position,
		Copied: c.copied, Applied: c.m.applied.Load(), Saved: time.Now(),
	}
	c.mu.Unlock()
	if ck.CopyDone {
		ck.Copied = c.m.copied.Load()
		// Any position will do once the copy is over.
		ck.Position = c.m.src.Checkpoint(nil)
	}
	if err := c.m.d.SaveCheckpoint(ctx, ck); err != nil {
		if due {
			// Still due: the cut-over's next hold tries again.
			c.mu.Lock()
			c.due = true
			c.mu.Unlock()
		}
		if ctx.Err() == nil {
			c.m.log.Warn("saving the checkpoint failed; a resume would start from the one before", "err", err)
		}
		return
	}
	c.m.src.Saved(ck.Position)
	c.m.checkpointSaved.Store(ck.Saved.UnixNano())
}

// end stops saving checkpoints (before the cut-over renames the tables).
func (c *checkpoints) end() {
	if c != nil && c.stop != nil {
		c.stop()
		c.stop = nil
	}
}

// hold stops saving checkpoints, once a save in flight is done, until
// release: the cut-over's attempts at the lock rename the tables. A pair
// due at once that the loop has not saved yet (the copy's end, published
// right before the cut-over) is saved first: the loop's save would be
// skipped, and a run killed in the cut-over would copy again.
func (c *checkpoints) hold(ctx context.Context) {
	if c == nil {
		return
	}
	c.saving.Lock()
	if c.isDue() {
		c.saveHeld(ctx)
	}
}

// release lets checkpoints be saved again after hold: between the cut-over's
// attempts, while it waits to lock (readyToLock), which lasts as long as
// writers outpace the applier.
func (c *checkpoints) release() {
	if c != nil {
		c.saving.Unlock()
	}
}

// publishCopy records the pair the copy may now be resumed from: the
// watermark (every range up to it copied and replayed) and, while ranges
// are in flight, the position the oldest of them was handed out at, else
// the source's position now, no later than the oldest change the replay
// window still holds (rangeTracker.pair).
func (m *Migration) publishCopy() {
	if m.ckpt == nil {
		return
	}
	m.windowMu.Lock()
	after, pos, copied, inFlight := m.ranges.pair()
	if !inFlight {
		// Under windowMu, as a range's own position (copyRanges): a
		// range handed out after this look would otherwise be in flight
		// with a position earlier than the one published, and a resume
		// would not apply again a change its chunk may not have seen.
		pos = m.src.Checkpoint(m.window.oldest())
	}
	// Published under windowMu too: chunks finishing at once publish
	// their pairs in the order they read them, never an older pair over
	// a newer one.
	m.ckpt.publish(after, pos, copied, false)
	m.windowMu.Unlock()
}

// publishCopyDone records that the copy is over (its window closed).
func (c *checkpoints) publishCopyDone() {
	if c != nil {
		c.publish(nil, "", 0, true)
	}
}

// waitThrottleCopy holds the copy while throttled (no range is handed out;
// those in flight run to their end), publishing the pair the copy may be
// resumed from (publishCopy) again every CheckpointInterval meanwhile.
// Without it a throttled copy would keep the restart position where the last
// chunk left it, and a PostgreSQL slot, confirmed no further than the last
// saved position (Source.Saved), would retain every WAL written while
// throttled, so that a --max-retained-wal throttle would never lift.
func (m *Migration) waitThrottleCopy(ctx context.Context) error {
	if m.ckpt == nil {
		return m.waitThrottle(ctx)
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, m.cfg.CheckpointInterval)
		err := m.waitThrottle(wctx)
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return context.Cause(ctx)
		case !errors.Is(err, context.DeadlineExceeded):
			return err
		}
		m.forgetSeen(ctx)
		m.publishCopy()
	}
}

// forgetSeen lets the replay window forget the changes the source's current
// snapshot sees (snapshotTaker), once no chunk in flight read before it
// (replayWindow.observe). Without it one delete applied after the last
// chunk's read would hold a throttled copy's checkpoint position, and with it
// a PostgreSQL slot's retained WAL, until the throttle lifts, which a
// --max-retained-wal throttle then never would. A failure only leaves the
// window as it is.
func (m *Migration) forgetSeen(ctx context.Context) {
	st, ok := m.cp.(snapshotTaker)
	if !ok {
		return
	}
	snap, err := st.CurrentSnapshot(ctx)
	if err != nil {
		m.log.Debug("read the current snapshot while throttled", "err", err)
		return
	}
	m.windowMu.Lock()
	m.window.observe(snap)
	m.windowMu.Unlock()
}
