package localtests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gh-ost's flags osc takes: --panic-flag-file and --exact-rowcount.

// TestPanicFlagFile creates the panic flag file while osc postpones the
// cut-over: osc must abort (exit 4, naming the file) and leave the database
// as it found it.
func TestPanicFlagFile(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			t.Parallel()
			c, err := loadCase(filepath.Join(d.dir(), "add_column"))
			if err != nil {
				t.Fatal(err)
			}
			c.name = "panic_flag_file"
			flag := filepath.Join(t.TempDir(), "panic")
			c.extra = append(c.extra, "--panic-flag-file", flag)
			runStopped(t, d, c, "the panic flag file "+flag+" exists", func(*oscProcess) error {
				return os.WriteFile(flag, nil, 0o644)
			})
		})
	}
}

// TestPanicFlagFileAtStart starts osc while the panic flag file exists: it
// must refuse (exit 3, naming the file) before making anything.
func TestPanicFlagFileAtStart(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			t.Parallel()
			c, err := loadCase(filepath.Join(d.dir(), "add_column"))
			if err != nil {
				t.Fatal(err)
			}
			c.name = "panic_flag_file_start"
			bin := requireOsc(t)
			admin := d.connectAdmin(t)
			ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
			defer cancel()
			ns, db := setupCase(ctx, t, d, admin, c)
			baseline, err := leftovers(ctx, d, db, ns, c.table, true)
			if err != nil {
				t.Fatal(err)
			}
			flag := filepath.Join(t.TempDir(), "panic")
			if err := os.WriteFile(flag, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			osc, err := startOsc(ctx, bin, append(d.oscArgs(ns, c.table), "--alter", c.alter, "--execute", "--panic-flag-file", flag))
			if err != nil {
				t.Fatal(err)
			}
			defer osc.logOutput(t)
			defer osc.stop()
			select {
			case <-osc.done:
			case <-time.After(failureTimeout):
				t.Fatalf("osc did not exit within %v", failureTimeout)
			}
			if code := osc.exitCode(); code != 3 {
				t.Errorf("osc exited %d with the panic flag file present, want 3 (refused)", code)
			}
			if msg := osc.lastErrorLine(); !strings.Contains(msg, "the panic flag file "+flag+" exists") {
				t.Errorf("osc's last line %q does not name the panic flag file", msg)
			}
			checkLeftovers(ctx, t, d, db, ns, c.table, true, baseline)
			dropCase(ctx, t, d, admin, ns)
		})
	}
}

// TestExactRowCount migrates under writes with --exact-rowcount, counting
// before the copy and alongside it: the count is logged, and the result
// compares row by row as every case's does.
func TestExactRowCount(t *testing.T) {
	for _, d := range dialects() {
		for name, extra := range map[string][]string{
			"before":     {"--exact-rowcount", "--concurrent-rowcount=false"},
			"concurrent": {"--exact-rowcount"},
		} {
			t.Run(d.dir()+"/"+name, func(t *testing.T) {
				t.Parallel()
				c, err := loadCase(filepath.Join(d.dir(), "add_column"))
				if err != nil {
					t.Fatal(err)
				}
				c.name = "exact_rowcount_" + name
				c.extra = append(c.extra, extra...)
				if name == "before" {
					// A count alongside a short copy may be cancelled
					// unlogged when the copy ends first.
					c.wantLog = []string{"exact row count"}
				}
				runCase(t, d, d.connectAdmin(t), requireOsc(t), c)
			})
		}
	}
}
