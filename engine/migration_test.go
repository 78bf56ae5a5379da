package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"osc/change"
)

// fakeConfig is a migration of the fake table, executed, with small chunks
// and batches.
func fakeConfig() Config {
	return Config{Schema: "fake", Table: "t", Alter: "ADD COLUMN w INT", Execute: true, ChunkSize: 50,
		DMLBatchSize: 10, StatusInterval: time.Hour}
}

// startFake runs the migration in the background; its error arrives on the
// channel.
func startFake(ctx context.Context, m *Migration) <-chan error {
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	return done
}

// waitFake returns the migration's error (the test fails after 30 s).
func waitFake(t *testing.T, m *Migration, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("the migration did not end; status: %s", m.Status())
		return nil
	}
}

// runFake runs the migration and returns its error.
func runFake(t *testing.T, ctx context.Context, m *Migration) error {
	t.Helper()
	return waitFake(t, m, startFake(ctx, m))
}

func newFake(rows int) *fakeDialect { return &fakeDialect{db: newFakeDB(rows)} }

func fakeMigration(cfg Config, d *fakeDialect) *Migration {
	return New(cfg, d, slog.New(slog.DiscardHandler), io.Discard)
}

// sameRows fails unless the two tables hold the same rows.
func sameRows(t *testing.T, got, want map[int64]int64) {
	t.Helper()
	if maps.Equal(got, want) {
		return
	}
	var diff []string
	for _, id := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[id]; !ok || g != want[id] {
			diff = append(diff, fmt.Sprintf("id %d: %v (present %v), want %d", id, g, ok, want[id]))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[id]; !ok {
			diff = append(diff, fmt.Sprintf("id %d: %d, want no row", id, got[id]))
		}
	}
	t.Errorf("%d rows, want %d; %d differences, first: %s", len(got), len(want), len(diff), diff[:min(5, len(diff))])
}

// TestFakeMigration: a migration under concurrent inserts, updates,
// deletes and key changes copies, applies, waits while postponed and cuts
// over; at the swap the shadow holds exactly the original's rows.
func TestFakeMigration(t *testing.T) {
	d := newFake(2000)
	// Widen the gap between a chunk's read and its write, where a change
	// the chunk did not see can be undone by it (the replay window's case),
	// and aim most writes at the chunk in flight.
	var inFlight atomic.Pointer[[]int64]
	d.between = func(keys []int64) {
		inFlight.Store(&keys)
		time.Sleep(time.Millisecond)
	}
	cfg := fakeConfig()
	postponeCutOver(t, &cfg)
	m := fakeMigration(cfg, d)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	fakeWriters(t, wctx, &wg, d, &inFlight, 0)
	wg.Go(func() {
		// Until postponed, or ended early (the test then fails on Run's error).
		for s := m.State(); s != StatePostponed && s != StateFailed && s != StateDone; s = m.State() {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // writes while postponed
		stop()
	})
	done := startFake(ctx, m)
	wg.Wait()
	if err := os.Remove(cfg.PostponeCutOverFlagFile); err != nil {
		t.Fatal(err)
	}
	if err := waitFake(t, m, done); err != nil {
		t.Fatalf("migration: %v", err)
	}
	if !d.db.swapped {
		t.Fatal("no swap")
	}
	sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
	if st := m.Status(); st.State != StateDone || st.Copied == 0 || st.Applied == 0 {
		t.Errorf("status after the migration: %+v", st)
	}
	// The one attempt is counted, and it took at least the drain under
	// the lock (the dialect's own measure of it).
	if st := m.Status(); st.CutOverAttempts != 1 || len(d.locked) == 0 || st.CutOverLongest < d.locked[len(d.locked)-1] ||
		st.CutOverLocked != st.CutOverLongest {
		t.Errorf("cut-over in the status: %d attempts, longest %s, in all %s; drains under the lock %v",
			st.CutOverAttempts, st.CutOverLongest, st.CutOverLocked, d.locked)
	}
	want := []string{"Inspect", "CreateShadow", "NewSource", "NewCopier", "NewApplier", "NewChecksum", "CutOver", "Cleanup"}
	if got := d.called(); !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	if !slices.Equal(d.cleanups, []bool{true}) || !d.sourceClosed || d.closed != 1 {
		t.Errorf("cleanups %v, source closed %v, Close calls %d", d.cleanups, d.sourceClosed, d.closed)
	}
}

// fakeWriters starts 4 writers of inserts, updates, deletes and key changes
// on d's table until ctx ends, most of them aimed at the chunk in flight
// (inFlight, set by a between hook); seed varies their choices.
func fakeWriters(t *testing.T, ctx context.Context, wg *sync.WaitGroup, d *fakeDialect, inFlight *atomic.Pointer[[]int64], seed uint64) {
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7+seed))
			for ctx.Err() == nil {
				id := 1 + r.Int64N(d.db.nextIDNow()+1)
				if keys := inFlight.Load(); keys != nil && len(*keys) > 0 && r.IntN(4) != 0 {
					id = (*keys)[r.IntN(len(*keys))]
				}
				var err error
				switch r.IntN(10) {
				case 0, 1:
					err = d.db.insert(ctx, r.Int64N(1000))
				case 2, 3, 4:
					err = d.db.del(ctx, id)
				case 5, 6:
					err = d.db.move(ctx, id)
				default:
					err = d.db.update(ctx, id, r.Int64N(1000))
				}
				if err != nil && ctx.Err() == nil {
					t.Errorf("writer: %v", err)
					return
				}
				// Let the applier keep up: the race needs a change applied
				// before the chunk in flight writes.
				time.Sleep(100 * time.Microsecond)
			}
		})
	}
}

// postponeCutOver sets cfg's postpone flag file to a new file, which the
// test removes to let the cut-over go.
func postponeCutOver(t *testing.T, cfg *Config) {
	t.Helper()
	cfg.PostponeCutOverFlagFile = filepath.Join(t.TempDir(), "postpone")
	touch(t, cfg.PostponeCutOverFlagFile)
}

// touch creates an empty file.
func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// send sends one command over the socket and returns the reply.
func send(t *testing.T, sock, command string) string {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Fatalf("connect to %s: %v", sock, err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(reply)
}

// nextIDNow is the highest id given so far.
func (db *fakeDB) nextIDNow() int64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.nextID
}

// TestFakeMigrationReplaysUnseenDelete: a delete committed after a chunk's
// read, and applied to the shadow before the chunk writes, would be undone
// by the chunk (it inserts the row it read); the replay window applies the
// delete again after the chunk. Likewise the old key of a key change.
func TestFakeMigrationReplaysUnseenDelete(t *testing.T) {
	d := newFake(300)
	ctx := context.Background()
	var once sync.Once
	var victims []int64
	d.between = func(keys []int64) {
		once.Do(func() {
			deleted, moved := keys[3], keys[7]
			victims = []int64{deleted, moved}
			if err := d.db.del(ctx, deleted); err != nil {
				t.Error(err)
			}
			if err := d.db.move(ctx, moved); err != nil {
				t.Error(err)
			}
			// Wait until the applier has applied both to the shadow, where
			// neither row is yet.
			d.db.waitApplied(t, 2)
		})
	}
	m := fakeMigration(fakeConfig(), d)
	if err := runFake(t, ctx, m); err != nil {
		t.Fatalf("migration: %v", err)
	}
	for _, id := range victims {
		if _, ok := d.db.newAtSwap[id]; ok {
			t.Errorf("row %d was deleted (or moved) before the chunk wrote it, and is in the new table", id)
		}
	}
	sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
}

// waitApplied waits until the fake applier has applied n row changes.
func (db *fakeDB) waitApplied(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		db.mu.Lock()
		got := db.applied
		db.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the applier applied %d changes, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFakeMigrationInterrupted: cancelling the migration during the copy
// (Ctrl-C) drops the shadow and the change capture, keeps the original
// table as it was, and closes the dialect.
func TestFakeMigrationInterrupted(t *testing.T) {
	d := newFake(500)
	before := d.db.table()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.copyFault = func(n int) error {
		if n == 3 {
			cancel()
		}
		return nil
	}
	m := fakeMigration(fakeConfig(), d)
	err := runFake(t, ctx, m)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("migration: %v, want context.Canceled", err)
	}
	if m.State() != StateFailed {
		t.Errorf("state %s", m.State())
	}
	if !slices.Equal(d.cleanups, []bool{false}) || !d.sourceClosed || d.closed != 1 {
		t.Errorf("cleanups %v, source closed %v, Close calls %d", d.cleanups, d.sourceClosed, d.closed)
	}
	if d.db.shadow != nil || d.db.swapped || slices.Contains(d.called(), "CutOver") {
		t.Errorf("shadow left %v, swapped %v, calls %v", d.db.shadow != nil, d.db.swapped, d.called())
	}
	sameRows(t, d.db.table(), before)
}

// TestFakeMigrationRefused: a refused precondition ends the migration
// before anything is created, with the dialect's error.
func TestFakeMigrationRefused(t *testing.T) {
	d := newFake(10)
	refusal := errors.New("the table has no primary key; add one")
	d.inspectErr = refusal
	m := fakeMigration(fakeConfig(), d)
	err := runFake(t, context.Background(), m)
	var r *RefusedError
	if !errors.Is(err, refusal) || !errors.As(err, &r) {
		t.Fatalf("migration: %v, want the refusal as a RefusedError", err)
	}
	if got := d.called(); !slices.Equal(got, []string{"Inspect"}) || d.closed != 1 || m.State() != StateFailed {
		t.Errorf("calls %v, Close calls %d, state %s", got, d.closed, m.State())
	}
}

// TestFakeDryRun: without Execute the shadow is created and dropped, and
// nothing else happens.
func TestFakeDryRun(t *testing.T) {
	d := newFake(10)
	cfg := fakeConfig()
	cfg.Execute = false
	m := fakeMigration(cfg, d)
	if err := runFake(t, context.Background(), m); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if got := d.called(); !slices.Equal(got, []string{"Inspect", "CreateShadow", "Cleanup"}) ||
		!slices.Equal(d.cleanups, []bool{false}) || d.db.shadow != nil || m.State() != StateDone {
		t.Errorf("calls %v, cleanups %v, shadow left %v, state %s", got, d.cleanups, d.db.shadow != nil, m.State())
	}
}

// TestFakeMigrationRetries: a transient failure (deadlock) of a chunk or of
// an apply batch is retried and the migration succeeds; any other failure
// aborts it and cleans up, with the failure as the error.
func TestFakeMigrationRetries(t *testing.T) {
	t.Run("transient", func(t *testing.T) {
		d := newFake(200)
		d.copyFault = func(n int) error {
			if n <= 2 {
				return fmt.Errorf("copy: %w", errTransient)
			}
			return nil
		}
		var applyFails sync.Once
		d.applyFault = func([]change.Change) (err error) {
			applyFails.Do(func() { err = errTransient })
			return err
		}
		d.between = func(keys []int64) {
			if len(keys) > 0 {
				if err := d.db.del(context.Background(), keys[0]); err != nil {
					t.Error(err)
				}
			}
		}
		m := fakeMigration(fakeConfig(), d)
		if err := runFake(t, context.Background(), m); err != nil {
			t.Fatalf("migration: %v", err)
		}
		sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
	})
	t.Run("copy fails", func(t *testing.T) {
		d := newFake(200)
		broken := errors.New("disk full")
		d.copyFault = func(n int) error {
			if n == 2 {
				return broken
			}
			return nil
		}
		m := fakeMigration(fakeConfig(), d)
		err := runFake(t, context.Background(), m)
		if !errors.Is(err, broken) || !strings.Contains(err.Error(), "copy chunk 2") {
			t.Fatalf("migration: %v, want the copy's failure", err)
		}
		if !slices.Equal(d.cleanups, []bool{false}) || d.db.shadow != nil {
			t.Errorf("cleanups %v, shadow left %v", d.cleanups, d.db.shadow != nil)
		}
	})
	t.Run("apply fails", func(t *testing.T) {
		d := newFake(200)
		broken := errors.New("constraint violated")
		d.applyFault = func([]change.Change) error { return broken }
		d.between = func(keys []int64) {
			if len(keys) > 0 {
				if err := d.db.update(context.Background(), keys[0], -1); err != nil {
					t.Error(err)
				}
			}
		}
		m := fakeMigration(fakeConfig(), d)
		err := runFake(t, context.Background(), m)
		if !errors.Is(err, broken) || !strings.Contains(err.Error(), "apply") {
			t.Fatalf("migration: %v, want the applier's failure", err)
		}
		if !slices.Equal(d.cleanups, []bool{false}) || d.db.swapped {
			t.Errorf("cleanups %v, swapped %v", d.cleanups, d.db.swapped)
		}
	})
}

// TestFakeCutOverFails: a failed cut-over leaves the original in place and
// drops the shadow.
func TestFakeCutOverFails(t *testing.T) {
	d := newFake(100)
	d.cutOverErr = errors.New("lock wait timeout, 3 attempts")
	m := fakeMigration(fakeConfig(), d)
	err := runFake(t, context.Background(), m)
	if !errors.Is(err, d.cutOverErr) || !strings.HasPrefix(err.Error(), "cut-over: ") {
		t.Fatalf("migration: %v", err)
	}
	if !slices.Equal(d.cleanups, []bool{false}) || d.db.shadow != nil || d.db.swapped {
		t.Errorf("cleanups %v, shadow left %v, swapped %v", d.cleanups, d.db.shadow != nil, d.db.swapped)
	}
}

// TestFakeRestore: the rows a new unique key turned away are moved back
// once the copy is done, under the checksum's lock after its drain and
// before each attempt at the cut-over's lock, and, final, under the
// cut-over's lock after its drain: a duplicate the final restore finds fails
// the run, leaving the original in place. The checksum's lock, which the
// writers outlive, never restores with final.
func TestFakeRestore(t *testing.T) {
	type call struct{ final, blocked bool }
	d := newFake(100)
	var calls []call
	d.restore = func(final, blocked bool) error {
		calls = append(calls, call{final, blocked})
		return nil
	}
	if err := runFake(t, context.Background(), fakeMigration(fakeConfig(), d)); err != nil {
		t.Fatalf("migration: %v", err)
	}
	// After the copy; under the checksum's lock (not final); before the
	// cut-over's lock; under it.
	want := []call{{false, false}, {false, true}, {false, false}, {true, true}}
	if !slices.Equal(calls, want) || !d.db.swapped {
		t.Fatalf("restores %v, want %v; swapped %v", calls, want, d.db.swapped)
	}

	d = newFake(100)
	dup := errors.New("duplicate under the new key")
	d.restore = func(final, _ bool) error {
		if final {
			return dup
		}
		return nil
	}
	err := runFake(t, context.Background(), fakeMigration(fakeConfig(), d))
	if !errors.Is(err, dup) || !strings.HasPrefix(err.Error(), "cut-over: ") {
		t.Fatalf("migration: %v", err)
	}
	if d.db.swapped || !slices.Equal(d.cleanups, []bool{false}) {
		t.Errorf("swapped %v, cleanups %v", d.db.swapped, d.cleanups)
	}

	// Without the checksum, the cut-over's restore finds it.
	cfg := fakeConfig()
	cfg.NoChecksum = true
	d = newFake(100)
	d.restore = func(final, _ bool) error {
		if final {
			return dup
		}
		return nil
	}
	err = runFake(t, context.Background(), fakeMigration(cfg, d))
	if !errors.Is(err, dup) || !strings.HasPrefix(err.Error(), "cut-over: ") {
		t.Fatalf("migration without the checksum: %v", err)
	}
	if d.db.swapped || !slices.Equal(d.cleanups, []bool{false}) {
		t.Errorf("without the checksum: swapped %v, cleanups %v", d.db.swapped, d.cleanups)
	}
}

// TestFakeThrottleAndPanic: the throttle flag file holds the copy; the
// socket answers while it waits, and panic aborts and cleans up.
func TestFakeThrottleAndPanic(t *testing.T) {
	d := newFake(100)
	cfg := fakeConfig()
	dir := t.TempDir()
	cfg.Control.ThrottleFlagFile = filepath.Join(dir, "throttle")
	cfg.Control.ServeSocketFile = filepath.Join(dir, "osc.sock")
	touch(t, cfg.Control.ThrottleFlagFile)
	m := fakeMigration(cfg, d)
	done := startFake(context.Background(), m)
	deadline := time.Now().Add(10 * time.Second)
	for st := m.Status(); !st.Throttled; st = m.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("not throttled: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
	if reply := send(t, cfg.Control.ServeSocketFile, "sup"); !strings.Contains(reply, "Throttled: flag-file "+cfg.Control.ThrottleFlagFile) {
		t.Errorf("sup: %q", reply)
	}
	if n := m.Status().Copied; n != 0 {
		t.Errorf("%d rows copied under the flag file", n)
	}
	if reply := send(t, cfg.Control.ServeSocketFile, "panic"); !strings.HasPrefix(reply, "Panic: aborting") {
		t.Errorf("panic: %q", reply)
	}
	if err := waitFake(t, m, done); !errors.Is(err, ErrPanic) {
		t.Fatalf("migration: %v, want the panic", err)
	}
	if !slices.Equal(d.cleanups, []bool{false}) || d.db.shadow != nil {
		t.Errorf("cleanups %v, shadow left %v", d.cleanups, d.db.shadow != nil)
	}
	if _, err := os.Stat(cfg.Control.ServeSocketFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket is left: %v", err)
	}
}

// lockTestApplier makes the fake's applier take perChange for each change
// it writes: about 33 changes a second at 30 ms.
func lockTestApplier(d *fakeDialect, perChange time.Duration) {
	d.applyFault = func(changes []change.Change) error {
		time.Sleep(time.Duration(len(changes)) * perChange)
		return nil
	}
}

// lockTestWriter updates rows at each rate for its duration, in turn, and
// returns when done or ctx ends.
func lockTestWriter(t *testing.T, ctx context.Context, d *fakeDialect, phases ...struct {
	perSecond int
	for_      time.Duration
}) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, p := range phases {
		for end := time.Now().Add(p.for_); time.Now().Before(end) && ctx.Err() == nil; {
			if err := d.db.update(ctx, 1+r.Int64N(200), r.Int64N(1000)); err != nil && ctx.Err() == nil {
				t.Errorf("writer: %v", err)
				return
			}
			time.Sleep(time.Second / time.Duration(p.perSecond))
		}
	}
}

type writePhase = struct {
	perSecond int
	for_      time.Duration
}

// TestFakeLockWaitsForShortDrain: after a burst of writes the applier is
// behind, then gains on the writers. The checksum and the cut-over must take
// their lock once a drain without it is short (readyToLock), not while the
// applier is still a burst behind, which the drain under the lock would then
// apply with writers held.
func TestFakeLockWaitsForShortDrain(t *testing.T) {
	d := newFake(200)
	lockTestApplier(d, 30*time.Millisecond)
	cfg := fakeConfig()
	// A quarter of it, 100 ms, is less than 4 changes take.
	cfg.CutOverLockTimeout = 400 * time.Millisecond
	// Held until the burst is over.
	postponeCutOver(t, &cfg)
	m := fakeMigration(cfg, d)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		// 100 writes a second for 1 s, more than the applier keeps up
		// with; then 10 a second, which it gains on.
		lockTestWriter(t, ctx, d, writePhase{100, time.Second}, writePhase{10, 6 * time.Second})
	})
	wg.Go(func() {
		time.Sleep(time.Second)
		if err := os.Remove(cfg.PostponeCutOverFlagFile); err != nil {
			t.Error(err)
		}
	})
	err := runFake(t, ctx, m)
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("migration: %v", err)
	}
	sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.locked) < 2 {
		t.Fatalf("writes were blocked %d times, want the checksum's and the cut-over's", len(d.locked))
	}
	for i, took := range d.locked {
		if took >= cfg.CutOverLockTimeout/lockDrainShare {
			t.Errorf("lock %d of %d held writers for %s: it was taken while the applier was far behind", i+1, len(d.locked), took)
		}
	}
}

// TestFakeLockWhenApplierFallsBehind: writers faster than the applier keep
// every drain long, and waiting only makes the backlog grow. The cut-over
// must then lock (holding writers while the applier catches up) rather than
// wait for writers that never slow down: they write until the migration ends.
// A postpone leaves the applier a backlog first, so that the checksum's
// first drain is long: without it the drains may start short and the lock
// be taken at once, never behind.
func TestFakeLockWhenApplierFallsBehind(t *testing.T) {
	d := newFake(200)
	lockTestApplier(d, 30*time.Millisecond)
	cfg := fakeConfig()
	cfg.CutOverLockTimeout = 400 * time.Millisecond
	postponeCutOver(t, &cfg)
	m := fakeMigration(cfg, d)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		// About 66 writes a second, twice what the applier keeps up with.
		lockTestWriter(t, ctx, d, writePhase{66, time.Hour})
	})
	wg.Go(func() {
		time.Sleep(time.Second)
		if err := os.Remove(cfg.PostponeCutOverFlagFile); err != nil {
			t.Error(err)
		}
	})
	err := runFake(t, ctx, m)
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("migration: %v", err)
	}
	sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.locked) == 0 || d.locked[0] <= cfg.CutOverLockTimeout/lockDrainShare {
		t.Errorf("writes were blocked for %v: the checksum's lock was not taken with the applier behind", d.locked)
	}
}

// markerSince reports whether the stream holds a marker at or after from.
func markerSince(db *fakeDB, from int) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	return slices.ContainsFunc(db.stream[from:], func(c change.Change) bool { return c.Op == change.Marker })
}

// TestFakeLockWaitStopsAtTheLastDrain: once a drain without the lock lasts
// as long as the one before, the applier is not gaining on the writers and
// osc locks: it does not wait the drain out, which, with writers faster than
// the applier, takes longer each time (the wait and the backlog grew without
// bound; TestFakeLockWhenApplierFallsBehind got stuck on it). Here a burst
// of writes makes the checksum's second drain some ten times longer than
// the first: the lock must be taken before the applier is through it.
func TestFakeLockWaitStopsAtTheLastDrain(t *testing.T) {
	d := newFake(200)
	const burst = 200
	var lockedInBurst atomic.Bool
	d.applyFault = func(changes []change.Change) error {
		time.Sleep(time.Duration(len(changes)) * 30 * time.Millisecond)
		for _, c := range changes {
			if c.After != nil && c.After[1].(int64) == 1000+burst-1 {
				d.db.mu.Lock()
				lockedInBurst.Store(d.db.blocked)
				d.db.mu.Unlock()
			}
		}
		return nil
	}
	cfg := fakeConfig()
	cfg.CutOverLockTimeout = 400 * time.Millisecond
	postponeCutOver(t, &cfg)
	m := fakeMigration(cfg, d)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		// While postponed, a backlog of about a second's work for the
		// checksum's first drain.
		for m.State() != StatePostponed && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		for i := range int64(30) {
			if err := d.db.update(ctx, 1+i, i); err != nil {
				t.Error(err)
				return
			}
		}
		d.db.mu.Lock()
		from := len(d.db.stream)
		d.db.mu.Unlock()
		if err := os.Remove(cfg.PostponeCutOverFlagFile); err != nil {
			t.Error(err)
			return
		}
		// After the first drain's marker, six seconds' work for the
		// second.
		for !markerSince(d.db, from) {
			if ctx.Err() != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
		for i := range int64(burst) {
			if err := d.db.update(ctx, 1+i%200, 1000+i); err != nil {
				if ctx.Err() == nil {
					t.Error(err)
				}
				return
			}
		}
	})
	err := runFake(t, ctx, m)
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("migration: %v", err)
	}
	sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
	if !lockedInBurst.Load() {
		t.Error("the lock was taken only after the applier was through the burst: osc waited the drain out")
	}
}
