package apply

import (
	"testing"

	"osc/table"
)

// TestMySQLBitIntoBlob: a BIT goes into a TEXT or a BLOB as its bytes, the
// column's width of them, and into other strings as its number.
func TestMySQLBitIntoBlob(t *testing.T) {
	to := func(dataType string) *table.Column { return &table.Column{Name: "n", DataType: dataType} }
	for _, tc := range []struct {
		columnType string
		dst        *table.Column
		want       string
	}{
		{"bit(8)", to("text"), "UNHEX(LPAD(HEX(?), 2, '0'))"},
		{"bit(10)", to("longblob"), "UNHEX(LPAD(HEX(?), 4, '0'))"},
		{"bit(1)", to("tinytext"), "UNHEX(LPAD(HEX(?), 2, '0'))"},
		{"bit", to("blob"), "UNHEX(LPAD(HEX(?), 2, '0'))"},
		{"bit(64)", to("mediumtext"), "UNHEX(LPAD(HEX(?), 16, '0'))"},
		{"bit(8)", to("varchar"), "?"},
		{"bit(8)", to("varbinary"), "?"},
		{"bit(8)", to("int"), "?"},
		{"bit(8)", nil, "?"},
	} {
		src := table.Column{Name: "b", DataType: "bit", ColumnType: tc.columnType}
		c, err := newMySQLColumn(src, tc.dst, table.ColumnMap{Source: "b", Shadow: "n"})
		if err != nil {
			t.Fatalf("%s: %v", tc.columnType, err)
		}
		if c.param != tc.want {
			t.Errorf("%s -> %v: %q, want %q", tc.columnType, tc.dst, c.param, tc.want)
		}
	}
}
