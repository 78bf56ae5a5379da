package apply

import (
	"testing"

	"osc/table"
)

// TestMySQLEnumMembersIntoBytes: an ENUM's or SET's member goes into a
// binary string (or a CHARACTER SET binary ENUM or SET) as its bytes in the
// column's character set (the label,
// utf8mb4 text, converted back to it), and a CHARACTER SET binary column's
// members into a text of another character set as that set's bytes, as the
// ALTER converts them; elsewhere as the label.
func TestMySQLEnumMembersIntoBytes(t *testing.T) {
	to := func(dataType, charset string) *table.Column {
		return &table.Column{Name: "n", DataType: dataType, Charset: charset}
	}
	for _, tc := range []struct {
		dataType, charset string
		members           []string
		dst               *table.Column
		want              string
	}{
		{"enum", "latin1", nil, to("varbinary", ""), "CONVERT(? USING latin1)"},
		{"set", "utf16", nil, to("blob", ""), "CONVERT(? USING utf16)"},
		{"enum", "cp1251", nil, to("binary", ""), "CONVERT(? USING cp1251)"},
		{"enum", "utf8mb4", nil, to("varbinary", ""), "?"},
		{"enum", "utf8mb3", nil, to("blob", ""), "?"},
		{"enum", "latin1", nil, to("varchar", "utf16"), "?"},
		{"enum", "latin1", nil, to("enum", "latin1"), "?"},
		{"enum", "latin1", nil, to("enum", "binary"), "CONVERT(? USING latin1)"},
		{"set", "cp1251", nil, to("set", "binary"), "CONVERT(? USING cp1251)"},
		{"set", "utf8mb4", nil, to("set", "binary"), "?"},
		{"enum", "latin1", nil, nil, "?"},
		{"enum", "binary", []string{"\xe9", "a"}, to("varchar", "latin1"), "CONVERT(? USING binary)"},
		{"set", "binary", []string{"\xe9", "a"}, to("text", "utf8mb4"), "?"},
		{"enum", "binary", []string{"\xe9", "a"}, to("varbinary", ""), "?"},
	} {
		src := table.Column{Name: "e", DataType: tc.dataType, ColumnType: tc.dataType + "('x','a')", Charset: tc.charset, Members: tc.members}
		c, err := newMySQLColumn(src, tc.dst, table.ColumnMap{Source: "e", Shadow: "n"})
		if err != nil {
			t.Fatalf("%s %s -> %v: %v", tc.dataType, tc.charset, tc.dst, err)
		}
		if c.param != tc.want {
			t.Errorf("%s %s -> %v: %q, want %q", tc.dataType, tc.charset, tc.dst, c.param, tc.want)
		}
	}
}
