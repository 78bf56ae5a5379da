package localtests

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCutOverUnderWrites runs cases whose writers must not stop before the
// cut-over, as the migration cases' do: osc migrates the table while they
// write through the cut-over and after it; no writer may fail (a deadlock or
// a lock wait timeout included), and the case's after.sql and verify.sql must
// then pass. foreign_key_child: the cut-over adds the carried foreign key to
// the shadow while the table is locked, which holds the parent's writers too.
// triggers (both databases): the triggers, made on the shadow in the
// cut-over, fire exactly once per write, before the swap on the table, after
// it on the new table. child_triggers (MySQL): a child with triggers whose
// foreign keys and triggers get their own names back after the cut-over,
// under a lock of their own, while the writers go on: each write fires each
// trigger once throughout. toast_hot_moves (PostgreSQL): the applier settles
// only with writes blocked, which the cut-over then does; without the
// checksum, whose lock (which blocks writes too) would settle the applier
// before the cut-over, so that the cut-over never blocked writes for it.
// (Each case's rows are compared by the migration case of the same name,
// with the checksum.)
func TestCutOverUnderWrites(t *testing.T) {
	for _, tc := range []struct {
		d     dialect
		name  string
		extra []string // osc's arguments after the case's
	}{
		{mysqlDialect{}, "foreign_key_child", nil},
		{mysqlDialect{}, "triggers", nil},
		{mysqlDialect{}, "child_triggers", nil},
		{pgDialect{dsn: pgDSN()}, "triggers", nil},
		{pgDialect{dsn: pgDSN()}, "toast_hot_moves", []string{"--checksum=false"}},
	} {
		t.Run(tc.d.dir()+"/"+tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadCase(filepath.Join(tc.d.dir(), tc.name))
			if err != nil {
				t.Fatal(err)
			}
			c.name = "cow_" + tc.name
			c.extra = append(c.extra, tc.extra...)
			runThroughCutOver(t, tc.d, c)
		})
	}
}

func runThroughCutOver(t *testing.T, d dialect, c *testCase) {
	bin := requireOsc(t)
	admin := d.connectAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	ns, db := setupCase(ctx, t, d, admin, c)
	info, err := d.describe(ctx, db, ns, c.table)
	if err != nil {
		t.Fatal(err)
	}
	w, err := caseWorkload(ctx, d, db, c, info)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := w.start(ctx, db, d)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Stop() //nolint:errcheck // on an early exit; the checked Stop below reports the writers' errors
	okBefore := w.ok.Load()
	osc, err := startOsc(ctx, bin, append(append(d.oscArgs(ns, c.table), "--alter", c.alter, "--execute", "--chunk-size", chunkSize), c.extra...))
	if err != nil {
		t.Fatal(err)
	}
	defer osc.logOutput(t)
	defer osc.stop()
	select {
	case <-osc.done:
	case err := <-ws.errs:
		t.Fatalf("a writer failed while osc ran: %v", err)
	case <-time.After(postponeTimeout + cutOverTimeout):
		t.Fatalf("osc did not finish within %v", postponeTimeout+cutOverTimeout)
	}
	if osc.err != nil {
		t.Fatalf("osc failed: %s", osc.failure())
	}
	// Writes on the new table, and until minWrites succeeded since osc
	// started.
	if err := ws.keepWriting(w, okBefore, minWrites, writeAfterPostpone); err != nil {
		t.Fatalf("after the cut-over: %v", err)
	}
	if err := ws.Stop(); err != nil {
		t.Fatalf("a writer failed: %v", err)
	}
	if n := w.ok.Load() - okBefore; n < minWrites {
		t.Fatalf("only %d writes succeeded (want at least %d): the case ran without load", n, minWrites)
	}
	if !osc.logged("cut-over complete") && !osc.logged("cut-over: tables swapped") {
		t.Error("osc's log lacks the cut-over")
	}
	if err := execScript(ctx, db, c.after); err != nil {
		t.Errorf("after.sql: %v", err)
	}
	for _, q := range c.verify {
		rows, err := queryRows(ctx, db, q, 3)
		switch {
		case err != nil:
			t.Errorf("verify.sql: %s: %v", q, err)
		case len(rows) > 0:
			t.Errorf("verify.sql: %s: returned rows, first %s", q, strings.Join(rows, "; "))
		}
	}
	dropCase(ctx, t, d, admin, ns)
}
