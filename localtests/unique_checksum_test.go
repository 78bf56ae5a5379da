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
// The checksum's lock restores without final (engine.verify) and compares
// the original with the shadow and the rows aside together: row 3000 waits
// aside while the checksum runs, and only the cut-over's final restore
// decides (README, "Why nothing is lost", steps 5 and 9).
func TestNewUniqueTransientAtChecksum(t *testing.T) {
	bin := requireOsc(t)
	for _, tc := range []struct {
		d      dialect
		create string
		alter  string
		// hook is the script running one statement in the case's
		// namespace.
		hook func(ns, stmt string) string
	}{{
		d: mysqlDialect{},
		create: `CREATE TABLE t (id INT NOT NULL PRIMARY KEY, email VARCHAR(60) NULL, n INT NOT NULL) ENGINE=InnoDB;
INSERT INTO t SELECT seq, CONCAT('user', seq, '@example.com'), seq FROM seq_1_to_5000;
CREATE TABLE ref SELECT * FROM t;`,
		alter: "ADD UNIQUE KEY uq_email (email)",
		hook: func(ns, stmt string) string {
			return "exec mysql -h'" + env("OSC_MYSQL_HOST", "127.0.0.1") + "' -P'" + env("OSC_MYSQL_PORT", "13306") +
				"' -u'" + env("OSC_MYSQL_USER", "root") + "' '" + ns + "' -e \"" + stmt + "\""
		},
	}, {
		d: pgDialect{dsn: pgDSN()},
		create: `CREATE TABLE t (id int NOT NULL PRIMARY KEY, email varchar(60) NULL, n int NOT NULL);
INSERT INTO t SELECT g, 'user' || g || '@example.com', g FROM generate_series(1, 5000) AS g;
CREATE TABLE ref AS SELECT * FROM t;`,
		// A second clause: an ADD UNIQUE alone runs natively.
		alter: "ADD CONSTRAINT uq_email UNIQUE (email), ADD COLUMN extra int",
		hook: func(ns, stmt string) string {
			return "PGOPTIONS='-c search_path=" + ns + "' exec psql -v ON_ERROR_STOP=1 '" + pgDSN() + "' -c \"" + stmt + "\""
		},
	}} {
		t.Run(tc.d.dir(), func(t *testing.T) {
			d := tc.d
			c := &testCase{name: "uniq_ck_transient", table: "t", create: tc.create, alter: tc.alter}
			admin := d.connectAdmin(t)
			ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
			defer cancel()
			ns, db := setupCase(ctx, t, d, admin, c)
			dir := t.TempDir()
			hook := func(name, stmt string) {
				if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+tc.hook(ns, stmt)+"\n"), 0o755); err != nil {
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
				(SELECT COUNT(*) FROM t JOIN ref ON t.id = ref.id AND t.email = ref.email AND t.n = ref.n)`).Scan(&rows, &same); err != nil {
				t.Fatal(err)
			}
			if rows != 5000 || same != 5000 {
				t.Errorf("t has %d rows, %d of them as they were; want 5000, all", rows, same)
			}
			var unique bool
			q := `SELECT EXISTS (SELECT 1 FROM information_schema.STATISTICS
				WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' AND NON_UNIQUE = 0 AND INDEX_NAME = 'uq_email')`
			if _, ok := d.(pgDialect); ok {
				q = `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 't'::regclass AND conname = 'uq_email' AND contype = 'u')`
			}
			if err := db.QueryRowContext(ctx, q).Scan(&unique); err != nil || !unique {
				t.Errorf("t lacks the new unique key uq_email (%v)", err)
			}
			if !osc.logged("checksum: the shadow equals the table") {
				t.Errorf("osc did not compare the tables before the cut-over")
			}
			dropCase(ctx, t, d, admin, ns)
		})
	}
}
