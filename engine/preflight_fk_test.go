package engine

import (
	"strings"
	"testing"
	"time"
)

// TestPreflightForeignKeys: the report has a foreign keys line (and a
// triggers line) only when the dialect says something about them, in the
// text and the JSON.
func TestPreflightForeignKeys(t *testing.T) {
	cfg := Config{CutOverLockTimeout: 3 * time.Second, CutOverRetries: 60}
	r := testPreflight()
	if got := r.text(cfg, "d.t", &NativePlan{Why: "--strategy copy"}, "mysql"); strings.Contains(got, "foreign keys") {
		t.Errorf("a report without foreign keys has a line for them:\n%s", got)
	}
	r.ForeignKeys = "discarded (--discard-foreign-keys): the new table has none of fk"
	if got, want := r.text(cfg, "d.t", &NativePlan{Why: "--strategy copy"}, "mysql"), "  foreign keys:  discarded (--discard-foreign-keys): the new table has none of fk\n"; !strings.Contains(got, want) {
		t.Errorf("report lacks %q:\n%s", want, got)
	}
	if got, want := r.json(cfg, "d.t", &NativePlan{Why: "--strategy copy"}, "mysql"), `"foreign_keys":"discarded (--discard-foreign-keys): the new table has none of fk"`; !strings.Contains(got, want) {
		t.Errorf("JSON lacks %q: %s", want, got)
	}
	r.Triggers = "carried: trg as _trg"
	if got, want := r.text(cfg, "d.t", &NativePlan{Why: "--strategy copy"}, "mysql"), "  triggers:      carried: trg as _trg\n"; !strings.Contains(got, want) {
		t.Errorf("report lacks %q:\n%s", want, got)
	}
	if got, want := r.json(cfg, "d.t", &NativePlan{Why: "--strategy copy"}, "mysql"), `"triggers":"carried: trg as _trg"`; !strings.Contains(got, want) {
		t.Errorf("JSON lacks %q: %s", want, got)
	}
}
