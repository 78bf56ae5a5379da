package apply

import (
	"fmt"
	"strings"
	"testing"
)

// collapse keeps, of each run of whole-row operations, a delete of every key
// the run deletes and then the last row of every key it writes last; partial
// updates and moves stay where they are and bound the runs.
func TestCollapse(t *testing.T) {
	op := func(kind pgOpKind, key, v string) pgOp { return pgOp{kind: kind, key: key, row: []any{key, v}} }
	show := func(ops []pgOp) string {
		var parts []string
		for _, o := range ops {
			name := map[pgOpKind]string{pgUpsert: "U", pgDelete: "D", pgUpdate: "P", pgMove: "M"}[o.kind]
			parts = append(parts, fmt.Sprintf("%s%s=%v", name, o.key, o.row[1]))
		}
		return strings.Join(parts, " ")
	}
	for _, c := range []struct {
		name string
		ops  []pgOp
		want string
	}{
		{"rewrites", []pgOp{op(pgUpsert, "1", "a"), op(pgUpsert, "2", "b"), op(pgUpsert, "1", "c")}, "U2=b U1=c"},
		{"swap", []pgOp{op(pgUpsert, "1", "y"), op(pgUpsert, "2", "x"), op(pgUpsert, "1", "x2")}, "U2=x U1=x2"},
		{"re-created", []pgOp{op(pgUpsert, "1", "a"), op(pgDelete, "1", ""), op(pgUpsert, "1", "b")}, "D1= U1=b"},
		{"deleted last", []pgOp{op(pgUpsert, "1", "a"), op(pgDelete, "1", ""), op(pgDelete, "1", "")}, "D1="},
		{"key change", []pgOp{op(pgDelete, "1", ""), op(pgUpsert, "2", "a"), op(pgDelete, "2", ""), op(pgUpsert, "3", "a")}, "D1= D2= U3=a"},
		{"partial updates bound the runs", []pgOp{
			op(pgUpsert, "1", "a"), op(pgUpsert, "1", "b"), op(pgUpdate, "1", "p"),
			op(pgUpsert, "1", "c"), op(pgMove, "1", "m"), op(pgDelete, "2", ""), op(pgDelete, "2", ""),
		}, "U1=b P1=p U1=c M1=m D2="},
		{"empty", nil, ""},
	} {
		if got := show(collapse(c.ops)); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
