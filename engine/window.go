package engine

import (
	"fmt"
	"math"
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
// without it: absent, or with its values). A change the chunk may not have
// seen is applied again and kept for the chunks after it. Re-applying is
// always correct because the replayed change is still the latest change
// applied for its key: a full upsert of the key removes the entry, and replay
// runs under the same lock as apply. Re-applying a change whose key lies
// outside the chunk is harmless for the same reason, so no key comparison
// (and no collation) is involved.
//
// Forgetting is where chunks copied at once (--copy-threads) matter: a
// change the finishing chunk saw may be unseen by another chunk still in
// flight whose read is older, which must replay it when it finishes. So an
// entry is forgotten only when the floor sees it: the last read that
// returned before every chunk still in flight started (start). Visibility
// only grows with time (a PostgreSQL snapshot taken later sees every
// transaction an earlier one saw; a MySQL marker committed later follows the
// earlier one in the binlog), so every chunk in flight and every later
// chunk sees what the floor saw. With one chunk at a time the floor is the
// chunk that just finished, as it was before chunks ran at once. Start and
// return are stamped with one counter under one lock (windowMu): a chunk
// stamped started after a read was stamped returned began its own read
// later.
type replayWindow struct {
	keyIndex []int
	seq      uint64 // changes recorded so far
	entries  map[string]*windowEntry
	// markers maps the id of a chunk's marker to seq when the applier
	// passed it; only expected ids are kept.
	markers map[string]*uint64
	// clock stamps the starts and the returns of chunks' reads; reading
	// holds the start stamps of the chunks in flight, and reads the reads
	// that returned, in order, from the floor on (see forget).
	clock   uint64
	reading map[uint64]bool
	reads   []stampedRead
}

// chunkRead is what one read of the original saw: the transactions its
// snapshot sees (PostgreSQL), or the changes recorded up to upto, which
// preceded its marker (MySQL, when marker is set); neither: nothing.
type chunkRead struct {
	snap   change.Snapshot
	marker bool
	upto   uint64
}

// sees reports whether the read saw the entry's change.
func (r chunkRead) sees(e *windowEntry) bool {
	switch {
	case r.snap != nil:
		return r.snap.Sees(e.change.Xid)
	case r.marker:
		return e.seq <= r.upto
	}
	return false
}

// stampedRead is a read that returned, stamped when it was noted.
type stampedRead struct {
	at   uint64
	read chunkRead
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
	return &replayWindow{keyIndex: keyIndex, entries: map[string]*windowEntry{}, markers: map[string]*uint64{}, reading: map[uint64]bool{}}
}

// start notes a chunk about to read the original, before its marker (MySQL)
// and its read: it returns the chunk's stamp, which finish takes.
func (w *replayWindow) start() uint64 {
	w.clock++
	w.reading[w.clock] = true
	return w.clock
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

// finish returns the changes to apply again after the chunk stamped tick
// (start), which read with snapshot snap (PostgreSQL), or emitted marker
// before reading (MySQL; snap is nil): those it may not have seen, marked
// Replay (the keys are remembered byte for byte, so a replayed delete must
// match its key's bytes exactly). It forgets the marker, and the changes the
// floor now sees (forget).
func (w *replayWindow) finish(tick uint64, snap change.Snapshot, marker string) []change.Change {
	delete(w.reading, tick)
	var r chunkRead
	switch {
	case snap != nil:
		r.snap = snap
	case marker != "":
		at, ok := w.markers[marker]
		delete(w.markers, marker)
		// A marker the applier has not reached yet follows every change
		// applied so far. One never expected tells nothing: the read
		// saw nothing, as far as the window knows.
		r.marker, r.upto = ok, w.seq
		if ok && at != nil {
			r.upto = *at
		}
	}
	var out []change.Change
	for _, e := range w.entries {
		if r.sees(e) {
			continue
		}
		c := e.change
		c.Replay = true
		out = append(out, c)
	}
	w.forget(r)
	return out
}

// observe notes a read of the source's current snapshot between chunks (a
// throttled copy): once no chunk in flight is older, the changes it sees are
// forgotten, as a chunk's (forget).
func (w *replayWindow) observe(snap change.Snapshot) {
	w.forget(chunkRead{snap: snap})
}

// forget stamps r, a read that has just returned, and forgets the changes the
// floor sees: the floor is the last read stamped before the start of every
// chunk still in flight (all of them, when none is), so every chunk in
// flight, and every chunk started later, sees what it saw. Reads stamped
// before the floor are dropped; the floor is kept, since a change applied
// later may still be one it saw (a PostgreSQL transaction decoded after the
// read).
func (w *replayWindow) forget(r chunkRead) {
	w.clock++
	w.reads = append(w.reads, stampedRead{at: w.clock, read: r})
	oldest := uint64(math.MaxUint64)
	for t := range w.reading {
		oldest = min(oldest, t)
	}
	floor := -1
	for i, sr := range w.reads {
		if sr.at < oldest {
			floor = i
		}
	}
	if floor < 0 {
		return
	}
	w.reads = w.reads[floor:]
	f := w.reads[0].read
	for k, e := range w.entries {
		if f.sees(e) {
			delete(w.entries, k)
		}
	}
}

// reset forgets everything: the copy is over.
func (w *replayWindow) reset() {
	clear(w.entries)
	clear(w.markers)
	clear(w.reading)
	w.reads = nil
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
