package apply

import (
	"strings"
	"testing"

	"osc/cdc"
	"osc/table"
)

// TestMySQLRenumberedRefused: a change that writes a value a plain ALTER
// would renumber into the column becoming AUTO_INCREMENT fails the apply;
// other values, and deletes by such a key, go through.
func TestMySQLRenumberedRefused(t *testing.T) {
	cols := []table.Column{{Name: "id", DataType: "int", Nullable: true}, {Name: "b", DataType: "varchar"}}
	plan := &table.Plan{
		Source: &table.Table{Schema: "s", Name: "t", Columns: cols},
		Shadow: &table.Table{Schema: "s", Name: "t_osc_new", Columns: cols},
		Key:    []string{"b"}, KeyIndex: []int{1},
		Mapping: []table.ColumnMap{{Source: "id", Shadow: "id", SourceIndex: 0}, {Source: "b", Shadow: "b", SourceIndex: 1}},
	}
	for _, tc := range []struct {
		name       string
		renumbered table.MySQLRenumbered
		op         myOp
		refusal    string // "" when the op goes through
	}{
		{"zero", table.MySQLRenumbered{Column: "id", Zero: true}, myOp{row: cdc.Row{int64(0), "x"}}, "holds 0"},
		{"zero kept", table.MySQLRenumbered{Column: "id", Null: true}, myOp{row: cdc.Row{int64(0), "x"}}, ""},
		{"null", table.MySQLRenumbered{Column: "id", Null: true}, myOp{row: cdc.Row{nil, "x"}}, "holds NULL"},
		{"other value", table.MySQLRenumbered{Column: "id", Null: true, Zero: true}, myOp{row: cdc.Row{int64(7), "x"}}, ""},
		{"delete", table.MySQLRenumbered{Column: "id", Null: true, Zero: true}, myOp{del: true, row: cdc.Row{int64(0), "x"}}, ""},
	} {
		plan.Renumbered = &tc.renumbered
		a := NewMySQL(nil, plan)
		if a.err != nil {
			t.Fatal(a.err)
		}
		_, err := a.batches([]myOp{tc.op})
		switch {
		case tc.refusal == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.refusal != "" && (err == nil || !strings.Contains(err.Error(), tc.refusal)):
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.refusal)
		}
	}
}
