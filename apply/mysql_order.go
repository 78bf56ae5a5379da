package apply

import (
	"fmt"
	"strings"
)

// Deletes before writes. A key-changing update is a DELETE of the old key
// and a REPLACE of the new one, and a batch of such updates alternates the
// two kinds: one statement per row, where a batch of plain updates is one
// REPLACE of up to mysqlMaxRows rows. A shadow whose key the writers' updates
// change all the time (a key widened with a column that the application
// updates: table.Plan.RowKey) was applied several times more slowly than
// the writers wrote.
//
// deletesFirst moves, within a run of ops, every DELETE before every
// REPLACE, when no DELETE of the run follows a REPLACE of the same key: it
// swaps neighbours rep(r), del(k) with r's key not k, which leaves the same
// rows: del(k) removes row k whether rep(r) removed it first (meeting it in
// another unique index) or not, and rep(r) removes the rows it meets but k
// and inserts r, which del(k) cannot touch. A DELETE of a key the run
// REPLACEd before ends the run. "Not the same key" must be the key index's
// own equality: it is exact only for integer keys (a text key's collation
// may equate distinct bytes), so other keys, moves (NewMySQLRevert),
// byte-exact deletes (replays) and renumbered rows keep their order.
func (a *MySQL) deletesFirst(ops []myOp) []myOp {
	if !a.intKey || a.moves || a.renumbered >= 0 {
		return ops
	}
	keys := make([]string, len(ops))
	for i, o := range ops {
		if o.before != nil || (o.del && o.exact) {
			continue
		}
		k, err := a.intKeyText(o.row)
		if err != nil {
			// batches reports it.
			return ops
		}
		keys[i] = k
	}
	out := make([]myOp, 0, len(ops))
	var dels, reps []myOp
	written := map[string]bool{}
	flush := func() {
		out = append(append(out, dels...), reps...)
		dels, reps = dels[:0], reps[:0]
		clear(written)
	}
	for i, o := range ops {
		switch {
		case o.before != nil || (o.del && o.exact):
			flush()
			out = append(out, o)
		case o.del:
			if written[keys[i]] {
				flush()
			}
			dels = append(dels, o)
		default:
			written[keys[i]] = true
			reps = append(reps, o)
		}
	}
	flush()
	return out
}

// intKeyText is the key of row as the integers the shadow stores.
func (a *MySQL) intKeyText(row []any) (string, error) {
	var b strings.Builder
	for _, k := range a.keys {
		if k.index >= len(row) || row[k.index] == nil {
			return "", fmt.Errorf("apply: no value for key column %s", k.name)
		}
		v, err := k.conv(row[k.index])
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%v,", v)
	}
	return b.String(), nil
}

// myIntegerTypes are the MySQL integer types: distinct values of a key over
// them are distinct in the shadow too (the plan keeps a key column's values
// distinct), so comparing them compares keys exactly.
var myIntegerTypes = map[string]bool{"tinyint": true, "smallint": true, "mediumint": true, "int": true, "integer": true, "bigint": true}
