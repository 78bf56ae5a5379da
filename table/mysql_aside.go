package table

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
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
	// Source is the original, quoted and schema-qualified.
	Source string
	// sourceCmp are what each key column is compared with in a row of the
	// original (SourceAbsent): the column the identity's values come from
	// there, the text of an integer made a string converted as the shadow
	// holds it (MySQLIntegerKeyText).
	sourceCmp []string
	// Unique are the plan's new unique keys.
	Unique []UniqueKey

	// schema, shadow and names are the shadow's schema and name and the
	// written columns' names, unquoted (Create reads their definitions).
	schema, shadow string
	names          []string

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
		Source: QuoteMySQL(p.Source.Schema, p.Source.Name), Unique: p.NewUnique, schema: schema, shadow: p.Shadow.Name}
	a.maybe.Store(true)
	for _, m := range p.Mapping {
		a.names = append(a.names, m.Shadow)
	}
	for _, f := range p.Fills {
		a.names = append(a.names, f.Shadow)
	}
	for _, n := range a.names {
		a.Columns = append(a.Columns, QuoteMySQL(n))
	}
	names, _ := p.Identity()
	for _, k := range names {
		found := false
		for _, m := range p.Mapping {
			if m.Source == k {
				a.Keys = append(a.Keys, QuoteMySQL(m.Shadow))
				cmp := a.Source + "." + QuoteMySQL(k)
				if j := p.Shadow.ColumnIndex(m.Shadow); j >= 0 && m.SourceIndex >= 0 && m.SourceIndex < len(p.Source.Columns) {
					var err error
					if cmp, _, err = MySQLIntegerKeyText(cmp, p.Source.Columns[m.SourceIndex], p.Shadow.Columns[j]); err != nil {
						return nil, err
					}
				}
				a.sourceCmp = append(a.sourceCmp, cmp)
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

// MySQLExecQuerier runs statements and queries: a *sql.DB, or a *sql.Conn
// whose session settings (a lock_wait_timeout) they need.
type MySQLExecQuerier interface {
	MySQLQuerier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Create creates the empty aside table: the written columns of the shadow
// with the shadow's type, character set, collation and nullability, keyed by
// the shadow's identity, with no other index. The definition is spelled out
// from the shadow's (information_schema.COLUMNS), not made by CREATE TABLE …
// SELECT, which MySQL before 8.0.21 refuses under enforce_gtid_consistency.
func (a *MySQLAside) Create(ctx context.Context, q MySQLExecQuerier) error {
	stmt, err := a.createStatement(ctx, q)
	if err != nil {
		return fmt.Errorf("create the aside table %s: %w", a.Table, err)
	}
	if _, err := q.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("create the aside table %s: %w", a.Table, err)
	}
	a.Holds(false)
	return nil
}

// createStatement is the aside table's CREATE TABLE, each written column
// defined as the shadow defines it. A TIMESTAMP column gets an explicit
// DEFAULT, so that no server (MySQL 5.7 with explicit_defaults_for_timestamp
// off) gives it an ON UPDATE CURRENT_TIMESTAMP: the aside table holds the
// values written to it.
func (a *MySQLAside) createStatement(ctx context.Context, q MySQLQuerier) (string, error) {
	rows, err := q.QueryContext(ctx, `SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME, IS_NULLABLE, DATA_TYPE, DATETIME_PRECISION
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, a.schema, a.shadow)
	if err != nil {
		return "", fmt.Errorf("read the shadow's columns: %w", err)
	}
	defer rows.Close()
	defs := map[string]string{}
	for rows.Next() {
		var (
			name, typ, nullable, dataType string
			charset, collation            sql.NullString
			precision                     sql.NullInt64
		)
		if err := rows.Scan(&name, &typ, &charset, &collation, &nullable, &dataType, &precision); err != nil {
			return "", fmt.Errorf("read the shadow's columns: %w", err)
		}
		def := QuoteMySQL(name) + " " + typ
		if charset.Valid && collation.Valid && dataType != "json" {
			def += " CHARACTER SET " + charset.String + " COLLATE " + collation.String
		}
		if slices.Contains(a.Keys, QuoteMySQL(name)) {
			// A key column the --alter made nullable holds the
			// original's NOT NULL values (chooseKey); MySQL refuses a
			// nullable PRIMARY KEY column, which MariaDB makes NOT NULL.
			nullable = "NO"
		}
		switch {
		case nullable == "YES" && dataType == "timestamp":
			def += " NULL DEFAULT NULL"
		case nullable == "YES":
			def += " NULL"
		case dataType == "timestamp":
			now := "CURRENT_TIMESTAMP"
			if precision.Valid && precision.Int64 > 0 {
				now += fmt.Sprintf("(%d)", precision.Int64)
			}
			def += " NOT NULL DEFAULT " + now
		default:
			def += " NOT NULL"
		}
		defs[name] = def
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("read the shadow's columns: %w", err)
	}
	cols := make([]string, len(a.names))
	for i, n := range a.names {
		def, ok := defs[n]
		if !ok {
			return "", fmt.Errorf("the shadow %s has no column %s", a.Shadow, QuoteMySQL(n))
		}
		cols[i] = def
	}
	return "CREATE TABLE " + a.Table + " (" + strings.Join(cols, ", ") + ", PRIMARY KEY (" + strings.Join(a.Keys, ", ") + ")) ENGINE=InnoDB", nil
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
// through MySQLCopy.From), compared as the shadow's key compares it (an
// integer made a string as the text the shadow holds: compared as numbers,
// each row of the chunk read the whole shadow, and a BINARY's zero bytes
// failed the copy, MySQLIntegerKeyText).
func (a *MySQLAside) SourceAbsent(inShadowToo bool) string {
	same := func(alias string) string {
		t := make([]string, len(a.Keys))
		for i, k := range a.Keys {
			t[i] = alias + "." + k + " = " + a.sourceCmp[i]
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
