package engine

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writeWhile runs writers against the fake table until the returned stop is
// called; stop waits for them.
func writeWhile(t *testing.T, d *fakeDialect) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 11))
			for ctx.Err() == nil {
				id := 1 + r.Int64N(d.db.nextIDNow()+1)
				var err error
				switch r.IntN(6) {
				case 0:
					err = d.db.insert(ctx, r.Int64N(1000))
				case 1:
					err = d.db.del(ctx, id)
				case 2:
					err = d.db.move(ctx, id)
				default:
					err = d.db.update(ctx, id, r.Int64N(1000))
				}
				if err != nil && ctx.Err() == nil {
					t.Errorf("writer: %v", err)
					return
				}
				time.Sleep(50 * time.Microsecond)
			}
		})
	}
	return func() { cancel(); wg.Wait() }
}

// corrupt changes the shadow behind the engine's back: one value changed,
// one row deleted, one row added inside the table's key range, one before
// the first key and one after the last.
func corrupt(shadow map[int64]int64) {
	keys := slices.Sorted(func(yield func(int64) bool) {
		for id := range shadow {
			if !yield(id) {
				return
			}
		}
	})
	if len(keys) < 100 {
		return
	}
	shadow[keys[10]] += 1000
	delete(shadow, keys[50])
	for id := keys[70] + 1; id < keys[len(keys)-1]; id++ {
		if _, ok := shadow[id]; !ok {
			shadow[id] = 7
			break
		}
	}
	shadow[-5] = 1
	shadow[keys[len(keys)-1]+1_000_000] = 2
}

// TestChecksumRepairs: corruption of the shadow found at the checksum is
// recopied under the block and checked again; the cut-over swaps a table
// equal to the original, under concurrent writes.
func TestChecksumRepairs(t *testing.T) {
	d := newFake(3000)
	once := sync.Once{}
	d.blocked = func(shadow map[int64]int64) { once.Do(func() { corrupt(shadow) }) }
	cfg := fakeConfig()
	cfg.ChecksumMaxRepairs = 1
	m := fakeMigration(cfg, d)
	stop := writeWhile(t, d)
	err := runFake(t, context.Background(), m)
	stop()
	if err != nil {
		t.Fatalf("migration: %v", err)
	}
	if !d.db.swapped {
		t.Fatal("no swap")
	}
	sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
	// Five corruptions in at most five chunks, found in the first pass and
	// checked in the second.
	if d.opens != 2 || len(d.recopied) == 0 || len(d.recopied) > 5 {
		t.Errorf("checksum opened %d times, recopied %d chunks: %v", d.opens, len(d.recopied), d.recopied)
	}
	if d.recopied[0].After != nil || d.recopied[len(d.recopied)-1].Upto != nil {
		t.Errorf("the rows before the first key and after the last were not recopied: %v", d.recopied)
	}
}

// TestChecksumAborts: with repairs disabled, a difference aborts the
// migration before the cut-over, naming the first differing key.
func TestChecksumAborts(t *testing.T) {
	d := newFake(3000)
	d.blocked = func(shadow map[int64]int64) { shadow[1234] = -1 }
	cfg := fakeConfig()
	m := fakeMigration(cfg, d)
	err := runFake(t, context.Background(), m)
	if err == nil || !strings.Contains(err.Error(), `key (id=1234): column "v" differs`) {
		t.Fatalf("migration: %v, want the difference at id 1234", err)
	}
	if d.db.swapped || len(d.recopied) != 0 || !slices.Equal(d.cleanups, []bool{false}) {
		t.Errorf("swapped %v, recopied %v, cleanups %v", d.db.swapped, d.recopied, d.cleanups)
	}
}

// TestChecksumDifferenceComesBack: a difference that every recopy leaves in
// place aborts the migration after the repairs allowed.
func TestChecksumDifferenceComesBack(t *testing.T) {
	d := newFake(3000)
	// A row the table holds when writes are blocked (the drained shadow
	// equals it then): the writers may have deleted or moved id 2500, whose
	// absence from the shadow would then be no difference (about one run in
	// a thousand).
	d.blocked = func(shadow map[int64]int64) {
		keys := slices.Sorted(maps.Keys(shadow))
		at, _ := slices.BinarySearch(keys, 2500)
		delete(shadow, keys[min(at, len(keys)-1)])
	}
	cfg := fakeConfig()
	cfg.ChecksumMaxRepairs = 2
	m := fakeMigration(cfg, d)
	stop := writeWhile(t, d)
	err := runFake(t, context.Background(), m)
	stop()
	if err == nil || !strings.Contains(err.Error(), "after 2 repair(s)") || !strings.Contains(err.Error(), "missing from the shadow") {
		t.Fatalf("migration: %v, want an abort after 2 repairs", err)
	}
	if d.db.swapped || d.opens != 3 || len(d.recopied) != 2 {
		t.Errorf("swapped %v, opened %d times, recopied %v", d.db.swapped, d.opens, d.recopied)
	}
}

// TestNoChecksum: --checksum=false cuts over without comparing, with a
// warning in the log.
func TestNoChecksum(t *testing.T) {
	d := newFake(500)
	d.blocked = func(shadow map[int64]int64) { t.Error("checksum opened") }
	cfg := fakeConfig()
	cfg.NoChecksum = true
	var log bytes.Buffer
	if err := runFake(t, context.Background(), New(cfg, d, slog.New(slog.NewTextHandler(&log, nil)), io.Discard)); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(d.called(), "NewChecksum") || !d.db.swapped {
		t.Errorf("calls %v, swapped %v", d.called(), d.db.swapped)
	}
	if want := `level=WARN msg="checksum skipped (--checksum=false)`; !strings.Contains(log.String(), want) {
		t.Errorf("the log lacks %q:\n%s", want, log.String())
	}
}

// TestChecksumTooManyDifferences: differences in more chunks than osc
// recopies with writes blocked abort the migration without a repair.
func TestChecksumTooManyDifferences(t *testing.T) {
	d := newFake(20000)
	d.blocked = func(shadow map[int64]int64) {
		// Chunks are 10 copy chunks of 50 rows: one difference in each of
		// the first 20.
		for id := int64(1); id <= 20*500; id += 500 {
			shadow[id] = -1
		}
	}
	cfg := fakeConfig()
	cfg.ChecksumMaxRepairs = 3
	err := runFake(t, context.Background(), fakeMigration(cfg, d))
	if err == nil || !strings.Contains(err.Error(), "20 chunks of the shadow differ from the table, more than the 16") {
		t.Fatalf("migration: %v, want an abort for too many differences", err)
	}
	if d.db.swapped || len(d.recopied) != 0 {
		t.Errorf("swapped %v, recopied %d chunks", d.db.swapped, len(d.recopied))
	}
}

// loweringSnapshot is a snapshot whose first Sum lowers --checksum-threads, as
// the socket command does while a pass runs.
type loweringSnapshot struct {
	*fakeSnapshot
	m    *Migration
	once atomic.Bool
}

func (r *loweringSnapshot) Sum(ctx context.Context, c ChecksumChunk) (ChecksumSum, ChecksumSum, error) {
	if r.once.CompareAndSwap(false, true) {
		r.m.ctl.checksumThreads.Store(1)
	}
	time.Sleep(5 * time.Millisecond)
	return r.fakeSnapshot.Sum(ctx, c)
}

// TestChecksumThreadsLowered: a pass during which checksum-threads is
// lowered ends (the idle workers once waited for the setting to rise again).
func TestChecksumThreadsLowered(t *testing.T) {
	d := newFake(3000)
	cfg := fakeConfig()
	cfg.ChecksumThreads = 3
	m := fakeMigration(cfg, d)
	snap := &fakeSnapshot{rows: map[int64]int64{}, shadow: map[int64]int64{}}
	for i := range int64(3000) {
		snap.rows[i], snap.shadow[i] = i, i
	}
	r := &loweringSnapshot{fakeSnapshot: snap, m: m}
	readers := []ChecksumReader{r, r, r, r}
	done := make(chan error, 1)
	go func() {
		_, _, err := m.checksumPass(context.Background(), readers, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the checksum pass did not end after checksum-threads was lowered from 3 to 1")
	}
}

// TestChecksumNarrows: a chunk that differs is narrowed to the copy's chunk
// size before it is recopied with writes blocked.
func TestChecksumNarrows(t *testing.T) {
	d := newFake(3000)
	once := sync.Once{}
	d.blocked = func(shadow map[int64]int64) { once.Do(func() { shadow[1234] = -1 }) }
	cfg := fakeConfig()
	cfg.ChecksumMaxRepairs = 1
	if err := runFake(t, context.Background(), fakeMigration(cfg, d)); err != nil {
		t.Fatal(err)
	}
	if len(d.recopied) != 1 || !inChunk(d.recopied[0], 1234) {
		t.Fatalf("recopied %v, want one chunk holding key 1234", d.recopied)
	}
	n := 0
	for id := range d.db.oldAtSwap {
		if inChunk(d.recopied[0], id) {
			n++
		}
	}
	if n > cfg.ChunkSize {
		t.Errorf("recopied a chunk of %d rows, more than the copy's %d", n, cfg.ChunkSize)
	}
}
