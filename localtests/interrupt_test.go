package localtests

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInterrupt stops osc with SIGINT (Ctrl-C) and SIGTERM once everything it
// makes exists (shadow, changelog, publication, slot: the copy is done and the
// cut-over postponed) and checks that it exits non-zero, says it was
// interrupted, and leaves the database exactly as it found it.
func TestInterrupt(t *testing.T) {
	for _, d := range dialects() {
		for name, sig := range map[string]syscall.Signal{"sigint": syscall.SIGINT, "sigterm": syscall.SIGTERM} {
			t.Run(d.dir()+"/"+name, func(t *testing.T) {
				t.Parallel()
				c, err := loadCase(filepath.Join(d.dir(), "add_column"))
				if err != nil {
					t.Fatal(err)
				}
				c.name = "interrupt_" + name
				runStopped(t, d, c, "interrupted", func(p *oscProcess) error { return p.signal(sig) })
			})
		}
	}
}

// TestDryRun runs osc without --execute: it must succeed and leave nothing.
func TestDryRun(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			t.Parallel()
			c, err := loadCase(filepath.Join(d.dir(), "add_column"))
			if err != nil {
				t.Fatal(err)
			}
			c.name = "dry_run"
			bin := requireOsc(t)
			admin := d.connectAdmin(t)
			ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
			defer cancel()
			ns, db := setupCase(ctx, t, d, admin, c)
			baseline, err := leftovers(ctx, d, db, ns, c.table, true)
			if err != nil {
				t.Fatal(err)
			}
			before, err := snapshot(ctx, d, db, ns, c.table)
			if err != nil {
				t.Fatal(err)
			}
			osc, err := startOsc(ctx, bin, append(d.oscArgs(ns, c.table), "--alter", c.alter))
			if err != nil {
				t.Fatal(err)
			}
			defer osc.logOutput(t)
			defer osc.stop()
			select {
			case <-osc.done:
			case <-time.After(failureTimeout):
				t.Fatalf("the dry run did not finish within %v", failureTimeout)
			}
			if osc.err != nil {
				t.Fatalf("dry run failed: %s", osc.failure())
			}
			checkLeftovers(ctx, t, d, db, ns, c.table, true, baseline)
			if after, err := snapshot(ctx, d, db, ns, c.table); err != nil || after != before {
				t.Errorf("the dry run changed table %s (err %v):\nbefore: %s\n after: %s", c.table, err, before, after)
			}
			dropCase(ctx, t, d, admin, ns)
		})
	}
}

// runStopped runs osc on the case's table until it postpones the cut-over,
// stops it with stop, and checks that osc exits 4 with say in its last line
// and that nothing osc made is left.
func runStopped(t *testing.T, d dialect, c *testCase, say string, stop func(*oscProcess) error) {
	bin := requireOsc(t)
	admin := d.connectAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	ns, db := setupCase(ctx, t, d, admin, c)
	baseline, err := leftovers(ctx, d, db, ns, c.table, true)
	if err != nil {
		t.Fatal(err)
	}
	before, err := snapshot(ctx, d, db, ns, c.table)
	if err != nil {
		t.Fatal(err)
	}
	flag := filepath.Join(t.TempDir(), "postpone-cut-over")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(d.oscArgs(ns, c.table), "--alter", c.alter, "--execute", "--chunk-size", chunkSize,
		"--postpone-cut-over-flag-file", flag)
	osc, err := startOsc(ctx, bin, append(args, c.extra...))
	if err != nil {
		t.Fatal(err)
	}
	defer osc.logOutput(t)
	defer osc.stop()
	select {
	case <-osc.postponed:
	case <-osc.done:
		t.Fatalf("osc exited before postponing the cut-over: %s", osc.failure())
	case <-time.After(postponeTimeout):
		t.Fatalf("osc did not postpone the cut-over within %v", postponeTimeout)
	}
	found, err := leftovers(ctx, d, db, ns, c.table, true)
	if err != nil || len(found) == len(baseline) {
		t.Fatalf("while osc runs, its objects should exist: found %v (err %v)", found, err)
	}
	// The leftover check knows osc's replication objects by their names.
	if _, ok := d.(pgDialect); ok {
		for _, kind := range []string{"publication ", "replication slot "} {
			if !slices.ContainsFunc(found, func(s string) bool { return strings.HasPrefix(s, kind) }) {
				t.Fatalf("while osc runs, the leftover check finds no %s: found %v", strings.TrimSpace(kind), found)
			}
		}
	}
	if err := stop(osc); err != nil {
		t.Fatal(err)
	}
	select {
	case <-osc.done:
	case <-time.After(cutOverTimeout):
		t.Fatalf("osc did not exit within %v of the signal", cutOverTimeout)
	}
	if osc.err == nil {
		t.Fatal("osc exited 0 after being interrupted")
	}
	if code := osc.exitCode(); code != 4 {
		t.Errorf("osc exited %d after being interrupted, want 4", code)
	}
	if msg := osc.lastErrorLine(); !strings.Contains(msg, say) {
		t.Errorf("osc's last line %q does not say %q", msg, say)
	}
	checkLeftovers(ctx, t, d, db, ns, c.table, true, baseline)
	if after, err := snapshot(ctx, d, db, ns, c.table); err != nil || after != before {
		t.Errorf("osc was interrupted but changed table %s (err %v):\nbefore: %s\n after: %s", c.table, err, before, after)
	}
	dropCase(ctx, t, d, admin, ns)
}
