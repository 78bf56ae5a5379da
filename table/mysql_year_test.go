package table

import "testing"

func TestMySQLYearConversion(t *testing.T) {
	year := Column{DataType: "year", ColumnType: "year(4)"}
	year2 := Column{DataType: "year", ColumnType: "year(2)"}
	to := func(dataType string) Column { return Column{DataType: dataType} }
	for _, tc := range []struct {
		src, dst Column
		want     string
	}{
		{year, to("varchar"), "LPAD(?, 4, '0')"},
		{year, to("char"), "LPAD(?, 4, '0')"},
		{year, to("text"), "LPAD(?, 4, '0')"},
		{year, to("binary"), "LPAD(?, 4, '0')"},
		{year2, to("char"), "LPAD(MOD(?, 100), 2, '0')"},
		{year2, to("int"), "MOD(?, 100)"},
		{year2, to("enum"), "MOD(?, 100)"},
		{year2, to("year"), "?"},
		{year, to("int"), "?"},
		{year, to("enum"), "?"},
		{year, to("year"), "?"},
		{year, to("timestamp"), "?"},
		{year, to("date"), "LPAD(?, 4, '0')"},
		{year, to("datetime"), "LPAD(?, 4, '0')"},
		{year2, to("date"), "LPAD(MOD(?, 100), 2, '0')"},
		{year, to("time"), "?"},
		{Column{DataType: "int", ColumnType: "int(11)"}, to("varchar"), "?"},
	} {
		if got := MySQLYearConversion("?", tc.src, tc.dst); got != tc.want {
			t.Errorf("%s -> %s: %q, want %q", tc.src.ColumnType, tc.dst.DataType, got, tc.want)
		}
	}
}
