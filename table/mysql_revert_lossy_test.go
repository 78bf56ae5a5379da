package table

import "testing"

func TestMySQLConversionRounds(t *testing.T) {
	col := func(ct string) Column { return Column{Name: "c", ColumnType: ct} }
	for _, tc := range []struct {
		from, to, zone string
		rounds         bool
	}{
		{"decimal(10,2)", "decimal(10,1)", "UTC", true},
		{"decimal(10,2)", "decimal(12,2)", "UTC", false},
		{"decimal(10,2)", "int(11)", "UTC", true},
		{"double", "float", "UTC", true},
		{"float", "double", "UTC", false},
		{"double", "double(10,2)", "UTC", true},
		{"decimal(10,2)", "double", "UTC", true},
		{"int(11)", "bigint(20)", "UTC", false},
		{"int(11)", "double", "UTC", false},
		{"bigint(20)", "double", "UTC", true},
		{"int(11)", "float", "UTC", true},
		{"datetime(6)", "datetime", "UTC", true},
		{"datetime", "datetime(6)", "UTC", false},
		{"timestamp(3)", "datetime(3)", "+00:00", false},
		{"timestamp", "datetime", "Europe/Berlin", true},
		{"datetime", "date", "UTC", true},
		{"time(3)", "time", "UTC", true},
		{"varchar(10)", "int(11)", "UTC", true},
		{"varchar(10)", "enum('a','b')", "UTC", true},
		{"varchar(10)", "char(10)", "UTC", true},
		{"char(10)", "varchar(20)", "UTC", false},
		{"varchar(10)", "varchar(40)", "UTC", false},
		{"varchar(10)", "text", "UTC", false},
		{"varchar(10)", "varbinary(40)", "UTC", false},
		{"varchar(10)", "binary(10)", "UTC", true},
		{"varbinary(10)", "binary(10)", "UTC", true},
		{"binary(10)", "binary(20)", "UTC", true},
		{"binary(10)", "varbinary(20)", "UTC", false},
		{"int(11)", "varchar(20)", "UTC", false},
		{"enum('a','b')", "enum('b','a')", "UTC", false},
	} {
		if got := mysqlConversionRounds(col(tc.from), col(tc.to), tc.zone) != ""; got != tc.rounds {
			t.Errorf("%s -> %s in %s: rounds %v, want %v", tc.from, tc.to, tc.zone, got, tc.rounds)
		}
	}
}
