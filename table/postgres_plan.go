package table

import (
	"fmt"
	"sort"
	"strings"
)

func pgSameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		if seen[s] == 0 {
			return false
		}
		seen[s]--
	}
	return true
}

type pgPlanInput struct {
	Names                        PostgresNames
	Source, Shadow               []pgColumn
	PreAlter                     map[int16]string  // shadow attnum → original column name, read before the alter
	Values                       map[int16]pgValue // shadow attnum → the value a USING computes
	SourceIndexes, ShadowIndexes []pgIndex
	EstimatedRows                int64
	ReplIdent                    pgReplicaIdentity // the original's
	AddedFills                   map[int16]string  // shadow attnum → what osc writes into an added column (pgAddedTracker.fills)
}

// pgMissingValue is the value a plain ALTER's ADD COLUMN gives every existing
// row when its DEFAULT is not volatile (now(), CURRENT_DATE, a constant):
// evaluated once, for all rows, where the DEFAULT the copy's INSERT leaves to
// the server would give each chunk its own transaction's now(). The ALTER
// that made the shadow evaluated it once too and kept it as the column's
// missing value (attmissingval), in the catalog, where a resumed run finds it
// again. When a rewrite cleared it, osc keeps it elsewhere (postgres_added.go).
func pgMissingValue(n PostgresNames, c *pgColumn) string {
	return pgMissingValueOf(QuotePostgres(n.Schema, n.Shadow), c.Name, c.ColumnType, c.Default)
}

// pgMissingValueOf reads the missing value of column col of table rel (quoted,
// qualified) as a value of type typ: read back as text and cast in the same
// session, it is exact. The one-element array's text is read as a text[]
// whose element is cast: an array type's element is itself an array, which
// typ[] would take for a second dimension. Should something rewrite rel
// (VACUUM FULL) and clear it, the expression def is evaluated instead (NULL
// when "").
func pgMissingValueOf(rel, col, typ, def string) string {
	if def == "" {
		def = "NULL"
	}
	return fmt.Sprintf("coalesce((SELECT %s FROM pg_catalog.pg_attribute a "+
		"WHERE a.attrelid = %s::regclass AND a.attname = %s AND a.atthasmissing), %s)",
		pgMissingElement("a.attmissingval::text", typ), pgLiteral(rel), pgLiteral(col), def)
}

// pgMissingElement is SQL for the element of the one-element array whose
// text is the expression arr, as a value of type typ.
func pgMissingElement(arr, typ string) string {
	return fmt.Sprintf("CAST((%s::text[])[1] AS %s)", arr, typ)
}

// pgBuildPlan maps the original's columns onto the shadow's by attnum,
// chooses the key and refuses a shadow that would lose or reject rows:
// a unique or exclusion constraint the original does not guarantee, a new
// NOT NULL column without a default, a generated column made ordinary.
// kept maps every original column the shadow keeps (generated ones too) to
// its shadow name.
func pgBuildPlan(in pgPlanInput) (plan *Plan, kept map[string]string, err error) {
	p := &Plan{
		Source:  pgTable(in.Names.Schema, in.Names.Table, in.Source),
		Shadow:  pgTable(in.Names.Schema, in.Names.Shadow, in.Shadow),
		OldName: in.Names.Old, EstimatedRows: in.EstimatedRows,
	}
	shadowOf := map[string]*pgColumn{} // original name → shadow column
	toSource := map[string]string{}    // shadow name → original name
	kept = map[string]string{}
	for i := range in.Shadow {
		sc := &in.Shadow[i]
		if orig, ok := in.PreAlter[sc.Num]; ok {
			shadowOf[orig] = sc
			toSource[sc.Name] = orig
			kept[orig] = sc.Name
		}
	}
	var notes []string
	for i, c := range in.Source {
		sc := shadowOf[c.Name]
		if sc == nil {
			if c.Generated {
				notes = append(notes, "drop generated column "+c.Name)
			} else {
				notes = append(notes, "drop column "+c.Name+" (its data will be lost)")
			}
			continue
		}
		if sc.Name != c.Name {
			notes = append(notes, "rename column "+c.Name+" -> "+sc.Name)
		}
		if v, ok := in.Values[sc.Num]; ok {
			notes = append(notes, fmt.Sprintf("change column %s: %s -> %s, value computed USING %s", sc.Name, c.ColumnType, sc.ColumnType, strings.Join(v.Using, ", then USING ")))
		} else if sc.ColumnType != c.ColumnType {
			notes = append(notes, fmt.Sprintf("change column %s: %s -> %s", sc.Name, c.ColumnType, sc.ColumnType))
		}
		if c.Nullable && !sc.Nullable {
			notes = append(notes, fmt.Sprintf("column %s becomes NOT NULL: a NULL in the original makes the copy fail", sc.Name))
		}
		switch {
		case c.Generated && !sc.Generated:
			return nil, nil, fmt.Errorf("the --alter makes generated column %s an ordinary one; logical replication does not carry generated values, so osc cannot fill it: "+
				"add a new column and fill it after the migration instead", c.Name)
		case c.Generated:
		case sc.Generated:
			notes = append(notes, "column "+c.Name+" becomes generated (computed by the database)")
		default:
			p.Mapping = append(p.Mapping, ColumnMap{Source: c.Name, Shadow: sc.Name, SourceIndex: i, Expr: in.Values[sc.Num].Expr})
		}
	}
	for _, sc := range in.Shadow {
		if _, ok := in.PreAlter[sc.Num]; ok {
			continue
		}
		if !sc.Nullable && !sc.HasDefault && !sc.Identity && !sc.Generated {
			return nil, nil, fmt.Errorf("the --alter adds column %s NOT NULL without a default: rows copied from the original cannot fill it; give it a DEFAULT", sc.Name)
		}
		kind := "column"
		if sc.Generated {
			kind = "generated column"
		}
		notes = append(notes, fmt.Sprintf("add %s %s %s", kind, sc.Name, sc.ColumnType))
		if expr, ok := in.AddedFills[sc.Num]; ok {
			p.Fills = append(p.Fills, ColumnFill{Shadow: sc.Name, Expr: expr})
		} else if sc.Missing && !sc.Generated && !sc.Identity {
			p.Fills = append(p.Fills, ColumnFill{Shadow: sc.Name, Expr: pgMissingValue(in.Names, &sc)})
		}
	}
	typeSafe := func(shadowName string) bool {
		orig, ok := toSource[shadowName]
		if !ok {
			return false
		}
		sc := shadowOf[orig]
		if v, ok := in.Values[sc.Num]; ok && !v.Cast {
			return false // a USING computes other values
		}
		src := pgFindColumn(in.Source, orig)
		if sc.Collation != src.Collation && !sc.Deterministic {
			return false // a nondeterministic collation makes distinct strings equal
		}
		return PostgresEqualityKept(src.ColumnType, sc.ColumnType)
	}
	unchanged := func(shadowName string) bool {
		orig, ok := toSource[shadowName]
		if !ok || !typeSafe(shadowName) {
			return false
		}
		sc, src := shadowOf[orig], pgFindColumn(in.Source, orig)
		return sc.ColumnType == src.ColumnType && sc.Collation == src.Collation
	}
	newUnique, err := pgCheckNewUnique(in.SourceIndexes, in.ShadowIndexes, toSource, typeSafe, unchanged)
	if err != nil {
		return nil, nil, err
	}
	p.NewUnique = newUnique
	key, rowKey, err := pgChooseKey(in, shadowOf, typeSafe)
	if err != nil {
		return nil, nil, err
	}
	for _, k := range key.Columns {
		p.Key = append(p.Key, k)
		p.KeyIndex = append(p.KeyIndex, p.Source.ColumnIndex(k))
	}
	notes = append(notes, "key: "+key.describe())
	for _, k := range rowKey {
		p.RowKey = append(p.RowKey, k)
		p.RowKeyIndex = append(p.RowKeyIndex, p.Source.ColumnIndex(k))
	}
	if rowKey != nil {
		notes = append(notes, "rows of the altered table identified by ("+strings.Join(rowKey, ", ")+"), which holds the key")
	}
	p.Notes = notes
	return p, kept, nil
}

// PostgresEqualityKept reports whether changing a column's type from one to
// the other keeps distinct values distinct (so a unique index over it stays
// implied): the same type, a wider integer, text and varchar of any length,
// or a numeric with no fewer digits either side of the point. Each such
// change also keeps the values' order, collations aside.
func PostgresEqualityKept(from, to string) bool {
	if from == to {
		return true
	}
	ints := map[string]int{"smallint": 1, "integer": 2, "bigint": 3}
	if a, b := ints[from], ints[to]; a > 0 && b > 0 {
		return b >= a
	}
	isText := func(t string) bool {
		return t == "text" || t == "character varying" || strings.HasPrefix(t, "character varying(")
	}
	if isText(from) && isText(to) {
		return true
	}
	var p1, s1, p2, s2 int
	if _, err := fmt.Sscanf(from, "numeric(%d,%d)", &p1, &s1); err == nil {
		if to == "numeric" {
			return true
		}
		if _, err := fmt.Sscanf(to, "numeric(%d,%d)", &p2, &s2); err == nil {
			return s2 >= s1 && p2-s2 >= p1-s1
		}
	}
	return false
}

// pgCheckNewUnique refuses a unique index or exclusion constraint of the
// shadow that no valid index of the original implies: copying with ON
// CONFLICT DO NOTHING would drop the rows violating it silently. A shadow
// index is implied by an original one with the same definition, or (plain
// unique indexes) by a non-partial unique index on a subset of its columns.
func pgCheckNewUnique(src, sh []pgIndex, toSource map[string]string, typeSafe, unchanged func(string) bool) ([]UniqueKey, error) {
	var out []UniqueKey
	rename := func(s string) (string, bool) { n, ok := toSource[s]; return n, ok }
	same := func(s string) (string, bool) { return s, true }
	for _, u := range sh {
		if !u.Unique && !u.Exclusion {
			continue
		}
		colsSafe := true
		for _, c := range append(append([]string{}, u.Columns...), u.Include...) {
			if c != "" && !typeSafe(c) {
				colsSafe = false
			}
		}
		implied := false
		if colsSafe {
			us, ok := u.signature(rename, true)
			for _, o := range src {
				if !o.Valid {
					continue
				}
				if os, _ := o.signature(same, true); ok && os == us {
					implied = true
					break
				}
				if u.Unique && u.Exprs == "" && o.Unique && o.Exprs == "" && o.Pred == "" && (!u.NullsNot || o.NullsNot) &&
					pgSubset(o.Columns, u.Columns, rename) {
					implied = true
					break
				}
			}
		}
		if !implied {
			nu, ok, err := pgNewUnique(u, toSource, unchanged)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, nu)
				continue
			}
			return nil, fmt.Errorf("the shadow table would have %s, which the original does not guarantee (a new exclusion constraint or primary key, a new unique index that is "+
				"partial, over an expression or deferrable, one over a column that the --alter adds or whose type, collation or values (USING) it changes, "+
				"or the copy of an invalid index of the original, which must then be dropped first): copying with ON CONFLICT DO NOTHING would silently "+
				"drop the rows that violate it, and osc adds a new unique key, setting aside the rows that clash "+
				"under it, only as an immediate UNIQUE over columns the --alter leaves as they are; migrate without it and add it afterwards (CREATE UNIQUE INDEX CONCURRENTLY)",
				u.describe())
		}
	}
	if len(out) > 0 {
		// The rows set aside go back with ON CONFLICT DO NOTHING without a
		// target (apply/postgres_aside.go), which refuses a deferrable
		// arbiter.
		for _, u := range sh {
			if (u.Unique || u.Exclusion) && !u.Immediate {
				return nil, fmt.Errorf("the --alter adds the unique key %s to a table with the deferrable constraint %s: osc adds a new unique key only to a table "+
					"whose unique and exclusion constraints are immediate; add it with a plain ALTER TABLE, or afterwards with CREATE UNIQUE INDEX CONCURRENTLY", out[0].Describe(), u.describe())
			}
		}
	}
	return out, nil
}

// pgSubset reports whether every column of o (original names) is among the
// columns of u (shadow names, mapped back by rename).
func pgSubset(o, u []string, rename func(string) (string, bool)) bool {
	have := map[string]bool{}
	for _, c := range u {
		n, ok := rename(c)
		if !ok {
			return false
		}
		have[n] = true
	}
	for _, c := range o {
		if !have[c] {
			return false
		}
	}
	return len(o) > 0
}

// pgChooseKey returns the original's primary key, or else its unique index
// with the fewest columns, that is usable as a key in the original and whose
// columns reach the shadow (types keeping equality) and form a usable key
// there too; else one the shadow has only within a wider key, and that
// key's columns (see pgSharedKey).
func pgChooseKey(in pgPlanInput, shadowOf map[string]*pgColumn, typeSafe func(string) bool) (pgIndex, []string, error) {
	var cands []pgIndex
	for _, ix := range in.SourceIndexes {
		if ix.keyUsable(in.Source) {
			cands = append(cands, ix)
		}
	}
	// A key the replica identity does not carry cannot be captured.
	sort.SliceStable(cands, func(i, j int) bool {
		if ci, cj := in.ReplIdent.covers(cands[i].Columns), in.ReplIdent.covers(cands[j].Columns); ci != cj {
			return ci
		}
		if cands[i].Primary != cands[j].Primary {
			return cands[i].Primary
		}
		return len(cands[i].Columns) < len(cands[j].Columns)
	})
	for _, ix := range cands {
		var want []string
		for _, c := range ix.Columns {
			sc := shadowOf[c]
			if sc == nil || sc.Generated || !typeSafe(sc.Name) {
				want = nil
				break
			}
			want = append(want, sc.Name)
		}
		if want == nil {
			continue
		}
		for _, u := range in.ShadowIndexes {
			if u.keyUsable(in.Shadow) && pgSameSet(u.Columns, want) {
				if !in.ReplIdent.covers(ix.Columns) {
					return pgIndex{}, nil, in.ReplIdent.refusal(in.Names, ix)
				}
				return ix, nil, nil
			}
		}
	}
	if len(cands) == 0 {
		return pgIndex{}, nil, fmt.Errorf("table %s.%s has no PRIMARY KEY and no usable UNIQUE index; osc needs one to copy and apply rows: add a PRIMARY KEY first",
			in.Names.Schema, in.Names.Table)
	}
	return pgSharedKey(in, shadowOf, typeSafe, cands)
}

// pgPairIndexes pairs each old index with a new one of the same definition
// (new columns mapped back by rename): first exactly, then ignoring operator
// classes, options and collations (which follow a column's type), then the
// primary keys left over.
func pgPairIndexes(oldIdx, newIdx []pgIndex, rename func(string) (string, bool)) [][2]string {
	same := func(s string) (string, bool) { return s, true }
	used := make([]bool, len(newIdx))
	paired := map[string]bool{}
	var pairs [][2]string
	match := func(o pgIndex, ok func(pgIndex) bool) {
		for j, u := range newIdx {
			if !used[j] && ok(u) {
				used[j], paired[o.Name] = true, true
				pairs = append(pairs, [2]string{o.Name, u.Name})
				return
			}
		}
	}
	for _, strict := range []bool{true, false} {
		for _, o := range oldIdx {
			if paired[o.Name] {
				continue
			}
			os, _ := o.signature(same, strict)
			match(o, func(u pgIndex) bool { us, ok := u.signature(rename, strict); return ok && us == os })
		}
	}
	for _, o := range oldIdx {
		if o.Primary && !paired[o.Name] {
			match(o, func(u pgIndex) bool { return u.Primary })
		}
	}
	return pairs
}
