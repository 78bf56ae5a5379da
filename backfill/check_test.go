package backfill

import (
	"strings"
	"testing"
)

func TestCheckFragment(t *testing.T) {
	my := lexer{mysql: true, backslash: true}
	myNoBackslash := lexer{mysql: true}
	myANSI := lexer{mysql: true, backslash: true, ansiQuotes: true}
	pg := lexer{}
	pgOld := lexer{backslash: true} // standard_conforming_strings off
	for _, tc := range []struct {
		name   string
		l      lexer
		text   string
		forbid []string
		bad    string // "" accepted, else part of the refusal
	}{
		{"plain", my, "first_name IS NULL", nil, ""},
		{"semicolon in a string", my, "a = ';'", nil, ""},
		{"semicolon in a name", my, "`a;b` = 1", nil, ""},
		{"second statement", my, "a = 1; DROP TABLE t", nil, "';' is not accepted"},
		{"closes a parenthesis", my, "x) OR (TRUE", nil, "closes a parenthesis"},
		{"leaves one open", my, "(x", nil, "is not closed"},
		{"paren in a string", my, "a = ')'", nil, ""},
		{"escaped quote", my, `a = 'it\'s (' AND b = 1`, nil, ""},
		// Without backslash escapes, 'a\' is a whole string and the
		// parenthesis after it is real.
		{"no backslash escapes", myNoBackslash, `a = 'a\' ) OR (1=1 -- '`, nil, "closes a parenthesis"},
		{"backslash escapes", my, `a = 'a\' ) OR (1=1 -- '`, nil, ""},
		{"doubled quote", my, "a = 'it''s'", nil, ""},
		{"unclosed string", my, "a = 'x", nil, "string is not closed"},
		{"dash comment hides a paren", my, "a = 1 -- )\n", nil, ""},
		{"double minus is not a comment", my, "a = 1--1 )", nil, "closes a parenthesis"},
		{"hash comment", my, "a = 1 # )", nil, ""},
		{"executable comment", my, "a = 1 /*!) OR (1 */", nil, "executable comments"},
		{"mariadb executable comment", my, "a = 1 /*M!) OR (1 */", nil, "executable comments"},
		{"comment", my, "a = 1 /* ) */", nil, ""},
		{"unclosed comment", my, "a = 1 /* ", nil, "comment is not closed"},
		{"mysql comments do not nest", my, "a /* /* */ ) */", nil, "closes a parenthesis"},
		{"ansi quotes", myANSI, `"a)" = 1`, nil, ""},
		{"double-quoted string", my, `a = "x;"`, nil, ""},
		{"empty", my, "  ", nil, "is empty"},
		{"pg plain", pg, "first_name = split_part(full_name, ' ', 1)", nil, ""},
		{"pg standard string", pg, `a = 'a\' ) OR (1=1 -- '`, nil, "closes a parenthesis"},
		{"pg escape string", pg, `a = E'a\' ) OR (1=1'`, nil, ""},
		{"pg old strings", pgOld, `a = 'a\' ) OR (1=1'`, nil, ""},
		{"pg dollar quote", pg, "a = $$ ; ) $$", nil, ""},
		{"pg tagged dollar quote", pg, "a = $x$ $$ ; ) $x$", nil, ""},
		{"pg unclosed dollar quote", pg, "a = $x$ )", nil, "dollar-quoted string is not closed"},
		{"pg parameter", pg, "a = $1", nil, ""},
		{"pg nested comments", pg, "a /* /* ) */ ) */ = 1", nil, ""},
		{"pg double minus", pg, "a = 1--)\n", nil, ""},
		{"pg quoted name", pg, `"a;)" = 1`, nil, ""},
		{"pg set from", pg, "a = b.c FROM b", []string{"FROM", "WHERE", "RETURNING"}, "FROM is not accepted"},
		{"pg set where", pg, "a = 1 WHERE TRUE OR", []string{"FROM", "WHERE", "RETURNING"}, "WHERE is not accepted"},
		{"pg from inside parentheses", pg, "a = (SELECT max(x) FROM b)", []string{"FROM", "WHERE", "RETURNING"}, ""},
		{"pg from in a name", pg, "a = from_b", []string{"FROM", "WHERE", "RETURNING"}, ""},
		{"pg substring from", pg, "last_name = substring(full_name from position(' ' in full_name) + 1)", []string{"FROM", "WHERE", "RETURNING"}, ""},
		// A comment running to the fragment's end does not hide a
		// parenthesis left open before it.
		{"open paren before a dash comment", my, "(a = 1 -- x", nil, "is not closed"},
		{"open paren before a hash comment", my, "(a = 1 # x", nil, "is not closed"},
		{"pg open paren before a comment", pg, "a = (SELECT 1 -- x", nil, "is not closed"},
		// MariaDB starts a "--" comment before a control character,
		// DEL (0x7f) included.
		{"dash comment before DEL", my, "a = 1 --\x7f )\n", nil, ""},
		// A keyword right after a dollar-quoted string is a keyword.
		{"pg set from after a dollar quote", pg, "a = $$x$$FROM b", []string{"FROM", "WHERE", "RETURNING"}, "FROM is not accepted"},
		{"pg name after a dollar quote", pg, "a = $$x$$ || from_b", []string{"FROM", "WHERE", "RETURNING"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.l.checkFragment("--x", tc.text, tc.forbid...)
			switch {
			case tc.bad == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.bad != "" && err == nil:
				t.Errorf("accepted, want a refusal with %q", tc.bad)
			case tc.bad != "" && !strings.Contains(err.Error(), tc.bad):
				t.Errorf("refused with %v, want %q", err, tc.bad)
			}
		})
	}
}

func TestMySQLParserShape(t *testing.T) {
	p, err := newMySQLParser("STRICT_TRANS_TABLES,NO_AUTO_VALUE_ON_ZERO")
	if err != nil {
		t.Fatal(err)
	}
	update := func(set, where string) string {
		return "UPDATE `s`.`t` FORCE INDEX (`PRIMARY`) SET " + set + "\nWHERE (`id` > ? AND `id` <= ?) AND (" + where + "\n)"
	}
	for _, tc := range []struct {
		set, where string
		ok         bool
	}{
		{"a = SUBSTRING_INDEX(b, ' ', 1)", "a IS NULL", true},
		{"a = 1", "x) OR (TRUE", false},
		{"a = 1", "1 = 1; DROP TABLE t", false},
		{"a = 1 WHERE TRUE OR TRUE", "TRUE", false},
		{"a = ';'", "b = ')'", true},
		// The key the backfill walks by is not the SET's to move.
		{"a = 1, ID = id + 1", "TRUE", false},
		{"`t`.`id` = 2", "TRUE", false},
		{"a = id + 1", "TRUE", true},
	} {
		if err := p.checkUpdate(update(tc.set, tc.where), []string{"id"}); (err == nil) != tc.ok {
			t.Errorf("--set %q --where %q: %v, want ok=%v", tc.set, tc.where, err, tc.ok)
		}
	}
	verify := func(v string) string { return "SELECT COUNT(*) FROM `s`.`t` WHERE NOT COALESCE((" + v + "\n), FALSE)" }
	if err := p.checkVerify(verify("a = b")); err != nil {
		t.Errorf("--verify a = b: %v", err)
	}
	if err := p.checkVerify(verify("a), TRUE) OR NOT COALESCE((TRUE")); err == nil {
		t.Error("--verify that reaches outside its parentheses accepted")
	}
	// The session's NO_BACKSLASH_ESCAPES changes where a string ends.
	nb, err := newMySQLParser("NO_BACKSLASH_ESCAPES")
	if err != nil {
		t.Fatal(err)
	}
	if err := nb.checkUpdate(update("a = 1", `b = 'x\' ) OR (TRUE OR '`), []string{"id"}); err == nil {
		t.Error("a --where that escapes under NO_BACKSLASH_ESCAPES accepted")
	}
}

func TestPgSetTargets(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"first_name = split_part(full_name, ' ', 1), last_name = 'a,b'", "first_name last_name"},
		{`"Id" = 1, ID = 2`, "Id id"},
		{"/* c */ a.f = 1, -- c\n b[1] = 2", "a b"},
		{`(a, "B"[1], c.f) = (1, 2, 3), d = (SELECT 1, 2)`, "a B c d"},
		{"(a, b) = (SELECT x, y FROM t)", "a b"},
	} {
		items, err := lexer{}.items("--set", tc.set)
		if err != nil {
			t.Fatalf("%q: %v", tc.set, err)
		}
		if got := strings.Join(pgSetTargets(items), " "); got != tc.want {
			t.Errorf("%q assigns %q, want %q", tc.set, got, tc.want)
		}
	}
}
