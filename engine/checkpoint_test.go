package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestResumeAfterKill kills a migration (every later write of it fails and
// nothing is cleaned up, as after kill -9) at a random moment of the copy,
// the postponed wait or the cut-over, or right after a chunk's write and
// before the replay that follows it, under writes that race the chunks, and
// resumes it from its last checkpoint: at the swap the shadow holds exactly
// the original's rows. Each round kills at another moment.
func TestResumeAfterKill(t *testing.T) {
	killRounds(t, func(t *testing.T, round int) { resumeAfterKill(t, uint64(round), round%2 == 1, 1) })
}

// killRounds runs kill(t, round) for 16 rounds (4 with -short), in parallel.
func killRounds(t *testing.T, kill func(t *testing.T, round int)) {
	rounds := 16
	if testing.Short() {
		rounds = 4
	}
	for round := range rounds {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			kill(t, round)
		})
	}
}

// TestResumeAfterKillCopyThreads: TestResumeAfterKill with chunks copied at
// once (--copy-threads), so that a checkpoint is taken, and the kill comes,
// with ranges above the watermark done or in flight.
func TestResumeAfterKillCopyThreads(t *testing.T) {
	killRounds(t, func(t *testing.T, round int) { resumeAfterKill(t, uint64(100+round), round%2 == 1, 2+round%3) })
}

// resumeAfterKill runs one round; afterChunk kills right after a chunk's
// write, with chunks slow enough for checkpoints to be saved while they
// read and write.
func resumeAfterKill(t *testing.T, seed uint64, afterChunk bool, threads int) {
	r := rand.New(rand.NewPCG(seed, 99))
	db := newFakeDB(3000)
	var inFlight atomic.Pointer[[]int64]
	gap := 200 * time.Microsecond
	if afterChunk {
		gap = 3 * time.Millisecond
	}
	between := func(keys []int64) {
		inFlight.Store(&keys)
		if len(keys) > 0 {
			// A delete of a row the chunk read, applied before the
			// chunk's write: until the chunk's replay, a checkpoint
			// must restart the capture before it.
			if err := db.del(context.Background(), keys[len(keys)/2]); err != nil {
				t.Error(err)
			}
		}
		time.Sleep(gap)
	}
	cfg := fakeConfig()
	cfg.CheckpointInterval = time.Millisecond
	cfg.CopyThreads = threads
	cfg.Version = "test"
	cfg.PostponeCutOverFlagFile = filepath.Join(t.TempDir(), "postpone")
	if r.IntN(3) == 0 {
		touch(t, cfg.PostponeCutOverFlagFile) // the kill may come while postponed
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d1 := &fakeDialect{db: db, between: between}
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	fakeWriters(t, wctx, &wg, d1, &inFlight, seed)
	defer func() {
		stopWriters()
		wg.Wait()
	}()

	kctx, kill := context.WithCancel(ctx)
	if afterChunk {
		d1.killAfterChunk = 2 + r.IntN(20)
	}
	m1 := fakeMigration(cfg, d1)
	done := startFake(kctx, m1)
	if afterChunk {
		for !d1.killed.Load() {
			time.Sleep(100 * time.Microsecond)
		}
	} else {
		for db.savesNow() == 0 {
			time.Sleep(100 * time.Microsecond)
		}
		time.Sleep(time.Duration(r.IntN(40)) * time.Millisecond)
		d1.killed.Store(true)
	}
	kill()
	if err := waitFake(t, m1, done); err == nil {
		t.Log("the first run completed before the kill")
	}
	killedAt := m1.State()

	cfg.Resume = true
	d2 := &fakeDialect{db: db, between: between}
	m2 := fakeMigration(cfg, d2)
	done = startFake(ctx, m2)
	time.Sleep(20 * time.Millisecond) // writes while the resumed run works
	if err := os.Remove(cfg.PostponeCutOverFlagFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	stopWriters()
	wg.Wait()
	if err := waitFake(t, m2, done); err != nil {
		t.Fatalf("resume after a kill while %s: %v", killedAt, err)
	}
	if !db.swapped {
		t.Fatal("no swap")
	}
	sameRows(t, db.newAtSwap, db.oldAtSwap)
	if got := d2.called(); !slices.Contains(got, "Resume") || slices.Contains(got, "CreateShadow") {
		t.Errorf("resumed run's calls: %v", got)
	}
}

// savesNow is how many checkpoints were saved.
func (db *fakeDB) savesNow() int {
	db.store.mu.Lock()
	defer db.store.mu.Unlock()
	return db.store.saves
}

// TestResumeRefused: a checkpoint of another version, another --alter or
// older than --resume-max-age is refused, and nothing is cleaned up.
func TestResumeRefused(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		change     func(cfg *Config, ck *Checkpoint)
	}{
		{"version", "saved by osc v1, this is osc v2", func(cfg *Config, _ *Checkpoint) { cfg.Version = "v2" }},
		{"alter", "resume with the same --alter", func(cfg *Config, _ *Checkpoint) { cfg.Alter = "ADD COLUMN x INT" }},
		{"age", "more than --resume-max-age", func(cfg *Config, ck *Checkpoint) {
			cfg.ResumeMaxAge = time.Hour
			ck.Saved = time.Now().Add(-2 * time.Hour)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newFake(10)
			d.db.shadow = map[int64]int64{}
			cfg := fakeConfig()
			cfg.Resume, cfg.Version = true, "v1"
			ck := &Checkpoint{Version: "v1", Alter: " ADD  COLUMN w INT", Position: "0", Saved: time.Now()}
			tc.change(&cfg, ck)
			d.db.store.ck = ck
			err := runFake(t, context.Background(), fakeMigration(cfg, d))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if got := d.called(); !slices.Equal(got, []string{"Inspect", "Resume"}) || d.db.shadow == nil {
				t.Errorf("calls %v; shadow kept: %v", got, d.db.shadow != nil)
			}
		})
	}
}

// TestResumeDryRun checks the checkpoint and changes nothing.
func TestResumeDryRun(t *testing.T) {
	d := newFake(10)
	d.db.shadow = map[int64]int64{}
	cfg := fakeConfig()
	cfg.Resume, cfg.Execute, cfg.Version = true, false, "v1"
	d.db.store.ck = &Checkpoint{Version: "v1", Alter: cfg.Alter, Position: "0", Saved: time.Now()}
	if err := runFake(t, context.Background(), fakeMigration(cfg, d)); err != nil {
		t.Fatal(err)
	}
	if got := d.called(); !slices.Equal(got, []string{"Inspect", "Resume"}) || d.db.shadow == nil {
		t.Errorf("calls %v; shadow kept: %v", got, d.db.shadow != nil)
	}
}

// TestResumeAfterCutOver: a run killed after the swap leaves only cleanup.
func TestResumeAfterCutOver(t *testing.T) {
	d := newFake(10)
	d.db.swapped = true
	cfg := fakeConfig()
	cfg.Resume, cfg.Version = true, "v1"
	d.db.store.ck = &Checkpoint{Version: "v1", Alter: cfg.Alter, Position: "0", CopyDone: true, Saved: time.Now()}
	m := fakeMigration(cfg, d)
	if err := runFake(t, context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got := d.called(); !slices.Equal(got, []string{"Inspect", "Resume", "Cleanup"}) || !slices.Equal(d.cleanups, []bool{true}) {
		t.Errorf("calls %v, cleanups %v", got, d.cleanups)
	}
	if m.State() != StateDone {
		t.Errorf("state %s", m.State())
	}
}

// TestCheckpointsOff: with --checkpoint=false nothing is saved.
func TestCheckpointsOff(t *testing.T) {
	d := newFake(500)
	cfg := fakeConfig()
	cfg.NoCheckpoint, cfg.CheckpointInterval = true, time.Millisecond
	if err := runFake(t, context.Background(), fakeMigration(cfg, d)); err != nil {
		t.Fatal(err)
	}
	if n := d.db.savesNow(); n != 0 {
		t.Errorf("%d checkpoints saved", n)
	}
}

// TestResumeAfterCutOverAnyVersion: cleaning up after a run killed after its
// cut-over needs only the same --alter, not the same version or a recent
// checkpoint.
func TestResumeAfterCutOverAnyVersion(t *testing.T) {
	for _, alter := range []string{"ADD COLUMN w INT", "ADD COLUMN other INT"} {
		d := newFake(10)
		d.db.swapped = true
		cfg := fakeConfig()
		cfg.Resume, cfg.Version, cfg.ResumeMaxAge, cfg.Alter = true, "v2", time.Hour, alter
		d.db.store.ck = &Checkpoint{Version: "v1", Alter: "ADD COLUMN w INT", Position: "0", CopyDone: true, Saved: time.Now().Add(-48 * time.Hour)}
		err := runFake(t, context.Background(), fakeMigration(cfg, d))
		if want := alter == "ADD COLUMN w INT"; (err == nil) != want {
			t.Errorf("--alter %q: %v", alter, err)
		}
	}
}

// TestCheckpointSavedAtOnce: the first checkpoint and the copy's end are
// saved at once, not an interval later: a run killed within its first
// interval is resumable, and one killed right after its copy does not copy
// again.
func TestCheckpointSavedAtOnce(t *testing.T) {
	d := newFake(500)
	cfg := fakeConfig()
	cfg.CheckpointInterval = time.Hour
	cfg.Version = "v1"
	if err := runFake(t, context.Background(), fakeMigration(cfg, d)); err != nil {
		t.Fatal(err)
	}
	ck := d.db.store.last()
	// The first pair's save may fold into the copy end's (one kick).
	if n := d.db.savesNow(); n < 1 || n > 2 || ck == nil || !ck.CopyDone {
		t.Errorf("%d checkpoints saved, the last %+v; want 1 or 2, the last with the copy done", n, ck)
	}
}
