package engine

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// MaxCopyThreads bounds --copy-threads and the copy-threads command.
const MaxCopyThreads = 64

// copyThreads is the number of chunks the copy runs at once now
// (--copy-threads, or the copy-threads command since).
func (m *Migration) copyThreads() int { return int(m.ctl.copyThreads.Load()) }

// copyRange is one range of keys the copy hands out: (after, upto], upto nil
// for the last range, which runs to the highest key the copier read at its
// start.
type copyRange struct {
	n           int // the chunk's number, from 1, in key order
	after, upto []any
	size        int    // the rows asked of Copier.Bound
	tick        uint64 // replayWindow.start's stamp
	pos         string // the checkpoint position when the range was handed out
	rows        int64  // rows the range covered, once done
	done        bool   // copied and replayed
}

// rangeTracker follows the ranges handed out, in key order (the order they
// are handed out in), for the checkpoint: its watermark is the upper bound
// of the last range of the done prefix. Guarded by Migration.windowMu.
type rangeTracker struct {
	ranges []*copyRange // handed out and above the watermark, in key order
	after  []any        // the watermark (nil: no range is done)
	copied int64        // rows the ranges up to the watermark covered, and before them
	// inFlight is the number of ranges handed out and not done, most the
	// largest it was (the copy's log line says it).
	inFlight, most int
}

// newRangeTracker returns the tracker of a copy that starts after after,
// with copied rows copied before it.
func newRangeTracker(after []any, copied int64) *rangeTracker {
	return &rangeTracker{after: after, copied: copied}
}

// add notes a range handed out, the next in key order.
func (t *rangeTracker) add(r *copyRange) {
	t.ranges = append(t.ranges, r)
	t.inFlight++
	t.most = max(t.most, t.inFlight)
}

// complete notes r copied and replayed, having covered rows rows, and moves
// the watermark over the done ranges at the front. It reports whether the
// watermark moved. The last range (upto nil) does not move it: the copy is
// over once it and every range before it are done.
func (t *rangeTracker) complete(r *copyRange, rows int64) bool {
	r.done, r.rows = true, rows
	t.inFlight--
	moved := false
	for len(t.ranges) > 0 && t.ranges[0].done && t.ranges[0].upto != nil {
		t.after = t.ranges[0].upto
		t.copied += t.ranges[0].rows
		t.ranges = t.ranges[1:]
		moved = true
	}
	return moved
}

// pair returns the checkpoint's watermark, the rows copied up to it, and,
// when ranges are in flight, the position the oldest of them was handed out
// at (inFlight): a chunk of a range in flight read the original after every
// change before that position was visible (README, "Why nothing is lost",
// step 10). With none in flight the caller takes the source's position now.
func (t *rangeTracker) pair() (after []any, pos string, copied int64, inFlight bool) {
	for _, r := range t.ranges {
		if !r.done {
			return t.after, t.ranges[0].pos, t.copied, true
		}
	}
	return t.after, "", t.copied, false
}

// copyRanges hands out the ranges after after, in key order, to up to
// copyThreads chunks at once, until the last range is handed out, and waits
// for every chunk. A range is handed out once a chunk is free and the
// throttle lets the copy go on (chunks in flight run to their end); a failing
// chunk stops the others and ends the copy with its error.
func (m *Migration) copyRanges(ctx context.Context, after []any) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	_, snapshots := m.cp.(snapshotCopier)
	_, holds := m.cp.(applierHoldingCopier)
	done := make(chan error, MaxCopyThreads)
	active := 0
	var failed error
	// fail records the copy's first error and stops the chunks in flight.
	fail := func(err error) {
		if err != nil && failed == nil {
			failed = err
			cancel(err)
		}
	}
	end := func(err error) {
		active--
		fail(err)
	}
	var lastChunk atomic.Int64 // how long the last chunk's copy took (holding copiers)
	for n := 1; failed == nil; n++ {
		for active > 0 && (active >= m.copyThreads() || len(done) > 0) {
			end(<-done)
		}
		if failed != nil {
			break
		}
		if err := m.waitThrottleCopy(ctx); err != nil {
			fail(err)
			break
		}
		size := m.copyChunkSize()
		var upto []any
		if err := m.retry(ctx, "copy chunk bound", func() (err error) {
			upto, err = m.cp.Bound(ctx, after, size)
			return err
		}); err != nil {
			fail(fmt.Errorf("copy chunk %d: %w", n, err))
			break
		}
		r := &copyRange{n: n, after: after, upto: upto, size: size}
		m.windowMu.Lock()
		r.tick = m.window.start()
		if m.ckpt != nil {
			r.pos = m.src.Checkpoint(m.window.oldest())
		}
		m.ranges.add(r)
		m.windowMu.Unlock()
		active++
		go func() {
			took, err := m.copyOne(ctx, r, snapshots, holds, time.Duration(lastChunk.Load()))
			if err != nil {
				cancel(err) // ends a throttle wait or a chunk in flight
			} else {
				lastChunk.Store(int64(took))
			}
			done <- err
		}()
		if upto == nil {
			break
		}
		after = upto
	}
	for active > 0 {
		end(<-done)
	}
	if failed != nil {
		return m.cause(ctx, failed)
	}
	return nil
}

// copyOne copies range r with one chunk: it emits the chunk's marker (unless
// the copier reports snapshots), copies (with the applier held off, shared
// with other chunks, for a holding copier, after yielding to it at most
// yield; a retry after a transient failure with no other chunk in flight,
// see chunkMu), re-applies what the chunk may not have seen, refreshes its
// stale rows, and notes the range done. It returns how long the chunk's copy took.
func (m *Migration) copyOne(ctx context.Context, r *copyRange, snapshots, holds bool, yield time.Duration) (time.Duration, error) {
	start := time.Now()
	marker := ""
	if !snapshots {
		// Committed before the chunk reads: what precedes it in the
		// change stream is visible to the read (see replayWindow).
		marker = m.markerID()
		m.windowMu.Lock()
		m.window.expect(marker)
		m.windowMu.Unlock()
		if err := m.src.EmitMarker(ctx, marker); err != nil {
			return 0, fmt.Errorf("copy chunk %d: emit marker: %w", r.n, err)
		}
	}
	if holds {
		if err := m.yieldToApplier(ctx, yield); err != nil {
			return 0, err
		}
	}
	var (
		chunk     Chunk
		copyStart time.Time
		alone     bool // a retry: copy with no other chunk in flight (chunkMu)
	)
	err := m.retry(ctx, "copy chunk", func() (err error) {
		if alone {
			m.chunkMu.Lock()
			defer m.chunkMu.Unlock()
		} else {
			m.chunkMu.RLock()
			defer m.chunkMu.RUnlock()
		}
		alone = true
		if holds {
			m.applyMu.RLock()
			defer m.applyMu.RUnlock()
		}
		// The chunk's own time, without its wait for the applier's
		// batch: counted, it would shrink the chunks, and lengthen
		// the next yield, the slower the applier.
		copyStart = time.Now()
		chunk, err = m.cp.CopyRange(ctx, r.after, r.upto)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("copy chunk %d: %w", r.n, err)
	}
	took := time.Since(copyStart)
	rows := chunk.Rows
	if r.upto != nil {
		// The rows the range covered: Bound counted them.
		rows = int64(r.size)
	}
	m.chunkCopied(r.size, rows, took)
	m.copied.Add(rows)
	if err := m.replay(ctx, r.tick, chunk.Snapshot, marker); err != nil {
		return 0, fmt.Errorf("copy chunk %d: %w", r.n, err)
	}
	if err := m.refresh(ctx, chunk.Stale); err != nil {
		return 0, fmt.Errorf("copy chunk %d: %w", r.n, err)
	}
	m.windowMu.Lock()
	moved := m.ranges.complete(r, rows)
	m.windowMu.Unlock()
	if moved {
		m.publishCopy()
	}
	if err := m.niceSleep(ctx, time.Since(start)); err != nil {
		return 0, err
	}
	return took, nil
}
