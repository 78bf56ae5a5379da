package apply

import (
	"testing"

	"osc/table"
)

// TestMySQLAddressTypesParam: a UUID, INET4 or INET6 goes into a binary
// string as its binary form, into other types through its own type; a
// binary string goes into those types as their binary form.
func TestMySQLAddressTypesParam(t *testing.T) {
	to := func(dataType string) *table.Column { return &table.Column{Name: "n", DataType: dataType} }
	col := func(dataType, columnType string) table.Column {
		return table.Column{Name: "c", DataType: dataType, ColumnType: columnType}
	}
	for _, tc := range []struct {
		src  table.Column
		dst  *table.Column
		want string
	}{
		{col("uuid", "uuid"), to("binary"), "?"},
		{col("inet6", "inet6"), to("blob"), "?"},
		{col("inet4", "inet4"), to("varbinary"), "?"},
		{col("uuid", "uuid"), to("char"), "CAST(CONVERT(? USING binary) AS UUID)"},
		{col("inet6", "inet6"), to("inet6"), "CAST(CONVERT(? USING binary) AS INET6)"},
		{col("uuid", "uuid"), nil, "CAST(CONVERT(? USING binary) AS UUID)"},
		{col("binary", "binary(16)"), to("uuid"), "CAST(CONVERT(? USING binary) AS UUID)"},
		{col("varbinary", "varbinary(4)"), to("inet4"), "CAST(CONVERT(? USING binary) AS INET4)"},
		{col("longblob", "longblob"), to("inet6"), "CAST(CONVERT(? USING binary) AS INET6)"},
		{col("binary", "binary(16)"), to("varbinary"), "?"},
		{col("blob", "blob"), nil, "?"},
	} {
		c, err := newMySQLColumn(tc.src, tc.dst, table.ColumnMap{Source: "c", Shadow: "n"})
		if err != nil {
			t.Fatalf("%s -> %v: %v", tc.src.ColumnType, tc.dst, err)
		}
		if c.param != tc.want {
			t.Errorf("%s -> %v: %q, want %q", tc.src.ColumnType, tc.dst, c.param, tc.want)
		}
	}
}
