package table

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// An ALTER COLUMN … TYPE … USING expr computes each row's new value with
// expr, evaluated on the row as it was before the ALTER TABLE statement (every
// subcommand of one statement sees the same old row). PostgreSQL does not
// store the expression, and the shadow it is applied to is empty, so osc
// reads it from the --alter text: this file lexes a clause into tokens, splits
// it at top-level commas into subcommands, and finds the column and the
// expression of each ALTER COLUMN … TYPE … USING.

// pgTokKind is the kind of a lexed token.
type pgTokKind uint8

const (
	pgWord   pgTokKind = iota + 1 // unquoted identifier or keyword
	pgQuoted                      // "quoted identifier"
	pgString                      // any string constant, dollar-quoted too
	pgNumber
	pgParam // $1
	pgPunct // ( ) [ ] , ; . :
	pgOp    // operators, :: included
)

// pgToken is one token of SQL text: its kind and its bytes text[Start:End].
type pgToken struct {
	Kind       pgTokKind
	Text       string
	Start, End int
}

// is reports whether the token is the unquoted keyword kw (case-insensitive).
func (t pgToken) is(kw string) bool { return t.Kind == pgWord && strings.EqualFold(t.Text, kw) }

// name is the identifier a word or quoted identifier token stands for:
// folded to lower case (ASCII, as PostgreSQL does), or unquoted.
func (t pgToken) name() (string, bool) {
	switch t.Kind {
	case pgWord:
		return strings.Map(func(r rune) rune {
			if r >= 'A' && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return r
		}, t.Text), true
	case pgQuoted:
		if strings.HasPrefix(t.Text, `"`) {
			return strings.ReplaceAll(t.Text[1:len(t.Text)-1], `""`, `"`), true
		}
	}
	return "", false
}

const pgOpChars = "+-*/<>=~!@#%^&|`?"

// pgLex splits SQL text into tokens, leaving out white space and comments.
// An unterminated quote, dollar quote or comment runs to the end of the text
// (the server refuses such text anyway).
func pgLex(s string) []pgToken {
	var toks []pgToken
	add := func(k pgTokKind, start, end int) {
		toks = append(toks, pgToken{Kind: k, Text: s[start:end], Start: start, End: end})
	}
	// quoted returns the end of the quoted text starting at i (s[i] is the
	// quote); backslash: E'' strings, where \ escapes the next byte.
	quoted := func(i int, q byte, backslash bool) int {
		for j := i + 1; j < len(s); j++ {
			switch {
			case backslash && s[j] == '\\':
				j++
			case s[j] == q:
				if j+1 < len(s) && s[j+1] == q {
					j++
					continue
				}
				return j + 1
			}
		}
		return len(s)
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && strings.HasPrefix(s[i:], "--"):
			end := strings.IndexByte(s[i:], '\n')
			if end < 0 {
				return toks
			}
			i += end + 1
		case c == '/' && strings.HasPrefix(s[i:], "/*"):
			depth, j := 0, i
			for j < len(s) {
				if strings.HasPrefix(s[j:], "/*") {
					depth++
					j += 2
				} else if strings.HasPrefix(s[j:], "*/") {
					depth--
					j += 2
					if depth == 0 {
						break
					}
				} else {
					j++
				}
			}
			i = j
		case c == '\'':
			end := quoted(i, '\'', false)
			add(pgString, i, end)
			i = end
		case c == '"':
			end := quoted(i, '"', false)
			add(pgQuoted, i, end)
			i = end
		case c == '$':
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j > i+1 {
				add(pgParam, i, j)
				i = j
				continue
			}
			end := strings.IndexByte(s[i+1:], '$')
			if end >= 0 && pgDollarTag(s[i:i+end+2]) {
				tag := s[i : i+end+2]
				close := strings.Index(s[i+len(tag):], tag)
				stop := len(s)
				if close >= 0 {
					stop = i + len(tag) + close + len(tag)
				}
				add(pgString, i, stop)
				i = stop
				continue
			}
			add(pgOp, i, i+1)
			i++
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == '_' ||
				s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' ||
				(s[j] == '+' || s[j] == '-') && (s[j-1] == 'e' || s[j-1] == 'E')) {
				if s[j] == '.' && j+1 < len(s) && s[j+1] == '.' {
					break
				}
				j++
			}
			add(pgNumber, i, j)
			i = j
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
			j := i
			for j < len(s) {
				r, size := utf8.DecodeRuneInString(s[j:])
				if !(r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r >= 0x80) {
					break
				}
				j += size
			}
			word := s[i:j]
			switch {
			case j < len(s) && s[j] == '\'' && (strings.EqualFold(word, "e")):
				end := quoted(j, '\'', true)
				add(pgString, i, end)
				i = end
			case j < len(s) && s[j] == '\'' && len(word) == 1 && strings.ContainsAny(word, "bBxXnN"):
				end := quoted(j, '\'', false)
				add(pgString, i, end)
				i = end
			case strings.EqualFold(word, "u") && j+1 < len(s) && s[j] == '&' && (s[j+1] == '\'' || s[j+1] == '"'):
				end := quoted(j+1, s[j+1], false)
				kind := pgString
				if s[j+1] == '"' {
					kind = pgQuoted
				}
				add(kind, i, end)
				i = end
			default:
				add(pgWord, i, j)
				i = j
			}
		case c == ':' && strings.HasPrefix(s[i:], "::"):
			add(pgOp, i, i+2)
			i += 2
		case strings.IndexByte("()[],;.:", c) >= 0:
			add(pgPunct, i, i+1)
			i++
		case strings.IndexByte(pgOpChars, c) >= 0:
			j := i
			for j < len(s) && strings.IndexByte(pgOpChars, s[j]) >= 0 &&
				!strings.HasPrefix(s[j:], "--") && !strings.HasPrefix(s[j:], "/*") {
				j++
			}
			add(pgOp, i, j)
			i = j
		default:
			add(pgOp, i, i+1)
			i++
		}
	}
	return toks
}

// pgSubcommands splits a clause's tokens at top-level commas (outside
// parentheses and brackets).
func pgSubcommands(toks []pgToken) [][]pgToken {
	var out [][]pgToken
	depth, start := 0, 0
	for i, t := range toks {
		if t.Kind != pgPunct {
			continue
		}
		switch t.Text {
		case "(", "[":
			depth++
		case ")", "]":
			depth--
		case ",":
			if depth == 0 {
				out = append(out, toks[start:i])
				start = i + 1
			}
		}
	}
	return append(out, toks[start:])
}

// pgUsing is one ALTER [COLUMN] c [SET DATA] TYPE t [COLLATE x] USING expr of
// a clause.
type pgUsing struct {
	Column string    // the column's name before the clause
	Expr   []pgToken // the expression's tokens
	// Start and End are the expression's byte span in the clause.
	Start, End int
}

// Text is the expression as written.
func (u pgUsing) Text(clause string) string { return clause[u.Start:u.End] }

// pgParseUsing finds the ALTER COLUMN … TYPE … USING subcommands of a clause.
// A subcommand that starts with ALTER and has a top-level USING that is not
// of that form is refused: osc would not know what the USING computes.
func pgParseUsing(clause string) ([]pgUsing, error) {
	var out []pgUsing
	for _, sub := range pgSubcommands(pgLex(clause)) {
		if len(sub) == 0 || !sub[0].is("alter") {
			continue
		}
		using := -1
		depth := 0
		for i, t := range sub {
			switch {
			case t.Kind == pgPunct && (t.Text == "(" || t.Text == "["):
				depth++
			case t.Kind == pgPunct && (t.Text == ")" || t.Text == "]"):
				depth--
			case depth == 0 && t.is("using") && using < 0:
				using = i
			}
		}
		if using < 0 {
			continue
		}
		i := 1
		if i < len(sub) && sub[i].is("column") {
			i++
		}
		var col string
		ok := i < len(sub) && !sub[i].is("constraint")
		if ok {
			col, ok = sub[i].name()
			i++
		}
		if ok && i+2 < len(sub) && sub[i].is("set") && sub[i+1].is("data") {
			i += 2
		}
		ok = ok && i < len(sub) && sub[i].is("type") && i+1 < using && using+1 < len(sub)
		if !ok {
			return nil, fmt.Errorf("osc cannot read the USING of %q: it understands ALTER [COLUMN] name [SET DATA] TYPE type [COLLATE collation] USING expression",
				clause[sub[0].Start:sub[len(sub)-1].End])
		}
		expr := sub[using+1:]
		out = append(out, pgUsing{Column: col, Expr: expr, Start: expr[0].Start, End: expr[len(expr)-1].End})
	}
	return out, nil
}

// pgUsingForms are a USING expression rewritten for where it is evaluated.
type pgUsingForms struct {
	// Shadow is the expression for the ALTER on the shadow table: a reference
	// qualified with the table's name (t.a, s.t.a) names the shadow instead.
	Shadow string
	// Eval is the expression for osc's own statements, which name the row's
	// relation like the original table but cannot qualify it with the schema:
	// s.t.a becomes t.a.
	Eval string
}

// pgRewriteUsing rewrites the references to columns qualified with the
// table's name (schema.table.column or table.column) in a USING expression.
// A name followed by "(" is a function, and one after "::" or AS a type: they
// are left alone.
func pgRewriteUsing(clause string, u pgUsing, schema, name, shadow string) pgUsingForms {
	toks := u.Expr
	var sh, ev strings.Builder
	last := u.Start
	emit := func(upTo int, shText, evText string) {
		sh.WriteString(clause[last:upTo])
		ev.WriteString(clause[last:upTo])
		sh.WriteString(shText)
		ev.WriteString(evText)
	}
	isName := func(i int, want string) bool {
		if i < 0 || i >= len(toks) {
			return false
		}
		n, ok := toks[i].name()
		return ok && n == want
	}
	isDot := func(i int) bool { return i >= 0 && i < len(toks) && toks[i].Kind == pgPunct && toks[i].Text == "." }
	typeContext := func(i int) bool {
		return i >= 0 && (toks[i].Kind == pgOp && toks[i].Text == "::" || toks[i].is("as"))
	}
	column := func(i int) bool { // toks[i] is a column name, not a function's
		if i >= len(toks) || (toks[i].Kind != pgWord && toks[i].Kind != pgQuoted) {
			return false
		}
		return i+1 >= len(toks) || !(toks[i+1].Kind == pgPunct && toks[i+1].Text == "(")
	}
	for i := 0; i < len(toks); i++ {
		switch {
		case isName(i, schema) && isDot(i+1) && isName(i+2, name) && isDot(i+3) && column(i+4) && !isDot(i-1) && !typeContext(i-1):
			emit(toks[i].Start, QuotePostgres(shadow), QuotePostgres(name))
			last = toks[i+2].End
			i += 2
		case isName(i, name) && isDot(i+1) && column(i+2) && !isDot(i-1) && !typeContext(i-1):
			emit(toks[i].Start, QuotePostgres(shadow), QuotePostgres(name))
			last = toks[i].End
		}
	}
	emit(u.End, "", "")
	return pgUsingForms{Shadow: sh.String(), Eval: ev.String()}
}

// pgUsingUnqualified returns the clause with the USING expressions in their
// Eval form (s.t.a made t.a), for an ALTER on a table named like the
// original in another schema. A clause whose USING cannot be read is
// returned as it is: the ALTER on the shadow refuses it.
func pgUsingUnqualified(clause string, n PostgresNames) string {
	usings, err := pgParseUsing(clause)
	if err != nil {
		return clause
	}
	out := clause
	for i := len(usings) - 1; i >= 0; i-- {
		u := usings[i]
		out = out[:u.Start] + pgRewriteUsing(clause, u, n.Schema, n.Table, n.Shadow).Eval + out[u.End:]
	}
	return out
}

// pgUsingIsColumn reports whether a USING expression is only the column col
// itself, maybe qualified with the table's name, parenthesized, and cast
// (col::type, CAST(col AS type)). Such a USING changes the column's value as
// a cast of its type does.
func pgUsingIsColumn(toks []pgToken, col, table string) bool {
	for len(toks) >= 2 && toks[0].Text == "(" && toks[len(toks)-1].Text == ")" && toks[0].Kind == pgPunct && pgClosing(toks, 0) == len(toks)-1 {
		toks = toks[1 : len(toks)-1]
	}
	if len(toks) > 3 && toks[0].is("cast") && toks[1].Kind == pgPunct && toks[1].Text == "(" && pgClosing(toks, 1) == len(toks)-1 {
		inner := toks[2 : len(toks)-1]
		for i, t := range inner {
			if t.is("as") {
				return pgUsingIsColumn(inner[:i], col, table)
			}
		}
		return false
	}
	for i, t := range toks {
		if t.Kind == pgOp && t.Text == "::" {
			return pgOnlyType(toks[i+1:]) && pgUsingIsColumn(toks[:i], col, table)
		}
	}
	ref := func(t pgToken, want string) bool { n, ok := t.name(); return ok && n == want }
	switch {
	case len(toks) == 1:
		return ref(toks[0], col)
	case len(toks) == 3:
		return ref(toks[0], table) && toks[1].Kind == pgPunct && toks[1].Text == "." && ref(toks[2], col)
	}
	return false
}

// pgOnlyType reports whether the tokens after a "::" can be a type name and
// nothing more: no operator, no keyword that would continue the expression.
func pgOnlyType(toks []pgToken) bool {
	for _, t := range toks {
		if t.Kind == pgOp || t.Kind == pgString || t.Kind == pgParam {
			return false
		}
		for _, kw := range []string{"is", "isnull", "notnull", "and", "or", "not", "at", "between", "like", "ilike", "similar", "in", "overlaps", "collate", "escape"} {
			if t.is(kw) {
				return false
			}
		}
	}
	return len(toks) > 0
}

// pgClosing returns the index of the parenthesis closing toks[open], or -1.
func pgClosing(toks []pgToken, open int) int {
	depth := 0
	for i := open; i < len(toks); i++ {
		if toks[i].Kind != pgPunct {
			continue
		}
		switch toks[i].Text {
		case "(", "[":
			depth++
		case ")", "]":
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// pgMentionsRow reports whether the expression has an identifier token
// naming the table that is not qualified, does not qualify, is not a
// function's name nor a type's (after :: or AS): a whole-row reference, or a
// column of that name.
func pgMentionsRow(toks []pgToken, table string) bool {
	punct := func(i int, p string) bool {
		return i >= 0 && i < len(toks) && toks[i].Kind == pgPunct && toks[i].Text == p
	}
	for i, t := range toks {
		if n, ok := t.name(); !ok || n != table || punct(i-1, ".") || punct(i+1, ".") || punct(i+1, "(") {
			continue
		}
		if i > 0 && (toks[i-1].Kind == pgOp && toks[i-1].Text == "::" || toks[i-1].is("as")) {
			continue
		}
		return true
	}
	return false
}

// pgMentions reports whether the expression has an identifier token naming
// name (a column, a function or a type alike: a conservative test).
func pgMentions(toks []pgToken, name string) bool {
	for _, t := range toks {
		if n, ok := t.name(); ok && n == name {
			return true
		}
	}
	return false
}

// pgValue is what the --alter's USING clauses make of one shadow column.
type pgValue struct {
	Expr  string   // SQL over a row of the original (ColumnMap.Expr)
	Using []string // the USING expressions as written, for the plan's notes
	// Cast: the value is the original column cast to the column's type, as
	// a type change without USING gives (USING a::bigint): keys and unique
	// indexes over it are judged like a type change.
	Cast bool
}

// pgTracked is one shadow column as the --alter's clauses, applied one after
// another, leave it.
type pgTracked struct {
	name    string // current name
	typ     string // current type
	limited bool   // typ limits a length: a CAST truncates where the ALTER fails
	// input is, for a scalar limited type, the SQL of a value of it from a
	// cstring as a column of the type stores it (its input function with the
	// column's typmod, %s the cstring), which fails where the ALTER fails;
	// "" where typ is an array of one or a domain.
	input   string
	inputOf string // the type whose text the input function reads: text or varbit
	// castable: a CAST to typ stores what the assignment stores (a type
	// without a length limit, or a domain over one: its CHECKs run either
	// way).
	castable bool
	orig     string // the original column ("" for one a clause added)
	origTyp  string
	// coll is the column's current collation, quoted with its schema (""
	// for a type without one), origColl the original's: a clause may change
	// only the collation (TYPE text COLLATE "C"), which a later clause's
	// USING reads the column with.
	coll, origColl string
	// val is the value as SQL over the original row, stored in typ with the
	// assignment cast; valTyp is the type val yields when known. A column
	// no USING touched has val "" (the original column, which is stored with
	// the assignment cast to its final type, as before USING existed).
	val, valTyp string
	using       []string
	castCand    bool // a USING of the form col::type, to confirm by its type
}

// pgUsingTracker follows the shadow's columns, by attnum, through the
// --alter's clauses, and computes each USING's value over the original row.
type pgUsingTracker struct {
	names   PostgresNames
	shadow  uint32
	cols    map[int16]*pgTracked
	pending map[int16]pgTracked // set by prepare: the values a clause's USINGs give
}

type pgTrackedCol struct {
	num            int16
	name, typ      string
	coll           string
	limited, dom   bool
	input, inputOf string
	castable       bool
}

// track starts following a column as it is now.
func (c pgTrackedCol) track() *pgTracked {
	return &pgTracked{name: c.name, typ: c.typ, coll: c.coll, limited: c.limited || c.dom, input: c.input, inputOf: c.inputOf, castable: c.castable}
}

func pgReadTracked(ctx context.Context, q PostgresQuerier, oid uint32) ([]pgTrackedCol, error) {
	rows, err := q.Query(ctx, `SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
		a.atttypmod <> -1 AND (CASE WHEN t.typelem <> 0 AND t.typlen = -1 THEN t.typelem ELSE a.atttypid END)
			IN ('bpchar'::regtype, 'varchar'::regtype, 'bit'::regtype, 'varbit'::regtype),
		t.typtype = 'd',
		CASE WHEN a.atttypmod <> -1 AND a.atttypid IN ('bpchar'::regtype, 'varchar'::regtype, 'bit'::regtype, 'varbit'::regtype)
			THEN format('pg_catalog.%s(%%s, %s, %s)', t.typinput::regproc::text, a.atttypid::int, a.atttypmod) ELSE '' END,
		CASE WHEN a.atttypid IN ('bit'::regtype, 'varbit'::regtype) THEN 'varbit' ELSE 'text' END,
		NOT (a.atttypmod <> -1 AND (CASE WHEN t.typelem <> 0 AND t.typlen = -1 THEN t.typelem ELSE a.atttypid END)
				IN ('bpchar'::regtype, 'varchar'::regtype, 'bit'::regtype, 'varbit'::regtype))
			AND (t.typtype <> 'd' OR b.typtype <> 'd' AND NOT (t.typtypmod <> -1
				AND (CASE WHEN b.typelem <> 0 AND b.typlen = -1 THEN b.typelem ELSE b.oid END)
					IN ('bpchar'::regtype, 'varchar'::regtype, 'bit'::regtype, 'varbit'::regtype))),
		coalesce((SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
			WHERE co.oid = a.attcollation), '')
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type b ON b.oid = t.typbasetype
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, oid)
	if err != nil {
		return nil, fmt.Errorf("read shadow columns: %w", err)
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgTrackedCol, error) {
		var c pgTrackedCol
		return c, r.Scan(&c.num, &c.name, &c.typ, &c.limited, &c.dom, &c.input, &c.inputOf, &c.castable, &c.coll)
	})
	if err != nil {
		return nil, fmt.Errorf("read shadow columns: %w", err)
	}
	return cols, nil
}

// pgNewUsingTracker starts from the shadow as LIKE made it: preAlter maps its
// attnums to the original's column names.
func pgNewUsingTracker(ctx context.Context, q PostgresQuerier, n PostgresNames, shadowOID uint32, preAlter map[int16]string) (*pgUsingTracker, error) {
	cols, err := pgReadTracked(ctx, q, shadowOID)
	if err != nil {
		return nil, err
	}
	t := &pgUsingTracker{names: n, shadow: shadowOID, cols: map[int16]*pgTracked{}}
	for _, c := range cols {
		tc := c.track()
		tc.orig, tc.origTyp, tc.origColl = preAlter[c.num], c.typ, c.coll
		t.cols[c.num] = tc
	}
	return t, nil
}

// read is SQL for the column's current value over the original row, in its
// current type and collation; ok is false for a column an earlier clause
// added, which the original row cannot give.
func (c *pgTracked) read() (expr string, ok bool, err error) {
	val, valTyp := c.val, c.valTyp
	orig := val == ""
	if orig {
		if c.orig == "" {
			return "", false, nil
		}
		val, valTyp = QuotePostgres(c.orig), c.origTyp
	}
	if valTyp != c.typ {
		if val, err = c.assign(val); err != nil {
			return "", true, err
		}
		orig = false
	}
	if c.coll != "" && (!orig || c.coll != c.origColl) {
		val = "(" + val + ") COLLATE " + c.coll
	}
	return val, true, nil
}

// assign is SQL for val stored in a column of the column's current type, as
// the ALTER's assignment cast stores it: a CAST, except for a length-limited
// type, where an explicit cast truncates what the assignment refuses; there
// the type's input function with the column's typmod refuses it, with the
// server's own message. An array of such a type, or a domain over one (or
// over another domain), is refused.
func (c *pgTracked) assign(val string) (string, error) {
	switch {
	case c.input != "":
		return fmt.Sprintf(c.input, "CAST(CAST(("+val+") AS "+c.inputOf+") AS cstring)"), nil
	case !c.castable:
		return "", fmt.Errorf("column %s's value would pass through type %s (an array of a length-limited type, or a domain over one) in a clause of the --alter "+
			"before another changes it; osc cannot reproduce that conversion: change the column's type in one clause (with its USING), "+
			"or in separate migrations", c.name, c.typ)
	}
	return "CAST((" + val + ") AS " + c.typ + ")", nil
}

// prepare reads the USINGs of the clause about to be applied to the shadow,
// computes their values over the original row, and returns the clause for
// the shadow (references qualified with the table's name moved to the
// shadow's).
func (t *pgUsingTracker) prepare(clause string) (string, error) {
	usings, err := pgParseUsing(clause)
	if err != nil || len(usings) == 0 {
		return clause, err
	}
	byName := map[string]int16{}
	identity := true
	for num, c := range t.cols {
		byName[c.name] = num
		if c.orig != "" && (c.val != "" || c.typ != c.origTyp || c.coll != c.origColl || c.name != c.orig) {
			identity = false
		}
	}
	t.pending = map[int16]pgTracked{}
	out := clause
	for i := len(usings) - 1; i >= 0; i-- {
		u := usings[i]
		forms := pgRewriteUsing(clause, u, t.names.Schema, t.names.Table, t.names.Shadow)
		out = out[:u.Start] + forms.Shadow + out[u.End:]
		num, ok := byName[u.Column]
		if !ok {
			continue // the ALTER on the shadow names the missing column
		}
		col := t.cols[num]
		text := u.Text(clause)
		expr := forms.Eval
		// A whole-row reference would read columns that pg_depend does not
		// list (see pgCheckUsing).
		if _, isCol := byName[t.names.Table]; !isCol && pgMentionsRow(u.Expr, t.names.Table) {
			return "", fmt.Errorf("the USING of column %s (%s) refers to the whole row (%s): osc does not support that; name the columns", u.Column, text, t.names.Table)
		}
		// The row before the clause, as far as the expression reads it: the
		// columns it names.
		nums := make([]int16, 0, len(t.cols))
		for n := range t.cols {
			nums = append(nums, n)
		}
		sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
		var scope []string
		for _, n := range nums {
			c := t.cols[n]
			if !pgMentions(u.Expr, c.name) {
				continue
			}
			v, ok, err := c.read()
			switch {
			case !ok:
				return "", fmt.Errorf("the USING of column %s (%s) reads column %s, which an earlier clause of the --alter adds: osc computes a USING from the original row; "+
					"give it in a separate migration", u.Column, text, c.name)
			case identity:
			case err != nil:
				return "", fmt.Errorf("the USING of column %s (%s): %w", u.Column, text, err)
			default:
				scope = append(scope, v+" AS "+QuotePostgres(c.name))
			}
		}
		if !identity {
			expr = "(SELECT (" + expr + ") FROM (SELECT " + strings.Join(scope, ", ") + ") AS " + QuotePostgres(t.names.Table) + ")"
		}
		p := *col
		p.val, p.valTyp = expr, ""
		p.using = append(append([]string{}, col.using...), text)
		p.castCand = col.val == "" && col.typ == col.origTyp && pgUsingIsColumn(u.Expr, u.Column, t.names.Table)
		t.pending[num] = p
	}
	return out, nil
}

// applied reads the shadow's columns after a clause and follows them: drops,
// additions, renames, and type changes, with the USING values prepare
// computed or, without one, the assignment cast of the value before.
func (t *pgUsingTracker) applied(ctx context.Context, q pgx.Tx) error {
	cols, err := pgReadTracked(ctx, q, t.shadow)
	if err != nil {
		return err
	}
	next := map[int16]*pgTracked{}
	for _, c := range cols {
		old, ok := t.cols[c.num]
		if !ok {
			next[c.num] = c.track()
			continue
		}
		cur := *old
		if p, ok := t.pending[c.num]; ok {
			cur = p
			if cur.castCand {
				if cur.castCand, err = t.castOnly(ctx, q, cur.val, c.typ); err != nil {
					return err
				}
				cur.castCand = cur.castCand && !c.limited && !c.dom
			}
		} else if c.typ != old.typ && (old.val != "" || old.orig != "" && old.typ != old.origTyp) {
			// The value an earlier clause gave (a USING, or a type change
			// without one, which can round, narrow or refuse it) is stored in
			// the old type before this type change converts it.
			v, _, err := old.read()
			if err != nil {
				return fmt.Errorf("column %s gets type %s from a later clause: %w", c.name, c.typ, err)
			}
			if old.val == "" {
				cur.using = append(append([]string{}, old.using...), QuotePostgres(old.orig)+"::"+old.typ)
			}
			cur.val, cur.valTyp = v, old.typ
			cur.castCand = false
		}
		cur.name, cur.typ, cur.coll, cur.limited = c.name, c.typ, c.coll, c.limited || c.dom
		cur.input, cur.inputOf, cur.castable = c.input, c.inputOf, c.castable
		next[c.num] = &cur
	}
	t.cols, t.pending = next, nil
	return nil
}

// castOnly reports whether expr, a USING of the form col::type, yields the
// type typ: then the value is the original column cast to the column's new
// type. The statement is only described, not run.
func (t *pgUsingTracker) castOnly(ctx context.Context, tx pgx.Tx, expr, typ string) (bool, error) {
	desc, err := tx.Conn().PgConn().Prepare(ctx, "", "SELECT ("+expr+") FROM "+QuotePostgres(t.names.Schema, t.names.Table), nil)
	if err != nil {
		return false, fmt.Errorf("the USING %s cannot be evaluated over the original table: %w", expr, err)
	}
	if len(desc.Fields) != 1 {
		return false, nil
	}
	var got string
	if err := tx.QueryRow(ctx, "SELECT format_type($1, $2)", desc.Fields[0].DataTypeOID, desc.Fields[0].TypeModifier).Scan(&got); err != nil {
		return false, fmt.Errorf("read a type: %w", err)
	}
	return got == typ, nil
}

// values returns, by shadow attnum, the columns whose value a USING computes.
func (t *pgUsingTracker) values() map[int16]pgValue {
	out := map[int16]pgValue{}
	for num, c := range t.cols {
		if c.val != "" {
			out[num] = pgValue{Expr: c.val, Using: c.using, Cast: c.castCand}
		}
	}
	return out
}

// PostgresValue is the SQL of the shadow column's value over a row of the
// original: Expr, or the original column.
func (m ColumnMap) PostgresValue() string {
	if m.Expr != "" {
		return m.Expr
	}
	return QuotePostgres(m.Source)
}

// pgToastPointerBytes is the size of a TOAST pointer, MAXALIGN(18): 20 where
// the server aligns to 4 bytes, 24 where to 8. PostgreSQL stores a value out
// of line only when it is larger than that (toast_helper.c,
// toast_tuple_find_biggest_attribute); 20 holds on both.
const pgToastPointerBytes = "20"

// pgMaxBytes is the largest size in memory (its 4-byte header included) of
// a value of column a, NULL where it is not bounded, as PostgreSQL's
// type_maximum_size (format_type.c) computes it for the types with a
// length or precision: numeric(p,s) at most 8 + 2*((p+6)/4) bytes,
// character(n) and character varying(n) n characters of the database's
// encoding, bit(n) and bit varying(n) 8 + n/8 bytes. A domain over one
// is left unbounded.
const pgMaxBytes = `(CASE
	WHEN a.atttypid = 'numeric'::regtype AND a.atttypmod >= 4 THEN 8 + 2 * (((((a.atttypmod - 4) >> 16) & 65535) + 6) / 4)
	WHEN a.atttypid IN ('bpchar'::regtype, 'varchar'::regtype) AND a.atttypmod >= 4
		THEN 4 + (a.atttypmod - 4) * pg_encoding_max_length((SELECT encoding FROM pg_database WHERE datname = current_database()))
	WHEN a.atttypid IN ('bit'::regtype, 'varbit'::regtype) AND a.atttypmod >= 0 THEN 8 + (a.atttypmod + 7) / 8
	END)`

// pgRelativeTimeWord matches the date/time input words whose value is the
// time of the transaction (datetime.c: DTK_NOW, DTK_TODAY, DTK_TOMORROW,
// DTK_YESTERDAY).
var pgRelativeTimeWord = regexp.MustCompile(`(?i)\b(now|today|tomorrow|yesterday)\b`)

// pgRelativeTimeLiterals returns the string constants of expr that the
// parser turned into a value of a date or time type (or of an array, range,
// domain or row type holding one) read from the time of the transaction:
// 'now'::timestamptz, date 'today', '[today,tomorrow)'::daterange, or that
// a cast turns into one when the statement runs ('now'::text::timestamptz).
// Such a value is fixed when the text is parsed or the statement runs, like
// now() is fixed in a transaction, so no function call shows it. view is the view made of the
// statement whose text has expr at offset at: the constants of its parsed
// query carry the offset of their literal in that text.
func pgRelativeTimeLiterals(ctx context.Context, tx pgx.Tx, view string, at int, expr string) ([]string, error) {
	var locs []int32
	texts := map[int32]string{}
	for _, t := range pgLex(expr) {
		if t.Kind == pgString && pgRelativeTimeWord.MatchString(t.Text) {
			loc := int32(at + t.Start)
			locs = append(locs, loc)
			texts[loc] = t.Text
		}
	}
	if len(locs) == 0 {
		return nil, nil
	}
	// A constant of a date or time type, or one (of a text type) that a
	// cast turns into one when the statement runs (CoerceViaIO: 'now'::text::
	// timestamptz), which reads the time of each statement's transaction.
	rows, err := tx.Query(ctx, `SELECT DISTINCT c.loc
		FROM pg_rewrite r, LATERAL (
			SELECT m[1]::oid, m[2]::int4 FROM regexp_matches(r.ev_action::text, '\{CONST :consttype (\d+) [^{}]*:location (\d+) ', 'g') AS m
			UNION ALL
			SELECT m[2]::oid, m[1]::int4 FROM regexp_matches(r.ev_action::text, '\{COERCEVIAIO :arg \{CONST :consttype \d+ [^{}]*:location (\d+) [^{}]*\} :resulttype (\d+) ', 'g') AS m
		) AS c(typ, loc)
		WHERE r.ev_class = $1::regclass AND c.loc = ANY ($2::int4[]) AND EXISTS (
			WITH RECURSIVE u(t) AS (
				SELECT c.typ
				UNION
				SELECT s.x FROM u JOIN pg_type ty ON ty.oid = u.t
				LEFT JOIN pg_range rg ON ty.oid IN (rg.rngtypid, rg.rngmultitypid)
				CROSS JOIN LATERAL (SELECT ty.typbasetype UNION ALL SELECT ty.typelem UNION ALL SELECT rg.rngsubtype
					UNION ALL SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = ty.typrelid AND a.attnum > 0) AS s(x)
				WHERE s.x <> 0)
			SELECT FROM u WHERE u.t IN ('date'::regtype, 'time'::regtype, 'timetz'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype))
		ORDER BY 1`, view, locs)
	if err != nil {
		return nil, err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, err
	}
	out := make([]string, len(found))
	for i, loc := range found {
		out[i] = texts[loc]
	}
	return out, nil
}

// pgCheckUsing checks, on the created shadow, the plan's USING values: each
// one must be computable where osc computes it — over the original table (the
// copy) and over a row built from captured values (the applier), stored into
// the shadow — and must not call a function whose value changes between
// calls or transactions: a volatile one, the time of the transaction
// (now(), CURRENT_TIMESTAMP…, a literal such as 'now'::timestamptz, age(x),
// which reads the current date), its id, or a stable function of the user's
// (which may read tables). osc evaluates it when it copies the row and again
// at each change, where the ALTER evaluates it in one transaction. Stable
// built-ins that only depend on settings (to_char…) are allowed. It sets each value's Reads, and refuses a value reading several
// columns one of which can be stored out of line: a change leaving such a
// value unchanged does not carry it (pgoutput's "unchanged TOAST"), so the
// applier could not compute the value. A column whose values are never
// larger than pgToastPointerBytes is never stored out of line
// (pgMaxBytes).
// pgStorageFunctions are the built-ins whose value depends on how a value
// is stored, which the copy and the applier change: pgCheckUsing refuses
// them.
var pgStorageFunctions = []string{"pg_column_size", "pg_column_compression", "pg_column_toast_chunk_id"}

// pgSessionFunctions are the stable built-ins whose value depends on the
// session or transaction that evaluates them (its backend, client,
// settings, snapshot), where osc's differ from the plain ALTER's:
// pgCheckUsing refuses them, as it refuses the transaction's time and id.
var pgSessionFunctions = []string{"pg_backend_pid", "current_setting", "inet_client_addr", "inet_client_port", "inet_server_addr", "inet_server_port",
	"pg_current_snapshot", "txid_current_snapshot", "pg_trigger_depth", "pg_my_temp_schema", "pg_listening_channels", "mxid_age", "pg_conf_load_time"}

func pgCheckUsing(ctx context.Context, tx pgx.Tx, plan *Plan, srcOID uint32, srcCols []pgColumn) error {
	src := QuotePostgres(plan.Source.Schema, plan.Source.Name)
	shadow := QuotePostgres(plan.Source.Schema, plan.Shadow.Name)
	view := QuotePostgres(plan.Source.Schema, FitPostgresName("_"+plan.Source.Name, "_osc_using"))
	found := false
	for i := range plan.Mapping {
		m := &plan.Mapping[i]
		if m.Expr == "" {
			continue
		}
		found = true
		what := fmt.Sprintf("the value the --alter's USING gives column %s", m.Shadow)
		// The view holds whether the value is NULL, not the value: a view
		// column of a collatable type needs a collation, which a value
		// combining columns of two collations (a || b) has not, while the
		// ALTER and osc store it into the column, which has one. The value
		// is cast to the column's type, as the ALTER's assignment does: a
		// bare literal ('now') becomes a constant of that type there, not
		// text (the postfix cast keeps the literal's location on it).
		cast := ""
		if j := plan.Shadow.ColumnIndex(m.Shadow); j >= 0 {
			cast = "::" + plan.Shadow.Columns[j].ColumnType
		}
		head := "CREATE VIEW " + view + " AS SELECT (("
		if _, err := tx.Exec(ctx, head+m.Expr+")"+cast+") IS NULL AS v FROM "+src); err != nil {
			return fmt.Errorf("%s cannot be computed from the original table's rows: %w", what, err)
		}
		relative, err := pgRelativeTimeLiterals(ctx, tx, view, len(head), m.Expr)
		if err != nil {
			return fmt.Errorf("read the literals of %s: %w", what, err)
		}
		if len(relative) > 0 {
			return fmt.Errorf("%s reads the current date or time through the literal %s, whose value PostgreSQL fixes when it parses the expression: "+
				"a plain ALTER parses it once, osc when it copies each chunk and again at each change to a row, so the values would differ; "+
				"compute the value after the migration (UPDATE), or give the date or time itself instead", what, strings.Join(relative, ", "))
		}
		// The columns it reads are recorded as the view's dependencies; the
		// functions are not (built-in ones never are), so they are read from
		// the view's parsed query.
		rows, err := tx.Query(ctx, `SELECT a.attnum, a.attlen = -1 AND a.attstorage <> 'p' AND coalesce(`+pgMaxBytes+` > `+pgToastPointerBytes+`, true), '', ''
			FROM pg_depend d JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
			JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
			WHERE r.ev_class = $1::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $2 AND d.refobjsubid > 0
			UNION
			SELECT 0, false, p.oid::regprocedure::text, CASE WHEN p.oid < 16384 AND p.proname = ANY($3::text[]) THEN 'storage'
				WHEN p.provolatile = 's' AND p.oid < 16384 AND p.proname = ANY($4::text[]) THEN 'session' ELSE 'volatile' END
			FROM pg_rewrite r, regexp_matches(r.ev_action::text, ':(?:funcid|opfuncid) (\d+)', 'g') AS f(m)
			JOIN pg_proc p ON p.oid = f.m[1]::oid
			WHERE r.ev_class = $1::regclass AND (p.provolatile = 'v' OR p.provolatile = 's' AND (p.oid >= 16384 OR p.proname IN
				('now', 'statement_timestamp', 'transaction_timestamp', 'txid_current', 'txid_current_if_assigned', 'pg_current_xact_id', 'pg_current_xact_id_if_assigned')
				OR p.proname = ANY($3::text[]) OR p.proname = ANY($4::text[])
				OR p.provolatile = 's' AND p.proname = 'age' AND p.pronargs = 1))
			UNION
			SELECT 0, false, 'CURRENT_DATE, CURRENT_TIME, CURRENT_TIMESTAMP, LOCALTIME or LOCALTIMESTAMP', 'volatile'
			FROM pg_rewrite r WHERE r.ev_class = $1::regclass AND r.ev_action::text ~ 'SQLVALUEFUNCTION :op [0-8] '`,
			view, srcOID, pgStorageFunctions, pgSessionFunctions)
		if err != nil {
			return fmt.Errorf("read what %s depends on: %w", what, err)
		}
		type dep struct {
			num            int16
			toast          bool
			function, kind string
		}
		deps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (dep, error) {
			var d dep
			return d, r.Scan(&d.num, &d.toast, &d.function, &d.kind)
		})
		if err != nil {
			return fmt.Errorf("read what %s depends on: %w", what, err)
		}
		if _, err := tx.Exec(ctx, "DROP VIEW "+view); err != nil {
			return fmt.Errorf("drop view %s: %w", view, err)
		}
		var volatile, storage, session, toast []string
		m.Reads = nil
		for _, d := range deps {
			switch d.kind {
			case "volatile":
				volatile = append(volatile, d.function)
				continue
			case "storage":
				storage = append(storage, d.function)
				continue
			case "session":
				session = append(session, d.function)
				continue
			}
			c := plan.Source.Columns
			for j := range c {
				if j < len(srcCols) && srcCols[j].Num == d.num {
					m.Reads = append(m.Reads, j)
					if d.toast {
						toast = append(toast, c[j].Name)
					}
				}
			}
		}
		sort.Ints(m.Reads)
		sort.Strings(toast)
		if len(storage) > 0 {
			return fmt.Errorf("%s calls %s, whose value depends on how the value is stored (its header, compression, TOAST): osc's copy and applier write "+
				"every value anew (the applier from the change's text), so the sizes would differ from the plain ALTER's; run the ALTER TABLE directly, "+
				"or compute the value after the migration (UPDATE)", what, strings.Join(storage, ", "))
		}
		if len(session) > 0 {
			return fmt.Errorf("%s calls %s, whose value depends on the session or transaction that evaluates it (its process, client, settings, snapshot): "+
				"a plain ALTER evaluates it in your session, osc in its own, in each chunk's transaction and at each change to a row, so the values would differ; "+
				"compute the value after the migration (UPDATE), or give a constant instead", what, strings.Join(session, ", "))
		}
		if len(volatile) > 0 {
			return fmt.Errorf("%s calls functions whose value changes from one call or transaction to the next (%s): a plain ALTER evaluates it in one "+
				"transaction, osc when it copies each chunk and again at each change to a row, so the values would differ; "+
				"compute the value after the migration (UPDATE), or give a constant instead", what, strings.Join(volatile, ", "))
		}
		if len(m.Reads) > 1 && len(toast) > 0 {
			return fmt.Errorf("%s reads several columns, and %s can be stored out of line (TOAST): an update that leaves such a value unchanged does not carry it "+
				"in the change stream, so osc could not compute the value; osc does not support this yet: compute the value after the migration (UPDATE)",
				what, strings.Join(toast, ", "))
		}
		for _, j := range m.Reads {
			if plan.Source.Columns[j].Generated {
				return fmt.Errorf("%s reads generated column %s, whose value the change stream does not carry: osc does not support this", what, plan.Source.Columns[j].Name)
			}
		}
	}
	if !found {
		return nil
	}
	// The copy's and the applier's statements, for no row: the values must be
	// computable there and storable into the shadow's columns.
	var names, vals, row []string
	for _, m := range plan.Mapping {
		names = append(names, QuotePostgres(m.Shadow))
		vals = append(vals, m.PostgresValue())
	}
	for _, c := range plan.Source.Columns {
		if !c.Generated {
			row = append(row, "CAST(NULL::text AS "+c.ColumnType+") AS "+QuotePostgres(c.Name))
		}
	}
	insert := "INSERT INTO " + shadow + " (" + strings.Join(names, ", ") + ") OVERRIDING SYSTEM VALUE SELECT " + strings.Join(vals, ", ")
	if _, err := tx.Exec(ctx, insert+" FROM "+src+" WHERE false"); err != nil {
		return fmt.Errorf("the values the --alter's USING gives cannot be copied from the original table into the shadow: %w", err)
	}
	if _, err := tx.Exec(ctx, insert+" FROM (SELECT "+strings.Join(row, ", ")+") AS "+QuotePostgres(plan.Source.Name)+" WHERE false"); err != nil {
		return fmt.Errorf("the values the --alter's USING gives cannot be computed from a changed row (osc evaluates the expression over the row's columns, "+
			"named like the original table, without its schema, system or generated columns): %w", err)
	}
	return nil
}
