package engine

import (
	"testing"
	"time"

	"osc/cdc"
	"osc/table"
)

func intPlan() *table.Plan {
	return &table.Plan{
		Source: &table.Table{Columns: []table.Column{
			{Name: "id", DataType: "bigint"}, {Name: "v", DataType: "text"}, {Name: "big", DataType: "text"},
		}},
		Key: []string{"id"}, KeyIndex: []int{0},
	}
}

// ops returns the replayed changes by key, and fails unless each is marked
// Replay (a replayed delete must match the remembered key's bytes exactly).
func ops(t *testing.T, cs []cdc.Change) map[string]cdc.Op {
	t.Helper()
	out := map[string]cdc.Op{}
	for _, c := range cs {
		if !c.Replay {
			t.Errorf("replayed %s is not marked Replay", c.Op)
		}
		row := c.Before
		if c.Op == cdc.Update {
			row = c.After
		}
		out[row[0].(string)] = c.Op
	}
	return out
}

func TestReplayWindowDeleteInChunk(t *testing.T) {
	w := newReplayWindow(intPlan())
	now := time.Now()
	w.record([]cdc.Change{
		{Op: cdc.Delete, Before: cdc.Row{"5", nil, nil}},
		{Op: cdc.Delete, Before: cdc.Row{"50", nil, nil}},
		{Op: cdc.Delete, Before: cdc.Row{"7", nil, nil}},
		{Op: cdc.Insert, After: cdc.Row{"7", "x", "y"}}, // re-inserted: nothing to replay
	}, now)
	got := ops(t, w.replay([]any{"1"}, []any{"10"}, now))
	if len(got) != 1 || got["5"] != cdc.Delete {
		t.Fatalf("replay in (1,10] = %v, want only the delete of 5", got)
	}
	// The last chunk is unbounded above.
	got = ops(t, w.replay([]any{"10"}, nil, now))
	if len(got) != 1 || got["50"] != cdc.Delete {
		t.Fatalf("replay in (10,∞) = %v, want only the delete of 50", got)
	}
}

func TestReplayWindowKeyChangeAndExpiry(t *testing.T) {
	w := newReplayWindow(intPlan())
	old := time.Now().Add(-time.Hour)
	w.record([]cdc.Change{{Op: cdc.Delete, Before: cdc.Row{"3", nil, nil}}}, old)
	now := time.Now()
	w.record([]cdc.Change{{Op: cdc.Update, Before: cdc.Row{"4", "a", "b"}, After: cdc.Row{"40", "a", "b"}}}, now)
	got := ops(t, w.replay(nil, nil, now))
	if len(got) != 1 || got["4"] != cdc.Delete {
		t.Fatalf("replay = %v, want the old key 4 deleted and the expired delete of 3 forgotten", got)
	}
	if _, ok := w.entries[w.keyOf(cdc.Row{"3"})]; ok {
		t.Fatal("an entry older than the visibility gap before the chunk was kept")
	}
}

func TestReplayWindowMergesPartialUpdates(t *testing.T) {
	w := newReplayWindow(intPlan())
	now := time.Now()
	w.record([]cdc.Change{
		{Op: cdc.Update, After: cdc.Row{"9", "v1", nil}, Unchanged: []bool{false, false, true}},
		{Op: cdc.Update, After: cdc.Row{"9", nil, "big2"}, Unchanged: []bool{false, true, false}},
	}, now)
	cs := w.replay(nil, nil, now)
	if len(cs) != 1 {
		t.Fatalf("replay = %v, want one merged update", cs)
	}
	c := cs[0]
	if !c.Replay {
		t.Error("the replayed update is not marked Replay")
	}
	if c.After[1] != "v1" || c.After[2] != "big2" || c.Unchanged[1] || c.Unchanged[2] {
		t.Fatalf("merged update = %+v, want v=v1 and big=big2 both sent", c)
	}
	// A full update afterwards supersedes it.
	w.record([]cdc.Change{{Op: cdc.Update, After: cdc.Row{"9", "v3", "big3"}}}, now)
	if cs := w.replay(nil, nil, now); len(cs) != 0 {
		t.Fatalf("replay after a full update = %v, want nothing", cs)
	}
}

func TestReplayWindowNonIntegerKeyReplaysAll(t *testing.T) {
	p := intPlan()
	p.Source.Columns[0].DataType = "varchar"
	w := newReplayWindow(p)
	now := time.Now()
	w.record([]cdc.Change{{Op: cdc.Delete, Before: cdc.Row{"zzz", nil, nil}}}, now)
	if cs := w.replay([]any{"a"}, []any{"b"}, now); len(cs) != 1 {
		t.Fatalf("replay with a text key = %v, want the delete regardless of range", cs)
	}
}

func TestReplayWindowUnsignedNegativeIsUnfiltered(t *testing.T) {
	p := intPlan()
	p.Source.Columns[0].Unsigned = true
	w := newReplayWindow(p)
	now := time.Now()
	w.record([]cdc.Change{{Op: cdc.Delete, Before: cdc.Row{int64(-1), nil, nil}}}, now)
	if cs := w.replay([]any{"1"}, []any{"10"}, now); len(cs) != 1 {
		t.Fatalf("replay = %v, want the delete of an unsigned value the binlog sent negative", cs)
	}
}
