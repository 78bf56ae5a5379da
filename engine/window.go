package engine

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"osc/cdc"
	"osc/table"
)

// visibilityGap bounds how long a change may be applied before (or while) a
// chunk's read could still see the row as it was before the change: the
// binlog reaches readers before the commit is visible to other sessions, and
// an INSERT … SELECT reads its rows at statement start but inserts them later.
// It is generous: the real gap is microseconds to milliseconds.
const visibilityGap = 2 * time.Second

// replayWindow closes the hole in the copy/apply race that the copy's
// insert-if-absent cannot: a DELETE (or the old key of a key-changing UPDATE)
// applied to the shadow while a chunk that read the old row is in flight; the
// chunk then inserts the deleted row again. A partial UPDATE (PostgreSQL
// unchanged TOAST) applied to a row the shadow does not hold yet is lost the
// same way when the chunk read the row before the update.
//
// The window remembers, per key, the last change of those two kinds applied
// recently. After a chunk commits, every remembered change applied since
// visibilityGap before the chunk started, whose key lies in the chunk, is
// applied again. Re-applying is always correct because the replayed change is
// still the latest change applied for its key: a full upsert of the key
// removes the entry, and replay runs under the same lock as apply.
type replayWindow struct {
	keyIndex []int
	intKey   bool // single integer key: replay can be limited to the chunk's range
	unsigned bool // the integer key is MySQL UNSIGNED (the binlog sends it signed)
	entries  map[string]*windowEntry
}

type windowEntry struct {
	change  cdc.Change // a Delete, or a partial Update (After, Unchanged merged)
	applied time.Time
	key     *big.Int // intKey only
}

func newReplayWindow(plan *table.Plan) *replayWindow {
	w := &replayWindow{keyIndex: plan.KeyIndex, entries: map[string]*windowEntry{}}
	if len(plan.KeyIndex) == 1 {
		col := plan.Source.Columns[plan.KeyIndex[0]]
		w.intKey = isIntegerType(col.DataType)
		w.unsigned = col.Unsigned
	}
	return w
}

func isIntegerType(t string) bool {
	switch strings.ToLower(t) {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		return true
	}
	return false
}

// record notes changes just applied at time now.
func (w *replayWindow) record(changes []cdc.Change, now time.Time) {
	for i := range changes {
		c := &changes[i]
		switch c.Op {
		case cdc.Insert:
			delete(w.entries, w.keyOf(c.After))
		case cdc.Delete:
			w.remember(c.Before, cdc.Change{Op: cdc.Delete, Before: c.Before}, now)
		case cdc.Update:
			newKey := w.keyOf(c.After)
			if c.Before != nil {
				if oldKey := w.keyOf(c.Before); oldKey != newKey {
					w.remember(c.Before, cdc.Change{Op: cdc.Delete, Before: c.Before}, now)
				}
			}
			if !c.Partial() {
				delete(w.entries, newKey)
				continue
			}
			w.rememberPartial(newKey, c, now)
		}
	}
}

func (w *replayWindow) remember(row cdc.Row, c cdc.Change, now time.Time) {
	e := &windowEntry{change: c, applied: now}
	if w.intKey {
		e.key = w.intKeyValue(row[w.keyIndex[0]])
	}
	w.entries[w.keyOf(row)] = e
}

// rememberPartial merges a partial update into what is remembered for its key:
// a later value of a column replaces an earlier one; a column sent by either
// update is sent by the merge. The merged change updates the new key only.
func (w *replayWindow) rememberPartial(key string, c *cdc.Change, now time.Time) {
	after := append(cdc.Row(nil), c.After...)
	unchanged := append([]bool(nil), c.Unchanged...)
	if prev, ok := w.entries[key]; ok && prev.change.Op == cdc.Update {
		for i, u := range unchanged {
			if u && !prev.change.Unchanged[i] {
				after[i] = prev.change.After[i]
				unchanged[i] = false
			}
		}
	}
	w.remember(after, cdc.Change{Op: cdc.Update, After: after, Unchanged: unchanged}, now)
}

// replay returns the changes to apply again after a chunk covering (lo, hi]
// (nil: unbounded) that started reading at start, marked Replay (the keys are
// remembered byte for byte, so a replayed delete must match its key's bytes
// exactly), and forgets entries no later chunk can need.
func (w *replayWindow) replay(lo, hi []any, start time.Time) []cdc.Change {
	from := start.Add(-visibilityGap)
	var loKey, hiKey *big.Int
	if w.intKey {
		if lo != nil {
			loKey = w.intKeyValue(lo[0])
		}
		if hi != nil {
			hiKey = w.intKeyValue(hi[0])
		}
	}
	var out []cdc.Change
	for k, e := range w.entries {
		if e.applied.Before(from) {
			delete(w.entries, k)
			continue
		}
		if e.key != nil && ((loKey != nil && e.key.Cmp(loKey) <= 0) || (hiKey != nil && e.key.Cmp(hiKey) > 0)) {
			continue
		}
		c := e.change
		c.Replay = true
		out = append(out, c)
	}
	return out
}

// intKeyValue is intValue, except for a negative value of an UNSIGNED column
// (the binlog may deliver it signed): its true value depends on the column's
// width, so it gets nil, which only disables the range filter for it.
func (w *replayWindow) intKeyValue(v any) *big.Int {
	n := intValue(v)
	if n != nil && w.unsigned && n.Sign() < 0 {
		return nil
	}
	return n
}

func (w *replayWindow) keyOf(row cdc.Row) string {
	var b strings.Builder
	for _, i := range w.keyIndex {
		fmt.Fprintf(&b, "%T:%v\x00", row[i], row[i])
	}
	return b.String()
}

// intValue reads an integer key value as the dialects deliver it: Go integers
// from the binlog, decimal text from pgoutput and from scanned chunk bounds.
// It returns nil for anything else, which disables range filtering for it.
func intValue(v any) *big.Int {
	switch x := v.(type) {
	case int:
		return big.NewInt(int64(x))
	case int8:
		return big.NewInt(int64(x))
	case int16:
		return big.NewInt(int64(x))
	case int32:
		return big.NewInt(int64(x))
	case int64:
		return big.NewInt(x)
	case uint8:
		return new(big.Int).SetUint64(uint64(x))
	case uint16:
		return new(big.Int).SetUint64(uint64(x))
	case uint32:
		return new(big.Int).SetUint64(uint64(x))
	case uint64:
		return new(big.Int).SetUint64(x)
	case uint:
		return new(big.Int).SetUint64(uint64(x))
	case string:
		n, ok := new(big.Int).SetString(x, 10)
		if ok {
			return n
		}
	case []byte:
		n, ok := new(big.Int).SetString(string(x), 10)
		if ok {
			return n
		}
	}
	return nil
}
