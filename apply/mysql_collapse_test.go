package apply

import (
	"fmt"
	"strings"
	"testing"

	"osc/cdc"
)

// myCollapse keeps, of each run of whole-row operations, a delete of every
// key the run deletes and then the last row of every key it writes last;
// byte-exact deletes and moves stay where they are and bound the runs. Keys
// are compared byte for byte, a string and []byte alike ('A' and 'a' are
// two rows of the source even where a collation equates them).
func TestMySQLCollapse(t *testing.T) {
	a := &MySQL{keys: []mysqlColumn{{index: 0}}}
	up := func(k any, v string) myOp { return myOp{row: cdc.Row{k, v}} }
	del := func(k any) myOp { return myOp{del: true, row: cdc.Row{k, nil}} }
	exact := func(k any) myOp { return myOp{del: true, exact: true, row: cdc.Row{k, nil}} }
	move := func(k any, v string) myOp { return myOp{row: cdc.Row{k, v}, before: cdc.Row{k, nil}} }
	show := func(ops []myOp) string {
		var parts []string
		for _, o := range ops {
			name := "U"
			switch {
			case o.before != nil:
				name = "M"
			case o.del && o.exact:
				name = "X"
			case o.del:
				name = "D"
			}
			k := o.row[0]
			if b, ok := k.([]byte); ok {
				k = "b" + string(b)
			}
			parts = append(parts, fmt.Sprintf("%s%v=%v", name, k, o.row[1]))
		}
		return strings.Join(parts, " ")
	}
	for _, c := range []struct {
		name string
		ops  []myOp
		want string
	}{
		{"rewrites", []myOp{up(1, "a"), up(2, "b"), up(1, "c")}, "U2=b U1=c"},
		{"swap", []myOp{up(1, "y"), up(2, "x"), up(1, "x2")}, "U2=x U1=x2"},
		{"re-created", []myOp{up(1, "a"), del(1), up(1, "b")}, "D1=<nil> U1=b"},
		{"deleted last", []myOp{up(1, "a"), del(1), del(1)}, "D1=<nil>"},
		{"key change", []myOp{del(1), up(2, "a"), del(2), up(3, "a")}, "D1=<nil> D2=<nil> U3=a"},
		{"interleaved kinds", []myOp{up(1, "a"), del(2), up(3, "c"), del(4), up(5, "e")}, "D2=<nil> D4=<nil> U1=a U3=c U5=e"},
		{"string and bytes", []myOp{up("k", "a"), del([]byte("k"))}, "Dbk=<nil>"},
		{"case differs", []myOp{up("A", "a"), del("A"), up("a", "b")}, "DA=<nil> Ua=b"},
		{"exact deletes and moves bound the runs", []myOp{
			up(1, "a"), up(1, "b"), exact(1), up(1, "c"), del(1), move(1, "m"), del(2), del(2),
		}, "U1=b X1=<nil> D1=<nil> M1=m D2=<nil>"},
		{"empty", nil, ""},
	} {
		if got := show(myCollapse(c.ops, a.keyOf)); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
