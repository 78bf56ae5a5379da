package table

import (
	"fmt"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	// The parser needs a value-expression driver to build literals (DEFAULT 0).
	_ "github.com/pingcap/tidb/pkg/parser/test_driver"
)

// MySQLIndex is one index of a MySQL table as the catalog (or an --alter)
// describes it.
type MySQLIndex struct {
	Name     string
	Primary  bool
	Unique   bool     // true for the PRIMARY KEY too
	Columns  []string // column names; "" for an expression part
	SubParts []int    // prefix length of each column, 0 for the whole value
	Nullable bool     // some column of the index allows NULL
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

// MySQLAlter is what osc needs to know of an --alter, read with the TiDB
// parser before anything is created.
type MySQLAlter struct {
	Text string // the clauses as the user gave them
	// Renames maps the lower-case name of an original column to its new name
	// (CHANGE COLUMN a b ..., RENAME COLUMN a TO b).
	Renames map[string]string
	// Dropped holds the lower-case names of the original columns the alter
	// drops. A column dropped and added again under the same name is new.
	Dropped map[string]bool
	// Unique lists the PRIMARY and UNIQUE keys the alter adds, by shadow
	// column names.
	Unique []MySQLIndex
	// SetsAutoIncrement is true when the alter sets the AUTO_INCREMENT table
	// option itself.
	SetsAutoIncrement bool
}

// ShadowName returns the name the original column gets in the shadow table,
// or "" when the alter drops it.
func (a *MySQLAlter) ShadowName(column string) string {
	if n, ok := a.Renames[strings.ToLower(column)]; ok {
		return n
	}
	if a.Dropped[strings.ToLower(column)] {
		return ""
	}
	return column
}

// ParseMySQLAlter reads the --alter clauses for table name. It refuses what
// osc cannot run online: text that is not one ALTER of the table, a RENAME of
// the table, and foreign keys.
func ParseMySQLAlter(name, alter string) (*MySQLAlter, error) {
	text := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(alter), ";"))
	if text == "" {
		return nil, fmt.Errorf("--alter is empty: give the clauses of the ALTER TABLE, e.g. \"ADD COLUMN c INT\"")
	}
	if fields := strings.Fields(text); len(fields) >= 2 && strings.EqualFold(fields[0], "ALTER") && strings.EqualFold(fields[1], "TABLE") {
		return nil, fmt.Errorf("--alter takes only the clauses after ALTER TABLE %s (e.g. \"ADD COLUMN c INT\"), not a whole statement: %q", name, text)
	}
	stmts, _, err := parser.New().Parse("ALTER TABLE "+QuoteMySQL(name)+" "+text, "", "")
	if err != nil {
		return nil, fmt.Errorf("--alter does not parse as clauses of ALTER TABLE %s: %v", name, err)
	}
	if len(stmts) != 1 {
		return nil, fmt.Errorf("--alter must be the clauses of one ALTER TABLE %s; it holds %d statements", name, len(stmts))
	}
	st, ok := stmts[0].(*ast.AlterTableStmt)
	if !ok || st.Table.Schema.O != "" || !strings.EqualFold(st.Table.Name.O, name) {
		return nil, fmt.Errorf("--alter must be the clauses of ALTER TABLE %s", name)
	}
	a := &MySQLAlter{Text: text, Renames: map[string]string{}, Dropped: map[string]bool{}}
	for _, sp := range st.Specs {
		if err := a.addSpec(sp); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (a *MySQLAlter) addSpec(sp *ast.AlterTableSpec) error {
	switch sp.Tp {
	case ast.AlterTableRenameTable:
		return fmt.Errorf("--alter renames the table (RENAME TO); osc swaps the names itself at cut-over: drop the RENAME clause and rename the table separately")
	case ast.AlterTableAddColumns, ast.AlterTableModifyColumn:
		for _, c := range sp.NewColumns {
			if err := a.addColumnOptions(c); err != nil {
				return err
			}
		}
	case ast.AlterTableChangeColumn:
		if sp.OldColumnName != nil && len(sp.NewColumns) == 1 {
			old, nw := sp.OldColumnName.Name.O, sp.NewColumns[0].Name.Name.O
			if !strings.EqualFold(old, nw) {
				a.Renames[strings.ToLower(old)] = nw
			}
		}
		for _, c := range sp.NewColumns {
			if err := a.addColumnOptions(c); err != nil {
				return err
			}
		}
	case ast.AlterTableRenameColumn:
		a.Renames[sp.OldColumnName.Name.L] = sp.NewColumnName.Name.O
	case ast.AlterTableDropColumn:
		a.Dropped[sp.OldColumnName.Name.L] = true
	case ast.AlterTableAddConstraint:
		return a.addConstraint(sp.Constraint)
	case ast.AlterTableOption:
		for _, o := range sp.Options {
			if o.Tp == ast.TableOptionAutoIncrement {
				a.SetsAutoIncrement = true
			}
		}
	}
	return nil
}

func (a *MySQLAlter) addColumnOptions(c *ast.ColumnDef) error {
	for _, o := range c.Options {
		switch o.Tp {
		case ast.ColumnOptionPrimaryKey:
			a.Unique = append(a.Unique, MySQLIndex{Name: "PRIMARY", Primary: true, Unique: true,
				Columns: []string{c.Name.Name.O}, SubParts: []int{0}})
		case ast.ColumnOptionUniqKey:
			a.Unique = append(a.Unique, MySQLIndex{Unique: true, Columns: []string{c.Name.Name.O}, SubParts: []int{0}})
		case ast.ColumnOptionReference:
			return errForeignKeyAlter
		}
	}
	return nil
}

var errForeignKeyAlter = fmt.Errorf("--alter adds a foreign key; osc does not support foreign keys (the cut-over would leave them pointing at the old table): drop the REFERENCES clause")

func (a *MySQLAlter) addConstraint(c *ast.Constraint) error {
	if c == nil {
		return nil
	}
	ix := MySQLIndex{Name: c.Name, Unique: true}
	switch c.Tp {
	case ast.ConstraintForeignKey:
		return errForeignKeyAlter
	case ast.ConstraintPrimaryKey:
		ix.Name, ix.Primary = "PRIMARY", true
	case ast.ConstraintUniq, ast.ConstraintUniqKey, ast.ConstraintUniqIndex:
	default:
		return nil
	}
	for _, k := range c.Keys {
		col, sub := "", 0
		if k.Column != nil && k.Expr == nil {
			col = k.Column.Name.O
			sub = max(k.Length, 0)
		}
		ix.Columns = append(ix.Columns, col)
		ix.SubParts = append(ix.SubParts, sub)
	}
	a.Unique = append(a.Unique, ix)
	return nil
}

// CheckNewUnique refuses a unique key the alter adds that the original table
// does not already guarantee: rows duplicating it would be dropped silently by
// the copy (INSERT IGNORE) or deleted by the apply (REPLACE).
func (a *MySQLAlter) CheckNewUnique(source *Table, indexes []MySQLIndex) error {
	toSource := a.shadowToSource(source)
	for _, u := range a.Unique {
		if !impliedUnique(u, toSource, indexes) {
			return errNewUnique(u)
		}
	}
	return nil
}

func errNewUnique(u MySQLIndex) error {
	kind := "a UNIQUE key " + u.describe()
	if u.Primary {
		kind = "a PRIMARY KEY " + u.describe()
	}
	return fmt.Errorf("the --alter adds %s that no existing unique key of the original implies; "+
		"rows that duplicate it would be lost silently during the copy. osc refuses a new unique key: "+
		"check for duplicates and add it with a plain ALTER TABLE, or make it contain an existing unique key's columns", kind)
}

// shadowToSource maps the lower-case shadow name of every original column
// the alter keeps to its original name.
func (a *MySQLAlter) shadowToSource(source *Table) map[string]string {
	m := map[string]string{}
	for _, c := range source.Columns {
		if sh := a.ShadowName(c.Name); sh != "" {
			m[strings.ToLower(sh)] = c.Name
		}
	}
	return m
}

// impliedUnique reports whether every set of rows distinct under some unique
// index of the original is also distinct under u (given by shadow column
// names): u contains all the parts of that index, each at least as long.
func impliedUnique(u MySQLIndex, toSource map[string]string, indexes []MySQLIndex) bool {
	for _, ix := range indexes {
		if !ix.Unique || len(ix.Columns) == 0 {
			continue
		}
		all := true
		for i, col := range ix.Columns {
			if col == "" || !containsPart(u, toSource, col, ix.SubParts[i]) {
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
		src, ok := toSource[strings.ToLower(c)]
		if c == "" || !ok || !strings.EqualFold(src, col) {
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
}

// BuildMySQLPlan maps the original's columns onto the shadow's, chooses the
// key and refuses a shadow that would lose rows silently: a unique key the
// original does not guarantee, or no key both tables share.
func BuildMySQLPlan(in MySQLPlanInput) (*Plan, error) {
	p := &Plan{Source: in.Source, Shadow: in.Shadow, OldName: in.OldName,
		ChangelogName: in.ChangelogName, EstimatedRows: in.EstimatedRows, TimeZone: in.TimeZone}
	toSource := in.Alter.shadowToSource(in.Source)
	for _, ix := range in.ShadowIndexes {
		if ix.Unique && !impliedUnique(ix, toSource, in.SourceIndexes) {
			return nil, errNewUnique(ix)
		}
	}

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
		if a, b := in.SourceCollations[strings.ToLower(c.Name)], in.ShadowCollations[strings.ToLower(sc.Name)]; a != b && inUniqueKey(in.ShadowIndexes, sc.Name) {
			notes = append(notes, fmt.Sprintf("warning: unique key column %s changes collation %s -> %s; "+
				"values distinct before but equal after would be lost", sc.Name, a, b))
		}
		if c.Generated || sc.Generated {
			continue
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
		notes = append(notes, "add column "+sc.Name)
		fill, err := mysqlFill(sc, in.TimeZone)
		if err != nil {
			return nil, err
		}
		if fill != "" {
			p.Fills = append(p.Fills, ColumnFill{Shadow: sc.Name, Expr: fill})
		}
	}

	key, err := chooseKey(in, p.Mapping)
	if err != nil {
		return nil, err
	}
	for _, k := range key.Columns {
		p.Key = append(p.Key, k)
		p.KeyIndex = append(p.KeyIndex, columnIndexFold(in.Source, k))
	}
	notes = append(notes, "key: "+key.describe())
	notes = append(notes, fmt.Sprintf("rows: ~%d", in.EstimatedRows))
	p.Notes = notes
	return p, nil
}

// chooseKey returns the original's PRIMARY KEY, or else its first UNIQUE key
// over NOT NULL columns, whose columns all reach the shadow and form a
// PRIMARY KEY or NOT NULL UNIQUE key there too.
func chooseKey(in MySQLPlanInput, mapping []ColumnMap) (MySQLIndex, error) {
	shadowOf := map[string]string{}
	for _, m := range mapping {
		shadowOf[strings.ToLower(m.Source)] = m.Shadow
	}
	var candidates []MySQLIndex
	for _, ix := range in.SourceIndexes {
		if ix.keyUsable() {
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
			sh, found := shadowOf[strings.ToLower(c)]
			if !found {
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
				return ix, nil
			}
		}
	}
	if len(candidates) == 0 {
		return MySQLIndex{}, errNoKey(in.Source)
	}
	return MySQLIndex{}, fmt.Errorf("no key is usable in both tables: osc needs the original's %s to keep its columns "+
		"and stay a PRIMARY KEY or a UNIQUE key on NOT NULL columns in the altered table, and the --alter changes it",
		candidates[0].describe())
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
			if strings.EqualFold(c, d) && a.SubParts[i] == b.SubParts[j] {
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

func inUniqueKey(indexes []MySQLIndex, col string) bool {
	for _, ix := range indexes {
		if !ix.Unique {
			continue
		}
		for _, c := range ix.Columns {
			if strings.EqualFold(c, col) {
				return true
			}
		}
	}
	return false
}

// columnIndexFold is Table.ColumnIndex ignoring case, as MySQL compares
// column names.
func columnIndexFold(t *Table, name string) int {
	if name == "" {
		return -1
	}
	for i, c := range t.Columns {
		if strings.EqualFold(c.Name, name) {
			return i
		}
	}
	return -1
}

// QuoteMySQL quotes an identifier with backticks.
func QuoteMySQL(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}
