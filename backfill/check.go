package backfill

import (
	"fmt"
	"strings"
)

// lexer is how a database splits SQL text into literals, quoted names,
// comments and the rest, as far as checkFragment needs: where a string,
// quoted name or comment starts and ends. It must agree with the server
// exactly: a character the check takes for part of a literal is one the
// server must take so too.
type lexer struct {
	mysql bool
	// backslash: a backslash escapes the next character in '…' strings
	// (MySQL without NO_BACKSLASH_ESCAPES; PostgreSQL with
	// standard_conforming_strings off). PostgreSQL's E'…' always does.
	backslash bool
	// ansiQuotes (MySQL ANSI_QUOTES): "…" is a quoted name, not a string
	// (a backslash then escapes nothing in it).
	ansiQuotes bool
}

// checkFragment refuses an expression that could reach outside the place
// osc puts it in a statement: a ';' (a second statement), a ')' closing a
// parenthesis the fragment did not open, a parenthesis, string, quoted
// name or comment left open, a MySQL executable comment (/*! … */, /*M! …
// */, whose text the server runs), or one of the keywords forbidden at its
// top level (outside any parenthesis). what names the flag.
func (l lexer) checkFragment(what, text string, forbidden ...string) error {
	_, err := l.items(what, text, forbidden...)
	return err
}

// items checks text as checkFragment does and splits it at the commas
// outside any parenthesis, string, quoted name or comment: a SET list's
// assignments.
func (l lexer) items(what, text string, forbidden ...string) ([]string, error) {
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("%s is empty", what)
	}
	bad := func(format string, args ...any) ([]string, error) {
		return nil, fmt.Errorf("%s %q: %s", what, text, fmt.Sprintf(format, args...))
	}
	var items []string
	from := 0 // where the current item starts
	depth := 0
	// litEnd is where the last string, quoted name or comment ended: a
	// word may start right there, after a dollar quote's closing '$' too.
	litEnd := -1
	wordStart := func(i int) bool { return i == 0 || i == litEnd || !identChar(text[i-1]) }
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\'':
			// PostgreSQL: E'…' (the E not ending a longer name) is an
			// escape string.
			escape := !l.mysql && i > 0 && (text[i-1] == 'E' || text[i-1] == 'e') && wordStart(i-1)
			end, ok := l.quoted(text, i, '\'', l.backslash || escape)
			if !ok {
				return bad("a string is not closed")
			}
			i, litEnd = end, end
			continue
		case c == '"':
			end, ok := l.quoted(text, i, '"', l.mysql && !l.ansiQuotes && l.backslash)
			if !ok {
				return bad("a quoted name or string is not closed")
			}
			i, litEnd = end, end
			continue
		case c == '`' && l.mysql:
			end, ok := l.quoted(text, i, '`', false)
			if !ok {
				return bad("a quoted name is not closed")
			}
			i, litEnd = end, end
			continue
		case c == '$' && !l.mysql && wordStart(i):
			if tag, ok := pgDollarTag(text[i:]); ok {
				end := strings.Index(text[i+len(tag):], tag)
				if end < 0 {
					return bad("a dollar-quoted string is not closed")
				}
				i += len(tag) + end + len(tag)
				litEnd = i
				continue
			}
		case c == '-' && strings.HasPrefix(text[i:], "--") && (!l.mysql || i+2 == len(text) || text[i+2] <= ' ' || text[i+2] == 0x7f),
			c == '#' && l.mysql:
			// MySQL: "--" starts a comment only before a space or a
			// control character (DEL too, for MariaDB). The comment runs
			// to the end of the line, or of the fragment (osc ends every
			// fragment with a newline): a parenthesis open before it is
			// still open.
			end := strings.IndexByte(text[i:], '\n')
			if end < 0 {
				end = len(text) - i
			}
			i += end
			continue
		case c == '/' && strings.HasPrefix(text[i:], "/*"):
			if l.mysql && (strings.HasPrefix(text[i:], "/*!") || strings.HasPrefix(text[i:], "/*M!")) {
				return bad("executable comments (/*! … */) are not accepted")
			}
			end, ok := l.comment(text, i)
			if !ok {
				return bad("a comment is not closed")
			}
			i, litEnd = end, end
			continue
		case c == ',' && depth == 0:
			items = append(items, text[from:i])
			from = i + 1
		case c == ';':
			return bad("one expression, not statements: ';' is not accepted outside strings")
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				return bad("a ')' closes a parenthesis the expression did not open")
			}
		case depth == 0 && identStart(c) && wordStart(i):
			j := i
			for j < len(text) && identChar(text[j]) {
				j++
			}
			word := strings.ToUpper(text[i:j])
			for _, f := range forbidden {
				if word == f {
					return bad("%s is not accepted here", f)
				}
			}
			i = j
			continue
		}
		i++
	}
	if depth != 0 {
		return bad("a '(' is not closed")
	}
	return append(items, text[from:]), nil
}

// quoted returns the index after the quoted text starting at text[i] (a
// quote q), where a doubled q stands for itself and, with backslash, a
// backslash escapes the next character.
func (l lexer) quoted(text string, i int, q byte, backslash bool) (int, bool) {
	for j := i + 1; j < len(text); j++ {
		switch text[j] {
		case '\\':
			if backslash {
				j++
			}
		case q:
			if j+1 < len(text) && text[j+1] == q {
				j++
				continue
			}
			return j + 1, true
		}
	}
	return 0, false
}

// comment returns the index after the comment starting at text[i] ("/*"):
// PostgreSQL's nest, MySQL's do not.
func (l lexer) comment(text string, i int) (int, bool) {
	depth := 0
	for j := i; j+1 < len(text); j++ {
		switch {
		case text[j] == '/' && text[j+1] == '*' && (depth == 0 || !l.mysql):
			depth++
			j++
		case text[j] == '*' && text[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1, true
			}
		}
	}
	return 0, false
}

// pgDollarTag returns the opening tag of a dollar-quoted string at the
// start of s ($$ or $name$), if there is one.
func pgDollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '$':
			return s[:j+1], true
		case j == 1 && !identStart(c), !identChar(c):
			return "", false
		}
	}
	return "", false
}

func identStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func identChar(c byte) bool { return identStart(c) || c >= '0' && c <= '9' || c == '$' }

// pgSetTargets returns the columns a PostgreSQL SET list's items (items)
// assign: "col = …", "col.field = …", "col[i] = …" or "(col, …) = …", each
// name as the server folds it (unquoted: ASCII lower case).
func pgSetTargets(items []string) []string {
	var out []string
	for _, it := range items {
		s := pgSkipSpace(it)
		if !strings.HasPrefix(s, "(") {
			if name, _ := pgName(s); name != "" {
				out = append(out, name)
			}
			continue
		}
		s = s[1:]
		for {
			name, rest := pgName(pgSkipSpace(s))
			if name != "" {
				out = append(out, name)
			}
			// Past the name's indirection (.field, [i]) to the next ',' or
			// the list's ')'.
			depth, next := 0, -1
			for j := 0; j < len(rest) && next < 0; j++ {
				switch c := rest[j]; {
				case c == '(' || c == '[':
					depth++
				case (c == ')' || c == ']') && depth > 0:
					depth--
				case (c == ',' || c == ')') && depth == 0:
					next = j
				}
			}
			if next < 0 || rest[next] == ')' {
				break
			}
			s = rest[next+1:]
		}
	}
	return out
}

// pgSkipSpace skips white space and comments.
func pgSkipSpace(s string) string {
	for {
		t := strings.TrimLeft(s, " \t\r\n\f\v")
		switch {
		case strings.HasPrefix(t, "--"):
			end := strings.IndexByte(t, '\n')
			if end < 0 {
				return ""
			}
			t = t[end:]
		case strings.HasPrefix(t, "/*"):
			end, ok := lexer{}.comment(t, 0)
			if !ok {
				return ""
			}
			t = t[end:]
		default:
			return t
		}
		s = t
	}
}

// pgName reads the name at the start of s, quoted or not, and returns it as
// the server folds it ("" when s does not start with one), and what follows.
func pgName(s string) (string, string) {
	if strings.HasPrefix(s, `"`) {
		end, ok := lexer{}.quoted(s, 0, '"', false)
		if !ok {
			return "", s
		}
		return strings.ReplaceAll(s[1:end-1], `""`, `"`), s[end:]
	}
	j := 0
	for j < len(s) && (identChar(s[j]) && (j > 0 || identStart(s[j]))) {
		j++
	}
	var b strings.Builder
	for _, c := range []byte(s[:j]) {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String(), s[j:]
}
