package table

import (
	"fmt"
	"strings"
)

// The --alter of a MySQL/MariaDB migration is judged by the server: osc runs
// it on the shadow table as given and reads the result back from the catalog.
// What the result cannot tell (which column a CHANGE or RENAME COLUMN renamed,
// which column a DROP COLUMN dropped before an ADD COLUMN reused its name) is
// read from the text with the small tokenizer below. It knows the lexical
// rules of MariaDB's SQL (quotes, backticks, comments, parentheses), not its
// grammar: it splits the clause list at the top-level commas and reads only
// the few clauses osc needs, by their leading keywords.

// sqlTokenKind classifies a token of the --alter.
type sqlTokenKind int

const (
	tokWord   sqlTokenKind = iota // unquoted keyword, identifier or number
	tokQuoted                     // `identifier` or "identifier or string"
	tokString                     // 'string'
	tokPunct                      // any other character: , ( ) ; = . + ...
)

type sqlToken struct {
	kind     sqlTokenKind
	text     string // a word as written, a quoted token's unquoted value, the punctuation character
	pos, end int    // byte offsets of the token's start and end in the text
}

// sqlLexMode is what the session's sql_mode changes in how the server reads
// quotes.
type sqlLexMode struct {
	noBackslashEscapes bool // NO_BACKSLASH_ESCAPES: a backslash in a string is itself
	ansiQuotes         bool // ANSI_QUOTES: "…" is an identifier, without backslash escapes
}

// lexModeOf reads the flags of a sql_mode value (as @@sql_mode shows it, with
// combination modes such as ANSI expanded).
func lexModeOf(sqlMode string) sqlLexMode {
	var m sqlLexMode
	for _, f := range strings.Split(strings.ToUpper(sqlMode), ",") {
		switch strings.TrimSpace(f) {
		case "NO_BACKSLASH_ESCAPES":
			m.noBackslashEscapes = true
		case "ANSI_QUOTES":
			m.ansiQuotes = true
		}
	}
	return m
}

// is reports whether t is the unquoted keyword kw (upper case), in any case
// of its ASCII letters: Unicode folding would take "\u212Aey" (with a Kelvin
// sign), which the server reads as a name, for KEY.
func (t sqlToken) is(kw string) bool {
	return t.kind == tokWord && sameName(t.text, kw)
}

// isPunct reports whether t is the punctuation character p.
func (t sqlToken) isPunct(p string) bool {
	return t.kind == tokPunct && t.text == p
}

// ident returns the identifier t names: an unquoted word or a quoted name.
func (t sqlToken) ident() (string, bool) {
	switch t.kind {
	case tokWord:
		return t.text, true
	case tokQuoted:
		return t.text, t.text != ""
	}
	return "", false
}

// tokenizeMySQL splits text into tokens, dropping whitespace and comments;
// quotes are read as the server reads them under mode. It refuses an
// executable comment (/*! … */, /*M! … */): the server runs its content,
// which osc would have to read as code too.
func tokenizeMySQL(text string, mode sqlLexMode) ([]sqlToken, error) {
	var toks []sqlToken
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '#':
			i = skipLine(text, i)
		case c == '-' && strings.HasPrefix(text[i:], "--") && (i+2 == len(text) || isSQLSpace(text[i+2]) || isSQLControl(text[i+2])):
			// The server's rule (sql_lex.cc, MY_LEX_MINUS_OR_COMMENT):
			// "--" then a space or a control character starts a comment.
			i = skipLine(text, i)
		case isSQLControl(c):
			// The server reads no other control character outside quotes
			// as code, and a NUL would end a comment early.
			return nil, fmt.Errorf("--alter holds a control character (byte 0x%02x) outside quotes at %q: remove it", c, excerpt(text, i))
		case c == '/' && strings.HasPrefix(text[i:], "/*"):
			if strings.HasPrefix(text[i:], "/*!") || strings.HasPrefix(text[i:], "/*M!") {
				return nil, fmt.Errorf("--alter holds an executable comment (/*! … */) at %q; "+
					"the server runs its content: write the clauses without the comment markers", excerpt(text, i))
			}
			end := strings.Index(text[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("--alter has a syntax error: an unterminated comment at %q", excerpt(text, i))
			}
			i += 2 + end + 2
		case c == '`' || c == '"' || c == '\'':
			escapes := !mode.noBackslashEscapes && (c == '\'' || c == '"' && !mode.ansiQuotes)
			s, next, ok := readQuoted(text, i, escapes)
			if !ok {
				return nil, fmt.Errorf("--alter has a syntax error: an unterminated %c quote at %q", c, excerpt(text, i))
			}
			kind := tokQuoted
			if c == '\'' {
				kind = tokString
			}
			toks = append(toks, sqlToken{kind: kind, text: s, pos: i, end: next})
			i = next
		case isWordByte(c):
			j := i
			for j < len(text) && isWordByte(text[j]) {
				j++
			}
			toks = append(toks, sqlToken{kind: tokWord, text: text[i:j], pos: i, end: j})
			i = j
		default:
			toks = append(toks, sqlToken{kind: tokPunct, text: string(c), pos: i, end: i + 1})
			i++
		}
	}
	return toks, nil
}

func isSQLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// isWordByte: letters, digits, _ and $ make unquoted identifiers, keywords and
// numbers; so do the bytes of multi-byte UTF-8 characters.
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
}

// isSQLControl reports whether c is an ASCII control character other than
// whitespace.
func isSQLControl(c byte) bool {
	return (c < 0x20 || c == 0x7f) && !isSQLSpace(c)
}

// skipLine skips a -- or # comment: the server ends it at a newline, or at
// a NUL byte, which the tokenizer then refuses.
func skipLine(text string, i int) int {
	for j := i; j < len(text); j++ {
		switch text[j] {
		case '\n':
			return j + 1
		case 0:
			return j
		}
	}
	return len(text)
}

// readQuoted reads the quoted token starting at text[i]: a doubled quote
// stands for itself, and with escapes a backslash escapes the next character
// (both kept as written: osc only compares identifiers, and the server takes
// an escaped string for no identifier). It returns the unquoted value and
// the offset after the closing quote.
func readQuoted(text string, i int, escapes bool) (string, int, bool) {
	q := text[i]
	var b strings.Builder
	for j := i + 1; j < len(text); j++ {
		switch c := text[j]; {
		case c == '\\' && escapes:
			if j+1 >= len(text) {
				return "", 0, false
			}
			b.WriteByte(c)
			b.WriteByte(text[j+1])
			j++
		case c == q && j+1 < len(text) && text[j+1] == q:
			b.WriteByte(q)
			j++
		case c == q:
			return b.String(), j + 1, true
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, false
}

// excerpt returns up to 30 characters of text from offset i, for messages.
func excerpt(text string, i int) string {
	r := []rune(text[i:])
	if len(r) > 30 {
		return string(r[:30]) + "…"
	}
	return string(r)
}

// sqlClause is one top-level clause of the --alter: its tokens and its text.
type sqlClause struct {
	toks []sqlToken
	text string
}

// splitClauses splits the tokens at the commas outside parentheses. A ';'
// outside parentheses is refused (a second statement), as are unbalanced
// parentheses.
func splitClauses(text string, toks []sqlToken) ([]sqlClause, error) {
	var out []sqlClause
	depth, start := 0, 0
	flush := func(end int) {
		c := sqlClause{toks: toks[start:end]}
		if len(c.toks) > 0 {
			from := c.toks[0].pos
			to := len(text)
			if end < len(toks) {
				to = toks[end].pos
			}
			c.text = strings.TrimSpace(text[from:to])
		}
		out = append(out, c)
		start = end + 1
	}
	for i, t := range toks {
		switch {
		case t.isPunct("("):
			depth++
		case t.isPunct(")"):
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("--alter has a syntax error: an unbalanced ')' at %q", excerpt(text, t.pos))
			}
		case t.isPunct(";") && depth == 0:
			return nil, fmt.Errorf("--alter must be the clauses of one ALTER TABLE; it holds a ';' before %q "+
				"(a second statement): run other statements separately", excerpt(text, t.pos))
		case t.isPunct(",") && depth == 0:
			flush(i)
		}
	}
	if depth > 0 {
		return nil, fmt.Errorf("--alter has a syntax error: an unclosed '('")
	}
	flush(len(toks))
	return out, nil
}
