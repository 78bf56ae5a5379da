package copier

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"

	"osc/table"
)

// MySQL copies chunks with INSERT ... SELECT ... ON DUPLICATE KEY UPDATE
// k = k, a no-op on a row already in the shadow (unlike INSERT IGNORE, it
// does not turn truncation and NOT NULL errors into warnings), in READ
// COMMITTED transactions, which read the original without locking it. A
// row that clashes, on another unique index, with a shadow row of another
// key is skipped too (the clashing row is updated to itself): the applier is
// behind the chunk's read, and the change that gave the chunk's row its
// value, not yet applied, writes that row whole (README, "Why nothing is
// lost", step 5). Under a new unique key the two rows may both be the
// original's: with a plan that adds one, a chunk leaves out the keys that
// wait aside (table.MySQLAside) and puts aside the rows of its range that
// neither the shadow nor the aside table holds after its insert.
type MySQL struct {
	db   *sql.DB
	plan *table.Plan
	// PanicOnWarnings fails a chunk whose copy made the server warn
	// (--panic-on-warnings, table.MySQLWarnings).
	PanicOnWarnings bool

	mu    sync.Mutex
	ready bool
	sql   *table.MySQLCopy
	// aside is the aside table of a plan with new unique keys (nil: none).
	aside *table.MySQLAside
	// limit is the highest key when the copy started (nil: the table was
	// empty): rows inserted above it later reach the shadow as captured
	// changes, so the copy stops there instead of chasing them.
	limit []any
}

// NewMySQL returns the chunk copier of the plan; the key's index is looked up
// on first use.
func NewMySQL(db *sql.DB, plan *table.Plan) *MySQL {
	return &MySQL{db: db, plan: plan}
}

func (c *MySQL) init(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready {
		return nil
	}
	var err error
	if c.sql, err = table.NewMySQLCopy(c.plan); err != nil {
		return err
	}
	if c.aside == nil {
		if c.aside, err = table.NewMySQLAside(c.plan); err != nil {
			return err
		}
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
	k := c.sql.Key
	q := "SELECT " + strings.Join(k.Select(), ", ") + " " + c.sql.From + " ORDER BY " + k.OrderBy(" DESC") + " LIMIT 1"
	vals, err := k.QueryKey(ctx, c.db, q)
	if err != nil {
		return nil, fmt.Errorf("copy: highest key: %w", err)
	}
	return vals, nil
}

// CopyChunk copies the rows whose key is in (after, the size-th key after
// it], or all the rows past after up to the highest key the table had when
// the copy started when fewer remain (Done): Bound, then CopyRange.
func (c *MySQL) CopyChunk(ctx context.Context, after []any, size int) (Chunk, error) {
	return copyChunk(ctx, c, after, size)
}

// Bound returns the key of the size-th row past after (nil: from the first
// row), up to the highest key the table had when the copy started, or nil
// when fewer rows remain: the next range is (after, Bound]. It reads the
// key's index only.
func (c *MySQL) Bound(ctx context.Context, after []any, size int) ([]any, error) {
	if size < 1 {
		return nil, fmt.Errorf("chunk size %d", size)
	}
	if err := c.init(ctx); err != nil {
		return nil, err
	}
	if after != nil && len(after) != c.sql.Key.Len() {
		return nil, fmt.Errorf("%d key values for a %d-column key", len(after), c.sql.Key.Len())
	}
	if c.limit == nil {
		return nil, nil
	}
	conds, args := c.rangeConds(after, nil)
	return c.upper(ctx, c.db, conds, args, size)
}

// rangeConds returns the conditions of the range (after, upto] (nil after:
// from the first row; nil upto: to the highest key the table had when the
// copy started), with their arguments.
func (c *MySQL) rangeConds(after, upto []any) ([]string, []any) {
	cond, args := c.sql.Key.Cond(c.limit, "<", true)
	conds := []string{cond}
	if after != nil {
		cond, a := c.sql.Key.Cond(after, ">", false)
		conds, args = append(conds, cond), append(args, a...)
	}
	if upto != nil {
		cond, a := c.sql.Key.Cond(upto, "<", true)
		conds, args = append(conds, cond), append(args, a...)
	}
	return conds, args
}

// CopyRange copies the rows whose key is in (after, upto] (nil after: from
// the first row; nil upto: up to the highest key the table had when the copy
// started, and the chunk is the last, Done), in one READ COMMITTED
// transaction. Its Rows are the rows it inserted.
func (c *MySQL) CopyRange(ctx context.Context, after, upto []any) (Chunk, error) {
	if err := c.init(ctx); err != nil {
		return Chunk{}, err
	}
	for _, k := range [][]any{after, upto} {
		if k != nil && len(k) != c.sql.Key.Len() {
			return Chunk{}, fmt.Errorf("%d key values for a %d-column key", len(k), c.sql.Key.Len())
		}
	}
	if c.limit == nil {
		return Chunk{Last: after, Done: true}, nil
	}
	tx, err := c.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return Chunk{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() // after Commit it is a no-op

	conds, args := c.rangeConds(after, upto)
	// A row that comes to hold a value the ALTER renumbers after this read
	// does so by a change committed after change capture started, which
	// the applier refuses.
	if err := c.sql.RefuseRenumbered(ctx, tx, conds, args); err != nil {
		return Chunk{}, err
	}
	insert := conds
	if c.aside != nil {
		// The keys aside are rows of the shadow: the copy never
		// overwrites.
		insert = append(insert[:len(insert):len(insert)], c.aside.SourceAbsent(false))
	}
	q := c.sql.Insert() + c.sql.From + " WHERE " + strings.Join(insert, " AND ")
	res, err := c.sql.Exec(ctx, tx, q+c.sql.OnDuplicate, args, func() error {
		// --panic-on-warnings' message first: it names the flag the user gave.
		if c.PanicOnWarnings {
			if err := table.MySQLWarnings(ctx, tx, chunkName(after)); err != nil {
				return err
			}
		}
		if err := c.sql.RefuseCutSpaces(ctx, tx, conds, args); err != nil {
			return fmt.Errorf("%s: %w", chunkName(after), err)
		}
		return nil
	})
	if err != nil {
		return Chunk{}, err
	}
	if err := c.putAside(ctx, tx, conds, args); err != nil {
		return Chunk{}, err
	}
	chunk := Chunk{Last: upto}
	if upto == nil {
		chunk.Last, chunk.Done = after, true
	}
	if chunk.Rows, err = res.RowsAffected(); err != nil {
		return Chunk{}, err
	}
	if err := tx.Commit(); err != nil {
		return Chunk{}, fmt.Errorf("commit: %w", err)
	}
	return chunk, nil
}

// upper returns the size-th key past the conditions, or nil when fewer rows
// remain. It runs as a prepared statement, whose binary results keep each
// key value's type (int64, float64...) for the next queries' arguments.
func (c *MySQL) upper(ctx context.Context, q table.MySQLPreparer, conds []string, args []any, size int) ([]any, error) {
	sel := "SELECT " + strings.Join(c.sql.Key.Select(), ", ") + " " + c.sql.From
	if len(conds) > 0 {
		sel += " WHERE " + strings.Join(conds, " AND ")
	}
	sel += " ORDER BY " + c.sql.Key.OrderBy("") + fmt.Sprintf(" LIMIT 1 OFFSET %d", size-1)
	vals, err := c.sql.Key.QueryKey(ctx, q, sel, args...)
	if err != nil {
		return nil, fmt.Errorf("upper bound: %w", err)
	}
	return vals, nil
}

// chunkName names the chunk after the key after in a message.
func chunkName(after []any) string {
	if after == nil {
		return "the copy of the first chunk"
	}
	return fmt.Sprintf("the copy of the chunk after key %v", after)
}
