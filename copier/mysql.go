package copier

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"osc/table"
)

// MySQL copies chunks with INSERT ... SELECT ... ON DUPLICATE KEY UPDATE
// k = k, a no-op on a row already in the shadow (unlike INSERT IGNORE, it
// does not turn truncation and NOT NULL errors into warnings), in READ
// COMMITTED transactions, which read the original without locking it.
type MySQL struct {
	db   *sql.DB
	plan *table.Plan

	mu      sync.Mutex
	ready   bool
	keys    []mysqlKey
	from    string // "FROM src FORCE INDEX (idx)"
	orderBy string
	insert  string // "INSERT INTO shadow (cols) SELECT cols " (+ from)
	odku    string // " ON DUPLICATE KEY UPDATE k = k"
	// renumbered selects, from the rows of a chunk, one that a plain ALTER
	// would renumber (Plan.Renumbered); "" when there are none to find.
	renumbered string
	// limit is the highest key when the copy started (nil: the table was
	// empty): rows inserted above it later reach the shadow as captured
	// changes, so the copy stops there instead of chasing them.
	limit []any
}

// mysqlKey is one column of the chunking key.
type mysqlKey struct {
	name  string // quoted source column
	expr  string // what the bound query selects
	param string // placeholder expression comparing with the column
}

// NewMySQL returns the chunk copier of the plan; the key's index is looked up
// on first use.
func NewMySQL(db *sql.DB, plan *table.Plan) *MySQL {
	return &MySQL{db: db, plan: plan}
}

var myDecimalType = regexp.MustCompile(`^decimal\((\d+)(?:,(\d+))?\)`)

func (c *MySQL) init(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready {
		return nil
	}
	p := c.plan
	if err := p.Usable(); err != nil {
		return fmt.Errorf("copy chunk: %w", err)
	}
	if p.KeyIndexName == "" {
		return fmt.Errorf("copy chunk: the plan names no index of %s.%s on (%s)", p.Source.Schema, p.Source.Name, strings.Join(p.Key, ", "))
	}
	var err error
	shadowSchema := p.Shadow.Schema
	if shadowSchema == "" {
		shadowSchema = p.Source.Schema
	}
	shadow := table.QuoteMySQL(shadowSchema, p.Shadow.Name)

	var src, dst []string
	shadowKey := ""
	for _, m := range p.Mapping {
		expr := table.QuoteMySQL(m.Source)
		if j := p.Shadow.ColumnIndex(m.Shadow); j >= 0 && m.SourceIndex >= 0 && m.SourceIndex < len(p.Source.Columns) {
			// A FLOAT into a string rendered as the ALTER renders it.
			expr = table.MySQLFloatConversion(expr, p.Source.Columns[m.SourceIndex], p.Shadow.Columns[j])
			expr = table.MySQLTimeText(expr, p.Source.Columns[m.SourceIndex], p.Shadow.Columns[j])
			// Converted to or from TIMESTAMP in the server's time zone,
			// as the applier converts binlog values.
			if expr, err = table.MySQLTimeConversion(expr, p.Source.Columns[m.SourceIndex], p.Shadow.Columns[j], p.TimeZone); err != nil {
				return fmt.Errorf("copy chunk: %w", err)
			}
			// Rounded into an ENUM or a SET, as the ALTER converts.
			expr = table.MySQLEnumRounding(expr, p.Source.Columns[m.SourceIndex], p.Shadow.Columns[j])
		}
		src = append(src, expr)
		dst = append(dst, table.QuoteMySQL(m.Shadow))
		if m.Source == p.Key[0] {
			shadowKey = shadow + "." + table.QuoteMySQL(m.Shadow)
		}
	}
	for _, f := range p.Fills {
		// Added columns the ALTER fills otherwise than their DEFAULT.
		src = append(src, f.Expr)
		dst = append(dst, table.QuoteMySQL(f.Shadow))
	}
	if shadowKey == "" {
		return fmt.Errorf("copy chunk: key column %s is not copied to the shadow table", p.Key[0])
	}
	keys := make([]mysqlKey, len(p.Key))
	order := make([]string, len(p.Key))
	for i, name := range p.Key {
		if p.KeyIndex[i] < 0 || p.KeyIndex[i] >= len(p.Source.Columns) {
			return fmt.Errorf("copy chunk: key column %s has no source position", name)
		}
		col := p.Source.Columns[p.KeyIndex[i]]
		k := mysqlKey{name: table.QuoteMySQL(name), param: "?"}
		k.expr = k.name
		switch col.DataType {
		case "enum", "set", "bit":
			// Ordered by number: bound and compare by number.
			k.expr = k.name + "+0"
		case "decimal":
			// A string compared with a DECIMAL is compared as a double.
			m := myDecimalType.FindStringSubmatch(strings.ToLower(col.ColumnType))
			if m == nil {
				return fmt.Errorf("copy chunk: key column %s: cannot read the precision of %q", name, col.ColumnType)
			}
			scale := m[2]
			if scale == "" {
				scale = "0"
			}
			k.param = "CAST(? AS DECIMAL(" + m[1] + "," + scale + "))"
		}
		keys[i] = k
		order[i] = k.name
	}
	c.keys = keys
	c.orderBy = " ORDER BY " + strings.Join(order, ", ")
	c.from = "FROM " + table.QuoteMySQL(p.Source.Schema, p.Source.Name) + " FORCE INDEX (" + table.QuoteMySQL(p.KeyIndexName) + ")"
	c.insert = "INSERT INTO " + shadow + " (" + strings.Join(dst, ", ") + ") SELECT " + strings.Join(src, ", ") + " "
	c.odku = " ON DUPLICATE KEY UPDATE " + shadowKey + " = " + shadowKey
	if r := p.Renumbered; r != nil {
		c.renumbered = "SELECT " + table.QuoteMySQL(r.Column) + " IS NULL " + c.from + " WHERE " + r.Cond() + " AND "
	}
	// Read on the first chunk, after change capture started.
	if c.limit, err = c.last(ctx); err != nil {
		return err
	}
	c.ready = true
	return nil
}

// last returns the highest key, or nil when the table is empty.
func (c *MySQL) last(ctx context.Context) ([]any, error) {
	exprs := make([]string, len(c.keys))
	order := make([]string, len(c.keys))
	for i, k := range c.keys {
		exprs[i] = k.expr
		order[i] = k.name + " DESC"
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " " + c.from + " ORDER BY " + strings.Join(order, ", ") + " LIMIT 1"
	// Prepared, like upper: binary results keep each value's type.
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("copy: highest key: %w", err)
	}
	defer st.Close()
	vals := make([]any, len(c.keys))
	ptrs := make([]any, len(c.keys))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	switch err := st.QueryRowContext(ctx).Scan(ptrs...); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("copy: highest key: %w", err)
	}
	return vals, nil
}

// CopyChunk copies the rows whose key is in (after, the size-th key after
// it], or all the rows past after up to the highest key the table had when
// the copy started when fewer remain (Done).
func (c *MySQL) CopyChunk(ctx context.Context, after []any, size int) (Chunk, error) {
	if size < 1 {
		return Chunk{}, fmt.Errorf("copy chunk: size %d", size)
	}
	if err := c.init(ctx); err != nil {
		return Chunk{}, err
	}
	if after != nil && len(after) != len(c.keys) {
		return Chunk{}, fmt.Errorf("copy chunk: %d key values for a %d-column key", len(after), len(c.keys))
	}
	if c.limit == nil {
		return Chunk{Last: after, Done: true}, nil
	}
	tx, err := c.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return Chunk{}, fmt.Errorf("copy chunk: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op

	cond, args := c.bound(c.limit, "<", true)
	conds := []string{cond}
	if after != nil {
		cond, a := c.bound(after, ">", false)
		conds, args = append(conds, cond), append(args, a...)
	}
	upper, err := c.upper(ctx, tx, conds, args, size)
	if err != nil {
		return Chunk{}, err
	}
	if upper != nil {
		cond, a := c.bound(upper, "<", true)
		conds, args = append(conds, cond), append(args, a...)
	}
	if err := c.refuseRenumbered(ctx, tx, conds, args); err != nil {
		return Chunk{}, err
	}
	q := c.insert + c.from
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	res, err := tx.ExecContext(ctx, q+c.odku, args...)
	if err != nil {
		return Chunk{}, fmt.Errorf("copy chunk: %w", err)
	}
	chunk := Chunk{Last: upper, Rows: int64(size)}
	if upper == nil {
		chunk.Last, chunk.Done = after, true
		if chunk.Rows, err = res.RowsAffected(); err != nil {
			return Chunk{}, fmt.Errorf("copy chunk: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Chunk{}, fmt.Errorf("copy chunk: commit: %w", err)
	}
	return chunk, nil
}

// refuseRenumbered fails the chunk when one of its rows holds a value that a
// plain ALTER would renumber (see table.MySQLRenumbered). A row that comes to
// hold one after this read does so by a change committed after change
// capture started, which the applier refuses.
func (c *MySQL) refuseRenumbered(ctx context.Context, tx *sql.Tx, conds []string, args []any) error {
	if c.renumbered == "" {
		return nil
	}
	var null bool
	switch err := tx.QueryRowContext(ctx, c.renumbered+strings.Join(conds, " AND ")+" LIMIT 1", args...).Scan(&null); {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("copy chunk: look for values the ALTER renumbers: %w", err)
	case null:
		return fmt.Errorf("copy chunk: %w", c.plan.Renumbered.Refusal("NULL"))
	}
	return fmt.Errorf("copy chunk: %w", c.plan.Renumbered.Refusal("0"))
}

// upper returns the size-th key past the conditions, or nil when fewer rows
// remain. It runs as a prepared statement, whose binary results keep each
// key value's type (int64, float64...) for the next queries' arguments.
func (c *MySQL) upper(ctx context.Context, tx *sql.Tx, conds []string, args []any, size int) ([]any, error) {
	exprs := make([]string, len(c.keys))
	for i, k := range c.keys {
		exprs[i] = k.expr
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " " + c.from
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += c.orderBy + fmt.Sprintf(" LIMIT 1 OFFSET %d", size-1)
	st, err := tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("copy chunk: upper bound: %w", err)
	}
	defer st.Close()
	vals := make([]any, len(c.keys))
	ptrs := make([]any, len(c.keys))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	switch err := st.QueryRowContext(ctx, args...).Scan(ptrs...); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("copy chunk: upper bound: %w", err)
	}
	return vals, nil
}

// bound is the condition key > vals (op ">") or key <= vals (op "<",
// inclusive), expanded column by column so that MariaDB range-optimises it.
func (c *MySQL) bound(vals []any, op string, inclusive bool) (string, []any) {
	var args []any
	terms := make([]string, len(c.keys))
	for i, k := range c.keys {
		var t []string
		for j := range i {
			t = append(t, c.keys[j].name+" = "+c.keys[j].param)
			args = append(args, vals[j])
		}
		last := op
		if inclusive && i == len(c.keys)-1 {
			last += "="
		}
		t = append(t, k.name+" "+last+" "+k.param)
		args = append(args, vals[i])
		terms[i] = strings.Join(t, " AND ")
	}
	if len(c.keys) == 1 {
		return terms[0], args
	}
	// A leading bound on the first column gives the optimiser a range.
	first := c.keys[0].name + " " + op + "= " + c.keys[0].param
	return first + " AND (" + strings.Join(terms, " OR ") + ")", append([]any{vals[0]}, args...)
}
