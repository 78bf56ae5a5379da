package localtests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPanicOnWarningsApply: with --panic-on-warnings, a change written while
// osc runs whose value the server changes on its way into the shadow (a
// VARCHAR's trailing spaces cut off, with a note, where the plain ALTER
// fails) fails the migration in the applier, which names the warning, and
// osc leaves the table as it was. The writers run all along; the copy
// itself meets no such value (fail_panic_on_warnings is the copy's case).
func TestPanicOnWarningsApply(t *testing.T) {
	testApplyCutSpaces(t, "panic_on_warnings_apply", []string{"--panic-on-warnings"},
		"writing captured changes into the shadow", "Note 1265: Data truncated for column 's'", "--panic-on-warnings")
}

// TestCutSpacesApply: without --panic-on-warnings too, such a change fails
// the migration in the applier, as the plain ALTER after it would fail (the
// copy's refusal, MySQLCopy.RefuseCutSpaces, sees only the rows it copies,
// and the checksum compares the cut value as equal).
func TestCutSpacesApply(t *testing.T) {
	testApplyCutSpaces(t, "cut_spaces_apply", nil,
		"column `s`: a change written while osc ran", "Note 1265: Data truncated for column 's'", "plain ALTER TABLE fails")
}

// testApplyCutSpaces runs osc (with args) on a table whose VARCHAR the
// --alter shortens, writes a value with trailing spaces past the new length
// while the cut-over is postponed, and expects osc to fail with an error
// that holds each of want and to leave the table as it was.
func testApplyCutSpaces(t *testing.T, name string, args []string, want ...string) {
	d := mysqlDialect{}
	c := &testCase{
		name:  name,
		table: "t",
		create: `CREATE TABLE t (id INT NOT NULL PRIMARY KEY, s VARCHAR(10) NOT NULL) ENGINE=InnoDB;
INSERT INTO t (id, s) SELECT seq, CONCAT('s', seq % 100) FROM seq_1_to_2000;`,
		alter: "MODIFY s VARCHAR(4) NOT NULL",
	}
	bin := requireOsc(t)
	admin := d.connectAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	ns, db := setupCase(ctx, t, d, admin, c)
	baseline, err := leftovers(ctx, d, db, ns, c.table, true)
	if err != nil {
		t.Fatal(err)
	}
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
	flag := filepath.Join(t.TempDir(), "postpone-cut-over")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	osc, err := startOsc(ctx, bin, append(append(d.oscArgs(ns, c.table), "--alter", c.alter, "--execute",
		"--chunk-size", chunkSize, "--postpone-cut-over-flag-file", flag), args...))
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
	if err := ws.Stop(); err != nil {
		t.Fatalf("a writer failed while osc ran: %v", err)
	}
	// The writers delete rows and move keys, so no fixed key is sure to
	// exist: change the first row there is, and make sure one changed.
	res, err := db.ExecContext(ctx, "UPDATE t SET s = 'ab      ' ORDER BY id LIMIT 1")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("the change that should fail osc changed %d rows (err %v), want 1", n, err)
	}
	before, err := snapshot(ctx, d, db, ns, c.table)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-osc.done:
	case <-time.After(failureTimeout):
		t.Fatalf("osc did not fail within %v of the change", failureTimeout)
	}
	if code := osc.exitCode(); code != 1 {
		t.Errorf("osc exited %d, want 1", code)
	}
	msg := osc.lastErrorLine()
	for _, want := range want {
		if !strings.Contains(msg, want) {
			t.Errorf("osc's error %q lacks %q", msg, want)
		}
	}
	checkLeftovers(ctx, t, d, db, ns, c.table, true, baseline)
	if after, err := snapshot(ctx, d, db, ns, c.table); err != nil || after != before {
		t.Errorf("osc failed but changed table %s (err %v):\nbefore: %s\n after: %s", c.table, err, before, after)
	}
	dropCase(ctx, t, d, admin, ns)
}
