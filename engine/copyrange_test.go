package engine

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"osc/change"
)

// The watermark moves over the done prefix of the ranges only, a range done
// out of order waits for those before it, and while ranges are in flight the
// checkpoint's position is the one the oldest of them was handed out at.
func TestRangeTracker(t *testing.T) {
	tr := newRangeTracker([]any{int64(100)}, 7)
	r := []*copyRange{
		{n: 1, after: []any{int64(100)}, upto: []any{int64(200)}, pos: "p1"},
		{n: 2, after: []any{int64(200)}, upto: []any{int64(300)}, pos: "p2"},
		{n: 3, after: []any{int64(300)}, upto: nil, pos: "p3"},
	}
	for _, x := range r {
		tr.add(x)
	}
	check := func(what string, wantAfter any, wantPos string, wantCopied int64, wantInFlight bool) {
		t.Helper()
		after, pos, copied, inFlight := tr.pair()
		var a any
		if after != nil {
			a = after[0]
		}
		if a != wantAfter || pos != wantPos || copied != wantCopied || inFlight != wantInFlight {
			t.Errorf("%s: pair (%v, %q, %d, %v), want (%v, %q, %d, %v)", what, a, pos, copied, inFlight, wantAfter, wantPos, wantCopied, wantInFlight)
		}
	}
	check("none done", int64(100), "p1", 7, true)
	if tr.complete(r[1], 100) {
		t.Error("range 2 done before range 1 moved the watermark")
	}
	check("range 2 done", int64(100), "p1", 7, true)
	if !tr.complete(r[0], 100) {
		t.Error("range 1 done did not move the watermark")
	}
	check("ranges 1, 2 done", int64(300), "p3", 207, true)
	if tr.complete(r[2], 40) {
		t.Error("the last range moved the watermark")
	}
	check("all done", int64(300), "", 207, false)
}

// TestFakeMigrationCopyThreads: chunks copied at once, under writes that
// delete, insert and update rows while chunks read, end with the shadow
// equal to the table; chunks did overlap; and copy-threads can change while
// the copy runs.
func TestFakeMigrationCopyThreads(t *testing.T) {
	for _, threads := range []int{2, 4} {
		t.Run(string(rune('0'+threads)), func(t *testing.T) {
			d := newFake(3000)
			var m *Migration
			var inFlight, most atomic.Int64
			var seen sync.Map
			var chunk atomic.Pointer[[]int64]
			d.between = func(keys []int64) {
				chunk.Store(&keys)
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for {
					if old := most.Load(); n <= old || most.CompareAndSwap(old, n) {
						break
					}
				}
				for _, k := range keys {
					if _, dup := seen.LoadOrStore(k, true); dup {
						t.Errorf("key %d read by two chunks", k)
					}
				}
				if len(keys) > 0 {
					// A delete of a row the chunk read, applied before
					// the chunk's insert: the window must replay it.
					if err := d.db.del(context.Background(), keys[len(keys)/2]); err != nil {
						t.Error(err)
					}
				}
				time.Sleep(2 * time.Millisecond)
			}
			cfg := fakeConfig()
			cfg.ChunkSize = 50
			cfg.CopyThreads = threads
			m = fakeMigration(cfg, d)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wctx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			fakeWriters(t, wctx, &wg, d, &chunk, 0)
			done := startFake(ctx, m)
			for s := m.State(); s == StateInspecting || s == StateCopying; s = m.State() {
				if m.copied.Load() > 1500 {
					m.ctl.copyThreads.Store(1)
				}
				time.Sleep(time.Millisecond)
			}
			stop()
			wg.Wait()
			if err := waitFake(t, m, done); err != nil {
				t.Fatalf("migration: %v", err)
			}
			sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
			if most.Load() < 2 {
				t.Errorf("at most %d chunks in flight at once, want several", most.Load())
			}
			d.mu.Lock()
			sizes := slices.Clone(d.copySizes)
			d.mu.Unlock()
			if len(sizes) < 10 {
				t.Errorf("%d chunks, want many", len(sizes))
			}
		})
	}
}

// TestFakeCopyThreadsFailure: a chunk that fails ends the copy with its
// error, naming it, once the chunks in flight with it have stopped; the
// migration cleans up.
func TestFakeCopyThreadsFailure(t *testing.T) {
	d := newFake(2000)
	broken := errors.New("disk full")
	var after atomic.Int64 // CopyRange calls after the failure's
	var failedAt atomic.Int64
	d.copyFault = func(n int) error {
		if failedAt.Load() > 0 {
			after.Add(1)
		}
		if n == 5 {
			failedAt.Store(int64(n))
			return broken
		}
		time.Sleep(5 * time.Millisecond)
		return nil
	}
	cfg := fakeConfig()
	cfg.ChunkSize = 50
	cfg.CopyThreads = 3
	m := fakeMigration(cfg, d)
	err := runFake(t, context.Background(), m)
	if !errors.Is(err, broken) || !strings.Contains(err.Error(), "copy chunk ") {
		t.Fatalf("migration: %v, want the chunk's failure, named", err)
	}
	if !slices.Equal(d.cleanups, []bool{false}) || d.db.shadow != nil {
		t.Errorf("cleanups %v, shadow left %v", d.cleanups, d.db.shadow != nil)
	}
	if n := after.Load(); n > 3 {
		t.Errorf("%d chunks started after the failure, want at most the ones in flight", n)
	}
}

// hookSource is a Source whose Checkpoint runs hook first, then returns the
// position pos.
type hookSource struct {
	Source
	pos  atomic.Int64
	hook func()
}

func (s *hookSource) Checkpoint(change.Position) string {
	if h := s.hook; h != nil {
		s.hook = nil
		h()
	}
	return strconv.FormatInt(s.pos.Load(), 10)
}

// A pair published with no range in flight takes the source's position in
// the same look as the ranges: a range handed out meanwhile (by the copy's
// own goroutine, while a chunk's goroutine publishes) reads the original
// after the position it was handed out at only, so a later position, past a
// delete its chunk may have missed, would resume without that delete.
func TestPublishCopyPositionNoLaterThanRangesInFlight(t *testing.T) {
	m := &Migration{window: newReplayWindow([]int{0}), ranges: newRangeTracker(nil, 0)}
	m.ckpt = &checkpoints{m: m, kick: make(chan struct{}, 1)}
	src := &hookSource{}
	src.pos.Store(5)
	m.src = src
	first := &copyRange{n: 1, upto: []any{int64(100)}, pos: "0"}
	m.ranges.add(first)
	m.ranges.complete(first, 100)
	var handedOut *copyRange
	src.hook = func() {
		// The copy's goroutine hands out the next range now, if it can
		// (it takes windowMu), and a delete in it is applied after its
		// chunk read.
		if !m.windowMu.TryLock() {
			return
		}
		handedOut = &copyRange{n: 2, after: []any{int64(100)}, pos: strconv.FormatInt(src.pos.Load(), 10)}
		m.ranges.add(handedOut)
		m.windowMu.Unlock()
		src.pos.Store(9)
	}
	m.publishCopy()
	if handedOut == nil {
		return
	}
	if got, want := m.ckpt.position, handedOut.pos; got != want {
		t.Errorf("published position %s with range 2 in flight, handed out at %s: a resume would not apply again the changes between", got, want)
	}
}

// TestFakeCopyThreadsDeadlockRetriedAlone: chunks that deadlock whenever
// they copy at the same time (writers moving values of a unique index
// between their ranges, at its worst) end the copy all the same: a chunk
// retried after a deadlock copies with no other chunk in flight. Retried
// beside the others, the same chunks deadlock again until the retries run
// out.
func TestFakeCopyThreadsDeadlockRetriedAlone(t *testing.T) {
	d := newFake(1000)
	var (
		mu        sync.Mutex
		inFlight  = map[int]bool{} // call: another call overlapped it
		deadlocks int
	)
	d.copyFault = func(n int) error {
		mu.Lock()
		for other := range inFlight {
			inFlight[other] = true
		}
		inFlight[n] = len(inFlight) > 0
		mu.Unlock()
		time.Sleep(3 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		overlapped := inFlight[n]
		delete(inFlight, n)
		if overlapped {
			deadlocks++
			return errTransient
		}
		return nil
	}
	cfg := fakeConfig()
	cfg.ChunkSize = 50
	cfg.CopyThreads = 3
	m := fakeMigration(cfg, d)
	if err := runFake(t, context.Background(), m); err != nil {
		t.Fatalf("migration: %v", err)
	}
	sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
	mu.Lock()
	defer mu.Unlock()
	if deadlocks == 0 {
		t.Error("no chunk deadlocked: the chunks did not copy at once")
	}
}
