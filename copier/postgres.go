package copier

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/cdc"
	"osc/table"
)

// Postgres copies chunks with INSERT … SELECT in short READ COMMITTED
// transactions. A plain INSERT is about twice as fast as ON CONFLICT's
// speculative insertion, and most chunks meet no row the applier wrote: a
// probe of the shadow's key range decides. A range that holds applied rows,
// or a plain INSERT that meets one written meanwhile (it fails whole on the
// duplicate key), is copied with ON CONFLICT (key) DO NOTHING: rows the
// applier already wrote win, and a row clashing with the shadow on another
// unique index still fails the copy instead of being skipped. Chunk bounds
// are the key's text forms, read back with CAST(… AS <source key type>); the
// row comparison (k1, k2) > (…) is served by the key's btree index.
type Postgres struct {
	pool *pgxpool.Pool
	plan *table.Plan

	mu     sync.Mutex
	ready  bool
	source string   // quoted source table
	shadow string   // quoted shadow table
	keys   []string // quoted source key columns
	skeys  []string // the same columns in the shadow (renamed by the ALTER, maybe)
	types  []string // their types
	// insert is "INSERT INTO shadow (cols) OVERRIDING SYSTEM VALUE SELECT
	// values FROM source": each value the source column, or the expression
	// the plan computes it with (ALTER … TYPE … USING), over the source row.
	insert string
	onConf string // " ORDER BY key ON CONFLICT (shadow key) DO NOTHING"
	// limit is the highest key when the copy started, as text (nil: the
	// table was empty): rows inserted above it later reach the shadow as
	// captured changes, so the copy stops there instead of chasing them.
	limit []any
}

// NewPostgres returns the chunk copier of the plan.
func NewPostgres(pool *pgxpool.Pool, plan *table.Plan) *Postgres {
	return &Postgres{pool: pool, plan: plan}
}

func (c *Postgres) init(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready {
		return nil
	}
	p := c.plan
	if err := p.Usable(); err != nil {
		return err
	}
	schema := p.Shadow.Schema
	if schema == "" {
		schema = p.Source.Schema
	}
	c.shadow = pgx.Identifier{schema, p.Shadow.Name}.Sanitize()
	c.source = pgx.Identifier{p.Source.Schema, p.Source.Name}.Sanitize()

	shadowOf := map[int]string{}
	var src, dst []string
	for _, m := range p.Mapping {
		shadowOf[m.SourceIndex] = m.Shadow
		src = append(src, m.PostgresValue())
		dst = append(dst, pgx.Identifier{m.Shadow}.Sanitize())
	}
	c.keys, c.skeys, c.types = nil, nil, nil
	for n, i := range p.KeyIndex {
		if i < 0 || i >= len(p.Source.Columns) || p.Source.Columns[i].Name != p.Key[n] {
			return fmt.Errorf("key column %q is not at position %d of the source", p.Key[n], i)
		}
		name, ok := shadowOf[i]
		if !ok {
			return fmt.Errorf("key column %q is not copied to the shadow", p.Key[n])
		}
		if p.Source.Columns[i].ColumnType == "" {
			return fmt.Errorf("key column %q: the plan has no type for it", p.Key[n])
		}
		c.keys = append(c.keys, pgx.Identifier{p.Key[n]}.Sanitize())
		c.types = append(c.types, p.Source.Columns[i].ColumnType)
		c.skeys = append(c.skeys, pgx.Identifier{name}.Sanitize())
	}
	c.insert = fmt.Sprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s",
		c.shadow, strings.Join(dst, ", "), strings.Join(src, ", "), c.source)
	// ORDER BY names the table's columns qualified: unqualified, a name
	// would be an output column's (a USING expression's) if one is so named.
	order := make([]string, len(c.keys))
	for i, k := range c.keys {
		order[i] = pgx.Identifier{p.Source.Name}.Sanitize() + "." + k
	}
	c.onConf = fmt.Sprintf(" ORDER BY %s ON CONFLICT (%s) DO NOTHING", strings.Join(order, ", "), strings.Join(c.skeys, ", "))
	// Read on the first chunk, after change capture started.
	limit, err := c.edge(ctx, nil, nil, "DESC", 0)
	if err != nil {
		return fmt.Errorf("highest key: %w", err)
	}
	c.limit = limit
	c.ready = true
	return nil
}

// CopyChunk copies the rows with a key after after (nil: from the first row)
// up to the size-th such row into the shadow.
func (c *Postgres) CopyChunk(ctx context.Context, after []any, size int) (Chunk, error) {
	if err := c.init(ctx); err != nil {
		return Chunk{}, fmt.Errorf("copy chunk: %w", err)
	}
	if c.limit == nil {
		return Chunk{Last: after, Done: true}, nil
	}
	if size < 1 {
		size = 1
	}
	var (
		conds, probe    []string // the chunk's range on the source's and on the shadow's key
		args, probeArgs []any
	)
	bound := func(op string, key []any) error {
		cond, err := c.compare(c.keys, op, key, &args)
		if err != nil {
			return err
		}
		conds = append(conds, cond)
		cond, err = c.compare(c.skeys, op, key, &probeArgs)
		probe = append(probe, cond)
		return err
	}
	if err := bound("<=", c.limit); err != nil {
		return Chunk{}, fmt.Errorf("copy chunk: highest key: %w", err)
	}
	if after != nil {
		if err := bound(">", after); err != nil {
			return Chunk{}, fmt.Errorf("copy chunk: lower bound: %w", err)
		}
	}
	upper, err := c.edge(ctx, conds, args, "", size-1)
	if err != nil {
		return Chunk{}, fmt.Errorf("copy chunk: upper bound: %w", err)
	}
	if upper != nil {
		if err := bound("<=", upper); err != nil {
			return Chunk{}, fmt.Errorf("copy chunk: upper bound: %w", err)
		}
	}
	query, probeQuery := c.insert, "SELECT EXISTS (SELECT 1 FROM "+c.shadow
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
		probeQuery += " WHERE " + strings.Join(probe, " AND ")
	}
	// A range the applier already wrote rows into goes straight to ON
	// CONFLICT; otherwise the plain INSERT is tried first and only a row the
	// applier writes meanwhile sends it there.
	var applied bool
	if err := c.pool.QueryRow(ctx, probeQuery+")", probeArgs...).Scan(&applied); err != nil {
		return Chunk{}, fmt.Errorf("copy chunk: look for applied rows: %w", err)
	}
	var (
		rows int64
		snap *cdc.PostgresSnapshot
	)
	onConf := applied
	for attempt := 1; ; attempt++ {
		q := query
		if onConf {
			q += c.onConf
		}
		rows, snap, err = c.exec(ctx, q, args)
		var pgErr *pgconn.PgError
		if attempt == 3 || !errors.As(err, &pgErr) || pgErr.Code != pgUniqueViolation {
			break
		}
		// The plain INSERT met a row the applier wrote meanwhile: skip it.
		// Under ON CONFLICT (key), a clash on another unique index can come
		// from a stale read (the row was deleted since and its value taken by
		// another, both applied): a fresh statement no longer reads it, while a
		// real duplicate fails again.
		onConf = true
	}
	if err != nil {
		return Chunk{}, fmt.Errorf("copy chunk: %w", err)
	}
	if upper == nil {
		return Chunk{Rows: rows, Done: true, Snapshot: snap}, nil
	}
	return Chunk{Last: upper, Rows: int64(size), Done: false, Snapshot: snap}, nil
}

// ReportsSnapshots marks the copier's chunks as carrying the snapshot they
// read (Chunk.Snapshot).
func (c *Postgres) ReportsSnapshots() {}

// pgUniqueViolation is SQLSTATE unique_violation.
const pgUniqueViolation = "23505"

// exec runs one chunk's INSERT in its own READ COMMITTED transaction and
// returns the rows it inserted and the snapshot it read the source with: the
// statement's own, read by pg_current_snapshot() in the same statement (every
// part of a statement with a data-modifying WITH runs on one snapshot).
func (c *Postgres) exec(ctx context.Context, insert string, args []any) (int64, *cdc.PostgresSnapshot, error) {
	tx, err := c.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return 0, nil, fmt.Errorf("begin: %w", err)
	}
	// A no-op after Commit.
	defer tx.Rollback(context.WithoutCancel(ctx))
	var (
		rows int64
		text string
	)
	q := "WITH ins AS (" + insert + " RETURNING 1) SELECT (SELECT count(*) FROM ins), pg_current_snapshot()::text"
	if err := tx.QueryRow(ctx, q, args...).Scan(&rows, &text); err != nil {
		return 0, nil, err
	}
	snap, err := cdc.ParsePostgresSnapshot(text)
	if err != nil {
		return 0, nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, nil, fmt.Errorf("commit: %w", err)
	}
	return rows, snap, nil
}

// edge returns the key, as text values, of the row matching conds at offset
// in key order (dir "" ascending, "DESC" descending), or nil when there is
// none.
func (c *Postgres) edge(ctx context.Context, conds []string, args []any, dir string, offset int) ([]any, error) {
	// ORDER BY names the table's columns qualified: unqualified, they would
	// be the text output columns, ordered as text.
	sel := make([]string, len(c.keys))
	order := make([]string, len(c.keys))
	for i, k := range c.keys {
		sel[i] = "o." + k + "::text"
		order[i] = "o." + k + " " + dir
	}
	query := "SELECT " + strings.Join(sel, ", ") + " FROM " + c.source + " AS o"
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	query += fmt.Sprintf(" ORDER BY %s LIMIT 1 OFFSET %d", strings.Join(order, ", "), offset)
	vals := make([]*string, len(c.keys))
	dest := make([]any, len(c.keys))
	for i := range vals {
		dest[i] = &vals[i]
	}
	err := c.pool.QueryRow(ctx, query, args...).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]any, len(vals))
	for i, v := range vals {
		if v == nil {
			return nil, fmt.Errorf("key column %s is NULL", c.keys[i])
		}
		out[i] = *v
	}
	return out, nil
}

// compare returns "(k1, k2) op (CAST($n AS t1), CAST($n+1 AS t2))" and
// appends the bound's values to args.
func (c *Postgres) compare(cols []string, op string, bound []any, args *[]any) (string, error) {
	if len(bound) != len(cols) {
		return "", fmt.Errorf("%d values for a key of %d columns", len(bound), len(cols))
	}
	vals := make([]string, len(bound))
	for i, v := range bound {
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case []byte:
			s = string(x)
		default:
			return "", fmt.Errorf("key column %s: unexpected value type %T (want the text form)", cols[i], v)
		}
		*args = append(*args, s)
		vals[i] = fmt.Sprintf("CAST($%d::text AS %s)", len(*args), c.types[i])
	}
	return "(" + strings.Join(cols, ", ") + ") " + op + " (" + strings.Join(vals, ", ") + ")", nil
}
