package table

import "testing"

// TestMySQLEnumRounding: only a fractional number going into an ENUM or a SET
// is rounded.
func TestMySQLEnumRounding(t *testing.T) {
	col := func(dataType string) Column { return Column{Name: "c", DataType: dataType} }
	for _, tc := range []struct {
		src, dst, want string
	}{
		{"decimal", "enum", "ROUND(x)"},
		{"double", "set", "ROUND(x)"},
		{"float", "enum", "ROUND(x)"},
		{"int", "enum", "x"},
		{"varchar", "set", "x"},
		{"decimal", "int", "x"},
		{"enum", "enum", "x"},
	} {
		if got := MySQLEnumRounding("x", col(tc.src), col(tc.dst)); got != tc.want {
			t.Errorf("%s -> %s: %s, want %s", tc.src, tc.dst, got, tc.want)
		}
	}
}
