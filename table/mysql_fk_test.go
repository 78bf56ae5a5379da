package table

import (
	"slices"
	"testing"
)

// TestParseMySQLAlterDropForeignKey: DROP FOREIGN KEY clauses are recorded and
// left out of the text run on the shadow, which has no foreign keys.
func TestParseMySQLAlterDropForeignKey(t *testing.T) {
	for _, c := range []struct {
		alter, shadow string
		dropped       []MySQLDroppedForeignKey
	}{
		{"ADD COLUMN x INT", "ADD COLUMN x INT", nil},
		{"DROP FOREIGN KEY `a`, ADD x INT, drop foreign key if exists b", "ADD x INT",
			[]MySQLDroppedForeignKey{{Name: "a"}, {Name: "b", IfExists: true}}},
		{"DROP FOREIGN KEY fk", "", []MySQLDroppedForeignKey{{Name: "fk"}}},
		{"DROP INDEX fk, DROP KEY k", "DROP INDEX fk, DROP KEY k", nil},
		{"ADD CONSTRAINT c FOREIGN KEY (a) REFERENCES p (id)", "ADD CONSTRAINT c FOREIGN KEY (a) REFERENCES p (id)", nil},
	} {
		a, err := ParseMySQLAlter("t", c.alter, "")
		if err != nil {
			t.Fatalf("%q: %v", c.alter, err)
		}
		if a.ShadowText != c.shadow || !slices.Equal(a.DroppedForeignKeys, c.dropped) {
			t.Errorf("%q: shadow %q, dropped %v; want %q, %v", c.alter, a.ShadowText, a.DroppedForeignKeys, c.shadow, c.dropped)
		}
		if a.Text != c.alter {
			t.Errorf("%q: text %q", c.alter, a.Text)
		}
	}
}
