package table

import "testing"

func TestMySQLIntegerKeyText(t *testing.T) {
	col := func(dataType, columnType, charset, collation string) Column {
		return Column{Name: "k", DataType: dataType, ColumnType: columnType, Charset: charset, Collation: collation}
	}
	bigint := col("bigint", "bigint(20)", "", "")
	for _, tc := range []struct {
		src, dst Column
		want     string
		ok       bool
	}{
		{bigint, col("varchar", "varchar(20)", "utf8mb4", "utf8mb4_bin"), "CONVERT(x USING utf8mb4) COLLATE utf8mb4_bin", true},
		{col("int", "int(5) unsigned zerofill", "", ""), col("char", "char(8)", "latin1", "latin1_general_cs"), "CONVERT(x USING latin1) COLLATE latin1_general_cs", true},
		{bigint, col("text", "text", "utf8mb4", "utf8mb4_general_nopad_ci"), "CONVERT(x USING utf8mb4) COLLATE utf8mb4_general_nopad_ci", true},
		{bigint, col("binary", "binary(12)", "", ""), "CONCAT(CAST(x AS BINARY), REPEAT(0x00, 12 - LENGTH(CAST(x AS BINARY))))", true},
		{bigint, col("varbinary", "varbinary(12)", "", ""), "CAST(x AS BINARY)", true},
		{bigint, col("blob", "blob", "", ""), "x", false},
		{bigint, col("bigint", "bigint(20)", "", ""), "x", false},
		{bigint, col("decimal", "decimal(22,2)", "", ""), "x", false},
		{col("varchar", "varchar(20)", "latin1", "latin1_swedish_ci"), col("varchar", "varchar(20)", "utf8mb4", "utf8mb4_bin"), "x", false},
		{col("decimal", "decimal(10,2)", "", ""), col("varchar", "varchar(20)", "utf8mb4", "utf8mb4_bin"), "x", false},
	} {
		got, ok, err := MySQLIntegerKeyText("x", tc.src, tc.dst)
		if err != nil || got != tc.want || ok != tc.ok {
			t.Errorf("%s -> %s: %q, %v, %v; want %q, %v", tc.src.ColumnType, tc.dst.ColumnType, got, ok, err, tc.want, tc.ok)
		}
	}
	if _, _, err := MySQLIntegerKeyText("x", bigint, col("varchar", "varchar(20)", "utf8mb4", "utf8mb4_bin; DROP")); err == nil {
		t.Error("a collation that is no name: no error")
	}
}
