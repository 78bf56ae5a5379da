package engine

import (
	"testing"

	"osc/change"
)

// idKey is the key of rows (id, v, big): id.
var idKey = []int{0}

// ops returns the replayed changes by key, and fails unless each is marked
// Replay (a replayed delete must match the remembered key's bytes exactly).
func ops(t *testing.T, cs []change.Change) map[string]change.Op {
	t.Helper()
	out := map[string]change.Op{}
	for _, c := range cs {
		if !c.Replay {
			t.Errorf("replayed %s is not marked Replay", c.Op)
		}
		row := c.Before
		if c.Op == change.Update {
			row = c.After
		}
		out[row[0].(string)] = c.Op
	}
	return out
}

// replayOne is finish for a chunk that starts and returns alone.
func (w *replayWindow) replayOne(snap change.Snapshot, marker string) []change.Change {
	return w.finish(w.start(), snap, marker)
}

// xids is a snapshot that sees the listed transactions.
type xids map[uint32]bool

func (s xids) Sees(xid uint32) bool { return s[xid] }

// MySQL: changes before the chunk's marker were visible to the chunk's read
// and are forgotten; changes after it are replayed, and kept for the next
// chunk until a marker passes them.
func TestReplayWindowMarker(t *testing.T) {
	w := newReplayWindow(idKey)
	w.expect("m1")
	w.record([]change.Change{
		{Op: change.Delete, Before: change.Row{"5", nil, nil}},
		{Op: change.Delete, Before: change.Row{"7", nil, nil}},
	})
	w.passed("m1")
	w.record([]change.Change{
		{Op: change.Delete, Before: change.Row{"50", nil, nil}},
		{Op: change.Update, Before: change.Row{"4", "a", "b"}, After: change.Row{"40", "a", "b"}}, // key change: 4 deleted
		{Op: change.Delete, Before: change.Row{"8", nil, nil}},
		{Op: change.Insert, After: change.Row{"8", "x", "y"}}, // re-inserted: nothing to replay
	})
	got := ops(t, w.replayOne(nil, "m1"))
	if len(got) != 2 || got["50"] != change.Delete || got["4"] != change.Delete {
		t.Fatalf("replay after m1 = %v, want the deletes of 50 and 4 (after the marker) only", got)
	}
	if len(w.markers) != 0 {
		t.Fatalf("markers kept after replay: %v", w.markers)
	}
	// The next chunk's marker, not reached by the applier yet, follows
	// every change applied so far: all were visible to that chunk.
	w.expect("m2")
	if got := w.replayOne(nil, "m2"); len(got) != 0 || len(w.entries) != 0 {
		t.Fatalf("replay before the applier reached m2 = %v (entries %d), want nothing left", got, len(w.entries))
	}
	// A marker the applier passed and nothing after it: nothing to replay.
	w.expect("m3")
	w.record([]change.Change{{Op: change.Delete, Before: change.Row{"9", nil, nil}}})
	w.passed("m3")
	w.passed("unrelated") // the drain's and the status line's markers are ignored
	if got := w.replayOne(nil, "m3"); len(got) != 0 || len(w.entries) != 0 || len(w.markers) != 0 {
		t.Fatalf("replay = %v, entries %d, markers %v: want nothing", got, len(w.entries), w.markers)
	}
}

// PostgreSQL: a change is replayed while the chunk's snapshot did not see its
// transaction.
func TestReplayWindowSnapshot(t *testing.T) {
	w := newReplayWindow(idKey)
	w.record([]change.Change{
		{Op: change.Delete, Before: change.Row{"1", nil, nil}, Xid: 100},
		{Op: change.Delete, Before: change.Row{"2", nil, nil}, Xid: 101},
		{Op: change.Update, After: change.Row{"3", "v", nil}, Unchanged: []bool{false, false, true}, Xid: 102},
	})
	got := ops(t, w.replayOne(xids{100: true}, ""))
	if len(got) != 2 || got["2"] != change.Delete || got["3"] != change.Update {
		t.Fatalf("replay = %v, want the delete of 2 and the partial update of 3", got)
	}
	got = ops(t, w.replayOne(xids{100: true, 101: true}, ""))
	if len(got) != 1 || got["3"] != change.Update {
		t.Fatalf("second replay = %v, want only the partial update of 3", got)
	}
	if got := w.replayOne(xids{102: true}, ""); len(got) != 0 || len(w.entries) != 0 {
		t.Fatalf("third replay = %v, want nothing left", got)
	}
	// Without a snapshot or a marker nothing is known: replay all, keep all.
	w.record([]change.Change{{Op: change.Delete, Before: change.Row{"4", nil, nil}, Xid: 103}})
	for range 2 {
		if got := w.replayOne(nil, ""); len(got) != 1 {
			t.Fatalf("replay without a snapshot = %v, want the delete of 4", got)
		}
	}
	w.reset()
	if got := w.replayOne(nil, ""); len(got) != 0 {
		t.Fatalf("replay after reset = %v", got)
	}
}

// Composite text keys whose parts hold separators do not collide.
func TestReplayWindowKeyEncoding(t *testing.T) {
	w := newReplayWindow([]int{0, 1})
	a := change.Row{"a\x00string:b", "c", nil}
	b := change.Row{"a", "b\x00string:c", nil}
	if w.keyOf(a) == w.keyOf(b) {
		t.Fatalf("keys %q and %q encode alike", a[:2], b[:2])
	}
}

func TestReplayWindowMergesPartialUpdates(t *testing.T) {
	w := newReplayWindow(idKey)
	w.record([]change.Change{
		{Op: change.Update, After: change.Row{"9", "v1", nil}, Unchanged: []bool{false, false, true}, Xid: 1},
		{Op: change.Update, After: change.Row{"9", nil, "big2"}, Unchanged: []bool{false, true, false}, Xid: 2},
	})
	cs := w.replayOne(xids{1: true}, "")
	if len(cs) != 1 {
		t.Fatalf("replay = %v, want one merged update", cs)
	}
	c := cs[0]
	if !c.Replay || c.Xid != 2 {
		t.Errorf("the replayed update is not marked Replay or has xid %d, want the latest (2)", c.Xid)
	}
	if c.After[1] != "v1" || c.After[2] != "big2" || c.Unchanged[1] || c.Unchanged[2] {
		t.Fatalf("merged update = %+v, want v=v1 and big=big2 both sent", c)
	}
	// A full update afterwards supersedes it.
	w.record([]change.Change{{Op: change.Update, After: change.Row{"9", "v3", "big3"}, Xid: 3}})
	if cs := w.replayOne(xids{}, ""); len(cs) != 0 {
		t.Fatalf("replay after a full update = %v, want nothing", cs)
	}
}

// oldest is the position of the earliest change the window still holds: a
// merged partial update keeps its first change's position, a full write of
// the key drops its entry, and a change a chunk saw is forgotten.
func TestReplayWindowOldest(t *testing.T) {
	w := newReplayWindow(idKey)
	if p := w.oldest(); p != nil {
		t.Fatalf("empty window: oldest %v", p)
	}
	partial := func(id, v string, pos int, xid uint32) change.Change {
		return change.Change{Op: change.Update, After: change.Row{id, v, nil}, Unchanged: []bool{false, false, true}, Pos: fakePos(pos), Xid: xid}
	}
	w.record([]change.Change{
		{Op: change.Delete, Before: change.Row{"1", nil, nil}, Pos: fakePos(1), Xid: 1},
		partial("2", "a", 2, 2),
		partial("2", "b", 3, 3),
		{Op: change.Delete, Before: change.Row{"3", nil, nil}, Pos: fakePos(4), Xid: 4},
	})
	if p := w.oldest(); p != fakePos(1) {
		t.Errorf("oldest %v, want fake:1", p)
	}
	w.record([]change.Change{{Op: change.Insert, After: change.Row{"1", "x", "y"}, Pos: fakePos(5), Xid: 5}})
	if p := w.oldest(); p != fakePos(2) {
		t.Errorf("after key 1 was written whole: oldest %v, want fake:2 (the merged update's first)", p)
	}
	w.replayOne(xids{2: true, 3: true}, "")
	if p := w.oldest(); p != fakePos(4) {
		t.Errorf("after a chunk saw key 2's updates: oldest %v, want fake:4", p)
	}
	w.reset()
	if p := w.oldest(); p != nil {
		t.Errorf("after reset: oldest %v", p)
	}
}

// observe, with no chunk in flight, drops what a snapshot sees and keeps
// what it does not.
func TestReplayWindowForgetSeen(t *testing.T) {
	w := newReplayWindow(idKey)
	w.record([]change.Change{
		{Op: change.Delete, Before: change.Row{"1", nil, nil}, Pos: fakePos(1), Xid: 10},
		{Op: change.Delete, Before: change.Row{"2", nil, nil}, Pos: fakePos(2), Xid: 11},
	})
	w.observe(xids{10: true})
	if p := w.oldest(); p != fakePos(2) {
		t.Errorf("oldest %v, want fake:2 (xid 10 was seen)", p)
	}
	if got := ops(t, w.replayOne(xids{}, "")); len(got) != 1 || got["2"] != change.Delete {
		t.Errorf("replayed %v, want only the delete of 2", got)
	}
}

// Chunks in flight at once (PostgreSQL): a delete the newer chunk saw is not
// forgotten while an older chunk, whose snapshot did not see it, is in
// flight; that chunk replays it when it finishes. Forgetting what each
// finishing chunk saw (the rule of one chunk at a time) would lose the
// delete, and the older chunk's stale row would stay in the shadow.
func TestReplayWindowConcurrentSnapshots(t *testing.T) {
	w := newReplayWindow(idKey)
	a := w.start() // its snapshot will predate xid 5
	b := w.start()
	w.record([]change.Change{{Op: change.Delete, Before: change.Row{"7", nil, nil}, Pos: fakePos(1), Xid: 5}})
	if got := w.finish(b, xids{5: true}, ""); len(got) != 0 {
		t.Fatalf("chunk b saw the delete: replayed %v, want nothing", got)
	}
	if len(w.entries) != 1 {
		t.Fatal("chunk b forgot the delete of 7 while the older chunk a is in flight")
	}
	if got := ops(t, w.finish(a, xids{}, "")); len(got) != 1 || got["7"] != change.Delete {
		t.Fatalf("chunk a did not see the delete: replayed %v, want the delete of 7", got)
	}
	// Neither chunk is in flight: the floor is a's read, which did not see
	// it; the next chunk's, which does, forgets it.
	if len(w.entries) != 1 {
		t.Fatal("the delete a did not see was forgotten")
	}
	if got := w.replayOne(xids{5: true}, ""); len(got) != 0 || len(w.entries) != 0 {
		t.Fatalf("a later chunk that saw it: replayed %v, entries %d; want nothing left", got, len(w.entries))
	}
}

// The floor is the last read that returned before every chunk in flight
// started: what it saw, every chunk in flight sees.
func TestReplayWindowFloor(t *testing.T) {
	w := newReplayWindow(idKey)
	a := w.start()
	b := w.start()
	w.record([]change.Change{{Op: change.Delete, Before: change.Row{"7", nil, nil}, Xid: 5}})
	w.finish(b, xids{5: true}, "") // b returns; a is older and in flight
	c := w.start()                 // c starts after b's read returned: it sees xid 5
	if got := w.finish(a, xids{5: true}, ""); len(got) != 0 {
		t.Fatalf("replayed %v, want nothing", got)
	}
	// a's read returned after c started, so a is no floor for c; b's is.
	if len(w.entries) != 0 {
		t.Fatalf("entries %d: b's read, before c started, saw the delete: want it forgotten", len(w.entries))
	}
	w.record([]change.Change{{Op: change.Delete, Before: change.Row{"8", nil, nil}, Xid: 6}})
	// A snapshot read while c is in flight (a throttled copy's) is no
	// floor for c.
	w.observe(xids{5: true, 6: true})
	if len(w.entries) != 1 {
		t.Fatal("observe forgot a delete while chunk c, which may not see it, is in flight")
	}
	if got := ops(t, w.finish(c, xids{5: true}, "")); len(got) != 1 || got["8"] != change.Delete {
		t.Fatalf("chunk c replayed %v, want the delete of 8", got)
	}
}

// Chunks in flight at once (MySQL): a chunk whose marker precedes a delete
// replays it, even when a chunk whose marker follows it finished first.
func TestReplayWindowConcurrentMarkers(t *testing.T) {
	w := newReplayWindow(idKey)
	a := w.start()
	w.expect("ma")
	w.passed("ma")
	b := w.start()
	w.expect("mb")
	w.record([]change.Change{{Op: change.Delete, Before: change.Row{"7", nil, nil}}})
	w.passed("mb")
	if got := w.finish(b, nil, "mb"); len(got) != 0 || len(w.entries) != 1 {
		t.Fatalf("chunk b: replayed %v, entries %d; want nothing replayed and the delete kept for a", got, len(w.entries))
	}
	if got := ops(t, w.finish(a, nil, "ma")); len(got) != 1 || got["7"] != change.Delete {
		t.Fatalf("chunk a: replayed %v, want the delete of 7", got)
	}
	if len(w.markers) != 0 || len(w.reading) != 0 {
		t.Errorf("markers %v, reading %v left", w.markers, w.reading)
	}
}
