package apply

import (
	"fmt"
	"strconv"

	"osc/cdc"
)

// myCollapse keeps, of each run of whole-row operations (REPLACEs and
// deletes by key; byte-exact deletes and moves end a run), what the run
// leaves: a delete of every key it deletes, then the last row of every key
// it writes last, in the order of those last writes. A batch is one
// transaction, whose steps no one sees, and a REPLACE writes the whole row:
// a key's last write or delete is its row whatever came before, and a key
// deleted and written again is deleted first and then written. The rows
// written last hold the source's values as of the run's last change, so
// among themselves they hold no value twice in a unique index the original
// implies (the plan refuses others); a REPLACE deletes an older shadow row
// of another key that holds its value, as it would have uncollapsed. Keys
// are compared by their binlog values, byte for byte: a change carries the
// key as the row stores it, so every change of one row carries the same
// bytes, and two keys equal under a collation but not in bytes are
// different rows of the source, one gone before the other came (a delete
// of either removes the shadow row of both, and every delete comes first).
// With runs of one kind, a batch is two multi-row statements, where
// interleaved inserts, updates and deletes made one statement per switch.
func myCollapse(ops []myOp, key func(cdc.Row) string) []myOp {
	out := make([]myOp, 0, len(ops))
	for i := 0; i < len(ops); {
		if !myWhole(ops[i]) {
			out = append(out, ops[i])
			i++
			continue
		}
		end := i
		last := map[string]int{}
		keys := make([]string, 0, 16)
		for ; end < len(ops) && myWhole(ops[end]); end++ {
			k := key(ops[end].row)
			keys = append(keys, k)
			last[k] = end
		}
		deleted := map[string]bool{}
		for j := i; j < end; j++ {
			if k := keys[j-i]; ops[j].del && !deleted[k] {
				deleted[k] = true
				out = append(out, ops[j])
			}
		}
		for j := i; j < end; j++ {
			if !ops[j].del && last[keys[j-i]] == j {
				out = append(out, ops[j])
			}
		}
		i = end
	}
	return out
}

// myWhole reports whether an operation writes or deletes a whole row by
// its key: not a byte-exact delete, nor a move.
func myWhole(o myOp) bool { return o.before == nil && !(o.del && o.exact) }

// keyOf identifies a row's key by its binlog values (see myCollapse).
func (a *MySQL) keyOf(row cdc.Row) string {
	var b []byte
	for _, k := range a.keys {
		var v any
		if k.index < len(row) {
			v = row[k.index]
		}
		if s, ok := myAsBytes(v); ok {
			b = strconv.AppendInt(append(b, 's'), int64(len(s)), 10)
			b = append(append(b, ':'), s...)
			continue
		}
		s := fmt.Sprintf("%T:%v", v, v)
		b = strconv.AppendInt(append(b, 'v'), int64(len(s)), 10)
		b = append(append(b, ':'), s...)
	}
	return string(b)
}
