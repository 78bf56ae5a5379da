package table

import (
	"fmt"
	"strconv"
	"strings"
)

// MySQLAlter is what osc needs to know of an --alter that the server cannot
// tell it: the server judges the syntax when osc runs the alter on the shadow
// table, and the catalog then shows the columns, indexes and types that
// result; only renames and drops are read from the text (see
// mysql_alter_lex.go).
type MySQLAlter struct {
	Text string // the clauses as the user gave them
	// Clauses are its top-level clauses' texts.
	Clauses []string
	// Renames maps the folded name (foldName) of an original column to its new name
	// (CHANGE COLUMN a b ..., RENAME COLUMN a TO b).
	Renames map[string]string
	// Dropped holds the folded names of the original columns the alter
	// drops. A column dropped and added again under the same name is new.
	Dropped map[string]bool
	// DroppedForeignKeys are the foreign keys the alter drops (DROP FOREIGN
	// KEY [IF EXISTS] name), and ShadowText the clauses without those: the
	// shadow, made LIKE the table, has no foreign keys to drop (mysql_fk.go).
	DroppedForeignKeys []MySQLDroppedForeignKey
	ShadowText         string
	// SetsAutoIncrement: a clause sets the table option AUTO_INCREMENT
	// (AUTO_INCREMENT [=] n), which the new table then has instead of the
	// original's counter; AutoIncrement is n (the last one given; 0 is a
	// value: InnoDB makes it the highest id + 1).
	SetsAutoIncrement bool
	AutoIncrement     uint64
	// unread is why osc could not read a CHANGE, RENAME COLUMN or DROP
	// clause. The alter still runs on the shadow, so that the server's own
	// error reaches the user when the text is wrong; if the server accepts
	// it, osc refuses with this.
	unread error
}

// ShadowName returns the name the original column gets in the shadow table,
// or "" when the alter drops it.
func (a *MySQLAlter) ShadowName(column string) string {
	if n, ok := a.Renames[foldName(column)]; ok {
		return n
	}
	if a.Dropped[foldName(column)] {
		return ""
	}
	return column
}

// ParseMySQLAlter reads the --alter clauses for table name, with quotes read
// as the server reads them under sqlMode (the session's @@sql_mode). Before
// anything runs it refuses what osc cannot run on a shadow table: text that
// is not the clauses of one ALTER TABLE, a RENAME of the table, partition
// operations that drop, empty or swap partitions (osc copies every row) or
// move them to or from another table (CONVERT), and DISCARD or IMPORT
// TABLESPACE. These are the clauses that name another table or act on the
// table's files; the rest (ADD, REORGANIZE, COALESCE, REMOVE PARTITIONING,
// ORDER BY, FORCE, …) acts on the shadow alone and is left to the server.
// A FOREIGN KEY's REFERENCES is read from the result and refused there.
func ParseMySQLAlter(name, alter, sqlMode string) (*MySQLAlter, error) {
	text := strings.TrimSpace(alter)
	toks, err := tokenizeMySQL(text, lexModeOf(sqlMode))
	if err != nil {
		return nil, err
	}
	for len(toks) > 0 && toks[len(toks)-1].isPunct(";") {
		toks = toks[:len(toks)-1]
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("--alter is empty: give the clauses of the ALTER TABLE, e.g. \"ADD COLUMN c INT\"")
	}
	text = text[:toks[len(toks)-1].end]
	if isAlterStatement(toks) {
		return nil, fmt.Errorf("--alter takes only the clauses after ALTER TABLE %s (e.g. \"ADD COLUMN c INT\"), not a whole statement: %q", name, text)
	}
	clauses, err := splitClauses(text, toks)
	if err != nil {
		return nil, err
	}
	// ALTER TABLE t [WAIT n | NOWAIT] clauses: the lock wait option comes
	// before the first clause, whose keyword follows the number (5, 5.5, .5,
	// 1e+1, 0x10: digits and signs, not letters).
	first := &clauses[0]
	switch {
	case len(first.toks) > 0 && first.toks[0].is("WAIT"):
		i := 1
		for i < len(first.toks) && (first.toks[i].isPunct(".") || first.toks[i].isPunct("+") || first.toks[i].isPunct("-") ||
			first.toks[i].kind == tokWord && first.toks[i].text[0] >= '0' && first.toks[i].text[0] <= '9') {
			i++
		}
		first.toks = first.toks[i:]
	case len(first.toks) > 0 && first.toks[0].is("NOWAIT"):
		first.toks = first.toks[1:]
	}
	a := &MySQLAlter{Text: text, Renames: map[string]string{}, Dropped: map[string]bool{}}
	var shadow []string
	for _, c := range clauses {
		if err := a.readClause(c); err != nil {
			return nil, err
		}
		a.Clauses = append(a.Clauses, c.text)
		// The column attribute AUTO_INCREMENT is followed by another
		// attribute, a comma or nothing; the table option by = or its value.
		for i := 0; i+1 < len(c.toks); i++ {
			next := c.toks[i+1]
			if c.toks[i].is("AUTO_INCREMENT") && (next.isPunct("=") || next.kind == tokWord && next.text[0] >= '0' && next.text[0] <= '9') {
				a.SetsAutoIncrement = true
				if next.isPunct("=") && i+2 < len(c.toks) {
					next = c.toks[i+2]
				}
				// A value the server refuses fails the shadow's ALTER.
				if n, err := strconv.ParseUint(next.text, 10, 64); err == nil {
					a.AutoIncrement = n
				}
			}
		}
		if fk, ok := droppedForeignKey(c); ok {
			a.DroppedForeignKeys = append(a.DroppedForeignKeys, fk)
			continue
		}
		shadow = append(shadow, c.text)
	}
	a.ShadowText = strings.Join(shadow, ", ")
	return a, nil
}

// isAlterStatement reports whether the tokens start with ALTER [ONLINE]
// [IGNORE] TABLE: a whole statement, not clauses.
func isAlterStatement(toks []sqlToken) bool {
	if len(toks) == 0 || !toks[0].is("ALTER") {
		return false
	}
	for _, t := range toks[1:] {
		switch {
		case t.is("TABLE"):
			return true
		case !t.is("ONLINE") && !t.is("IGNORE"):
			return false
		}
	}
	return false
}

// readClause records the renames and drops of one clause, and refuses the
// clauses osc cannot run on a shadow table.
func (a *MySQLAlter) readClause(c sqlClause) error {
	t := c.toks
	if len(t) == 0 {
		return nil // the server rejects an empty clause
	}
	at := func(i int) sqlToken {
		if i < len(t) {
			return t[i]
		}
		return sqlToken{kind: tokPunct}
	}
	// skip steps over the keywords kws if they come at i.
	skip := func(i int, kws ...string) int {
		for j, kw := range kws {
			if !at(i + j).is(kw) {
				return i
			}
		}
		return i + len(kws)
	}
	switch {
	case t[0].is("CHANGE"):
		// CHANGE [COLUMN] [IF EXISTS] old new definition
		i := skip(skip(1, "COLUMN"), "IF", "EXISTS")
		old, ok1 := at(i).ident()
		nw, ok2 := at(i + 1).ident()
		if !ok1 || !ok2 {
			a.cannotRead(c, "CHANGE [COLUMN] old_name new_name definition")
			return nil
		}
		a.rename(old, nw)
	case t[0].is("RENAME"):
		switch {
		case at(1).is("COLUMN"):
			// RENAME COLUMN [IF EXISTS] old TO new
			i := skip(2, "IF", "EXISTS")
			old, ok1 := at(i).ident()
			nw, ok2 := at(i + 2).ident()
			if !ok1 || !at(i+1).is("TO") || !ok2 {
				a.cannotRead(c, "RENAME COLUMN old_name TO new_name")
				return nil
			}
			a.rename(old, nw)
		case at(1).is("INDEX") || at(1).is("KEY"):
		default:
			return fmt.Errorf("--alter renames the table (%s); osc swaps the names itself at cut-over: "+
				"drop the clause and rename the table separately", c.text)
		}
	case t[0].is("DROP"):
		switch {
		case at(1).is("PARTITION"):
			return errPartitionRows(c)
		case at(1).is("PRIMARY") || at(1).is("INDEX") || at(1).is("KEY") || at(1).is("FOREIGN") ||
			at(1).is("CONSTRAINT") || at(1).is("CHECK") || at(1).is("SYSTEM") || at(1).is("PERIOD"):
		default:
			// DROP [COLUMN] [IF EXISTS] name [RESTRICT | CASCADE]
			i := skip(skip(1, "COLUMN"), "IF", "EXISTS")
			col, ok := at(i).ident()
			if !ok {
				a.cannotRead(c, "DROP [COLUMN] name")
				return nil
			}
			a.Dropped[foldName(col)] = true
		}
	case t[0].is("EXCHANGE") || t[0].is("TRUNCATE"):
		return errPartitionRows(c)
	case t[0].is("CONVERT") && (at(1).is("TABLE") || at(1).is("PARTITION")):
		// CONVERT TABLE u TO PARTITION p …, CONVERT PARTITION p TO TABLE u
		// move rows between the table and another one: run on the shadow,
		// the first would move u into it (and a dry run's drop of the
		// shadow would drop u's rows), the second would leave u behind with
		// the shadow's rows.
		return fmt.Errorf("--alter moves a partition to or from another table (%s); osc builds a new table and "+
			"would move the other table's rows into it, or the partition's rows into a table it does not manage: "+
			"run the CONVERT with a plain ALTER TABLE", c.text)
	case t[0].is("DISCARD") || t[0].is("IMPORT"):
		// [PARTITION …] DISCARD | IMPORT TABLESPACE acts on the table's
		// data files, which a new table does not have.
		return fmt.Errorf("--alter discards or imports a tablespace (%s); that acts on the table's own data files, "+
			"which osc's new table does not have: run it with a plain ALTER TABLE", c.text)
	}
	return nil
}

func (a *MySQLAlter) rename(old, nw string) {
	if !sameName(old, nw) {
		a.Renames[foldName(old)] = nw
	}
}

func (a *MySQLAlter) cannotRead(c sqlClause, form string) {
	if a.unread == nil {
		a.unread = fmt.Errorf("osc cannot read the --alter clause %q: it needs to know which columns a clause renames or drops, "+
			"and reads them in the form %s: write the clause that way", c.text, form)
	}
}

func errPartitionRows(c sqlClause) error {
	return fmt.Errorf("--alter drops, empties or exchanges partitions (%s); osc copies every row of the table into a new one "+
		"and cannot do that: run the partition operation with a plain ALTER TABLE", c.text)
}

// shadowToSource maps the lower-case shadow name of every original column
// the alter keeps to its original name.
func (a *MySQLAlter) shadowToSource(source *Table) map[string]string {
	m := map[string]string{}
	for _, c := range source.Columns {
		if sh := a.ShadowName(c.Name); sh != "" {
			m[foldName(sh)] = c.Name
		}
	}
	return m
}

// columnIndexFold is Table.ColumnIndex ignoring the case of ASCII letters
// (see sameName).
func columnIndexFold(t *Table, name string) int {
	if name == "" {
		return -1
	}
	for i, c := range t.Columns {
		if sameName(c.Name, name) {
			return i
		}
	}
	return -1
}

// Column names. The server compares them with its own case folding
// (of MariaDB's utf8mb3), which differs from Go's for non-ASCII letters: it
// does not fold U+1E9E to ß. osc matches
// names only where both agree, exact apart from the case of ASCII letters;
// where the server matched names osc did not, the altered table lacks a
// column osc expects, which checkColumnsKept refuses.

// foldName lower-cases the ASCII letters of a name.
func foldName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// sameName reports whether two names are equal apart from the case of
// ASCII letters.
func sameName(a, b string) bool {
	return foldName(a) == foldName(b)
}

// QuoteMySQL quotes an identifier with backticks; several parts are quoted
// one by one and joined with dots (QuoteMySQL(schema, table)). It is osc's
// one MySQL identifier quoting.
func QuoteMySQL(parts ...string) string {
	q := make([]string, len(parts))
	for i, p := range parts {
		q[i] = "`" + strings.ReplaceAll(p, "`", "``") + "`"
	}
	return strings.Join(q, ".")
}
