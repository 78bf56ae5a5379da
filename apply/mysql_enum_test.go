package apply

import (
	"testing"

	"osc/table"
)

// TestMySQLEnumSetConversion: a binlog ENUM index or SET bitmask is written
// as its number into a numeric shadow column and as its labels into any
// other, as the server converts them in the copy's INSERT … SELECT; the ENUM
// error value (index 0) is the empty string.
func TestMySQLEnumSetConversion(t *testing.T) {
	enum := table.Column{Name: "k", DataType: "enum", ColumnType: "enum('a','b','c')"}
	set := table.Column{Name: "s", DataType: "set", ColumnType: "set('x','y','z')"}
	to := func(dataType string) *table.Column { return &table.Column{Name: "n", DataType: dataType} }
	for _, tc := range []struct {
		name string
		src  table.Column
		dst  *table.Column
		in   any
		want any
	}{
		{"enum to int", enum, to("int"), int64(3), uint64(3)},
		{"enum to decimal", enum, to("decimal"), int64(2), uint64(2)},
		{"enum to year", enum, to("year"), int64(1), uint64(1)},
		{"enum error value to int", enum, to("int"), int64(0), uint64(0)},
		{"enum to varchar", enum, to("varchar"), int64(3), "c"},
		{"enum to enum", enum, to("enum"), int64(2), "b"},
		{"enum error value to varchar", enum, to("varchar"), int64(0), ""},
		{"enum without shadow column", enum, nil, int64(1), "a"},
		{"set to bit", set, to("bit"), int64(5), uint64(5)},
		{"set to double", set, to("double"), int64(6), int64(6)},
		{"set's sign bit to decimal", set, to("decimal"), int64(-1 << 62), int64(-1 << 62)},
		{"set's sign bit to bigint", set, to("bigint"), uint64(1<<63 | 1), int64(-1<<63 | 1)},
		{"set's sign bit to bit", set, to("bit"), int64(-1 << 62), uint64(3 << 62)},
		{"set to text", set, to("text"), int64(5), "x,z"},
		{"set to set", set, to("set"), int64(0), ""},
	} {
		c, err := newMySQLColumn(tc.src, tc.dst, table.ColumnMap{Source: tc.src.Name, Shadow: "n"})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := c.conv(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: %#v, want %#v", tc.name, got, tc.want)
		}
	}
}
