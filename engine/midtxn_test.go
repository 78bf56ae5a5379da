package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"osc/change"
)

// rotate moves the values of rows ids one row on (the first row's to the
// second, …, the last's to the first) in one transaction (its changes share
// xid), if they all exist and differ.
func (db *fakeDB) rotate(ctx context.Context, ids []int64, xid uint32) error {
	return db.write(ctx, func(rows map[int64]int64) []change.Change {
		vals := make([]int64, len(ids))
		for i, id := range ids {
			v, ok := rows[id]
			if !ok || slices.Index(ids, id) != i {
				return nil
			}
			vals[i] = v
		}
		var out []change.Change
		for i, id := range ids {
			v := vals[(i+len(ids)-1)%len(ids)]
			rows[id] = v
			out = append(out, change.Change{Op: change.Update, Before: row(id, vals[i]), After: row(id, v), Xid: xid})
		}
		return out
	})
}

// rotateWriters rotates the values of 2 or 3 random rows of d's table, each
// rotation one transaction, until ctx ends, at full speed while the
// applier is at most a thousand changes behind (the stream holds only
// changes the migration applies).
func rotateWriters(t *testing.T, ctx context.Context, wg *sync.WaitGroup, d *fakeDialect) {
	var xid atomic.Uint32
	for w := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 11))
			for ctx.Err() == nil {
				d.db.mu.Lock()
				behind := len(d.db.stream) - d.db.applied
				d.db.mu.Unlock()
				if behind > 1000 {
					time.Sleep(100 * time.Microsecond)
					continue
				}
				n := d.db.nextIDNow()
				ids := make([]int64, 2+r.IntN(2))
				for i := range ids {
					ids[i] = 1 + r.Int64N(n)
				}
				if err := d.db.rotate(ctx, ids, xid.Add(1)); err != nil && ctx.Err() == nil {
					t.Errorf("writer: %v", err)
					return
				}
			}
		})
	}
}

// TestFakeMigrationMidTransaction: an applier that cannot write a batch
// ending inside a transaction (change.ErrMidTransaction: the rows of a swap
// under a DEFERRABLE unique key, PostgreSQL) gets it again with the
// changes that follow, and the migration goes through, every row in place.
// An applier that says so of a batch that ends where a transaction does
// fails the migration: more changes cannot help it.
func TestFakeMigrationMidTransaction(t *testing.T) {
	// cut reports whether changes end inside a transaction of the fake's:
	// the change after their last is of the same transaction.
	cut := func(d *fakeDialect, changes []change.Change) bool {
		last := changes[len(changes)-1]
		p, ok := last.Pos.(fakePos)
		if !ok || last.Xid == 0 {
			return false
		}
		d.db.mu.Lock()
		defer d.db.mu.Unlock()
		return int(p) < len(d.db.stream) && d.db.stream[p].Xid == last.Xid
	}
	midTx := fmt.Errorf("upsert 10 rows: %w", change.ErrMidTransaction)
	t.Run("cut", func(t *testing.T) {
		d := newFake(2000)
		var cuts atomic.Int64
		d.applyFault = func(changes []change.Change) error {
			// A slow applier: batches fill to their limit, cut anywhere.
			time.Sleep(200 * time.Microsecond)
			if cut(d, changes) {
				cuts.Add(1)
				return midTx
			}
			return nil
		}
		cfg := fakeConfig()
		cfg.DMLBatchSize = 3
		postponeCutOver(t, &cfg)
		m := fakeMigration(cfg, d)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		done := startFake(ctx, m)
		// From when capture has started: every change written is applied.
		for m.State() < StateCopying {
			time.Sleep(time.Millisecond)
		}
		rotateWriters(t, wctx, &wg, d)
		for deadline := time.Now().Add(10 * time.Second); cuts.Load() < 20 && m.State() != StateFailed && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		stop()
		wg.Wait()
		if err := os.Remove(cfg.PostponeCutOverFlagFile); err != nil {
			t.Fatal(err)
		}
		if err := waitFake(t, m, done); err != nil {
			t.Fatalf("migration: %v", err)
		}
		if cuts.Load() < 20 {
			t.Errorf("%d batches ended inside a transaction, want 20", cuts.Load())
		}
		sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
	})
	t.Run("cut where the transaction ended", func(t *testing.T) {
		// The source marks a batch's last change Cut when it returned it
		// before the transaction's Commit arrived (a transaction larger
		// than its queue), which may be the transaction's last change: the
		// held batch, followed by another transaction, is whole, and
		// applies with it.
		d := newFake(200)
		var held atomic.Bool
		d.applyFault = func(changes []change.Change) error {
			last := &changes[len(changes)-1]
			if last.Xid != 0 && !cut(d, changes) && held.CompareAndSwap(false, true) {
				last.Cut = true
				return midTx
			}
			return nil
		}
		cfg := fakeConfig()
		postponeCutOver(t, &cfg)
		m := fakeMigration(cfg, d)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		done := startFake(ctx, m)
		for m.State() < StateCopying {
			time.Sleep(time.Millisecond)
		}
		rotateWriters(t, wctx, &wg, d)
		for deadline := time.Now().Add(10 * time.Second); !held.Load() && m.State() != StateFailed && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		stop()
		wg.Wait()
		if err := os.Remove(cfg.PostponeCutOverFlagFile); err != nil {
			t.Fatal(err)
		}
		if err := waitFake(t, m, done); err != nil {
			t.Fatalf("migration: %v", err)
		}
		if !held.Load() {
			t.Error("no batch was held")
		}
		sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
	})
	for _, queue := range []int{0, 640} {
		t.Run(fmt.Sprintf("a transaction of many batches, queue %d", queue), func(t *testing.T) { manyBatches(t, queue, cut, midTx) })
	}
	t.Run("not cut", func(t *testing.T) {
		d := newFake(200)
		var once sync.Once
		d.applyFault = func(changes []change.Change) (err error) {
			if changes[len(changes)-1].Xid != 0 && !cut(d, changes) {
				once.Do(func() { err = midTx })
			}
			return err
		}
		cfg := fakeConfig()
		postponeCutOver(t, &cfg)
		m := fakeMigration(cfg, d)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		done := startFake(ctx, m)
		for m.State() < StateCopying {
			time.Sleep(time.Millisecond)
		}
		rotateWriters(t, wctx, &wg, d)
		// Postponed until it fails (the test fails after 30 s otherwise).
		err := waitFake(t, m, done)
		stop()
		wg.Wait()
		if !errors.Is(err, change.ErrMidTransaction) || !strings.Contains(err.Error(), "apply") {
			t.Fatalf("migration: %v, want the applier's failure", err)
		}
		if d.db.swapped {
			t.Error("swapped")
		}
	})
}

// manyBatches: a transaction far larger than a batch is held batch after
// batch; each attempt takes at least as many changes again as the held
// batch holds, so the attempts are a few (its size doubles), not one per
// batch (20,000 changes at a batch limit of at most 640: over 30). A
// source that returns at most queue changes at a time (PostgreSQL's)
// makes no difference.
func manyBatches(t *testing.T, queue int, cut func(*fakeDialect, []change.Change) bool, midTx error) {
	const size = 20000
	d := newFake(size)
	d.queue = queue
	var attempts atomic.Int64
	d.applyFault = func(changes []change.Change) error {
		if changes[len(changes)-1].Xid != 1 {
			return nil
		}
		attempts.Add(1)
		if cut(d, changes) {
			return midTx
		}
		return nil
	}
	cfg := fakeConfig()
	postponeCutOver(t, &cfg)
	m := fakeMigration(cfg, d)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := startFake(ctx, m)
	for m.State() < StateCopying {
		time.Sleep(time.Millisecond)
	}
	err := d.db.write(ctx, func(rows map[int64]int64) []change.Change {
		var out []change.Change
		for id := int64(1); id <= size; id++ {
			v := rows[id]
			rows[id] = v + 1
			out = append(out, change.Change{Op: change.Update, Before: row(id, v), After: row(id, v+1), Xid: 1})
		}
		return out
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(cfg.PostponeCutOverFlagFile); err != nil {
		t.Fatal(err)
	}
	if err := waitFake(t, m, done); err != nil {
		t.Fatalf("migration: %v", err)
	}
	if n := attempts.Load(); n > 16 {
		t.Errorf("the transaction took %d attempts to apply, want at most 16", n)
	}
	sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
}
