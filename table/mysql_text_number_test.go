package table

import "testing"

func TestMySQLTextNumber(t *testing.T) {
	to := func(dataType string) Column { return Column{DataType: dataType} }
	for _, tc := range []struct {
		src, dst Column
		want     string
	}{
		{to("varchar"), to("int"), "IF(? REGEXP '^[[:space:]]*[-+]{0,1}[0-9]+[[:space:]]*$', ?, CONCAT('not an integer: ', ?))"},
		{to("varbinary"), to("bigint"), "IF(CONVERT(? USING ascii) REGEXP '^[[:space:]]*[-+]{0,1}[0-9]+[[:space:]]*$', CONVERT(? USING ascii), " +
			"CONCAT('not an integer: ', CONVERT(? USING ascii)))"},
		{to("blob"), to("decimal"), "CONVERT(? USING ascii)"},
		{to("varchar"), Column{DataType: "bigint", Unsigned: true}, "IF(? REGEXP '^[[:space:]]*[-+]{0,1}[0-9]+[[:space:]]*$' AND " +
			"CAST(? AS DECIMAL(65,0)) BETWEEN -9223372036854775808 AND 9223372036854775807, ?, CONCAT('not a BIGINT: ', ?))"},
		{to("varchar"), Column{DataType: "int", Unsigned: true}, "IF(? REGEXP '^[[:space:]]*[-+]{0,1}[0-9]+[[:space:]]*$', ?, CONCAT('not an integer: ', ?))"},
		{to("char"), to("bit"), "IF(? REGEXP '^[[:space:]]*[-+]{0,1}[0-9]+[[:space:]]*$' AND CAST(? AS DECIMAL(65,0)) BETWEEN -9223372036854775808 AND 9223372036854775807, " +
			"CAST(CAST(? AS SIGNED) AS UNSIGNED), CAST(? AS UNSIGNED) + 18446744073709551615 + 1)"},
		{to("varchar"), to("double"), "?"},
		{to("varchar"), to("varchar"), "?"},
		{to("int"), to("bigint"), "?"},
		{to("enum"), to("int"), "?"},
	} {
		if got := MySQLTextNumber("?", tc.src, tc.dst); got != tc.want {
			t.Errorf("%s -> %s: %q, want %q", tc.src.DataType, tc.dst.DataType, got, tc.want)
		}
	}
}
