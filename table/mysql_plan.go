package table

import (
	"fmt"
	"strings"
)

func errNewUnique(u MySQLIndex, why string) error {
	kind := "a UNIQUE key " + u.describe()
	if u.Primary {
		kind = "a PRIMARY KEY " + u.describe()
	}
	return fmt.Errorf("the --alter adds %s that no existing unique key of the original implies, and %s; "+
		"osc adds a new unique key (checking every clash with the original, so that no duplicate is dropped) only as a UNIQUE key "+
		"over whole, not generated columns that the --alter leaves as they are (type and collation): add this one with a plain ALTER TABLE, "+
		"or change the columns first and add the key in a second migration", kind, why)
}

// impliedUnique reports whether every set of rows distinct under some unique
// index of the original is also distinct under u (given by shadow column
// names): u contains all the parts of that index, each at least as long,
// and the alter's type changes keep distinct values of each part distinct
// (kept, by original column name and whether u indexes a prefix of it; nil:
// every column's do).
func impliedUnique(u MySQLIndex, toSource map[string]string, indexes []MySQLIndex, kept func(col string, prefix bool) bool) bool {
	for _, ix := range indexes {
		if !ix.Unique || len(ix.Columns) == 0 {
			continue
		}
		all := true
		for i, col := range ix.Columns {
			found, prefix := containsPart(u, toSource, col, ix.SubParts[i])
			if col == "" || !found || kept != nil && !kept(col, prefix) {
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

// containsPart reports whether u has a part of the original column col at
// least sub long (0: the whole value), and whether that part is a prefix.
func containsPart(u MySQLIndex, toSource map[string]string, col string, sub int) (found, prefix bool) {
	for j, c := range u.Columns {
		src, ok := toSource[foldName(c)]
		if c == "" || !ok || !sameName(src, col) {
			continue
		}
		if u.SubParts[j] == 0 || (sub > 0 && u.SubParts[j] >= sub) {
			return true, u.SubParts[j] > 0
		}
	}
	return false, false
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
	// NullTimestampNow is Plan.NullTimestampNow: the NULLs of a column
	// that becomes a TIMESTAMP NOT NULL all become AlterTime, so that a
	// unique key over it may hold them no longer (equalityKept).
	NullTimestampNow bool
}

// BuildMySQLPlan maps the original's columns onto the shadow's, chooses the
// key and refuses a shadow that would lose rows silently: a unique key the
// original does not guarantee, or no key both tables share.
func BuildMySQLPlan(in MySQLPlanInput) (*Plan, error) {
	if err := checkColumnsKept(in); err != nil {
		return nil, err
	}
	p := &Plan{Source: in.Source, Shadow: in.Shadow, OldName: in.OldName,
		ChangelogName: in.ChangelogName, EstimatedRows: in.EstimatedRows, TimeZone: in.TimeZone, AlterTime: in.AlterTime,
		NullTimestampNow: in.NullTimestampNow}
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
	if err := checkAsideKey(p); err != nil {
		return nil, err
	}
	notes = append(notes, fmt.Sprintf("rows: ~%d", in.EstimatedRows))
	p.Notes = notes
	return p, nil
}

// checkAsideKey refuses a plan with new unique keys whose row identity
// (Plan.Identity) holds a column the shadow makes a BLOB or a TEXT, a key
// MariaDB keeps as a hash (a long unique key). The rows a new unique key
// turns away wait in the aside table keyed by the identity, which no
// PRIMARY KEY can take whole ("BLOB/TEXT column used in key specification
// without a key length": osc failed creating it), and osc does not key it
// by a hash unique key instead.
func checkAsideKey(p *Plan) error {
	if len(p.NewUnique) == 0 {
		return nil
	}
	names, _ := p.Identity()
	for _, k := range names {
		for _, m := range p.Mapping {
			if !sameName(m.Source, k) {
				continue
			}
			j := p.Shadow.ColumnIndex(m.Shadow)
			if j < 0 {
				continue
			}
			if dt := p.Shadow.Columns[j].DataType; strings.HasSuffix(dt, "blob") || strings.HasSuffix(dt, "text") {
				return fmt.Errorf("the --alter makes the key column %s a %s and adds the unique key %s: osc keeps the rows a new unique key turns away "+
					"in a table keyed by the row's key, which cannot be a %s (MariaDB keeps a unique key over it as a hash, which osc does not key that "+
					"table by): run the ALTER TABLE directly, or make %s a VARCHAR or VARBINARY instead",
					QuoteMySQL(m.Shadow), strings.ToUpper(dt), p.NewUnique[0].Describe(), strings.ToUpper(dt), QuoteMySQL(m.Shadow))
			}
		}
	}
	return nil
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
	kept := func(col string, prefix bool) bool {
		return in.equalityKept(col) && !(prefix && in.textMadeBytes(col))
	}
	var out []UniqueKey
	for _, ix := range in.ShadowIndexes {
		if !ix.Unique || impliedUnique(ix, toSource, in.SourceIndexes, kept) {
			continue
		}
		if impliedUnique(ix, toSource, in.SourceIndexes, nil) {
			// Implied but for a type change: name the column.
			for j, c := range ix.Columns {
				src, ok := toSource[foldName(c)]
				if ok && !kept(src, ix.SubParts[j] > 0) {
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

// textMadeBytes reports whether the original column col is a text that the
// shadow makes a binary string: a prefix of it counts characters in the
// original's keys and bytes in the shadow's, so UNIQUE KEY (h(10)) keeps the
// first 10 bytes of 'ääääääääa' and of 'ääääääääb', equal, where the
// original's first 10 characters differ.
func (in MySQLPlanInput) textMadeBytes(col string) bool {
	i := columnIndexFold(in.Source, col)
	j := columnIndexFold(in.Shadow, in.Alter.ShadowName(col))
	return i >= 0 && j >= 0 && mysqlTextToBytes(in.Source.Columns[i], in.Shadow.Columns[j])
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
	if in.NullTimestampNow && mysqlNullsToTime(sc, dc) {
		// Its NULLs, distinct in a unique key, become one time.
		return false
	}
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
// shadow with distinct values kept distinct and form a PRIMARY KEY or UNIQUE
// key there too (over columns made nullable, maybe: the values are the
// original's);
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
			// A UNIQUE key whose columns the --alter makes nullable
			// still tells the rows apart: their values are the
			// original's NOT NULL ones.
			six.Nullable = false
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
