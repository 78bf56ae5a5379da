package main

import (
	"bytes"
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"testing"

	"osc/internal/testdb"
)

// verifyRun runs osc with args in-process and returns its exit status and
// outputs.
func verifyRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = exitCode(run(args, &out, &errOut), &errOut)
	return code, out.String(), errOut.String()
}

// verifyCheck runs osc verify and checks its exit status and that its
// output has each of want.
func verifyCheck(t *testing.T, args []string, code int, want ...string) {
	t.Helper()
	got, stdout, stderr := verifyRun(t, append([]string{"verify"}, args...)...)
	all := stdout + stderr
	if got != code {
		t.Errorf("%q: exit %d, want %d\n%s", args, got, code, all)
	}
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("%q: output lacks %q:\n%s", args, w, all)
		}
	}
}

// The equal pair and the corruptions of each test: the verified table t
// has a wider type (bigint) for n, a column of its own (extra) and lacks
// the other's (gone); both have a generated column.
var verifyCorruptions = []struct {
	name, sql string
	want      []string
}{
	{"changed value", "UPDATE t SET v = 'x' WHERE id = 1234",
		[]string{`key (id=1234): column "v" differs: %[1]s.o "v1234", %[1]s.t "x"`, "different: 1 of 3 chunks differ"}},
	{"changed wider value", "UPDATE t SET n = 5000000000 WHERE id = 7",
		[]string{`key (id=7): column "n" differs: %[1]s.o 14, %[1]s.t 5000000000`}},
	{"missing row", "DELETE FROM t WHERE id = 12000",
		[]string{"key (id=12000) is missing from %[1]s.t"}},
	{"extra row", "INSERT INTO t (id, v, n) VALUES (30000, 'new', 1)",
		[]string{"key (id=30000) is in %[1]s.t but not in %[1]s.o"}},
}

func mysqlVerifyArgs(t *testing.T, db string) []string {
	s := testdb.MySQL(t)
	return []string{"--host", s.Host, "--port", strconv.Itoa(s.Port), "--user", s.User, "--password", s.Password, "--database", db}
}

func mysqlVerifyDB(t *testing.T, name string) *sql.DB {
	t.Helper()
	s := testdb.MySQL(t)
	root := testdb.OpenMySQL(t, s.Config(t, ""))
	testdb.ExecMySQL(t, root, "DROP DATABASE IF EXISTS "+name)
	testdb.ExecMySQL(t, root, "CREATE DATABASE "+name)
	t.Cleanup(func() { _, _ = root.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name) })
	return testdb.OpenMySQL(t, s.Config(t, name))
}

// TestVerifyMySQL: equal tables are equal despite a type change and columns
// of one side; each corruption is reported with its key and column; a
// table without the key is refused.
func TestVerifyMySQL(t *testing.T) {
	const name = "vfy_verify"
	db := mysqlVerifyDB(t, name)
	args := append(mysqlVerifyArgs(t, name), "--table", "t", "--against", "o")
	reset := func() {
		testdb.ExecMySQL(t, db, "DROP TABLE IF EXISTS o, t, nokey")
		testdb.ExecMySQL(t, db, "CREATE TABLE o (id INT PRIMARY KEY, v VARCHAR(20), n INT, gone INT, g INT AS (n + 1) VIRTUAL)")
		testdb.ExecMySQL(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), n BIGINT, extra INT DEFAULT 5, g BIGINT AS (n + 1) VIRTUAL)")
		testdb.ExecMySQL(t, db, "INSERT INTO o (id, v, n, gone) SELECT seq, CONCAT('v', seq), seq * 2, 1 FROM seq_1_to_25000")
		testdb.ExecMySQL(t, db, "INSERT INTO t (id, v, n) SELECT id, v, n FROM o")
	}
	reset()
	verifyCheck(t, args, 0, "not compared: column gone (only in "+name+".o)", "not compared: column extra (only in "+name+".t)",
		"not compared: generated column g", "equal: 25000 rows in 3 chunks")
	for _, c := range verifyCorruptions {
		t.Run(c.name, func(t *testing.T) {
			reset()
			testdb.ExecMySQL(t, db, c.sql)
			want := make([]string, len(c.want))
			for i, w := range c.want {
				want[i] = sprintf(w, name)
			}
			verifyCheck(t, append(args, "--checksum-threads", "3", "--chunk-size", "10000"), 1, want...)
		})
	}
	t.Run("max diffs", func(t *testing.T) {
		reset()
		testdb.ExecMySQL(t, db, "UPDATE t SET v = 'x' WHERE id IN (1, 2, 3, 20001)")
		verifyMaxDiffs(t, args)
	})
	t.Run("no key", func(t *testing.T) {
		testdb.ExecMySQL(t, db, "CREATE TABLE nokey (id INT, v VARCHAR(20))")
		verifyCheck(t, append(mysqlVerifyArgs(t, name), "--table", "t", "--against", "nokey"), 1,
			"osc: error: table "+name+".nokey has no PRIMARY KEY or UNIQUE key on NOT NULL columns (id), the key of "+name+".t")
	})
}

// verifyMaxDiffs checks that a chunk's differences all show, in key order,
// up to --max-diffs, with ids 1, 2, 3 and 20001 changed.
func verifyMaxDiffs(t *testing.T, args []string) {
	t.Helper()
	for most, ids := range map[string][]string{"3": {"1", "2", "3"}, "20": {"1", "2", "3", "20001"}} {
		_, stdout, _ := verifyRun(t, append([]string{"verify"}, append(args, "--max-diffs", most)...)...)
		var shown []string
		for _, l := range strings.Split(stdout, "\n") {
			if id, ok := strings.CutPrefix(l, "key (id="); ok {
				shown = append(shown, strings.SplitN(id, ")", 2)[0])
			}
		}
		if !slices.Equal(shown, ids) || !strings.Contains(stdout, "different: 2 of 3 chunks differ") {
			t.Errorf("--max-diffs %s: keys %q shown, want %q:\n%s", most, shown, ids, stdout)
		}
	}
}

func sprintf(format, name string) string {
	return strings.ReplaceAll(format, "%[1]s", name)
}

func pgVerifyArgs() []string { return []string{"--dsn", testdb.PostgresDSN()} }

// TestVerifyPostgres is TestVerifyMySQL on PostgreSQL.
func TestVerifyPostgres(t *testing.T) {
	const schema = "vfy_verify"
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	testdb.ResetPostgresSchema(t, pool, schema)
	args := append(pgVerifyArgs(), "--table", schema+".t", "--against", "o")
	reset := func() {
		testdb.ExecPostgresIn(t, pool, schema, "DROP TABLE IF EXISTS o, t, nokey",
			"CREATE TABLE o (id int PRIMARY KEY, v text, n int, gone int, g int GENERATED ALWAYS AS (n + 1) STORED)",
			"CREATE TABLE t (id int PRIMARY KEY, v text, n bigint, extra int DEFAULT 5, g bigint GENERATED ALWAYS AS (n + 1) STORED)",
			"INSERT INTO o (id, v, n, gone) SELECT i, 'v' || i, i * 2, 1 FROM generate_series(1, 25000) i",
			"INSERT INTO t (id, v, n) SELECT id, v, n FROM o")
	}
	reset()
	verifyCheck(t, args, 0, "not compared: column gone (only in "+schema+".o)", "not compared: column extra (only in "+schema+".t)",
		"not compared: generated column g", "equal: 25000 rows in 3 chunks")
	for _, c := range verifyCorruptions {
		t.Run(c.name, func(t *testing.T) {
			reset()
			testdb.ExecPostgresIn(t, pool, schema, c.sql)
			want := make([]string, len(c.want))
			for i, w := range c.want {
				// PostgreSQL's differences quote every value.
				w = strings.NewReplacer(".o 14,", `.o "14",`, ".t 5000000000", `.t "5000000000"`).Replace(w)
				want[i] = sprintf(w, schema)
			}
			verifyCheck(t, append(args, "--checksum-threads", "3", "--chunk-size", "10000"), 1, want...)
		})
	}
	t.Run("max diffs", func(t *testing.T) {
		reset()
		testdb.ExecPostgresIn(t, pool, schema, "UPDATE t SET v = 'x' WHERE id IN (1, 2, 3, 20001)")
		verifyMaxDiffs(t, args)
	})
	t.Run("no key", func(t *testing.T) {
		testdb.ExecPostgresIn(t, pool, schema, "CREATE TABLE nokey (id int, v text)")
		verifyCheck(t, append(pgVerifyArgs(), "--table", schema+".t", "--against", "nokey"), 1,
			"osc: error: table "+schema+".nokey has no PRIMARY KEY or UNIQUE key on NOT NULL columns (id), the key of "+schema+".t")
	})
}

// TestVerifyAfterMigration: the old table a migration keeps verifies equal
// to the migrated one, and a change to either after the fact shows.
func TestVerifyAfterMigration(t *testing.T) {
	t.Run("mysql", func(t *testing.T) {
		const name = "vfy_migrated"
		db := mysqlVerifyDB(t, name)
		testdb.ExecMySQL(t, db, "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20), n INT, d INT)")
		testdb.ExecMySQL(t, db, "INSERT INTO t (v, n, d) SELECT CONCAT('v', seq), seq, seq FROM seq_1_to_5000")
		if code, stdout, stderr := verifyRun(t, append(mysqlVerifyArgs(t, name), "--table", "t", "--execute",
			"--alter", "MODIFY n BIGINT, DROP COLUMN d, ADD COLUMN e INT DEFAULT 3")...); code != 0 {
			t.Fatalf("migration: exit %d\n%s%s", code, stdout, stderr)
		}
		args := append(mysqlVerifyArgs(t, name), "--table", "t", "--against", "t_osc_old")
		verifyCheck(t, args, 0, "not compared: column d (only in "+name+".t_osc_old)", "equal: 5000 rows")
		testdb.ExecMySQL(t, db, "UPDATE t SET n = 0 WHERE id = 42")
		verifyCheck(t, args, 1, `key (id=42): column "n" differs`)
	})
	t.Run("postgres", func(t *testing.T) {
		const schema = "vfy_migrated"
		pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
		testdb.ResetPostgresSchema(t, pool, schema)
		testdb.ExecPostgresIn(t, pool, schema, "CREATE TABLE t (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v text, n int, d int)",
			"INSERT INTO t (v, n, d) SELECT 'v' || i, i, i FROM generate_series(1, 5000) i")
		if code, stdout, stderr := verifyRun(t, append(pgVerifyArgs(), "--table", schema+".t", "--execute",
			"--alter", "ALTER COLUMN n TYPE bigint, DROP COLUMN d, ADD COLUMN e int DEFAULT 3")...); code != 0 {
			t.Fatalf("migration: exit %d\n%s%s", code, stdout, stderr)
		}
		args := append(pgVerifyArgs(), "--table", schema+".t", "--against", "_t_old")
		verifyCheck(t, args, 0, "not compared: column d (only in "+schema+"._t_old)", "equal: 5000 rows")
		testdb.ExecPostgresIn(t, pool, schema, "UPDATE t SET n = 0 WHERE id = 42")
		verifyCheck(t, args, 1, `key (id=42): column "n" differs`)
	})
}

// TestVerifyUsage: osc verify's command line errors exit 2, --help 0.
func TestVerifyUsage(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		output string
	}{
		{[]string{"verify", "--help"}, 0, "osc verify --host H --user U --database D --table T --against OTHER"},
		{[]string{"verify", "--table", "t"}, 2, "osc: --against is required (see --help)\n"},
		{[]string{"verify", "--against", "o"}, 2, "osc: --table is required (see --help)\n"},
		{[]string{"verify", "--table", "t", "--against", "o", "--user", "u"}, 2, "--database is required"},
		{[]string{"verify", "--table", "t", "--against", "o", "--dsn", "x", "--max-diffs", "-1"}, 2, "--max-diffs must be 0 or more"},
		{[]string{"verify", "--bogus"}, 2, "unknown flag: --bogus"},
	} {
		code, stdout, stderr := verifyRun(t, tc.args...)
		if code != tc.code || !strings.Contains(stdout+stderr, tc.output) {
			t.Errorf("%q: exit %d, output %q; want exit %d and %q", tc.args, code, stdout+stderr, tc.code, tc.output)
		}
	}
}
