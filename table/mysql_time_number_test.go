package table

import "testing"

func TestMySQLTimeNumber(t *testing.T) {
	to := func(dataType string) Column { return Column{DataType: dataType} }
	for _, tc := range []struct {
		src  Column
		dst  Column
		want string
	}{
		{Column{DataType: "time", ColumnType: "time(3)"}, to("decimal"), "CAST(? AS TIME(3))"},
		{Column{DataType: "time", ColumnType: "time"}, to("int"), "CAST(? AS TIME(0))"},
		{Column{DataType: "datetime", ColumnType: "datetime(6)"}, to("double"), "CAST(? AS DATETIME(6))"},
		{Column{DataType: "date", ColumnType: "date"}, to("bigint"), "CAST(? AS DATE)"},
		{Column{DataType: "time", ColumnType: "time(3)"}, to("bit"), "CAST(CAST(TRUNCATE(CAST(? AS TIME(3)) + 0, 0) AS SIGNED) AS UNSIGNED)"},
		{Column{DataType: "date", ColumnType: "date"}, to("bit"), "TRUNCATE(CAST(? AS DATE) + 0, 0)"},
		{Column{DataType: "timestamp", ColumnType: "timestamp(3)"}, to("bigint"), "?"},
		{Column{DataType: "date", ColumnType: "date"}, to("time"), "CAST(? AS DATE)"},
		{Column{DataType: "datetime", ColumnType: "datetime(3)"}, to("time"), "CAST(? AS DATETIME(3))"},
		{Column{DataType: "time", ColumnType: "time(3)"}, to("time"), "?"},
		{Column{DataType: "time", ColumnType: "time(3)"}, to("varchar"), "?"},
		{Column{DataType: "date", ColumnType: "date"}, to("enum"), "?"},
		{Column{DataType: "varchar", ColumnType: "varchar(20)"}, to("int"), "?"},
	} {
		if got := MySQLTimeNumber("?", tc.src, tc.dst); got != tc.want {
			t.Errorf("%s -> %s: %q, want %q", tc.src.ColumnType, tc.dst.DataType, got, tc.want)
		}
	}
}
