package table

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
)

// MySQLAsideName is the name of the aside table of a migration of table
// name: where the rows a new unique key of the shadow turns away wait until
// they fit (README, "Why nothing is lost", step 5). It sorts after the
// table's name, as the other helper tables do.
func MySQLAsideName(name string) string { return name + "_osc_dup" }

// MySQLAside is the aside table of a plan with new unique keys: rows of the
// shadow's form (the columns the copy and the applier write, with the
// shadow's types and collations), keyed by the shadow's row identity
// (Plan.Identity), with no other index. A key is in at most one of the
// shadow and the aside table, and the two together are what the shadow
// alone is for every other step. It also remembers whether rows may be
// aside, so that the applier and the copy skip what they would do for
// them when it knows there are none; every user runs under the engine's
// applier lock (the copy holds the applier off for such a plan), so the
// flag is never stale for the one that reads it.
type MySQLAside struct {
	// Table is the aside table, quoted and schema-qualified; Shadow the
	// shadow.
	Table, Shadow string
	// Columns are the written columns, quoted, in the copy's and the
	// applier's order (the mapped columns, then the fills).
	Columns []string
	// Keys are the shadow's identity columns, quoted.
	Keys []string
	// Source is the original, quoted and schema-qualified; SourceKeys the
	// columns the identity's values come from there, quoted.
	Source     string
	SourceKeys []string
	// Unique are the plan's new unique keys.
	Unique []UniqueKey

	maybe atomic.Bool // rows may be aside (true until known)
}

// NewMySQLAside returns the aside table of the plan, or nil when the plan
// adds no unique key.
func NewMySQLAside(p *Plan) (*MySQLAside, error) {
	if len(p.NewUnique) == 0 {
		return nil, nil
	}
	if err := p.Usable(); err != nil {
		return nil, err
	}
	schema := p.Shadow.Schema
	if schema == "" {
		schema = p.Source.Schema
	}
	a := &MySQLAside{Table: QuoteMySQL(schema, MySQLAsideName(p.Source.Name)), Shadow: QuoteMySQL(schema, p.Shadow.Name),
		Source: QuoteMySQL(p.Source.Schema, p.Source.Name), Unique: p.NewUnique}
	a.maybe.Store(true)
	for _, m := range p.Mapping {
		a.Columns = append(a.Columns, QuoteMySQL(m.Shadow))
	}
	for _, f := range p.Fills {
		a.Columns = append(a.Columns, QuoteMySQL(f.Shadow))
	}
	names, _ := p.Identity()
	for _, k := range names {
		found := false
		for _, m := range p.Mapping {
			if m.Source == k {
				a.Keys, a.SourceKeys = append(a.Keys, QuoteMySQL(m.Shadow)), append(a.SourceKeys, QuoteMySQL(k))
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("key column %s is not copied to the shadow table", k)
		}
	}
	return a, nil
}

// MayHoldRows reports whether rows may be aside: false only when it is
// known that there are none.
func (a *MySQLAside) MayHoldRows() bool { return a.maybe.Load() }

// Holds records whether rows are aside, as a committed transaction left
// it (a transaction that may have put rows aside sets it true before its
// commit, whose outcome an error leaves unknown).
func (a *MySQLAside) Holds(rows bool) { a.maybe.Store(rows) }

// Create creates the empty aside table: the written columns of the shadow
// as the shadow defines them (CREATE TABLE … SELECT keeps each column's
// type, character set, collation and nullability), keyed by the shadow's
// identity.
func (a *MySQLAside) Create(ctx context.Context, db *sql.DB) error {
	q := "CREATE TABLE " + a.Table + " (PRIMARY KEY (" + strings.Join(a.Keys, ", ") + ")) ENGINE=InnoDB SELECT " + //nolint:gosec // G202: quoted names only
		strings.Join(a.Columns, ", ") + " FROM " + a.Shadow + " LIMIT 0"
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("create the aside table %s: %w", a.Table, err)
	}
	a.Holds(false)
	return nil
}

// SameKey is the condition that the row of alias x (the aside or the
// shadow, "" for the statement's own table, named in full) has the key of
// the row of alias y.
func (a *MySQLAside) SameKey(x, y string) string {
	t := make([]string, len(a.Keys))
	for i, k := range a.Keys {
		t[i] = x + "." + k + " = " + y + "." + k
	}
	return strings.Join(t, " AND ")
}

// InShadow is the condition that the shadow holds the key of the aside
// table's row (the statement's own, named in full).
func (a *MySQLAside) InShadow() string {
	return "EXISTS (SELECT 1 FROM " + a.Shadow + " AS osc_s WHERE " + a.SameKey("osc_s", a.Table) + ")"
}

// SourceAbsent is the condition that neither the shadow nor the aside
// table holds the key of the original's row (the statement's own, read
// through MySQLCopy.From), compared as the shadow's key compares it.
func (a *MySQLAside) SourceAbsent(inShadowToo bool) string {
	same := func(alias string) string {
		t := make([]string, len(a.Keys))
		for i, k := range a.Keys {
			t[i] = alias + "." + k + " = " + a.Source + "." + a.SourceKeys[i]
		}
		return strings.Join(t, " AND ")
	}
	cond := "NOT EXISTS (SELECT 1 FROM " + a.Table + " AS osc_x WHERE " + same("osc_x") + ")"
	if inShadowToo {
		cond += " AND NOT EXISTS (SELECT 1 FROM " + a.Shadow + " AS osc_s WHERE " + same("osc_s") + ")"
	}
	return cond
}

// Duplicates returns, after the final drain (the shadow and the aside
// table are then the original), a *DuplicateError naming the values of a
// new unique key that a row still aside holds with other rows of the
// shadow or of the aside table, and the keys of those rows, read in q
// (the restore's transaction). It returns a plain error when rows are
// aside that clash under no new unique key, which cannot be: the run
// fails rather than drop them.
func (a *MySQLAside) Duplicates(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, aside int64, when string) error {
	// A row's key is its columns' values separated by asideKeyColumns,
	// the rows' keys are separated by asideKeyRows (a text key holding one
	// of these control characters is shown split: the message only).
	keyText := func(alias string) string {
		parts := make([]string, len(a.Keys))
		for i, k := range a.Keys {
			parts[i] = alias + "." + k
		}
		return "CONCAT_WS('" + asideKeyColumns + "', " + strings.Join(parts, ", ") + ")"
	}
	for _, u := range a.Unique {
		sel := func(alias string) string {
			cols := make([]string, len(u.Shadow))
			for i, c := range u.Shadow {
				cols[i] = fmt.Sprintf("%s.%s AS osc_u%d", alias, QuoteMySQL(c), i)
			}
			return strings.Join(cols, ", ") + ", " + keyText(alias) + " AS osc_k"
		}
		notNull := make([]string, len(u.Shadow))
		same := make([]string, len(u.Shadow))
		group := make([]string, len(u.Shadow))
		for i, c := range u.Shadow {
			notNull[i] = "osc_x." + QuoteMySQL(c) + " IS NOT NULL"
			same[i] = "osc_y." + QuoteMySQL(c) + " = osc_s." + QuoteMySQL(c)
			group[i] = fmt.Sprintf("osc_u%d", i)
		}
		stmt := "SELECT " + strings.Join(group, ", ") + ", COUNT(*), GROUP_CONCAT(osc_k ORDER BY osc_k SEPARATOR '" + asideKeyRows + "') FROM (" +
			"SELECT " + sel("osc_x") + " FROM " + a.Table + " AS osc_x WHERE " + strings.Join(notNull, " AND ") +
			" UNION ALL SELECT " + sel("osc_s") + " FROM " + a.Shadow + " AS osc_s WHERE EXISTS (SELECT 1 FROM " + a.Table +
			" AS osc_y WHERE " + strings.Join(same, " AND ") + ")) AS osc_d GROUP BY " + strings.Join(group, ", ") +
			fmt.Sprintf(" HAVING COUNT(*) > 1 LIMIT %d", uniqueDuplicatesLimit)
		dups, err := asideDuplicateRows(ctx, q, stmt, len(u.Shadow))
		if err != nil {
			return fmt.Errorf("read the rows that duplicate the new unique key %s: %w", u.Describe(), err)
		}
		if len(dups) > 0 {
			return &DuplicateError{Key: u, Duplicates: dups, When: when}
		}
	}
	return fmt.Errorf("%d row(s) of the original still do not fit into the shadow once every change is applied, yet duplicate no value of a new unique key: "+
		"the migration stops rather than drop them (they are in %s until the cleanup)", aside, a.Table)
}

// The separators of the rows' keys Duplicates reads (ASCII unit and record
// separators).
const (
	asideKeyColumns = "\x1f"
	asideKeyRows    = "\x1e"
)

// asideDuplicateRows runs a query selecting n values, a count and the
// rows' keys (asideKeyColumns, asideKeyRows), and returns its rows as
// duplicates.
func asideDuplicateRows(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, stmt string, n int) ([]Duplicate, error) {
	rows, err := q.QueryContext(ctx, stmt)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Duplicate
	for rows.Next() {
		vals := make([]sql.NullString, n)
		ptrs := make([]any, n+2)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		var d Duplicate
		var keys sql.NullString
		ptrs[n], ptrs[n+1] = &d.Rows, &keys
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for _, v := range vals {
			d.Values = append(d.Values, nullText(v))
		}
		if keys.Valid {
			for _, k := range strings.Split(keys.String, asideKeyRows) {
				d.Keys = append(d.Keys, strings.Split(k, asideKeyColumns))
			}
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func nullText(v sql.NullString) string {
	if v.Valid {
		return v.String
	}
	return "NULL"
}
