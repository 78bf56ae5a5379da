package engine

import (
	"fmt"
	"strings"

	"osc/change"
)

// replayWindow closes the hole in the copy/apply race that the copy's
// insert-if-absent cannot: a DELETE (or the old key of a key-changing UPDATE)
// applied to the shadow while a chunk that read the old row is in flight; the
// chunk then inserts the deleted row again. A partial UPDATE (PostgreSQL
// unchanged TOAST) applied to a row the shadow does not hold yet is lost the
// same way when the chunk read the row before the update.
//
// Both need a change the chunk's read could not see, applied before the
// chunk committed. The window remembers, per key, the last change of those
// two kinds applied during the copy. After a chunk commits, it asks of each
// remembered change whether the chunk's read saw it — exactly, never by
// time:
//   - PostgreSQL: the chunk reports the snapshot its INSERT … SELECT read
//     with (change.Snapshot); a change is seen when its transaction id is
//     visible in that snapshot;
//   - MySQL: before each chunk the engine commits a marker into the binlog.
//     Commits become visible in binlog order (MariaDB's commit_ordered,
//     MySQL's binlog_order_commits), so when the marker's commit returns,
//     every change before it in the binlog is visible to the chunk's later
//     read; a change after it may not be.
//
// A change the chunk saw cannot be undone by it (the chunk read the row
// without it: absent, or with its values), and every later chunk reads later,
// so it is forgotten. A change the chunk may not have seen is applied again
// and kept for the next chunk. Re-applying is always correct because the
// replayed change is still the latest change applied for its key: a full
// upsert of the key removes the entry, and replay runs under the same lock as
// apply. Re-applying a change whose key lies outside the chunk is harmless for
// the same reason, so no key comparison (and no collation) is involved.
type replayWindow struct {
	keyIndex []int
	seq      uint64 // changes recorded so far
	entries  map[string]*windowEntry
	// markers maps the id of a chunk's marker to seq when the applier
	// passed it; only expected ids are kept.
	markers map[string]*uint64
}

type windowEntry struct {
	change change.Change // a Delete, or a partial Update (After, Unchanged merged)
	seq    uint64        // position in apply order of the last change merged in
	// first and pos are the apply order and the stream position of the
	// earliest change merged in: a resumed capture must restart at or
	// before it to apply the entry's changes again (oldest).
	first uint64
	pos   change.Position
}

// newReplayWindow returns the window of a plan whose key columns are at
// keyIndex in row images.
func newReplayWindow(keyIndex []int) *replayWindow {
	return &replayWindow{keyIndex: keyIndex, entries: map[string]*windowEntry{}, markers: map[string]*uint64{}}
}

// expect registers the marker a chunk is about to emit.
func (w *replayWindow) expect(id string) { w.markers[id] = nil }

// passed notes that the applier reached marker id: every change recorded so
// far came before it in the change stream.
func (w *replayWindow) passed(id string) {
	if _, ok := w.markers[id]; ok {
		seq := w.seq
		w.markers[id] = &seq
	}
}

// record notes changes just applied, in apply order.
func (w *replayWindow) record(changes []change.Change) {
	for i := range changes {
		c := &changes[i]
		w.seq++
		switch c.Op {
		case change.Insert:
			delete(w.entries, w.keyOf(c.After))
		case change.Delete:
			w.remember(c.Before, change.Change{Op: change.Delete, Before: c.Before, Xid: c.Xid}, c.Pos)
		case change.Update:
			newKey := w.keyOf(c.After)
			if c.Before != nil {
				if oldKey := w.keyOf(c.Before); oldKey != newKey {
					w.remember(c.Before, change.Change{Op: change.Delete, Before: c.Before, Xid: c.Xid}, c.Pos)
				}
			}
			if !c.Partial() {
				delete(w.entries, newKey)
				continue
			}
			w.rememberPartial(newKey, c)
		}
	}
}

// remember makes c, at stream position pos, the entry of row's key: the
// latest change replaces what an earlier one left to replay.
func (w *replayWindow) remember(row change.Row, c change.Change, pos change.Position) {
	w.entries[w.keyOf(row)] = &windowEntry{change: c, seq: w.seq, first: w.seq, pos: pos}
}

// rememberPartial merges a partial update into what is remembered for its key:
// a later value of a column replaces an earlier one; a column sent by either
// update is sent by the merge. The merged change updates the new key only.
// It carries the latest transaction id: an earlier update of the same row
// committed, and became visible, before the latest could update the row.
func (w *replayWindow) rememberPartial(key string, c *change.Change) {
	after := append(change.Row(nil), c.After...)
	unchanged := append([]bool(nil), c.Unchanged...)
	first, pos := w.seq, c.Pos
	if prev, ok := w.entries[key]; ok && prev.change.Op == change.Update {
		for i, u := range unchanged {
			if u && !prev.change.Unchanged[i] {
				after[i] = prev.change.After[i]
				unchanged[i] = false
			}
		}
		first, pos = prev.first, prev.pos
	}
	w.entries[key] = &windowEntry{change: change.Change{Op: change.Update, After: after, Unchanged: unchanged, Xid: c.Xid},
		seq: w.seq, first: first, pos: pos}
}

// oldest returns the stream position of the earliest change the window
// still holds (nil: none). Each was applied, and the last chunk's read did
// not see it: a later chunk's may not either (PostgreSQL: a transaction
// decoded before it became visible, waiting for a synchronous standby), so a
// checkpoint taken now must restart the capture at or before it, or a resume
// would not apply it again after such a chunk.
func (w *replayWindow) oldest() change.Position {
	var o *windowEntry
	for _, e := range w.entries {
		if o == nil || e.first < o.first {
			o = e
		}
	}
	if o == nil {
		return nil
	}
	return o.pos
}

// replay returns the changes to apply again after a chunk that read with
// snapshot snap (PostgreSQL), or that emitted marker before reading (MySQL;
// snap is nil), marked Replay (the keys are remembered byte for byte, so a
// replayed delete must match its key's bytes exactly). It forgets the changes
// the chunk saw, and the marker.
func (w *replayWindow) replay(snap change.Snapshot, marker string) []change.Change {
	var seen func(e *windowEntry) bool
	switch {
	case snap != nil:
		seen = func(e *windowEntry) bool { return snap.Sees(e.change.Xid) }
	case marker != "":
		at, ok := w.markers[marker]
		delete(w.markers, marker)
		// A marker the applier has not reached yet follows every change
		// applied so far.
		seen = func(e *windowEntry) bool { return ok && (at == nil || e.seq <= *at) }
	default:
		// Nothing tells what the chunk saw: replay everything, forget nothing.
		seen = func(*windowEntry) bool { return false }
	}
	var out []change.Change
	for k, e := range w.entries {
		if seen(e) {
			delete(w.entries, k)
			continue
		}
		c := e.change
		c.Replay = true
		out = append(out, c)
	}
	return out
}

// forgetSeen forgets the changes snap sees: a chunk that reads later
// (snapshots only grow) sees them too, so none needs replaying after it.
func (w *replayWindow) forgetSeen(snap change.Snapshot) {
	for k, e := range w.entries {
		if snap.Sees(e.change.Xid) {
			delete(w.entries, k)
		}
	}
}

// reset forgets everything: the copy is over.
func (w *replayWindow) reset() {
	clear(w.entries)
	clear(w.markers)
}

// keyOf identifies a row's key: each column's type and value, length-prefixed
// so that no two keys share an encoding.
func (w *replayWindow) keyOf(row change.Row) string {
	var b strings.Builder
	for _, i := range w.keyIndex {
		v := fmt.Sprintf("%T:%v", row[i], row[i])
		fmt.Fprintf(&b, "%d:%s", len(v), v)
	}
	return b.String()
}
