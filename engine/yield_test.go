package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestYieldToApplier: a chunk that holds the applier off waits, first, until
// the apply loop waits for changes, at most the time given.
func TestYieldToApplier(t *testing.T) {
	ctx := context.Background()
	var m Migration
	start := time.Now()
	if err := m.yieldToApplier(ctx, 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 30*time.Millisecond {
		t.Errorf("returned after %v with the applier busy, want the whole 30ms", took)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		m.applyIdle.Store(true)
	}()
	start = time.Now()
	if err := m.yieldToApplier(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 20*time.Millisecond || took > 5*time.Second {
		t.Errorf("returned after %v, want soon after the applier was idle (20ms)", took)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	m.applyIdle.Store(false)
	if err := m.yieldToApplier(cancelled, 10*time.Second); err == nil {
		t.Error("no error from a cancelled wait")
	}
}

// TestFakeMigrationHoldsApplier: with a copier that asks for it, no change is
// applied while a chunk is copied, and the migration under writes still
// ends with the shadow equal to the table.
func TestFakeMigrationHoldsApplier(t *testing.T) {
	d := newFake(2000)
	d.holdsApplier = true
	var m *Migration
	var held, chunks atomic.Int64
	var inFlight atomic.Pointer[[]int64]
	d.between = func(keys []int64) {
		inFlight.Store(&keys)
		chunks.Add(1)
		if !m.applyMu.TryLock() {
			held.Add(1)
		} else {
			m.applyMu.Unlock()
		}
		time.Sleep(time.Millisecond)
	}
	cfg := fakeConfig()
	m = fakeMigration(cfg, d)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	fakeWriters(t, wctx, &wg, d, &inFlight, 0)
	done := startFake(ctx, m)
	for s := m.State(); s == StateInspecting || s == StateCopying; s = m.State() {
		time.Sleep(time.Millisecond)
	}
	stop()
	wg.Wait()
	if err := waitFake(t, m, done); err != nil {
		t.Fatalf("migration: %v", err)
	}
	sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
	if chunks.Load() == 0 || held.Load() != chunks.Load() {
		t.Errorf("the applier was held off during %d of %d chunks", held.Load(), chunks.Load())
	}
}
