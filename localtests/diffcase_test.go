package localtests

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// A diffCase is one ALTER of the differential test (differential/*.cases):
// the same clauses run as a plain ALTER TABLE on one copy of a table and
// through osc on an identical copy. See README.md, "Differential cases".
type diffCase struct {
	name  string
	line  int      // where the case starts in its file, for messages
	setup []string // statements that create and seed the namespace's objects
	alter string   // the clauses, without "ALTER TABLE t"
	args  []string // more osc flags

	// writes are the writers' templates (workload holes); nil: the generic
	// writers when the table has a single integer key; noWrites: none.
	writes   []string
	noWrites bool
	// then are statements run on both copies once both have their ALTER,
	// before they are compared: to compare what is not one exact value (a
	// now() that must be one value for all rows, say).
	then []string

	// bothRefuse: the plain ALTER fails, and osc must fail too (its message
	// containing refuseMsg, when set) leaving the table as it was.
	bothRefuse bool
	// oscRefuses: osc refuses what the server accepts, on purpose (a
	// documented limit); its message must contain refuseMsg.
	oscRefuses bool
	refuseMsg  string

	// known is why osc differs today: a known case that still differs is
	// logged, one that no longer differs fails so that the mark goes.
	known string
	// knownIf is a query whose one value says whether the known mark holds
	// on this server (a difference that shows only where the server's
	// time zone is not UTC, say); when false the case must compare equal.
	knownIf string
	// skipUnless is a query whose one value says whether the server has
	// what the case needs (a tablespace other than the default, which the
	// shared sandbox cannot have); when false the case is skipped.
	skipUnless string
}

// diffFields are the keys a case's lines may start with; a line that starts
// with none of them continues the field above it.
var diffFields = []string{"use", "setup", "more", "alter", "args", "writes", "then", "both-refuse", "osc-refuses", "known", "known-if", "skip-unless"}

var diffCaseName = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)

// parseDiffCases reads a cases file:
//
//	# a comment (a line starting with # anywhere)
//	== setup NAME          statements, ending at a line ending with ;
//	== case NAME
//	use: NAME              the named setup (default: the setup "default")
//	setup: …               statements replacing the named setup
//	more: …                statements run after the setup (may repeat)
//	alter: …               the --alter text (required; may span lines)
//	args: …                more osc flags
//	writes: none | …       no writers, or templates, one a line
//	then: …                statements run on both tables before they are compared
//	both-refuse: [text]    the server refuses; osc must fail (with text)
//	osc-refuses: text      osc refuses on purpose, saying text
//	known: reason          osc differs today, for this reason
//	known-if: query        … only where this query returns true
//	skip-unless: query     the case runs only where this query returns true
func parseDiffCases(name, text string) ([]*diffCase, error) {
	type block struct {
		kind, name string
		line       int
		fields     map[string]*strings.Builder
	}
	var blocks []*block
	var cur *block
	field := ""
	for i, l := range strings.Split(text, "\n") {
		lineNo := i + 1
		if strings.HasPrefix(l, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(l, "== "); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || (f[0] != "setup" && f[0] != "case") {
				return nil, fmt.Errorf("%s:%d: want \"== setup NAME\" or \"== case NAME\", got %q", name, lineNo, l)
			}
			if !diffCaseName.MatchString(f[1]) {
				return nil, fmt.Errorf("%s:%d: name %q: want 1 to 40 of [a-z0-9_]", name, lineNo, f[1])
			}
			cur = &block{kind: f[0], name: f[1], line: lineNo, fields: map[string]*strings.Builder{}}
			blocks = append(blocks, cur)
			field = ""
			if cur.kind == "setup" {
				field = "setup"
				cur.fields[field] = &strings.Builder{}
			}
			continue
		}
		if cur == nil {
			if strings.TrimSpace(l) != "" {
				return nil, fmt.Errorf("%s:%d: text before the first == line", name, lineNo)
			}
			continue
		}
		if cur.kind == "case" {
			if key, rest, ok := strings.Cut(l, ":"); ok && slices.Contains(diffFields, key) {
				_, dup := cur.fields[key]
				switch {
				case dup && key != "more":
					return nil, fmt.Errorf("%s:%d: case %s: %s given twice", name, lineNo, cur.name, key)
				case !dup:
					cur.fields[key] = &strings.Builder{}
				}
				field = key
				l = rest
			}
		}
		if field == "" {
			if strings.TrimSpace(l) != "" {
				return nil, fmt.Errorf("%s:%d: case %s: a line outside any field: %q", name, lineNo, cur.name, l)
			}
			continue
		}
		cur.fields[field].WriteString(l)
		cur.fields[field].WriteByte('\n')
	}

	setups := map[string][]string{}
	var cases []*diffCase
	seen := map[string]bool{}
	for _, b := range blocks {
		get := func(key string) (string, bool) {
			f, ok := b.fields[key]
			if !ok {
				return "", false
			}
			return strings.TrimSpace(f.String()), true
		}
		where := fmt.Sprintf("%s:%d: %s %s", name, b.line, b.kind, b.name)
		if seen[b.kind+" "+b.name] {
			return nil, fmt.Errorf("%s: defined twice", where)
		}
		seen[b.kind+" "+b.name] = true
		if b.kind == "setup" {
			s, _ := get("setup")
			if setups[b.name] = splitSQL(s); len(setups[b.name]) == 0 {
				return nil, fmt.Errorf("%s: no statement", where)
			}
			continue
		}
		c := &diffCase{name: b.name, line: b.line}
		use, hasUse := get("use")
		own, hasSetup := get("setup")
		switch {
		case hasUse && hasSetup:
			return nil, fmt.Errorf("%s: use and setup exclude each other", where)
		case hasSetup:
			c.setup = splitSQL(own)
		default:
			if !hasUse {
				use = "default"
			}
			s, ok := setups[use]
			if !ok {
				return nil, fmt.Errorf("%s: no setup %q above it", where, use)
			}
			c.setup = slices.Clone(s)
		}
		more, _ := get("more")
		c.setup = append(c.setup, splitSQL(more)...)
		if len(c.setup) == 0 {
			return nil, fmt.Errorf("%s: no setup statement", where)
		}
		c.alter, _ = get("alter")
		if c.alter == "" {
			return nil, fmt.Errorf("%s: alter is missing", where)
		}
		args, _ := get("args")
		c.args = strings.Fields(args)
		if w, ok := get("writes"); ok {
			if w == "none" {
				c.noWrites = true
			} else if c.writes = lines(w); c.writes == nil {
				return nil, fmt.Errorf("%s: writes: want none or templates", where)
			}
			for _, tmpl := range c.writes {
				if err := checkTemplate(tmpl); err != nil {
					return nil, fmt.Errorf("%s: %w", where, err)
				}
			}
		}
		then, _ := get("then")
		c.then = splitSQL(then)
		msg, both := get("both-refuse")
		osc, oscOnly := get("osc-refuses")
		switch {
		case both && oscOnly:
			return nil, fmt.Errorf("%s: both-refuse and osc-refuses exclude each other", where)
		case oscOnly && osc == "":
			return nil, fmt.Errorf("%s: osc-refuses needs the expected message fragment", where)
		case both:
			c.bothRefuse, c.refuseMsg = true, msg
		case oscOnly:
			c.oscRefuses, c.refuseMsg = true, osc
		}
		if c.known, _ = get("known"); strings.Contains(c.known, "\n") || (b.fields["known"] != nil && c.known == "") {
			return nil, fmt.Errorf("%s: known: want a one-line reason", where)
		}
		if c.knownIf, _ = get("known-if"); c.knownIf != "" && c.known == "" {
			return nil, fmt.Errorf("%s: known-if without known", where)
		}
		c.skipUnless, _ = get("skip-unless")
		cases = append(cases, c)
	}
	if len(cases) == 0 {
		return nil, fmt.Errorf("%s: no case", name)
	}
	return cases, nil
}

// loadDiffCases reads differential/<file>.
func loadDiffCases(file string) ([]*diffCase, error) {
	path := "differential/" + file
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseDiffCases(path, string(b))
}

// TestDifferentialCases checks, without a database, that the case files
// parse.
func TestDifferentialCases(t *testing.T) {
	for _, file := range []string{"mysql.cases", "postgres.cases"} {
		if _, err := loadDiffCases(file); err != nil {
			t.Error(err)
		}
	}
}

func TestParseDiffCases(t *testing.T) {
	text := `# header
== setup default
CREATE TABLE t (id int PRIMARY KEY, a int);
INSERT INTO t VALUES (1, 2);

== case one
alter: ALTER COLUMN a TYPE bigint
known: a reason
== case two
setup:
CREATE TABLE t (id int PRIMARY KEY);
more: CREATE INDEX ON t (id);
more: CREATE INDEX ON t (id, id);
alter: ADD COLUMN b int,
  ADD COLUMN c int
writes:
INSERT INTO t (id) VALUES ({newid})
both-refuse:
== case three
use: default
alter: DROP COLUMN a
known: r
known-if: SELECT 1
skip-unless: SELECT 2
writes: none
osc-refuses: not supported
args: --chunk-size 1
`
	cases, err := parseDiffCases("x", text)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 3 {
		t.Fatalf("%d cases, want 3", len(cases))
	}
	one, two, three := cases[0], cases[1], cases[2]
	if len(one.setup) != 2 || one.alter != "ALTER COLUMN a TYPE bigint" || one.known != "a reason" || one.bothRefuse {
		t.Errorf("case one: %+v", one)
	}
	if !slices.Equal(two.setup, []string{"CREATE TABLE t (id int PRIMARY KEY)", "CREATE INDEX ON t (id)", "CREATE INDEX ON t (id, id)"}) ||
		two.alter != "ADD COLUMN b int,\n  ADD COLUMN c int" || !two.bothRefuse || two.refuseMsg != "" ||
		!slices.Equal(two.writes, []string{"INSERT INTO t (id) VALUES ({newid})"}) {
		t.Errorf("case two: %+v", two)
	}
	if !three.noWrites || !three.oscRefuses || three.refuseMsg != "not supported" || !slices.Equal(three.args, []string{"--chunk-size", "1"}) ||
		three.known != "r" || three.knownIf != "SELECT 1" || three.skipUnless != "SELECT 2" || one.skipUnless != "" {
		t.Errorf("case three: %+v", three)
	}
	for _, bad := range []string{
		"== case x\nknown: r\n",                                   // no alter
		"== case x\nuse: nope\nalter: A\n",                        // unknown setup
		"== case x\nsetup: S;\nalter: A\nalter: B\n",              // twice
		"== case X\nsetup: S;\nalter: A\n",                        // bad name
		"== case x\nsetup: S;\nalter: A\nosc-refuses:\n",          // no message
		"== case x\nsetup: S;\nalter: A\nwrites: SELECT {nope}\n", // bad hole
		"stray\n== case x\nsetup: S;\nalter: A\n",
		"== case x\nsetup: S;\nalter: A\nknown-if: SELECT 1\n", // known-if without known
	} {
		if _, err := parseDiffCases("x", bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
