package engine

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"osc/change"
)

// errFakeDuplicate is the move's refusal when the new key has a row.
var errFakeDuplicate = errors.New("fake: duplicate key")

// movingOld is an old table as the MySQL reverse applier writes it: rows
// keep a column only the old table has (dropped), an upsert leaves it alone,
// a key-changing update moves the row under the old key (an UPDATE, refused
// when the new key has a row), a negative value does not fit. Each Apply is
// one transaction; the one numbered failAt fails as a deadlock does.
type movingOld struct {
	rows   map[int64][2]int64 // key → value, dropped column
	calls  int
	failAt int
}

func (o *movingOld) Apply(_ context.Context, changes []change.Change) error {
	o.calls++
	if o.calls == o.failAt {
		return errTransient
	}
	next := maps.Clone(o.rows)
	for _, c := range changes {
		switch c.Op {
		case change.Insert, change.Update:
			k, v := c.After[0].(int64), c.After[1].(int64)
			if v < 0 {
				return errFakeUnfit
			}
			if c.Before != nil && c.Before[0].(int64) != k {
				if _, ok := next[k]; ok {
					return errFakeDuplicate
				}
				if r, ok := next[c.Before[0].(int64)]; ok {
					next[k] = r
					delete(next, c.Before[0].(int64))
				}
			}
			r, ok := next[k]
			if !ok {
				r[1] = -1 // the dropped column's DEFAULT
			}
			next[k] = [2]int64{v, r[1]}
		case change.Delete:
			delete(next, c.Before[0].(int64))
		}
	}
	o.rows = next
	return nil
}

// TestRevertApplierTransientInFallback: a batch the old table refuses is
// applied change by change; a deadlock partway through must not make the
// engine's retry apply the batch again from its start, whose move applied a
// second time would take a row written after it (row 1 moved to 2, then 3,
// then key 1 inserted anew: moving "1 to 2" again moves the new row 1). The
// old table ends as the table, and no refusal stays.
func TestRevertApplierTransientInFallback(t *testing.T) {
	row := func(k, v int64) change.Row { return change.Row{k, v} }
	old := &movingOld{rows: map[int64][2]int64{1: {10, 100}, 7: {70, 700}}, failAt: 6}
	st := &revertState{refused: map[string]string{}, moved: map[string]change.Row{}}
	r := &revertApplier{ap: old, unfit: func(err error) bool { return errors.Is(err, errFakeUnfit) || errors.Is(err, errFakeDuplicate) },
		keyIndex: []int{0}, keyNames: []string{"id"}, state: st,
		retry: (&Migration{d: &fakeDialect{}, log: slog.New(slog.DiscardHandler)}).retry}
	// As the engine's apply loop calls it: again while the error is one to
	// retry.
	apply := func(changes ...change.Change) {
		t.Helper()
		for range retryAttempts {
			err := r.Apply(context.Background(), changes)
			if err == nil {
				return
			}
			if !errors.Is(err, errTransient) {
				t.Fatalf("apply: %v", err)
			}
		}
		t.Fatal("apply: still failing")
	}
	apply(
		change.Change{Op: change.Update, Before: row(1, 10), After: row(2, 10)},
		change.Change{Op: change.Update, Before: row(2, 10), After: row(3, 10)},
		change.Change{Op: change.Insert, After: row(1, 5)},
		change.Change{Op: change.Update, Before: row(7, 70), After: row(7, -1)}, // refused
		change.Change{Op: change.Update, Before: row(1, 5), After: row(1, 6)},   // the deadlock, first time
	)
	apply(change.Change{Op: change.Delete, Before: row(3, 10)})
	apply(change.Change{Op: change.Update, Before: row(7, -1), After: row(7, 71)})
	want := map[int64][2]int64{1: {6, -1}, 7: {71, 700}}
	if !maps.Equal(old.rows, want) {
		t.Errorf("old table %v, want %v", old.rows, want)
	}
	if err := st.refusal(); err != nil {
		t.Errorf("a refusal stays: %v", err)
	}
}

// TestRevertCommandForceNamed: the revert is a cut-over: with
// --force-named-cut-over it must name the table, as cut-over=<table> must.
func TestRevertCommandForceNamed(t *testing.T) {
	cfg := fakeConfig()
	cfg.RevertWindow = time.Minute
	cfg.Control.ForceNamedCutOver = true
	m := fakeMigration(cfg, newFake(1))
	if _, err := m.revertCommand(true, "", time.Second); err == nil || !strings.Contains(err.Error(), "revert=t") {
		t.Errorf("revert without the table's name: %v", err)
	}
	if _, err := m.revertCommand(false, "", time.Second); err == nil || strings.Contains(err.Error(), "force-named") {
		t.Errorf("finish without the table's name: %v (want the window's absence)", err)
	}
}

// TestFakeRevertOnSuccessState: the on-success hook after a revert says so
// (OSC_STATE=reverted): the run succeeded, but the table is the original
// again; after finish it is done, as after a run without a window.
func TestFakeRevertOnSuccessState(t *testing.T) {
	for _, revert := range []bool{true, false} {
		dir, out := t.TempDir(), filepath.Join(t.TempDir(), "state")
		if err := os.WriteFile(filepath.Join(dir, "on-success"), []byte("#!/bin/sh\necho \"state=$OSC_STATE\" > "+out+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		d := &fakeReverter{fakeDialect: newFake(50)}
		cfg := fakeConfig()
		cfg.RevertWindow = time.Minute
		cfg.Control.HooksPath = dir
		m := fakeMigration(cfg, d.fakeDialect)
		m.d = d
		done := startFake(context.Background(), m)
		until(t, m, "the revert window", func() bool { return m.State() == StateRevertWindow })
		command, want := "finish", "state=done\n"
		if revert {
			command, want = "revert", "state=reverted\n"
		}
		if _, err := m.command(command); err != nil {
			t.Fatalf("%s: %v", command, err)
		}
		if err := waitFake(t, m, done); err != nil {
			t.Fatalf("migration: %v", err)
		}
		if got, err := os.ReadFile(out); err != nil || string(got) != want {
			t.Errorf("after %s, the on-success hook saw %q (%v), want %q", command, got, err, want)
		}
	}
}
