package table

import "testing"

func TestPgAlterSetsOwner(t *testing.T) {
	for clauses, want := range map[string]bool{
		"OWNER TO app": true,
		"ADD COLUMN n int, owner to CURRENT_USER": true,
		"ADD COLUMN owner int":                    false,
		"ALTER COLUMN a SET DEFAULT 'OWNER TO x'": false,
		"ADD COLUMN n int; OWNER TO app":          true,
		"RENAME COLUMN owner TO owner2":           false,
	} {
		if got := pgAlterSetsOwner(SplitPostgresAlter(clauses)); got != want {
			t.Errorf("%s: %v, want %v", clauses, got, want)
		}
	}
}
