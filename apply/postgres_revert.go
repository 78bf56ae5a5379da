package apply

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/cdc"
	"osc/table"
)

// PostgresRevert is the applier of a revert window on PostgreSQL
// (table.PlanPostgresRevert): it writes the changes to the altered table
// into the old table, mapped back to its columns, and leaves the old table's
// other columns (the ones the --alter dropped) as they are. An insert or
// update is an INSERT … ON CONFLICT (key) DO UPDATE of the mapped columns,
// never a delete and insert, which would reset the others; a key-changing
// update first moves the row (an UPDATE by its old key, so those columns go
// with it); a partial update (unchanged TOAST values) updates the columns it
// carries; a delete deletes by key. Values are pgoutput's text forms of the
// altered table's types, stored with the assignment cast to the old table's
// (the plan checked that one exists): a value the old type cannot hold
// fails the statement (table.PostgresUnfit). There is no copy to race with:
// the changes arrive in commit order and are applied so, one statement each,
// a batch in one transaction.
type PostgresRevert struct {
	pool *pgxpool.Pool
	plan *table.Plan

	mu     sync.Mutex
	ready  bool
	old    string       // quoted old table
	cols   []pgRevCol   // mapped columns
	keys   []pgRevCol   // key columns
	upsert string       // the whole-row upsert
	always map[int]bool // positions in cols of GENERATED ALWAYS identity columns of the old table
}

// pgRevCol is a mapped column: its quoted name in the old table, its type in
// the altered table (the text form's), its position in the row images.
type pgRevCol struct {
	name, typ string
	index     int
}

// NewPostgresRevert returns the reverse applier of the plan; the old table's
// catalog is read on first use.
func NewPostgresRevert(pool *pgxpool.Pool, plan *table.Plan) *PostgresRevert {
	return &PostgresRevert{pool: pool, plan: plan}
}

func (a *PostgresRevert) init(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ready {
		return nil
	}
	p := a.plan
	if err := p.Usable(); err != nil {
		return err
	}
	a.old = table.QuotePostgres(p.Source.Schema, p.Shadow.Name)
	rows, err := a.pool.Query(ctx, `SELECT attname::text FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attidentity = 'a'`, a.old)
	if err != nil {
		return fmt.Errorf("identity columns of %s: %w", a.old, err)
	}
	always, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("identity columns of %s: %w", a.old, err)
	}
	a.cols, a.keys, a.always = nil, nil, map[int]bool{}
	oldName := map[int]string{}
	for _, m := range p.Mapping {
		c := pgRevCol{name: table.QuotePostgres(m.Shadow), typ: p.Source.Columns[m.SourceIndex].ColumnType, index: m.SourceIndex}
		for _, n := range always {
			if n == m.Shadow {
				a.always[len(a.cols)] = true
			}
		}
		oldName[m.SourceIndex] = c.name
		a.cols = append(a.cols, c)
	}
	for n, i := range p.KeyIndex {
		name, ok := oldName[i]
		if !ok {
			return fmt.Errorf("key column %s is not mapped to the old table", p.Key[n])
		}
		a.keys = append(a.keys, pgRevCol{name: name, typ: p.Source.Columns[i].ColumnType, index: i})
	}
	var names, vals, set, conflict []string
	isKey := map[int]bool{}
	for _, k := range a.keys {
		isKey[k.index] = true
		conflict = append(conflict, k.name)
	}
	for j, c := range a.cols {
		names = append(names, c.name)
		vals = append(vals, fmt.Sprintf("CAST($%d::text AS %s)", j+1, c.typ))
		if !isKey[c.index] && !a.always[j] {
			set = append(set, c.name+" = EXCLUDED."+c.name)
		}
	}
	a.upsert = fmt.Sprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE VALUES (%s) ON CONFLICT (%s) %s",
		a.old, strings.Join(names, ", "), strings.Join(vals, ", "), strings.Join(conflict, ", "), conflictAction(set))
	a.ready = true
	return nil
}

// Apply writes the changes in order, in one transaction.
func (a *PostgresRevert) Apply(ctx context.Context, changes []cdc.Change) error {
	if err := a.init(ctx); err != nil {
		return fmt.Errorf("apply to the old table: %w", err)
	}
	var b pgx.Batch
	var descs []string
	add := func(desc, query string, args []any) {
		b.Queue(query, args...)
		descs = append(descs, desc)
	}
	for i := range changes {
		c := &changes[i]
		switch c.Op {
		case cdc.Insert, cdc.Update:
			if len(c.After) != len(a.plan.Source.Columns) || (c.Before != nil && len(c.Before) != len(c.After)) {
				return fmt.Errorf("apply to the old table: %s: a row of %d values for %d columns", c.Op, len(c.After), len(a.plan.Source.Columns))
			}
			moved := c.Before != nil && a.keyText(c.Before) != a.keyText(c.After)
			if c.Partial() || moved {
				// The row under the old key (the new one when the key
				// stays) takes the columns the change carries.
				where := c.After
				if c.Before != nil {
					where = c.Before
				}
				q, args, err := a.update(c.After, c.Unchanged, where)
				if err != nil {
					return fmt.Errorf("apply to the old table: %w", err)
				}
				if q != "" {
					add("update 1 row", q, args)
				}
				if c.Partial() {
					continue
				}
			}
			args, err := a.args(a.cols, c.After)
			if err != nil {
				return fmt.Errorf("apply to the old table: %w", err)
			}
			add("upsert 1 row", a.upsert, args)
		case cdc.Delete:
			where, args, err := a.keyWhere(c.Before, nil)
			if err != nil {
				return fmt.Errorf("apply to the old table: delete: %w", err)
			}
			add("delete 1 row", "DELETE FROM "+a.old+" WHERE "+where, args)
		case cdc.Marker:
		default:
			return fmt.Errorf("apply to the old table: unknown change %s", c.Op)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	br := a.pool.SendBatch(ctx, &b)
	for _, d := range descs {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("apply to the old table %s: %s: %w", a.old, d, err)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("apply to the old table %s: commit: %w", a.old, err)
	}
	return nil
}

// update returns the UPDATE that gives the row whose key where has the
// values of row the change carries (unchanged: the columns it does not; nil
// when it carries all), or "" when it carries none to write.
func (a *PostgresRevert) update(row cdc.Row, unchanged []bool, where cdc.Row) (string, []any, error) {
	var set []string
	var args []any
	for j, c := range a.cols {
		if a.always[j] || (unchanged != nil && unchanged[c.index]) {
			continue
		}
		v, err := textValue(row[c.index])
		if err != nil {
			return "", nil, fmt.Errorf("column %s: %w", c.name, err)
		}
		args = append(args, v)
		set = append(set, fmt.Sprintf("%s = CAST($%d::text AS %s)", c.name, len(args), c.typ))
	}
	if len(set) == 0 {
		return "", nil, nil
	}
	cond, args, err := a.keyWhere(where, args)
	if err != nil {
		return "", nil, err
	}
	return "UPDATE " + a.old + " SET " + strings.Join(set, ", ") + " WHERE " + cond, args, nil
}

// keyWhere is the condition on the key of row, its values appended to args.
func (a *PostgresRevert) keyWhere(row cdc.Row, args []any) (string, []any, error) {
	var cond []string
	for _, k := range a.keys {
		if k.index >= len(row) || row[k.index] == nil {
			return "", nil, fmt.Errorf("key column %s: no value in the old row", k.name)
		}
		v, err := textValue(row[k.index])
		if err != nil {
			return "", nil, fmt.Errorf("key column %s: %w", k.name, err)
		}
		args = append(args, v)
		cond = append(cond, fmt.Sprintf("%s = CAST($%d::text AS %s)", k.name, len(args), k.typ))
	}
	return strings.Join(cond, " AND "), args, nil
}

func (a *PostgresRevert) args(cols []pgRevCol, row cdc.Row) ([]any, error) {
	args := make([]any, len(cols))
	for j, c := range cols {
		v, err := textValue(row[c.index])
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.name, err)
		}
		args[j] = v
	}
	return args, nil
}

func (a *PostgresRevert) keyText(r cdc.Row) string {
	var b strings.Builder
	for _, k := range a.keys {
		fmt.Fprintf(&b, "%T:%v\x00", r[k.index], r[k.index])
	}
	return b.String()
}
