package table

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
)

// mysqlNewUnique returns the shadow's unique index ix, which no unique index
// of the original implies, as a new unique key, or refuses it when the
// original cannot compare its values as the shadow does: a PRIMARY KEY, an
// expression or a prefix part, or a column that the --alter adds or whose
// type or collation it changes.
func mysqlNewUnique(in MySQLPlanInput, ix MySQLIndex, toSource map[string]string) (UniqueKey, error) {
	if ix.Primary {
		return UniqueKey{}, errNewUnique(ix, "it is the PRIMARY KEY")
	}
	u := UniqueKey{Name: ix.Name}
	for j, c := range ix.Columns {
		if c == "" {
			return UniqueKey{}, errNewUnique(ix, "it has an expression part")
		}
		if ix.SubParts[j] != 0 {
			return UniqueKey{}, errNewUnique(ix, fmt.Sprintf("it indexes a prefix of %s", c))
		}
		src, ok := toSource[foldName(c)]
		if !ok {
			return UniqueKey{}, errNewUnique(ix, fmt.Sprintf("its column %s is not a column of the original", c))
		}
		sc := in.Source.Columns[columnIndexFold(in.Source, src)]
		dc := in.Shadow.Columns[columnIndexFold(in.Shadow, c)]
		if !in.equalityKept(src) || !strings.EqualFold(sc.ColumnType, dc.ColumnType) ||
			in.SourceCollations[foldName(sc.Name)] != in.ShadowCollations[foldName(dc.Name)] {
			return UniqueKey{}, errNewUnique(ix, fmt.Sprintf("the --alter changes its column %s (%s -> %s)", c, sc.ColumnType, dc.ColumnType))
		}
		u.Columns = append(u.Columns, sc.Name)
		u.Shadow = append(u.Shadow, dc.Name)
	}
	return u, nil
}

// MySQLDuplicates looks in the original for values that several rows hold
// under one of the plan's new unique keys (a full scan of the table, one
// GROUP BY per key, in a READ COMMITTED read that locks nothing) and returns
// a *DuplicateError naming the first values it finds, or nil.
func MySQLDuplicates(ctx context.Context, db *sql.DB, p *Plan) error {
	from := QuoteMySQL(p.Source.Schema, p.Source.Name)
	for _, u := range p.NewUnique {
		q := duplicateScanQuery(u, from, "", quoteMySQLOne, plainExpr)
		dups, err := mysqlDuplicateRows(ctx, db, len(u.Columns), q)
		if err != nil {
			return fmt.Errorf("look for duplicates of the new unique key %s in %s: %w", u.Describe(), from, err)
		}
		if len(dups) > 0 {
			return &DuplicateError{Key: u, Duplicates: dups, When: "before the copy"}
		}
	}
	return nil
}

// MySQLUniqueCheck asks the original, at a clash under a new unique key,
// whether rows it holds now duplicate each other: the rows of the clash
// (their keys), grouped by each new unique key, in one statement whose
// snapshot is a state the original committed. A clash the original does not
// hold now is with a shadow row older or newer than the original's (README,
// "Why nothing is lost", step 5), which a later change writes again. Its
// statements are prepared once per shape on the pool, as the applier's are.
type MySQLUniqueCheck struct {
	db     *sql.DB
	keys   []UniqueKey
	from   string // the original, quoted
	shadow string // the shadow, quoted
	key    MySQLKeyRange
	skey   MySQLKeyRange

	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// NewMySQLUniqueCheck returns the check for the plan's new unique keys (c
// is the plan's copy SQL), or nil when it has none.
func NewMySQLUniqueCheck(db *sql.DB, c *MySQLCopy, p *Plan) *MySQLUniqueCheck {
	if len(p.NewUnique) == 0 {
		return nil
	}
	return &MySQLUniqueCheck{db: db, keys: p.NewUnique, from: QuoteMySQL(p.Source.Schema, p.Source.Name), shadow: c.Shadow,
		key: c.Key, skey: c.ShadowKey, stmts: map[string]*sql.Stmt{}}
}

// Keys are the plan's new unique keys.
func (c *MySQLUniqueCheck) Keys() []UniqueKey { return c.keys }

// ChunkCheck is the check of a chunk that the copy inserted in tx: from the
// chunk's rows (the original's rows matching conds, with args, read through
// from, MySQLCopy.From) and the shadow rows of other keys that hold one of
// their values of a new unique key (the rows the insert skipped, or met
// written by the applier, found through the shadow's index), it fails with
// a *DuplicateError if two hold one value in the original now.
func (c *MySQLUniqueCheck) ChunkCheck(ctx context.Context, tx *sql.Tx, from string, conds []string, args []any, when string) error {
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	for _, u := range c.keys {
		inner := make([]string, 0, len(c.key.cols)+len(u.Columns))
		same := make([]string, len(c.key.cols))
		bySKey := make([]string, len(c.key.cols))
		for i, col := range c.key.cols {
			inner = append(inner, fmt.Sprintf("%s AS osc_k%d", col.name, i))
			same[i] = fmt.Sprintf("d.%s <=> o.osc_k%d", c.skey.cols[i].name, i)
			bySKey[i] = fmt.Sprintf("s.%s = d.%s", col.name, c.skey.cols[i].name)
		}
		on := make([]string, len(u.Columns))
		for j, col := range u.Columns {
			inner = append(inner, fmt.Sprintf("%s AS osc_u%d", QuoteMySQL(col), j))
			on[j] = fmt.Sprintf("d.%s = o.osc_u%d", QuoteMySQL(u.Shadow[j]), j)
		}
		pairs := " FROM (SELECT " + strings.Join(inner, ", ") + " " + from + where + ") AS o JOIN " + c.shadow +
			" AS d ON " + strings.Join(on, " AND ")
		notSame := " WHERE NOT (" + strings.Join(same, " AND ") + ")"
		// The shadow rows' originals (by key), and the chunk's rows.
		rows := "SELECT " + c.rowColumns(u, "s.") + pairs + " JOIN " + c.from + " AS s ON " + strings.Join(bySKey, " AND ") + notSame +
			" UNION SELECT " + c.aliases(u, "o.") + pairs + notSame
		if err := c.run(ctx, tx, u, c.grouped(u, rows), append(append([]any{}, args...), args...), when); err != nil {
			return err
		}
	}
	return nil
}

// BatchCheck is the check of a batch of captured changes about to be written
// in tx: from the rows of keys (the key values the batch writes, in the
// copy's parameter forms) and the rows of other keys that the shadow (alias
// d) holds where cond holds, with condArgs (those holding a value the batch
// writes under the index-th new unique key; "": none), it fails with a
// *DuplicateError if two hold one value of that key in the original now.
// The caller pads keys and cond to few shapes (statements are prepared per
// shape).
func (c *MySQLUniqueCheck) BatchCheck(ctx context.Context, tx *sql.Tx, index int, keys [][]any, cond string, condArgs []any, when string) error {
	u := c.keys[index]
	terms := make([]string, len(keys))
	var args []any
	for i, k := range keys {
		t := make([]string, len(c.key.cols))
		for j, col := range c.key.cols {
			t[j] = col.name + " = " + col.param
		}
		terms[i] = "(" + strings.Join(t, " AND ") + ")"
		args = append(args, k...)
	}
	rows := "SELECT " + c.rowColumns(u, "") + " FROM " + c.from + " WHERE " + strings.Join(terms, " OR ")
	if cond != "" {
		bySKey := make([]string, len(c.key.cols))
		for i, col := range c.key.cols {
			bySKey[i] = fmt.Sprintf("s.%s = d.%s", col.name, c.skey.cols[i].name)
		}
		rows += " UNION SELECT " + c.rowColumns(u, "s.") + " FROM " + c.shadow + " AS d JOIN " + c.from + " AS s ON " +
			strings.Join(bySKey, " AND ") + " WHERE " + cond
		args = append(args, condArgs...)
	}
	return c.run(ctx, tx, u, c.grouped(u, rows), args, when)
}

// rowColumns selects, from the original (columns prefixed with prefix), the
// key columns and u's as osc_k<i> and osc_u<j>.
func (c *MySQLUniqueCheck) rowColumns(u UniqueKey, prefix string) string {
	var out []string
	for i, col := range c.key.cols {
		out = append(out, fmt.Sprintf("%s%s AS osc_k%d", prefix, col.name, i))
	}
	for j, col := range u.Columns {
		out = append(out, fmt.Sprintf("%s%s AS osc_u%d", prefix, QuoteMySQL(col), j))
	}
	return strings.Join(out, ", ")
}

// aliases selects osc_k<i> and osc_u<j> of a relation prefixed with prefix.
func (c *MySQLUniqueCheck) aliases(u UniqueKey, prefix string) string {
	var out []string
	for i := range c.key.cols {
		out = append(out, fmt.Sprintf("%sosc_k%d", prefix, i))
	}
	for j := range u.Columns {
		out = append(out, fmt.Sprintf("%sosc_u%d", prefix, j))
	}
	return strings.Join(out, ", ")
}

// grouped is the query of the values of u that several of rows (a UNION of
// rows of the original, distinct by key, selecting rowColumns) hold.
func (c *MySQLUniqueCheck) grouped(u UniqueKey, rows string) string {
	x := UniqueKey{Name: u.Name, Shadow: u.Shadow}
	for j := range u.Columns {
		x.Columns = append(x.Columns, fmt.Sprintf("osc_u%d", j))
	}
	return duplicateScanQuery(x, "("+rows+") AS x", "", func(s string) string { return "x." + s }, plainExpr)
}

func quoteMySQLOne(s string) string { return QuoteMySQL(s) }

func plainExpr(s string) string { return s }

// run runs a check's statement in tx, prepared once on the pool.
func (c *MySQLUniqueCheck) run(ctx context.Context, tx *sql.Tx, u UniqueKey, q string, args []any, when string) error {
	c.mu.Lock()
	st, ok := c.stmts[q]
	if !ok {
		var err error
		if st, err = c.db.PrepareContext(ctx, q); err != nil {
			c.mu.Unlock()
			return fmt.Errorf("ask the original about a clash under the new unique key %s: %w", u.Describe(), err)
		}
		c.stmts[q] = st
	}
	c.mu.Unlock()
	rows, err := tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("ask the original about a clash under the new unique key %s: %w", u.Describe(), err)
	}
	defer rows.Close()
	dups, err := scanDuplicates(rows, len(u.Columns))
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return fmt.Errorf("ask the original about a clash under the new unique key %s: %w", u.Describe(), err)
	}
	if len(dups) > 0 {
		return &DuplicateError{Key: u, Duplicates: dups, When: when}
	}
	return nil
}

// mysqlDuplicateRows runs a query selecting n values and a count and returns
// its rows as duplicates.
func mysqlDuplicateRows(ctx context.Context, db *sql.DB, n int, query string, args ...any) ([]Duplicate, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	dups, err := scanDuplicates(rows, n)
	if err != nil {
		return nil, err
	}
	return dups, rows.Err()
}
