package table

import "testing"

func TestMySQLZerofillText(t *testing.T) {
	col := func(dataType, columnType string) Column { return Column{DataType: dataType, ColumnType: columnType} }
	to := func(dataType string) Column { return Column{DataType: dataType} }
	pad := func(n string) string { return "CONCAT(REPEAT('0', " + n + " - CHAR_LENGTH(?)), ?)" }
	for _, tc := range []struct {
		src, dst Column
		want     string
	}{
		{col("int", "int(5) unsigned zerofill"), to("varchar"), pad("5")},
		{col("int", "int unsigned zerofill"), to("char"), pad("10")},
		{col("bigint", "bigint(20) unsigned zerofill"), to("text"), pad("20")},
		{col("tinyint", "tinyint unsigned zerofill"), to("varbinary"), pad("3")},
		{col("decimal", "decimal(6,2) unsigned zerofill"), to("varchar"), pad("7")},
		{col("decimal", "decimal(5,0) unsigned zerofill"), to("blob"), pad("5")},
		{col("int", "int(5) unsigned zerofill"), to("bigint"), "?"},
		{col("int", "int(5) unsigned zerofill"), to("decimal"), "?"},
		{col("int", "int(5) unsigned zerofill"), to("enum"), "?"},
		{col("int", "int(5) unsigned"), to("varchar"), "?"},
		{col("decimal", "decimal(6,2)"), to("varchar"), "?"},
		{col("double", "double unsigned zerofill"), to("varchar"), pad("22")},
		{col("float", "float unsigned zerofill"), to("varchar"), pad("12")},
		{col("float", "float(7,2) unsigned zerofill"), to("char"), pad("7")},
		{col("double", "double(10,3) unsigned zerofill"), to("text"), pad("10")},
		{col("double", "double"), to("varchar"), "?"},
		{col("date", "date"), to("varchar"), "?"},
	} {
		if got := MySQLZerofillText("?", tc.src, tc.dst); got != tc.want {
			t.Errorf("%s -> %s: %q, want %q", tc.src.ColumnType, tc.dst.DataType, got, tc.want)
		}
	}
}
