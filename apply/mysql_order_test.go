package apply

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"osc/cdc"
)

func orderTestApplier(intKey bool) *MySQL {
	same := func(v any) (any, error) { return v, nil }
	return &MySQL{intKey: intKey, renumbered: -1, keys: []mysqlColumn{{index: 0, name: "`id`", conv: same}}}
}

func opsText(ops []myOp) string {
	s := ""
	for _, o := range ops {
		switch {
		case o.del && o.exact:
			s += fmt.Sprintf("x%v ", o.row[0])
		case o.del:
			s += fmt.Sprintf("d%v ", o.row[0])
		default:
			s += fmt.Sprintf("r%v ", o.row[0])
		}
	}
	return s
}

func TestDeletesFirst(t *testing.T) {
	del := func(k int64) myOp { return myOp{del: true, row: cdc.Row{k, int64(0)}} }
	rep := func(k int64) myOp { return myOp{row: cdc.Row{k, int64(0)}} }
	exact := func(k int64) myOp { return myOp{del: true, exact: true, row: cdc.Row{k, int64(0)}} }
	for _, tc := range []struct {
		ops  []myOp
		want string
	}{
		{[]myOp{del(1), rep(2), del(3), rep(4), del(5), rep(6)}, "d1 d3 d5 r2 r4 r6 "},
		// A delete of a key written before in the run stays after it.
		{[]myOp{rep(1), del(1), rep(2)}, "r1 d1 r2 "},
		{[]myOp{del(1), rep(2), del(2), rep(3), del(4), rep(5)}, "d1 r2 d2 d4 r3 r5 "},
		{[]myOp{del(1), rep(1), del(2), rep(2)}, "d1 d2 r1 r2 "},
		// A byte-exact delete (a replay) keeps its place.
		{[]myOp{del(1), rep(2), exact(3), del(4), rep(5)}, "d1 r2 x3 d4 r5 "},
	} {
		if got := opsText(orderTestApplier(true).deletesFirst(tc.ops)); got != tc.want {
			t.Errorf("%s: %s, want %s", opsText(tc.ops), got, tc.want)
		}
	}
	// A key that is not an integer keeps the order.
	ops := []myOp{del(1), rep(2), del(3), rep(4)}
	if got := orderTestApplier(false).deletesFirst(ops); !reflect.DeepEqual(got, ops) {
		t.Errorf("text key reordered: %s", opsText(got))
	}
}

// TestDeletesFirstSameRows runs random runs of deletes and REPLACEs, in
// their order and reordered, on a model of a table with a primary key (the
// first column) and a UNIQUE key (the second), with REPLACE's semantics
// (every row that meets the new one in either key is deleted): both leave
// the same rows.
func TestDeletesFirstSameRows(t *testing.T) {
	run := func(start map[int64]int64, ops []myOp) map[int64]int64 {
		rows := map[int64]int64{}
		for k, v := range start {
			rows[k] = v
		}
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
	a := orderTestApplier(true)
	r := rand.New(rand.NewPCG(1, 2))
	reordered := 0
	for range 20000 {
		start := map[int64]int64{}
		for k := range int64(6) {
			if r.IntN(2) == 0 {
				start[k] = r.Int64N(6)
			}
		}
		// The same u twice in start is not a table: keep the first.
		seen := map[int64]bool{}
		for k := range int64(6) {
			if v, ok := start[k]; ok {
				if seen[v] {
					delete(start, k)
				}
				seen[v] = true
			}
		}
		ops := make([]myOp, 1+r.IntN(8))
		for i := range ops {
			ops[i] = myOp{del: r.IntN(2) == 0, row: cdc.Row{r.Int64N(6), r.Int64N(6)}}
		}
		got := a.deletesFirst(ops)
		if opsText(got) != opsText(ops) {
			reordered++
		}
		if want, have := run(start, ops), run(start, got); !reflect.DeepEqual(want, have) {
			t.Fatalf("from %v: %s leaves %v, reordered %s leaves %v", start, opsText(ops), want, opsText(got), have)
		}
	}
	if reordered == 0 {
		t.Fatal("no run was reordered")
	}
}
