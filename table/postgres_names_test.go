package table

import (
	"fmt"
	"testing"
)

func TestPgMatchNamed(t *testing.T) {
	shadow := []pgNamed{
		{"constraint", "c CHECK (a > 0)", "cc2"}, // LIKE's copy
		{"constraint", "c CHECK (a > 0)", "cc1"}, // re-added NOT VALID, so created later
		{"constraint", "c CHECK (b > 0)", "_t_osc_b_check"},
		{"constraint", "c CHECK (b > 0)", "_t_osc_b_check1"},
		{"index", "x", "_t_osc_a_idx"},
		{"sequence", "i a", "_t_osc_a_seq"},
		{"statistics", "d a, b", "_t_osc_a_b_stat"},
	}
	scratch := []pgNamed{
		{"constraint", "c CHECK (a > 0)", "cc1"},
		{"constraint", "c CHECK (a > 0)", "cc2"},
		{"constraint", "c CHECK (b > 0)", "t_b_check"},
		{"constraint", "c CHECK (b > 0)", "t_b_check1"},
		{"index", "x", "t_a_idx"},
		{"index", "y", "t_b_idx"},
		{"sequence", "a a", "t_a_seq"}, // another kind of dependency: no match
		{"statistics", "d a, b", "t_stx"},
	}
	got := pgMatchNamed(shadow, scratch)
	want := map[string]string{"cc1": "cc1", "cc2": "cc2", "_t_osc_b_check": "t_b_check", "_t_osc_b_check1": "t_b_check1",
		"_t_osc_a_idx": "t_a_idx", "_t_osc_a_b_stat": "t_stx"}
	byName := map[string]string{}
	for o, name := range got {
		byName[o.name] = name
	}
	if fmt.Sprint(byName) != fmt.Sprint(want) {
		t.Errorf("matched %v, want %v", byName, want)
	}
}
