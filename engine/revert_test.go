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

// oldTable is an Applier into a table of (id, v) that refuses v > 100, with
// all-or-nothing batches.
type oldTable struct {
	rows    map[int]int
	batches int
}

func (o *oldTable) Apply(_ context.Context, cs []change.Change) error {
	o.batches++
	next := map[int]int{}
	for k, v := range o.rows {
		next[k] = v
	}
	for _, c := range cs {
		switch c.Op {
		case change.Delete:
			delete(next, c.Before[0].(int))
		case change.Insert, change.Update:
			if c.Op == change.Update {
				delete(next, c.Before[0].(int))
			}
			if c.After[1].(int) > 100 {
				return errUnfit
			}
			next[c.After[0].(int)] = c.After[1].(int)
		}
	}
	o.rows = next
	return nil
}

func idv(id, v int) change.Row { return change.Row{id, v} }

// A batch the old table refuses is applied change by change: the changes that
// fit are applied, each one that does not is remembered by key, a key-changing
// update that does not fit still leaves its old key, and a later change of
// the key that fits (or its deletion) lifts the refusal.
func TestRevertApplierRefusesUnfitRows(t *testing.T) {
	old := &oldTable{rows: map[int]int{1: 1, 2: 2, 3: 3}}
	st := &revertState{refused: map[string]string{}}
	a := &revertApplier{ap: old, unfit: func(err error) bool { return errors.Is(err, errUnfit) },
		keyIndex: []int{0}, keyNames: []string{"id"}, state: st}
	ctx := context.Background()
	err := a.Apply(ctx, []change.Change{
		{Op: change.Insert, After: idv(4, 4)},
		{Op: change.Update, Before: idv(1, 1), After: idv(1, 500)},
		{Op: change.Update, Before: idv(2, 2), After: idv(20, 900)}, // moves to key 20
		{Op: change.Marker, Marker: "m"},
		{Op: change.Delete, Before: idv(3, 3)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]int{1: 1, 4: 4}
	if len(old.rows) != len(want) || old.rows[1] != 1 || old.rows[4] != 4 {
		t.Fatalf("old table holds %v, want %v", old.rows, want)
	}
	refusal := st.refusal()
	var re *RevertRefusedError
	if !errors.As(refusal, &re) || re.N != 2 || !strings.Contains(refusal.Error(), "key (id=1): out of range") ||
		!strings.Contains(refusal.Error(), "key (id=20): out of range") {
		t.Fatalf("refusal: %v", refusal)
	}

	// Key 1 is written again with a value that fits, key 20 is deleted.
	if err := a.Apply(ctx, []change.Change{
		{Op: change.Update, Before: idv(1, 500), After: idv(1, 50)},
		{Op: change.Delete, Before: idv(20, 900)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.refusal(); err != nil {
		t.Fatalf("refusal after the rows were written again: %v", err)
	}
	if old.rows[1] != 50 {
		t.Fatalf("old table holds %v", old.rows)
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
	st := &revertState{refused: map[string]string{}}
	for _, k := range []string{"g", "a", "c", "e", "b", "f", "d"} {
		st.refused[k] = "key (id=" + k + "): why"
	}
	err := st.refusal().Error()
	if !strings.Contains(err, "7 row(s)") || !strings.Contains(err, "key (id=a): why; key (id=b): why") ||
		strings.Contains(err, "id=f") || !strings.Contains(err, "and 2 more") {
		t.Fatalf("refusal: %s", err)
	}
}
