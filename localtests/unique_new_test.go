package localtests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNewUniqueDuplicate: an --alter that adds a unique key, while a
// duplicate of it is written into the original, fails the migration cleanly
// (exit 1, nothing left, the table as it was) and names the value and the
// key, never dropping one of the rows: a duplicate written while the copy is
// held back (the copy or the applier meets it, whichever writes second), and
// one written after the copy passed both rows, while the cut-over is
// postponed (the applier meets it). The row turned away waits aside; once
// writes are blocked (the checksum's lock, the cut-over's) and every change
// is applied, a row still aside is a duplicate the original holds.
func TestNewUniqueDuplicate(t *testing.T) {
	for _, d := range []dialect{mysqlDialect{}, pgDialect{dsn: pgDSN()}} {
		whens := []string{"copy", "after_copy"}
		if d.dir() == "mysql" {
			// Without the checksum's lock, the cut-over's finds it.
			whens = append(whens, "after_copy_no_checksum")
		}
		for _, when := range whens {
			t.Run(d.dir()+"/"+when, func(t *testing.T) { newUniqueDuplicate(t, d, when) })
		}
	}
}

func newUniqueDuplicate(t *testing.T, d dialect, when string) {
	create := `CREATE TABLE t (id INT NOT NULL PRIMARY KEY, email VARCHAR(60) NULL, n INT NOT NULL) ENGINE=InnoDB;
INSERT INTO t SELECT seq, CONCAT('user', seq, '@example.com'), seq FROM seq_1_to_5000;`
	alter := "ADD COLUMN extra INT NULL, ADD UNIQUE KEY uq_email (email)"
	key := "uq_email (email)"
	if d.dir() == "postgres" {
		create = `CREATE TABLE t (id int PRIMARY KEY, email text, n int NOT NULL);
INSERT INTO t SELECT g, 'user' || g || '@example.com', g FROM generate_series(1, 5000) g;`
		alter = "ALTER COLUMN n TYPE bigint, ADD CONSTRAINT t_email_key UNIQUE (email)"
		key = "t_email_key (email)"
	}
	c := &testCase{name: "uniq_dup_" + strings.TrimSuffix(when, "_no_checksum"), table: "t", create: create, alter: alter}
	bin := requireOsc(t)
	admin := d.connectAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	ns, db := setupCase(ctx, t, d, admin, c)
	baseline, err := leftovers(ctx, d, db, ns, c.table, true)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	args := append(d.oscArgs(ns, c.table), "--alter", c.alter, "--execute", "--chunk-size", chunkSize)
	// Row 4000 takes row 3000's value: a duplicate the original holds from
	// then on.
	const dup = "UPDATE t SET email = 'user3000@example.com' WHERE id = 4000"
	var osc *oscProcess
	switch when {
	case "copy":
		throttle := filepath.Join(dir, "throttle")
		if err := os.WriteFile(throttle, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if osc, err = startOsc(ctx, bin, append(args, "--throttle-flag-file", throttle)); err != nil {
			t.Fatal(err)
		}
		defer osc.logOutput(t)
		defer osc.stop()
		// Capture is running once the copy is throttled: the change reaches
		// the applier, which writes row 4000 into the shadow (the copy has
		// not reached row 3000), and the copy then meets it.
		waitOutput(t, osc, "throttl")
		if _, err := db.ExecContext(ctx, dup); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		if err := os.Remove(throttle); err != nil {
			t.Fatal(err)
		}
	case "after_copy", "after_copy_no_checksum":
		if when == "after_copy_no_checksum" {
			args = append(args, "--checksum=false")
		}
		postpone := filepath.Join(dir, "postpone")
		if err := os.WriteFile(postpone, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if osc, err = startOsc(ctx, bin, append(args, "--postpone-cut-over-flag-file", postpone)); err != nil {
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
		if _, err := db.ExecContext(ctx, dup); err != nil {
			t.Fatal(err)
		}
		// The duplicate is one only if it is still there when writes are
		// blocked: the cut-over's lock finds it.
		if err := os.Remove(postpone); err != nil {
			t.Fatal(err)
		}
	}
	before, err := snapshot(ctx, d, db, ns, c.table)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-osc.done:
	case <-time.After(failureTimeout):
		t.Fatalf("osc did not fail within %v of the duplicate", failureTimeout)
	}
	if code := osc.exitCode(); code != 1 {
		t.Errorf("osc exited %d, want 1", code)
	}
	msg := osc.lastErrorLine()
	t.Logf("osc: %s", msg)
	for _, want := range []string{"duplicate the new unique key " + key, "('user3000@example.com') in 2 rows"} {
		if !strings.Contains(msg, want) {
			t.Errorf("osc's error %q lacks %q", msg, want)
		}
	}
	// The row the duplicate turned away waited aside; under the cut-over's
	// lock it still clashes. Both databases name the rows' keys alike.
	met := "with the table's writes blocked"
	if when == "copy" && !strings.Contains(msg, met) {
		met = "the copy of"
	}
	if strings.Contains(msg, met) && !strings.Contains(msg, "in 2 rows (keys (") {
		t.Errorf("osc's error %q does not name the rows' keys after their count", msg)
	}
	if !strings.Contains(msg, "(met "+met) {
		t.Errorf("osc's error %q does not say it met the duplicate %s", msg, met)
	}
	checkLeftovers(ctx, t, d, db, ns, c.table, true, baseline)
	if after, err := snapshot(ctx, d, db, ns, c.table); err != nil || after != before {
		t.Errorf("osc failed but changed table %s (err %v):\nbefore: %s\n after: %s", c.table, err, before, after)
	}
	dropCase(ctx, t, d, admin, ns)
}

// waitOutput waits until osc's output holds s (case-insensitive).
func waitOutput(t *testing.T, osc *oscProcess, s string) {
	t.Helper()
	deadline := time.Now().Add(postponeTimeout)
	for time.Now().Before(deadline) {
		osc.out.mu.Lock()
		all := strings.ToLower(osc.out.stdout.String() + osc.out.stderr.String())
		osc.out.mu.Unlock()
		if strings.Contains(all, strings.ToLower(s)) {
			return
		}
		select {
		case <-osc.done:
			t.Fatalf("osc exited before printing %q: %s", s, osc.failure())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("osc did not print %q within %v", s, postponeTimeout)
}
