package localtests

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestNewUniqueTransientAtChecksum: a value of the new unique key that the
// original holds twice when the checksum blocks writes, and no longer when
// the cut-over does. A plain ALTER TABLE … ADD UNIQUE run at the cut-over's
// instant succeeds, so must osc. The on-before-checksum hook gives row 4000
// row 3000's email (committed before the checksum's lock), the
// on-before-cut-over hook gives it its own back; the table must end with
// every row as it was, and the new key.
//
// On branch uniq the checksum's drain restores with final set
// (engine.drainLocked), finds row 4000 still aside and fails the run with
// a DuplicateError, although the cut-over would not have met the
// duplicate. Fixing it means a checksum that compares the shadow and the
// aside table together with the original (and a recopy that leaves the
// keys aside alone), so that only the cut-over's restore is final.
func TestNewUniqueTransientAtChecksum(t *testing.T) {
	t.Skip("defect: the checksum's lock fails the run on a duplicate the cut-over would not meet (see the comment)")
	d := mysqlDialect{}
	c := &testCase{name: "uniq_ck_transient", table: "t",
		create: `CREATE TABLE t (id INT NOT NULL PRIMARY KEY, email VARCHAR(60) NULL, n INT NOT NULL) ENGINE=InnoDB;
INSERT INTO t SELECT seq, CONCAT('user', seq, '@example.com'), seq FROM seq_1_to_5000;
CREATE TABLE ref SELECT * FROM t;`,
		alter: "ADD UNIQUE KEY uq_email (email)"}
	bin := requireOsc(t)
	admin := d.connectAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	ns, db := setupCase(ctx, t, d, admin, c)
	dir := t.TempDir()
	hook := func(name, stmt string) {
		script := "#!/bin/sh\nexec mysql -h'" + env("OSC_MYSQL_HOST", "127.0.0.1") + "' -P'" + env("OSC_MYSQL_PORT", "13306") +
			"' -u'" + env("OSC_MYSQL_USER", "root") + "' '" + ns + "' -e \"" + stmt + "\"\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hook("on-before-checksum", "UPDATE t SET email = 'user3000@example.com' WHERE id = 4000")
	hook("on-before-cut-over", "UPDATE t SET email = 'user4000@example.com' WHERE id = 4000")
	args := append(d.oscArgs(ns, c.table), "--alter", c.alter, "--execute", "--chunk-size", chunkSize, "--hooks-path", dir)
	osc, err := startOsc(ctx, bin, args)
	if err != nil {
		t.Fatal(err)
	}
	defer osc.logOutput(t)
	defer osc.stop()
	select {
	case <-osc.done:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if code := osc.exitCode(); code != 0 {
		t.Fatalf("osc exited %d: %s", code, osc.lastErrorLine())
	}
	var rows, same int
	if err := db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM t),
		(SELECT COUNT(*) FROM t JOIN ref ON t.id = ref.id AND t.email <=> ref.email AND t.n = ref.n)`).Scan(&rows, &same); err != nil {
		t.Fatal(err)
	}
	if rows != 5000 || same != 5000 {
		t.Errorf("t has %d rows, %d of them as they were; want 5000, all", rows, same)
	}
	var key string
	if err := db.QueryRowContext(ctx, `SELECT INDEX_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' AND NON_UNIQUE = 0 AND INDEX_NAME = 'uq_email'`).Scan(&key); err != nil {
		t.Errorf("t lacks the new unique key uq_email: %v", err)
	}
	dropCase(ctx, t, d, admin, ns)
}
