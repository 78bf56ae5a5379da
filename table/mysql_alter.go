package table

import (
	"fmt"
	"strings"
)

// MySQLIndex is one index of a MySQL table as the catalog describes it.
type MySQLIndex struct {
	Name     string
	Primary  bool
	Unique   bool     // true for the PRIMARY KEY too
	Columns  []string // column names; "" for an expression part
	SubParts []int    // prefix length of each column, 0 for the whole value
	Nullable bool     // some column of the index allows NULL
	// Ignored: the optimizer may not use the index (MariaDB's IGNORED,
	// MySQL's INVISIBLE), nor may FORCE INDEX name it.
	Ignored bool
}

// keyUsable reports whether the index identifies rows: a PRIMARY KEY or a
// UNIQUE key over NOT NULL columns, without expression parts.
func (ix MySQLIndex) keyUsable() bool {
	if !ix.Primary && (!ix.Unique || ix.Nullable) {
		return false
	}
	for _, c := range ix.Columns {
		if c == "" {
			return false
		}
	}
	return len(ix.Columns) > 0
}

func (ix MySQLIndex) describe() string {
	name := ix.Name
	if ix.Primary {
		name = "PRIMARY"
	}
	parts := make([]string, len(ix.Columns))
	for i, c := range ix.Columns {
		switch {
		case c == "":
			parts[i] = "<expression>"
		case ix.SubParts[i] > 0:
			parts[i] = fmt.Sprintf("%s(%d)", c, ix.SubParts[i])
		default:
			parts[i] = c
		}
	}
	if name == "" {
		return "(" + strings.Join(parts, ", ") + ")"
	}
	return name + " (" + strings.Join(parts, ", ") + ")"
}

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

func errNewUnique(u MySQLIndex, why string) error {
	kind := "a UNIQUE key " + u.describe()
	if u.Primary {
		kind = "a PRIMARY KEY " + u.describe()
	}
	return fmt.Errorf("the --alter adds %s that no existing unique key of the original implies, and %s; "+
		"osc adds a new unique key (checking every clash with the original, so that no duplicate is dropped) only as a UNIQUE key "+
		"over whole columns that the --alter leaves as they are (type and collation): add this one with a plain ALTER TABLE, "+
		"or change the columns first and add the key in a second migration", kind, why)
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

// impliedUnique reports whether every set of rows distinct under some unique
// index of the original is also distinct under u (given by shadow column
// names): u contains all the parts of that index, each at least as long,
// and the alter's type changes keep distinct values of each part distinct
// (kept, by original column name; nil: every column's do).
func impliedUnique(u MySQLIndex, toSource map[string]string, indexes []MySQLIndex, kept func(string) bool) bool {
	for _, ix := range indexes {
		if !ix.Unique || len(ix.Columns) == 0 {
			continue
		}
		all := true
		for i, col := range ix.Columns {
			if col == "" || !containsPart(u, toSource, col, ix.SubParts[i]) || kept != nil && !kept(col) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func containsPart(u MySQLIndex, toSource map[string]string, col string, sub int) bool {
	for j, c := range u.Columns {
		src, ok := toSource[foldName(c)]
		if c == "" || !ok || !sameName(src, col) {
			continue
		}
		if u.SubParts[j] == 0 || (sub > 0 && u.SubParts[j] >= sub) {
			return true
		}
	}
	return false
}

// MySQLPlanInput is what BuildMySQLPlan needs: both tables and their indexes
// as read from the catalog once the shadow exists.
type MySQLPlanInput struct {
	Source, Shadow               *Table
	SourceIndexes, ShadowIndexes []MySQLIndex
	Alter                        *MySQLAlter
	OldName, ChangelogName       string
	EstimatedRows                int64
	// Collations of text columns by lower-case column name (warnings only).
	SourceCollations, ShadowCollations map[string]string
	// TimeZone is the zone of conversions to and from TIMESTAMP.
	TimeZone string
	// AlterTime is Plan.AlterTime.
	AlterTime string
}

// BuildMySQLPlan maps the original's columns onto the shadow's, chooses the
// key and refuses a shadow that would lose rows silently: a unique key the
// original does not guarantee, or no key both tables share.
func BuildMySQLPlan(in MySQLPlanInput) (*Plan, error) {
	if err := checkColumnsKept(in); err != nil {
		return nil, err
	}
	p := &Plan{Source: in.Source, Shadow: in.Shadow, OldName: in.OldName,
		ChangelogName: in.ChangelogName, EstimatedRows: in.EstimatedRows, TimeZone: in.TimeZone, AlterTime: in.AlterTime}
	newUnique, err := checkNewUnique(in)
	if err != nil {
		return nil, err
	}
	p.NewUnique = newUnique

	shadowUsed := make([]bool, len(in.Shadow.Columns))
	var notes []string
	for i, c := range in.Source.Columns {
		sh := in.Alter.ShadowName(c.Name)
		j := columnIndexFold(in.Shadow, sh)
		if sh == "" || j < 0 {
			if c.Generated {
				notes = append(notes, "drop generated column "+c.Name)
			} else {
				notes = append(notes, "drop column "+c.Name+" (its data will be lost)")
			}
			continue
		}
		shadowUsed[j] = true
		sc := in.Shadow.Columns[j]
		if sc.Name != c.Name {
			notes = append(notes, "rename column "+c.Name+" -> "+sc.Name)
		}
		if sc.ColumnType != c.ColumnType {
			notes = append(notes, fmt.Sprintf("change column %s: %s -> %s", sc.Name, c.ColumnType, sc.ColumnType))
		}
		if c.Generated || sc.Generated {
			continue
		}
		if err := checkTimeToDate(c, sc); err != nil {
			return nil, err
		}
		p.Mapping = append(p.Mapping, ColumnMap{Source: c.Name, Shadow: sc.Name, SourceIndex: i})
	}
	for j, sc := range in.Shadow.Columns {
		if shadowUsed[j] {
			continue
		}
		if sc.Generated {
			notes = append(notes, "add generated column "+sc.Name)
			continue
		}
		if sc.AutoIncrement {
			return nil, errAddedAutoIncrement(sc.Name)
		}
		notes = append(notes, "add column "+sc.Name)
		fill, err := mysqlFill(sc, in.TimeZone, in.AlterTime)
		if err != nil {
			return nil, err
		}
		if fill != "" {
			p.Fills = append(p.Fills, ColumnFill{Shadow: sc.Name, Expr: fill})
		}
	}
	if cols := compressedColumns(in.Shadow); len(cols) > 0 {
		notes = append(notes, "warning: the altered table has COMPRESSED columns ("+strings.Join(cols, ", ")+
			"); osc cannot migrate it again while it has (its binlog reader cannot decode them)")
	}
	key, rowKey, err := chooseKey(in, p.Mapping)
	if err != nil {
		return nil, err
	}
	p.KeyIndexName = key.Name
	for _, k := range key.Columns {
		p.Key = append(p.Key, k)
		p.KeyIndex = append(p.KeyIndex, columnIndexFold(in.Source, k))
	}
	notes = append(notes, "key: "+key.describe())
	for _, k := range rowKey {
		p.RowKey = append(p.RowKey, k)
		p.RowKeyIndex = append(p.RowKeyIndex, columnIndexFold(in.Source, k))
	}
	if rowKey != nil {
		notes = append(notes, "rows of the altered table identified by ("+strings.Join(rowKey, ", ")+"), which holds the key")
	}
	notes = append(notes, fmt.Sprintf("rows: ~%d", in.EstimatedRows))
	p.Notes = notes
	return p, nil
}

// errAddedAutoIncrement refuses an added AUTO_INCREMENT column. The ALTER
// numbers the existing rows in the order it copies them, at once; osc's
// copy and applier write rows in another order and over time (a REPLACE of
// an updated row takes a new number), so the numbers and the table's next
// AUTO_INCREMENT value would differ.
func errAddedAutoIncrement(col string) error {
	return fmt.Errorf("the --alter adds the AUTO_INCREMENT column %s; osc cannot number the existing rows as a plain ALTER TABLE "+
		"does (rows written during the migration would be numbered as osc writes them): add it with a plain ALTER TABLE, "+
		"or in steps: add it with osc as a plain integer column (ADD COLUMN %s BIGINT NULL, ADD KEY (%s)), number the rows "+
		"yourself, then MODIFY it to AUTO_INCREMENT", col, QuoteMySQL(col), QuoteMySQL(col))
}

// checkNewUnique returns the unique indexes of the shadow that no unique
// index of the original implies, with its columns' type changes taken into
// account (see mysqlEqualityKept), as new unique keys (mysqlNewUnique), and
// refuses one that cannot be: one implied but for a type change, which
// could merge values that the original keeps apart.
func checkNewUnique(in MySQLPlanInput) ([]UniqueKey, error) {
	toSource := in.Alter.shadowToSource(in.Source)
	kept := in.equalityKept
	var out []UniqueKey
	for _, ix := range in.ShadowIndexes {
		if !ix.Unique || impliedUnique(ix, toSource, in.SourceIndexes, kept) {
			continue
		}
		if impliedUnique(ix, toSource, in.SourceIndexes, nil) {
			// Implied but for a type change: name the column.
			for _, c := range ix.Columns {
				src, ok := toSource[foldName(c)]
				if ok && !kept(src) {
					sc := in.Source.Columns[columnIndexFold(in.Source, src)]
					dc := in.Shadow.Columns[columnIndexFold(in.Shadow, c)]
					return nil, errEqualityLost(ix, dc.Name, sc, dc, in.SourceCollations[foldName(sc.Name)],
						in.ShadowCollations[foldName(dc.Name)])
				}
			}
		}
		u, err := mysqlNewUnique(in, ix, toSource)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// equalityKept reports whether the original column col reaches the shadow
// with distinct values kept distinct (see mysqlEqualityKept).
func (in MySQLPlanInput) equalityKept(col string) bool {
	i := columnIndexFold(in.Source, col)
	j := columnIndexFold(in.Shadow, in.Alter.ShadowName(col))
	if i < 0 || j < 0 {
		return false
	}
	sc, dc := in.Source.Columns[i], in.Shadow.Columns[j]
	if !mysqlEqualityKept(sc, dc, in.SourceCollations[foldName(sc.Name)], in.ShadowCollations[foldName(dc.Name)], in.TimeZone) {
		return false
	}
	if !sc.Generated && !dc.Generated {
		return true
	}
	// A generated column's values are its expression's: kept only if the
	// expression and every column it may read stay as they were.
	if !sc.Generated || !dc.Generated || sc.Expression != dc.Expression {
		return false
	}
	for _, c := range in.Source.Columns {
		k := columnIndexFold(in.Shadow, in.Alter.ShadowName(c.Name))
		if c.Generated || k < 0 {
			continue
		}
		d := in.Shadow.Columns[k]
		if d.Name != c.Name || !strings.EqualFold(d.ColumnType, c.ColumnType) ||
			in.SourceCollations[foldName(c.Name)] != in.ShadowCollations[foldName(d.Name)] {
			return false
		}
	}
	return true
}

// checkColumnsKept refuses an original column that the alter, as osc read
// it, neither drops nor renames and that the altered table lacks, or lacks
// under its new name; and two original columns read as renamed to one name.
func checkColumnsKept(in MySQLPlanInput) error {
	used := map[int]bool{}
	for _, c := range in.Source.Columns {
		sh := in.Alter.ShadowName(c.Name)
		if sh == "" {
			continue
		}
		j := columnIndexFold(in.Shadow, sh)
		if j < 0 {
			return errColumnLost(c.Name, sh)
		}
		if used[j] {
			return fmt.Errorf("osc read the --alter as giving two columns of the original the name %s, "+
				"which the server cannot have done; it does not guess which one the altered table's column holds: "+
				"check the CHANGE and RENAME COLUMN clauses", sh)
		}
		used[j] = true
	}
	return nil
}

// errColumnLost refuses an original column that the altered table lacks
// under the name osc expects: osc does not guess where its data went.
func errColumnLost(col, sh string) error {
	if !sameName(col, sh) {
		return fmt.Errorf("osc read the --alter as renaming column %s to %s, but the altered table has no column %s: "+
			"rename the column with one CHANGE or RENAME COLUMN clause and keep its new name", col, sh, sh)
	}
	return fmt.Errorf("the altered table has no column %s, but osc read no clause of the --alter that drops or renames it; "+
		"osc does not guess what became of its data: drop it with DROP COLUMN %s or rename it with RENAME COLUMN %s TO <new name> "+
		"(osc matches the names in the --alter to the table's exactly, apart from the case of ASCII letters)",
		col, QuoteMySQL(col), QuoteMySQL(col))
}

// chooseKey returns the original's PRIMARY KEY, or else its first UNIQUE key
// over NOT NULL columns that is not ignored, whose columns all reach the
// shadow with distinct values kept distinct and form a PRIMARY KEY or NOT NULL UNIQUE key there too;
// else one the shadow has only within a wider key, and that key's columns
// (see mysqlSharedKey).
func chooseKey(in MySQLPlanInput, mapping []ColumnMap) (MySQLIndex, []string, error) {
	shadowOf := map[string]string{}
	for _, m := range mapping {
		shadowOf[foldName(m.Source)] = m.Shadow
	}
	var candidates []MySQLIndex
	for _, ix := range in.SourceIndexes {
		// The copy reads the original through its key (FORCE INDEX).
		if ix.keyUsable() && !ix.Ignored {
			if ix.Primary {
				candidates = append([]MySQLIndex{ix}, candidates...)
			} else {
				candidates = append(candidates, ix)
			}
		}
	}
	for _, ix := range candidates {
		want := MySQLIndex{SubParts: ix.SubParts}
		ok := true
		for _, c := range ix.Columns {
			// A key whose values may merge would make the applier's
			// lookups find another row.
			sh, found := shadowOf[foldName(c)]
			if !found || !in.equalityKept(c) {
				ok = false
				break
			}
			want.Columns = append(want.Columns, sh)
		}
		if !ok {
			continue
		}
		for _, six := range in.ShadowIndexes {
			if six.keyUsable() && sameParts(want, six) {
				return ix, nil, nil
			}
		}
	}
	if len(candidates) == 0 {
		return MySQLIndex{}, nil, errNoKey(in.Source)
	}
	return mysqlSharedKey(in, mapping, candidates)
}

func errNoKey(t *Table) error {
	return fmt.Errorf("table %s.%s has no PRIMARY KEY and no UNIQUE key on NOT NULL columns; "+
		"osc needs one to copy and apply rows: add a PRIMARY KEY first", t.Schema, t.Name)
}

// sameParts reports whether both indexes cover the same columns (in any
// order) with the same prefix lengths.
func sameParts(a, b MySQLIndex) bool {
	if len(a.Columns) != len(b.Columns) {
		return false
	}
	for i, c := range a.Columns {
		found := false
		for j, d := range b.Columns {
			if sameName(c, d) && a.SubParts[i] == b.SubParts[j] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
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
