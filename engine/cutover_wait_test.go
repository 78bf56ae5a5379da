package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"osc/change"
)

// slowCutOverWait runs m with writers throughout, and an applier slow (a
// batch takes 150 ms, more than a quarter of the 400 ms lock timeout) for
// slowFor from the checksum's lock on: the cut-over's wait to lock
// (readyToLock) lasts about that long. During the slow period, duringSlow is called once, after
// about 200 ms; after it, afterSlow. It returns the migration's error.
func slowCutOverWait(t *testing.T, cfg Config, d *fakeDialect, slowFor time.Duration, duringSlow, afterSlow func(m *Migration)) error {
	t.Helper()
	cfg.CutOverLockTimeout = 400 * time.Millisecond
	m := fakeMigration(cfg, d)
	var checksummed atomic.Bool
	d.blocked = func(map[int64]int64) {
		// Writes are blocked (d.db.mu is held): a change of row 1 to
		// itself leaves a batch to apply, slowly, before anything the
		// cut-over waits for.
		checksummed.Store(true)
		v := d.db.rows[1]
		d.db.appendLocked(change.Change{Op: change.Update, Before: row(1, v), After: row(1, v)})
	}
	var slowSince atomic.Int64
	var during, after sync.Once
	d.applyFault = func([]change.Change) error {
		if !checksummed.Load() {
			return nil
		}
		slowSince.CompareAndSwap(0, time.Now().UnixNano())
		since := time.Since(time.Unix(0, slowSince.Load()))
		if since < slowFor {
			if since > 200*time.Millisecond {
				during.Do(func() { duringSlow(m) })
			}
			time.Sleep(150 * time.Millisecond)
			return nil
		}
		after.Do(func() { afterSlow(m) })
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		r := rand.New(rand.NewPCG(1, 2))
		for ctx.Err() == nil {
			if err := d.db.update(ctx, 1+r.Int64N(200), r.Int64N(1000)); err != nil && ctx.Err() == nil {
				t.Errorf("writer: %v", err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	err := runFake(t, ctx, m)
	cancel()
	return err
}

// TestFakeCheckpointsWhileWaitingToLock: while the cut-over waits for a
// short drain before its lock, which lasts as long as writers outpace the
// applier, checkpoints go on being saved (a run killed then resumes from a
// recent one, and a PostgreSQL permanent slot is confirmed on instead of
// retaining WAL for the whole wait).
func TestFakeCheckpointsWhileWaitingToLock(t *testing.T) {
	d := newFake(200)
	cfg := fakeConfig()
	cfg.CheckpointInterval = 20 * time.Millisecond
	saves := func() int {
		d.db.store.mu.Lock()
		defer d.db.store.mu.Unlock()
		return d.db.store.saves
	}
	var at, after int
	err := slowCutOverWait(t, cfg, d, time.Second,
		func(*Migration) { at = saves() },
		func(*Migration) { after = saves() })
	if err != nil {
		t.Fatalf("migration: %v", err)
	}
	sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
	if after <= at {
		t.Errorf("checkpoints saved: %d when the cut-over was waiting to lock, %d when it stopped waiting: want more saved meanwhile", at, after)
	}
}

// TestFakePostponeWhileWaitingToLock: a postpone requested while the
// cut-over waits to lock holds it: the tables are not swapped until the
// flag file is removed.
func TestFakePostponeWhileWaitingToLock(t *testing.T) {
	d := newFake(200)
	cfg := fakeConfig()
	cfg.PostponeCutOverFlagFile = filepath.Join(t.TempDir(), "postpone")
	var swappedEarly atomic.Bool
	checked := make(chan struct{})
	err := slowCutOverWait(t, cfg, d, time.Second,
		func(*Migration) {
			if err := os.WriteFile(cfg.PostponeCutOverFlagFile, nil, 0o600); err != nil {
				t.Errorf("postpone: %v", err)
			}
		},
		func(m *Migration) {
			go func() {
				// Long after the wait would have ended.
				time.Sleep(500 * time.Millisecond)
				d.db.mu.Lock()
				swappedEarly.Store(d.db.newAtSwap != nil)
				d.db.mu.Unlock()
				close(checked)
				if err := os.Remove(cfg.PostponeCutOverFlagFile); err != nil {
					t.Errorf("remove the postpone flag: %v", err)
				}
			}()
		})
	if err != nil {
		t.Fatalf("migration: %v", err)
	}
	<-checked
	sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
	if swappedEarly.Load() {
		t.Error("the tables were swapped while the postpone flag file existed")
	}
}

// TestFakeReadyToLockTimesTheSettledDrain: readyToLock locks after one
// drain that finds the applier settled was short; the drains and pauses of
// settle before it, while the applier was not settled yet, are no part of
// what the lock's drain will take. An applier that settles only on every
// fourth look, with no writes at all, must not hold the lock back.
func TestFakeReadyToLockTimesTheSettledDrain(t *testing.T) {
	d := newFake(200)
	var looks atomic.Int64
	d.settled = func() bool { return looks.Add(1)%4 == 0 }
	cfg := fakeConfig()
	// A quarter of it, 50 ms, is less than settle's pauses before the
	// fourth look (10 + 20 + 40 ms); half of it, after 10 s, is not.
	cfg.CutOverLockTimeout = 200 * time.Millisecond
	m := fakeMigration(cfg, d)
	start := time.Now()
	if err := runFake(t, context.Background(), m); err != nil {
		t.Fatalf("migration: %v", err)
	}
	sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the migration took %s: the checksum or the cut-over waited to lock with the applier settled and idle", took.Round(time.Millisecond))
	}
}

// blockingFake is a fake dialect that can block writes alone
// (writeBlockingDialect), as PostgreSQL's SHARE lock does.
type blockingFake struct {
	*fakeDialect
	blocks atomic.Int64
	// blockErr, when set, is what BlockWrites fails with, without
	// blocking (a lock it could not get within its attempts).
	blockErr error
}

func (d *blockingFake) BlockWrites(ctx context.Context, hold func(context.Context) error) error {
	d.blocks.Add(1)
	if d.blockErr != nil {
		return d.blockErr
	}
	defer d.db.block()()
	return hold(ctx)
}

// TestFakeCutOverSettlesWithWritesBlocked: an applier that settles only
// while no write comes (a PostgreSQL applier whose moves read the source,
// under writers that keep moving keys of rows with TOAST values) is settled
// with writes blocked, and the cut-over follows while the writers go on.
// Before, the cut-over waited for the writers to pause, here forever.
func TestFakeCutOverSettlesWithWritesBlocked(t *testing.T) {
	d := &blockingFake{fakeDialect: newFake(200)}
	if err := runSettlingUnderWrites(t, d, 30*time.Second); err != nil {
		t.Fatalf("migration: %v", err)
	}
	sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
	if d.blocks.Load() == 0 {
		t.Error("the writes were never blocked for the applier to settle")
	}
}

// TestFakeCutOverFailsWhenWritesCannotBeBlocked: an applier that settles
// only with writes blocked, and writes that cannot be blocked (an open
// writer's transaction outlasts every attempt at the lock): the cut-over
// fails with the block's error, as it does when its own lock cannot be
// had, and the shadow is dropped. Waiting for the applier to settle while
// the writes go on instead waited for as long as they did.
func TestFakeCutOverFailsWhenWritesCannotBeBlocked(t *testing.T) {
	errBlock := errors.New("fake: block writes: gave up after 3 attempts: lock timeout")
	d := &blockingFake{fakeDialect: newFake(200), blockErr: errBlock}
	if err := runSettlingUnderWrites(t, d, 15*time.Second); !errors.Is(err, errBlock) {
		t.Fatalf("migration: %v, want the block's error", err)
	}
	if d.db.swapped || !slices.Equal(d.cleanups, []bool{false}) || d.db.shadow != nil {
		t.Errorf("swapped %v, cleanups %v, shadow left %v", d.db.swapped, d.cleanups, d.db.shadow != nil)
	}
}

// runSettlingUnderWrites migrates d's table, whose applier settles only
// while writes are blocked, under a writer that goes on until osc ends
// (within timeout), and returns the migration's error.
func runSettlingUnderWrites(t *testing.T, d *blockingFake, timeout time.Duration) error {
	t.Helper()
	d.settled = func() bool {
		d.db.mu.Lock()
		defer d.db.mu.Unlock()
		return d.db.blocked
	}
	cfg := fakeConfig()
	cfg.CutOverLockTimeout = time.Second
	m := New(cfg, d, slog.New(slog.DiscardHandler), io.Discard)
	m.settlePatience = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		r := rand.New(rand.NewPCG(3, 4))
		for wctx.Err() == nil {
			if err := d.db.update(wctx, 1+r.Int64N(200), r.Int64N(1000)); err != nil && wctx.Err() == nil {
				t.Errorf("writer: %v", err)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	err := runFake(t, ctx, m)
	stop()
	wg.Wait()
	return err
}
