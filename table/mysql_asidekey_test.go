package table

import (
	"strings"
	"testing"
)

// A new unique key with a row identity the shadow makes a BLOB or a TEXT
// is refused, naming the column and the way out; other identities, or no
// new unique key, pass.
func TestCheckAsideKey(t *testing.T) {
	plan := func(keyType string, newUnique bool) *Plan {
		p := &Plan{
			Source: &Table{Columns: []Column{{Name: "k", DataType: "bigint"}, {Name: "a", DataType: "int"}}},
			Shadow: &Table{Columns: []Column{{Name: "k", DataType: keyType}, {Name: "a", DataType: "int"}}},
			Key:    []string{"k"}, KeyIndex: []int{0},
			Mapping: []ColumnMap{{Source: "k", Shadow: "k", SourceIndex: 0}, {Source: "a", Shadow: "a", SourceIndex: 1}},
		}
		if newUnique {
			p.NewUnique = []UniqueKey{{Name: "ua", Columns: []string{"a"}, Shadow: []string{"a"}}}
		}
		return p
	}
	for _, typ := range []string{"text", "mediumtext", "blob", "longblob", "tinytext"} {
		err := checkAsideKey(plan(typ, true))
		if err == nil || !strings.Contains(err.Error(), "the key column `k` a "+strings.ToUpper(typ)+" and adds the unique key ua") ||
			!strings.Contains(err.Error(), "run the ALTER TABLE directly, or make `k` a VARCHAR or VARBINARY instead") {
			t.Errorf("%s: %v", typ, err)
		}
		if err := checkAsideKey(plan(typ, false)); err != nil {
			t.Errorf("%s without a new unique key: %v", typ, err)
		}
	}
	for _, typ := range []string{"varchar", "varbinary", "bigint", "char"} {
		if err := checkAsideKey(plan(typ, true)); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
}
