package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"osc/change"
)

// errUnfit is what oldTable refuses values above 100 with.
var errUnfit = errors.New("out of range")

// oldRow is a row of oldTable: v, which changes carry, and extra, a column
// of the old table only.
type oldRow struct{ v, extra int }

// oldTable is an Applier into a table of (id, v, extra) that refuses
// v > 100, with all-or-nothing batches, as a reverse applier writes it:
// inserts and updates write v and keep extra, a key-changing update moves the
// row, extra included.
type oldTable struct{ rows map[int]oldRow }

func (o *oldTable) Apply(_ context.Context, cs []change.Change) error {
	next := map[int]oldRow{}
	for k, v := range o.rows {
		next[k] = v
	}
	for _, c := range cs {
		switch c.Op {
		case change.Delete:
			delete(next, c.Before[0].(int))
		case change.Insert, change.Update:
			if c.After[1].(int) > 100 {
				return errUnfit
			}
			r := next[c.After[0].(int)]
			if c.Op == change.Update && c.Before[0] != c.After[0] {
				if moved, ok := next[c.Before[0].(int)]; ok {
					r = moved
					delete(next, c.Before[0].(int))
				}
			}
			r.v = c.After[1].(int)
			next[c.After[0].(int)] = r
		}
	}
	o.rows = next
	return nil
}

func idv(id, v int) change.Row { return change.Row{id, v} }

func newRevertApplier(old Applier) (*revertApplier, *revertState) {
	st := &revertState{refused: map[string]string{}, moved: map[string]change.Row{}}
	return &revertApplier{ap: old, unfit: func(err error) bool { return errors.Is(err, errUnfit) },
		retry:    func(_ context.Context, _ string, fn func() error) error { return fn() },
		keyIndex: []int{0}, keyNames: []string{"id"}, state: st}, st
}

func sameOldRows(t *testing.T, got, want map[int]oldRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("old table holds %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("old table holds %v, want %v", got, want)
		}
	}
}

// A batch the old table refuses is applied change by change: the changes that
// fit are applied, each one that does not is remembered by key, and a later
// change of the key that fits (or its deletion) lifts the refusal. A refused
// key-changing update leaves the row under its old key, and the next change
// of the new key moves it from there, with the old table's own values.
func TestRevertApplierRefusesUnfitRows(t *testing.T) {
	old := &oldTable{rows: map[int]oldRow{1: {1, 11}, 2: {2, 22}, 3: {3, 33}, 5: {5, 55}}}
	a, st := newRevertApplier(old)
	ctx := context.Background()
	err := a.Apply(ctx, []change.Change{
		{Op: change.Insert, After: idv(4, 4)},
		{Op: change.Update, Before: idv(1, 1), After: idv(1, 500)},
		{Op: change.Update, Before: idv(2, 2), After: idv(20, 900)}, // moves to key 20
		{Op: change.Marker, Marker: "m"},
		{Op: change.Delete, Before: idv(3, 3)},
		{Op: change.Update, Before: idv(5, 5), After: idv(50, 950)}, // moves to key 50
	})
	if err != nil {
		t.Fatal(err)
	}
	sameOldRows(t, old.rows, map[int]oldRow{1: {1, 11}, 2: {2, 22}, 4: {4, 0}, 5: {5, 55}})
	refusal := st.refusal()
	var re *RevertRefusedError
	if !errors.As(refusal, &re) || re.N != 3 || !strings.Contains(refusal.Error(), "key (id=1): out of range") ||
		!strings.Contains(refusal.Error(), "key (id=20): out of range") {
		t.Fatalf("refusal: %v", refusal)
	}

	// Key 1 is written again with a value that fits, key 20 too (the row
	// moves from key 2, extra included), key 50 is deleted (its row under 5
	// goes).
	if err := a.Apply(ctx, []change.Change{
		{Op: change.Update, Before: idv(1, 500), After: idv(1, 50)},
		{Op: change.Update, Before: idv(20, 900), After: idv(20, 30)},
		{Op: change.Delete, Before: idv(50, 950)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.refusal(); err != nil {
		t.Fatalf("refusal after the rows were written again: %v", err)
	}
	sameOldRows(t, old.rows, map[int]oldRow{1: {50, 11}, 20: {30, 22}, 4: {4, 0}})

	// A refused move whose old key is written again before the move is
	// applied cannot be made exact: the refusal stays.
	if err := a.Apply(ctx, []change.Change{{Op: change.Update, Before: idv(4, 4), After: idv(40, 999)}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, []change.Change{
		{Op: change.Insert, After: idv(4, 7)},
		{Op: change.Update, Before: idv(40, 999), After: idv(40, 8)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.refusal(); err == nil || !strings.Contains(err.Error(), "key (id=4): its row moved") {
		t.Fatalf("refusal after the old key was written: %v", err)
	}

	// Any other error fails the apply.
	boom := errors.New("connection lost")
	a.ap = failing{boom}
	if err := a.Apply(ctx, []change.Change{{Op: change.Insert, After: idv(5, 5)}}); !errors.Is(err, boom) {
		t.Fatalf("want the applier's error, got %v", err)
	}
}

type failing struct{ err error }

func (f failing) Apply(context.Context, []change.Change) error { return f.err }

// The refusal names at most revertRefusalShown keys, in order, and counts
// them all.
func TestRevertRefusalText(t *testing.T) {
	st := &revertState{refused: map[string]string{}, moved: map[string]change.Row{}}
	for _, k := range []string{"g", "a", "c", "e", "b", "f", "d"} {
		st.refused[k] = "key (id=" + k + "): why"
	}
	err := st.refusal().Error()
	if !strings.Contains(err, "7 row(s)") || !strings.Contains(err, "key (id=a): why; key (id=b): why") ||
		strings.Contains(err, "id=f") || !strings.Contains(err, "and 2 more") {
		t.Fatalf("refusal: %s", err)
	}
}
