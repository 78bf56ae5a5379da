package table

import "testing"

// TestMySQLNotStrict: the strict flags go, the others stay in their order;
// a mode with characters no sql_mode has is refused.
func TestMySQLNotStrict(t *testing.T) {
	for mode, want := range map[string]string{
		"STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION": "'ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
		"NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,STRICT_TRANS_TABLES":           "'NO_AUTO_VALUE_ON_ZERO'",
		"STRICT_ALL_TABLES": "''",
		"":                  "''",
	} {
		got, err := MySQLNotStrict(mode)
		if err != nil || got != want {
			t.Errorf("MySQLNotStrict(%q) = %q, %v; want %q", mode, got, err, want)
		}
	}
	if _, err := MySQLNotStrict("ANSI'; DROP"); err == nil {
		t.Error("a mode with a quote was accepted")
	}
}
