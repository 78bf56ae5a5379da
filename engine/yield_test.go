package engine

import (
	"context"
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
