package table

import (
	"reflect"
	"testing"
)

// TestMySQLRenumbered: only a column that becomes AUTO_INCREMENT has values
// the ALTER renumbers: its NULLs, and its 0s unless the server's sql_mode
// has NO_AUTO_VALUE_ON_ZERO.
func TestMySQLRenumbered(t *testing.T) {
	table := func(nullable, autoInc bool) *Table {
		return &Table{Name: "t", Columns: []Column{{Name: "id", DataType: "int", Nullable: nullable, AutoIncrement: autoInc}}}
	}
	mapping := []ColumnMap{{Source: "id", Shadow: "id", SourceIndex: 0}}
	const strict = "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION"
	for _, tc := range []struct {
		name           string
		source, shadow *Table
		mode           string
		want           *MySQLRenumbered
	}{
		{"becomes", table(false, false), table(false, true), strict, &MySQLRenumbered{Table: "t", Column: "id", Zero: true}},
		{"becomes, nullable", table(true, false), table(false, true), strict, &MySQLRenumbered{Table: "t", Column: "id", Null: true, Zero: true}},
		{"becomes, zero kept", table(false, false), table(false, true), strict + ",NO_AUTO_VALUE_ON_ZERO", nil},
		{"becomes, nullable, zero kept", table(true, false), table(false, true), "NO_AUTO_VALUE_ON_ZERO", &MySQLRenumbered{Table: "t", Column: "id", Null: true}},
		{"was already", table(false, true), table(false, true), strict, nil},
		{"stops being", table(false, true), table(false, false), strict, nil},
	} {
		if got := mysqlRenumbered(tc.source, tc.shadow, mapping, tc.mode); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	r := MySQLRenumbered{Column: "id", Null: true, Zero: true}
	if got := r.Cond(); got != "(`id` IS NULL OR `id` = 0)" {
		t.Errorf("Cond %s", got)
	}
}
