package table

import "testing"

// TestPgRevertExact: the type changes a revert window accepts on PostgreSQL
// keep every surviving value as it was; those that may round or reformat one
// are not accepted.
func TestPgRevertExact(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		want     bool
	}{
		{"integer", "bigint", true},
		{"bigint", "integer", true}, // fails on a value out of range, never changes one
		{"character varying(20)", "text", true},
		{"character varying(40)", "character varying(20)", true},
		{"numeric(10,2)", "numeric(12,2)", true},
		{"numeric(10,2)", "numeric(8,2)", true},
		{"numeric(10,2)", "numeric", true},
		{"numeric(10,2)", "numeric(10,1)", false}, // 1.25 becomes 1.3
		{"integer", "real", false},
		{"double precision", "real", false},
		{"timestamp(6) without time zone", "timestamp(0) without time zone", false},
		{"timestamp without time zone", "timestamp with time zone", false},
		{"text", "integer", false}, // '007' becomes 7
		{"integer", "text", false},
	} {
		if got := pgRevertExact(tc.from, tc.to); got != tc.want {
			t.Errorf("pgRevertExact(%q, %q) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}
