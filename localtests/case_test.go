package localtests

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testCase is one directory under mysql/ or postgres/. See README.md.
type testCase struct {
	name  string
	table string // table to migrate ("table" file, default t)

	create string   // create.sql: creates and seeds the table
	alter  string   // alter: the --alter text
	extra  []string // extra_args: more osc flags

	// expectFailure (expect_failure, one alternative per line): osc must fail
	// with an error containing one of these, case-insensitively.
	expectFailure []string

	renamed map[string]string // renamed: old column name -> new name
	ignore  map[string]bool   // ignore_columns: not compared (old or new name)

	workload []string // workload: SQL templates; nil = generic writers
	// writerPause (writer_pause, a Go duration): the longest pause between
	// two writes of one writer; 0: writerPause.
	writerPause time.Duration
	after       []string // after.sql: statements that must succeed after cut-over
	verify      []string // verify.sql: queries that must return no row at the end

	// plainAlter (plain_alter, MySQL): the old table, altered with a plain
	// ALTER TABLE after the cut-over, must equal the new one.
	plainAlter bool

	// postponed, set by Go tests (not a case file), runs once the writers
	// stopped while the cut-over is postponed (a test corrupts the shadow
	// behind osc's back there); wantLog then lists strings osc's stderr
	// must contain.
	postponed func(ctx context.Context, db *sql.DB, ns string) error
	wantLog   []string
}

// loadCases reads every case under dir, sorted by name.
func loadCases(dir string) ([]*testCase, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var cases []*testCase
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := loadCase(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		cases = append(cases, c)
	}
	return cases, nil
}

func loadCase(dir string) (*testCase, error) {
	c := &testCase{name: filepath.Base(dir), table: "t"}
	read := func(name string, required bool) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) && !required {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("case %s: %w", c.name, err)
		}
		return string(b), nil
	}
	var err error
	files := map[string]string{}
	for _, name := range []string{"create.sql", "alter", "table", "extra_args", "expect_failure", "renamed",
		"ignore_columns", "workload", "writer_pause", "after.sql", "verify.sql"} {
		required := name == "create.sql" || name == "alter"
		if files[name], err = read(name, required); err != nil {
			return nil, err
		}
	}
	c.create = files["create.sql"]
	c.alter = strings.TrimSpace(files["alter"])
	if t := strings.TrimSpace(files["table"]); t != "" {
		c.table = t
	}
	c.extra = strings.Fields(files["extra_args"])
	c.expectFailure = lines(files["expect_failure"])
	c.renamed = map[string]string{}
	for _, l := range lines(files["renamed"]) {
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, fmt.Errorf("case %s: renamed: want \"old new\", got %q", c.name, l)
		}
		c.renamed[f[0]] = f[1]
	}
	c.ignore = map[string]bool{}
	for _, col := range strings.Fields(files["ignore_columns"]) {
		c.ignore[col] = true
	}
	c.workload = lines(files["workload"])
	if p := strings.TrimSpace(files["writer_pause"]); p != "" {
		if c.writerPause, err = time.ParseDuration(p); err != nil || c.writerPause <= 0 {
			return nil, fmt.Errorf("case %s: writer_pause: want a positive Go duration (50ms), got %q", c.name, p)
		}
	}
	c.after = splitSQL(files["after.sql"])
	c.verify = splitSQL(files["verify.sql"])
	_, err = os.Stat(filepath.Join(dir, "plain_alter"))
	c.plainAlter = err == nil

	switch {
	case c.alter == "":
		return nil, fmt.Errorf("case %s: alter is empty", c.name)
	case len(splitSQL(c.create)) == 0:
		return nil, fmt.Errorf("case %s: create.sql has no statement", c.name)
	case c.expectFailure != nil && (c.workload != nil || c.after != nil || c.verify != nil || len(c.renamed) > 0 || c.plainAlter):
		return nil, fmt.Errorf("case %s: an expect_failure case has no workload, after.sql, verify.sql, renamed or plain_alter", c.name)
	}
	for _, w := range c.workload {
		if err := checkTemplate(w); err != nil {
			return nil, fmt.Errorf("case %s: workload: %w", c.name, err)
		}
	}
	return c, nil
}

// lines returns the non-empty lines of s that are not # comments, trimmed;
// nil when there is none.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// splitSQL splits a script into statements: a statement ends with a line
// whose last character is ';' (so a ';' inside a line, as in a PL/pgSQL body
// written on one line, does not split). Whole-line "--" comments are dropped.
func splitSQL(script string) []string {
	var stmts []string
	var cur strings.Builder
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			stmts = append(stmts, s)
		}
		cur.Reset()
	}
	for _, l := range strings.Split(script, "\n") {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "--") {
			continue
		}
		if before, ok := strings.CutSuffix(trimmed, ";"); ok {
			cur.WriteString(before)
			flush()
			continue
		}
		cur.WriteString(l)
		cur.WriteByte('\n')
	}
	flush()
	return stmts
}

// failureMatches reports whether msg contains one of the expected substrings,
// case-insensitively.
func failureMatches(msg string, expected []string) bool {
	msg = strings.ToLower(msg)
	return slices.ContainsFunc(expected, func(e string) bool { return strings.Contains(msg, strings.ToLower(e)) })
}

func TestSplitSQL(t *testing.T) {
	script := `-- a comment
CREATE TABLE t (
  id int PRIMARY KEY -- trailing comment
);
CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
INSERT INTO t VALUES (1)`
	got := splitSQL(script)
	want := []string{
		"CREATE TABLE t (\n  id int PRIMARY KEY -- trailing comment\n)",
		"CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
		"INSERT INTO t VALUES (1)",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("splitSQL:\n got %q\nwant %q", got, want)
	}
}

// TestCases checks that every case directory parses, without a database.
func TestCases(t *testing.T) {
	for _, dir := range []string{"mysql", "postgres"} {
		cases, err := loadCases(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(cases) == 0 {
			t.Errorf("%s: no case", dir)
		}
	}
}
