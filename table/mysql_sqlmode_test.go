package table

import "testing"

// TestMySQLStatementMode: the strict flags go when asked, the others stay
// in their order, ALLOW_INVALID_DATES comes when asked (once); a mode with
// characters no sql_mode has is refused.
func TestMySQLStatementMode(t *testing.T) {
	for _, tc := range []struct {
		mode                    string
		notStrict, invalidDates bool
		want                    string
	}{
		{"STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION", true, false, "'ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"},
		{"NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,STRICT_TRANS_TABLES", true, false, "'NO_AUTO_VALUE_ON_ZERO'"},
		{"STRICT_ALL_TABLES", true, false, "''"},
		{"", true, false, "''"},
		{"STRICT_TRANS_TABLES,NO_AUTO_VALUE_ON_ZERO", false, true, "'STRICT_TRANS_TABLES,NO_AUTO_VALUE_ON_ZERO,ALLOW_INVALID_DATES'"},
		{"ALLOW_INVALID_DATES,STRICT_TRANS_TABLES", false, true, "'STRICT_TRANS_TABLES,ALLOW_INVALID_DATES'"},
		{"ALLOW_INVALID_DATES,STRICT_TRANS_TABLES", true, false, "'ALLOW_INVALID_DATES'"},
	} {
		got, err := MySQLStatementMode(tc.mode, tc.notStrict, tc.invalidDates)
		if err != nil || got != tc.want {
			t.Errorf("MySQLStatementMode(%q, %v, %v) = %q, %v; want %q", tc.mode, tc.notStrict, tc.invalidDates, got, err, tc.want)
		}
	}
	if _, err := MySQLStatementMode("ANSI'; DROP", true, false); err == nil {
		t.Error("a mode with a quote was accepted")
	}
}

// TestMySQLInvalidDate: a day its month lacks, in a leap year or not; zero
// parts and other texts are not invalid dates.
func TestMySQLInvalidDate(t *testing.T) {
	for v, want := range map[string]bool{
		"2024-02-30": true, "2023-02-29": true, "2024-02-29": false, "2023-04-31 10:00:00": true,
		"2023-04-30 10:00:00.5": false, "0000-00-00": false, "2024-00-31": false, "2024-02-00": false,
		"2024-12-31": false, "1900-02-29": true, "2000-02-29": false, "": false, "10:00:00": false,
	} {
		if got := MySQLInvalidDate(v); got != want {
			t.Errorf("MySQLInvalidDate(%q) = %v, want %v", v, got, want)
		}
	}
}
