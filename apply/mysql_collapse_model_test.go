package apply

import (
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"osc/cdc"
)

// TestMySQLCollapseSameRows applies random runs of whole-row changes, as
// they come and collapsed, to a model of a table with a primary key (the
// first column) and a UNIQUE key (the second) under REPLACE's semantics
// (every row that meets the new one in either key is deleted): both must
// leave the same rows. The runs are what a real table's writes produce: the
// source holds each u once at every commit, and a key-changing update is a
// delete of the old key and a write of the new. (An arbitrary run is not
// enough: a REPLACE of a key deleted later in the run may delete another
// row holding its u, which no table's writes can do; myCollapse leaves that
// REPLACE out.)
func TestMySQLCollapseSameRows(t *testing.T) {
	run := func(start map[int64]int64, ops []myOp) map[int64]int64 {
		rows := maps.Clone(start)
		for _, o := range ops {
			id := o.row[0].(int64)
			if o.del {
				delete(rows, id)
				continue
			}
			u := o.row[1].(int64)
			for k, v := range rows {
				if k == id || v == u {
					delete(rows, k)
				}
			}
			rows[id] = u
		}
		return rows
	}
	a := &MySQL{keys: []mysqlColumn{{index: 0}}}
	r := rand.New(rand.NewPCG(1, 2))
	collapsed := 0
	for range 20000 {
		src := map[int64]int64{}
		for k := range int64(6) {
			if v := r.Int64N(6); r.IntN(2) == 0 && !slices.Contains(slices.Collect(maps.Values(src)), v) {
				src[k] = v
			}
		}
		start := maps.Clone(src)
		var ops []myOp
		for len(ops) < 1+r.IntN(8) {
			id, u := r.Int64N(6), r.Int64N(6)
			old, exists := src[id]
			taken := false // another row holds u
			for k, v := range src {
				taken = taken || (v == u && k != id)
			}
			switch {
			case exists && r.IntN(3) == 0: // delete
				delete(src, id)
				ops = append(ops, myOp{del: true, row: cdc.Row{id, old}})
			case exists && r.IntN(2) == 0 && !taken: // change the key: to is free
				to := r.Int64N(6)
				if _, used := src[to]; used {
					continue
				}
				delete(src, id)
				src[to] = u
				ops = append(ops, myOp{del: true, row: cdc.Row{id, old}}, myOp{row: cdc.Row{to, u}})
			case !taken: // insert, or update in place
				src[id] = u
				ops = append(ops, myOp{row: cdc.Row{id, u}})
			}
		}
		got := myCollapse(ops, a.keyOf)
		if len(got) != len(ops) {
			collapsed++
		}
		if want, have := run(start, ops), run(start, got); !reflect.DeepEqual(want, have) || !reflect.DeepEqual(want, src) {
			t.Fatalf("from %v: %v leaves %v, collapsed to %v leaves %v", start, ops, want, got, have)
		}
	}
	if collapsed == 0 {
		t.Fatal("no run was collapsed")
	}
}
