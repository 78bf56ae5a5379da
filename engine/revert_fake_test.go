package engine

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"osc/change"
)

// errFakeUnfit is the fake old table's refusal of a negative value.
var errFakeUnfit = errors.New("fake: a negative value does not fit the old table")

// fakeReverter is the fake dialect with a revert window: the old table is
// kept from the swap (fakeDB.oldAtSwap) and refuses negative values.
type fakeReverter struct {
	*fakeDialect
	// beforeLock runs before each attempt at the revert's lock.
	beforeLock func()
	// oldStall, when set, runs before each write into the old table.
	oldStall func()

	mu           sync.Mutex
	reverts      int             // revert cut-overs that swapped back
	oldAtRevert  map[int64]int64 // both tables when the revert swapped them
	newAtRevert  map[int64]int64
	endCleanups  []bool // Reverse.Cleanup's reverted
	reverseStart int    // where the reverse source started in the stream
}

var _ reverter = (*fakeReverter)(nil)

func (d *fakeReverter) PlanRevert(context.Context) error {
	d.call("PlanRevert")
	return nil
}

func (d *fakeReverter) Reverse(context.Context) (Reverse, error) {
	d.call("Reverse")
	return &fakeReverse{d: d}, nil
}

type fakeReverse struct{ d *fakeReverter }

// Source reads the stream from the swap on.
func (r *fakeReverse) Source() Source {
	db := r.d.db
	db.mu.Lock()
	defer db.mu.Unlock()
	r.d.reverseStart = db.swapLen
	return &fakeSource{d: r.d.fakeDialect, resumeAt: strconv.Itoa(db.swapLen)}
}

func (r *fakeReverse) Applier() Applier { return fakeOldApplier{db: r.d.db, stall: r.d.oldStall} }

func (r *fakeReverse) Key() ([]int, []string) { return []int{0}, []string{"id"} }

func (r *fakeReverse) Unfit(err error) bool { return errors.Is(err, errFakeUnfit) }

// CutOver blocks writes, drains and swaps the tables back.
func (r *fakeReverse) CutOver(ctx context.Context, ready, drain func(context.Context) error) error {
	if r.d.beforeLock != nil {
		r.d.beforeLock()
	}
	if err := ready(ctx); err != nil {
		return err
	}
	db := r.d.db
	defer db.block()()
	if err := drain(ctx); err != nil {
		return err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	r.d.oldAtRevert, r.d.newAtRevert = maps.Clone(db.oldAtSwap), maps.Clone(db.rows)
	db.rows, db.oldAtSwap = db.oldAtSwap, db.rows
	r.d.reverts++
	return nil
}

func (r *fakeReverse) Cleanup(_ context.Context, reverted bool) error {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	r.d.endCleanups = append(r.d.endCleanups, reverted)
	return nil
}

// fakeOldApplier writes changes into the old table, all or nothing.
type fakeOldApplier struct {
	db    *fakeDB
	stall func()
}

func (a fakeOldApplier) Apply(_ context.Context, changes []change.Change) error {
	if a.stall != nil {
		a.stall()
	}
	a.db.mu.Lock()
	defer a.db.mu.Unlock()
	next := maps.Clone(a.db.oldAtSwap)
	for _, c := range changes {
		switch c.Op {
		case change.Insert, change.Update:
			if c.After[1].(int64) < 0 {
				return errFakeUnfit
			}
			if c.Before != nil {
				delete(next, c.Before[0].(int64))
			}
			next[c.After[0].(int64)] = c.After[1].(int64)
		case change.Delete:
			delete(next, c.Before[0].(int64))
		}
	}
	a.db.oldAtSwap = next
	return nil
}

// setRow writes row id of the table, one the writers never pick.
func setRow(ctx context.Context, db *fakeDB, id, v int64) error {
	return db.write(ctx, func(rows map[int64]int64) []change.Change {
		old, ok := rows[id]
		rows[id] = v
		if !ok {
			return []change.Change{{Op: change.Insert, After: row(id, v)}}
		}
		return []change.Change{{Op: change.Update, Before: row(id, old), After: row(id, v)}}
	})
}

// until waits up to 20 s for cond.
func until(t *testing.T, m *Migration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; status: %s", what, m.Status())
		}
	}
}

// TestFakeRevertWindow: under writers of every kind, through the migration
// and the window, a revert swaps back an old table equal to the table; it is
// refused while a row does not fit the old table, naming its key, also when
// that row is written right before the revert's lock (the check under the
// lock, after the drain); and the window then stays open.
func TestFakeRevertWindow(t *testing.T) {
	d := &fakeReverter{fakeDialect: newFake(400)}
	cfg := fakeConfig()
	cfg.RevertWindow = time.Minute
	m := fakeMigration(cfg, d.fakeDialect)
	m.d = d
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wctx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	var wg sync.WaitGroup
	var inFlight atomic.Pointer[[]int64]
	fakeWriters(t, wctx, &wg, d.fakeDialect, &inFlight, 1)
	done := startFake(ctx, m)
	until(t, m, "the revert window", func() bool { return m.State() == StateRevertWindow })

	const a, b = 1_000_001, 1_000_002
	if err := setRow(ctx, d.db, a, -1); err != nil {
		t.Fatal(err)
	}
	until(t, m, "the refusal", func() bool { return m.Status().RevertRefused == 1 })
	if _, err := m.command("revert"); err == nil || !strings.Contains(err.Error(), "key (id=1000001)") {
		t.Fatalf("revert with an unfit row: %v", err)
	}
	if err := setRow(ctx, d.db, a, 1); err != nil {
		t.Fatal(err)
	}
	until(t, m, "the refusal to lift", func() bool { return m.Status().RevertRefused == 0 })

	// Written after the check before the lock: the check under it refuses.
	d.beforeLock = func() {
		if err := setRow(ctx, d.db, b, -2); err != nil {
			t.Error(err)
		}
	}
	_, err := m.command("revert")
	var refused *RevertRefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "key (id=1000002)") {
		t.Fatalf("revert with an unfit row written before its lock: %v", err)
	}
	if s := m.State(); s != StateRevertWindow || d.reverts != 0 {
		t.Fatalf("after the refusal: state %s, %d reverts", s, d.reverts)
	}
	d.beforeLock = nil
	if err := setRow(ctx, d.db, b, 2); err != nil {
		t.Fatal(err)
	}
	until(t, m, "the refusal to lift", func() bool { return m.Status().RevertRefused == 0 })
	if reply, err := m.command("revert"); err != nil || !strings.HasPrefix(reply, "Reverted") {
		t.Fatalf("revert: %q, %v", reply, err)
	}
	if err := waitFake(t, m, done); err != nil {
		t.Fatalf("migration: %v", err)
	}
	stopWriters()
	wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reverts != 1 || len(d.endCleanups) != 1 || !d.endCleanups[0] {
		t.Fatalf("reverts %d, cleanups %v", d.reverts, d.endCleanups)
	}
	if d.reverseStart == 0 {
		t.Fatal("the reverse source did not start at the swap")
	}
	sameRows(t, d.oldAtRevert, d.newAtRevert)
}

// TestFakeRevertWindowElapsesWhileWaitingToLock: a revert whose wait to
// lock outlasts the window (here the reverse applier stalls, so its drain
// cannot finish) is stopped by the window's end: the reply says so, the
// tables are not swapped back, and the window ends as finish ends it.
func TestFakeRevertWindowElapsesWhileWaitingToLock(t *testing.T) {
	d := &fakeReverter{fakeDialect: newFake(100)}
	release := make(chan struct{})
	var stalling atomic.Bool
	d.oldStall = func() {
		if stalling.Load() {
			<-release
		}
	}
	cfg := fakeConfig()
	cfg.RevertWindow = 2 * time.Second
	m := fakeMigration(cfg, d.fakeDialect)
	m.d = d
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := startFake(ctx, m)
	until(t, m, "the revert window", func() bool { return m.State() == StateRevertWindow })
	stalling.Store(true)
	if err := setRow(ctx, d.db, 1_000_001, 1); err != nil {
		t.Fatal(err)
	}
	// Past the window's end the applier goes on: a revert that still
	// waits then would lock and swap.
	time.AfterFunc(cfg.RevertWindow+time.Second, func() { close(release) })
	reply, err := m.revertCommand(true, "", 10*time.Second)
	if !errors.Is(err, errRevertWindowElapsed) {
		t.Errorf("revert: %q, %v; want the window's end", reply, err)
	}
	if err := waitFake(t, m, done); err != nil {
		t.Fatalf("migration: %v", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reverts != 0 || !slices.Equal(d.endCleanups, []bool{false}) || m.reverted.Load() {
		t.Fatalf("reverts %d, cleanups %v, reverted %v: want the window ended as finish ends it", d.reverts, d.endCleanups, m.reverted.Load())
	}
}

// TestFakeRevertCommandsOutsideWindow: revert and finish are refused
// without --revert-window, and a dialect without a revert window refuses
// --revert-window before the copy.
func TestFakeRevertCommandsOutsideWindow(t *testing.T) {
	m := fakeMigration(fakeConfig(), newFake(10))
	for _, c := range []string{"revert", "finish"} {
		if _, err := m.command(c); err == nil || !strings.Contains(err.Error(), "without --revert-window") {
			t.Errorf("%s: %v", c, err)
		}
	}
	cfg := fakeConfig()
	cfg.RevertWindow = time.Minute
	d := newFake(10)
	err := runFake(t, context.Background(), fakeMigration(cfg, d))
	var refused *RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "--revert-window is not supported on fake") {
		t.Fatalf("want a refusal, got %v", err)
	}
	if got := d.called(); len(d.cleanups) != 1 || d.cleanups[0] {
		t.Errorf("calls %v, cleanups %v: want the shadow dropped", got, d.cleanups)
	}
}
