package apply

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/cdc"
	"osc/table"
)

// Postgres applies captured changes to the shadow table of a PostgreSQL
// migration. Values are pgoutput's text forms (strings); every one is sent as
// a text parameter and converted in SQL with CAST(… AS <source column type>),
// then stored with the assignment cast to the shadow column's type: the same
// conversion the copy's INSERT … SELECT makes, so a type-changing ALTER
// treats copied and applied rows alike.
//
// A batch is written in one transaction and one round trip (a pipeline of
// statements in one implicit transaction). Consecutive full-row inserts and
// updates become one INSERT … SELECT FROM unnest(…) ON CONFLICT (key) DO
// UPDATE (GENERATED ALWAYS identity columns excluded), consecutive
// deletes one DELETE … WHERE key IN (SELECT … FROM unnest(…)); the statement
// texts do not depend on the batch size, so they are prepared once. A key
// never appears twice in one upsert statement (PostgreSQL refuses to affect a
// row twice): a repeated key starts the next statement, which keeps every
// change in commit order, also with respect to other unique indexes.
//
// A partial update that changes the key (a "move") ends its batch: when the
// shadow did not hold the old row, the row is fetched from the source after
// that batch commits (see fetchMoved), and the remaining changes follow in a
// new batch.
type Postgres struct {
	pool *pgxpool.Pool
	plan *table.Plan

	mu     sync.Mutex
	ready  bool
	shadow string        // quoted shadow table
	source string        // quoted source table
	cols   []pgColumn    // mapped columns, in source order
	keys   []pgKeyColumn // key columns, in key order
	upsert string
	delete string
	fetch  string // copies the source row with a key into the shadow if absent: see fetchMoved
}

// pgColumn is one mapped column.
type pgColumn struct {
	name    string // quoted shadow column
	srcName string // quoted source column
	srcType string // source column type (format_type)
	index   int    // position in the row images
	key     bool
	always  bool // the shadow column is GENERATED ALWAYS AS IDENTITY: it cannot be updated
}

// pgKeyColumn is one key column.
type pgKeyColumn struct {
	name    string // quoted shadow column
	srcName string // quoted source column
	index   int    // position in the row images
	srcType string // source column type
	dstType string // shadow column type, "" when unknown
}

// expr converts a key's text form to a value of the shadow column's type:
// through the source type (what the text is the form of), then, when the
// ALTER changed the type, to the shadow's.
func (k pgKeyColumn) expr(text string) string {
	e := "CAST(" + text + " AS " + k.srcType + ")"
	if k.dstType != "" && k.dstType != k.srcType {
		e = "CAST(" + e + " AS " + k.dstType + ")"
	}
	return e
}

// NewPostgres returns the applier of the plan. The shadow's catalog is read
// on first use.
func NewPostgres(pool *pgxpool.Pool, plan *table.Plan) *Postgres {
	return &Postgres{pool: pool, plan: plan}
}

func (a *Postgres) init(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ready {
		return nil
	}
	p := a.plan
	if err := p.Usable(); err != nil {
		return err
	}
	schema := p.Shadow.Schema
	if schema == "" {
		schema = p.Source.Schema
	}
	a.shadow = pgx.Identifier{schema, p.Shadow.Name}.Sanitize()
	a.source = pgx.Identifier{p.Source.Schema, p.Source.Name}.Sanitize()
	always, err := a.alwaysIdentity(ctx)
	if err != nil {
		return err
	}

	isKey := map[int]bool{}
	for _, k := range p.KeyIndex {
		isKey[k] = true
	}
	shadowOf := map[int]string{}
	a.cols = a.cols[:0]
	for _, m := range p.Mapping {
		if m.SourceIndex < 0 || m.SourceIndex >= len(p.Source.Columns) {
			return fmt.Errorf("column mapping %s → %s: no source column %d", m.Source, m.Shadow, m.SourceIndex)
		}
		if p.Source.Columns[m.SourceIndex].ColumnType == "" {
			return fmt.Errorf("column %s: the plan has no type for it", m.Source)
		}
		shadowOf[m.SourceIndex] = m.Shadow
		a.cols = append(a.cols, pgColumn{
			name:    pgx.Identifier{m.Shadow}.Sanitize(),
			srcName: pgx.Identifier{m.Source}.Sanitize(),
			srcType: p.Source.Columns[m.SourceIndex].ColumnType,
			index:   m.SourceIndex,
			key:     isKey[m.SourceIndex],
			always:  always[m.Shadow],
		})
	}
	a.keys = a.keys[:0]
	for n, k := range p.KeyIndex {
		name, ok := shadowOf[k]
		if !ok {
			return fmt.Errorf("key column %q is not copied to the shadow", p.Key[n])
		}
		a.keys = append(a.keys, pgKeyColumn{
			name:    pgx.Identifier{name}.Sanitize(),
			srcName: pgx.Identifier{p.Source.Columns[k].Name}.Sanitize(),
			index:   k,
			srcType: p.Source.Columns[k].ColumnType,
			dstType: shadowType(p.Shadow, name),
		})
	}
	a.upsert = a.upsertSQL()
	a.delete = a.deleteSQL()
	a.fetch = a.fetchSQL()
	a.ready = true
	return nil
}

// alwaysIdentity returns the shadow's GENERATED ALWAYS identity columns: the
// upsert must insert them with OVERRIDING SYSTEM VALUE and cannot update them.
func (a *Postgres) alwaysIdentity(ctx context.Context) (map[string]bool, error) {
	rows, err := a.pool.Query(ctx, `
		SELECT attname::text FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attidentity = 'a'`, a.shadow)
	if err != nil {
		return nil, fmt.Errorf("identity columns of %s: %w", a.shadow, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("identity columns of %s: %w", a.shadow, err)
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

func shadowType(t *table.Table, name string) string {
	if i := t.ColumnIndex(name); i >= 0 {
		return t.Columns[i].ColumnType
	}
	return ""
}

func (a *Postgres) upsertSQL() string {
	var names, casts, params, vars, set, conflict []string
	for i, c := range a.cols {
		v := fmt.Sprintf("v%d", i)
		names = append(names, c.name)
		casts = append(casts, "CAST(u."+v+" AS "+c.srcType+")")
		params = append(params, fmt.Sprintf("$%d::text[]", i+1))
		vars = append(vars, v)
		if !c.key && !c.always {
			set = append(set, c.name+" = EXCLUDED."+c.name)
		}
	}
	for _, k := range a.keys {
		conflict = append(conflict, k.name)
	}
	action := "DO NOTHING"
	if len(set) > 0 {
		action = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	return fmt.Sprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM unnest(%s) WITH ORDINALITY AS u(%s, n) ORDER BY u.n ON CONFLICT (%s) %s",
		a.shadow, strings.Join(names, ", "), strings.Join(casts, ", "), strings.Join(params, ", "), strings.Join(vars, ", "),
		strings.Join(conflict, ", "), action)
}

func (a *Postgres) deleteSQL() string {
	var names, casts, params, vars []string
	for i, k := range a.keys {
		v := fmt.Sprintf("v%d", i)
		names = append(names, k.name)
		casts = append(casts, k.expr("u."+v))
		params = append(params, fmt.Sprintf("$%d::text[]", i+1))
		vars = append(vars, v)
	}
	return fmt.Sprintf("DELETE FROM %s WHERE (%s) IN (SELECT %s FROM unnest(%s) AS u(%s))",
		a.shadow, strings.Join(names, ", "), strings.Join(casts, ", "), strings.Join(params, ", "), strings.Join(vars, ", "))
}

// pgOpKind is what one statement of a batch does.
type pgOpKind uint8

const (
	pgUpsert pgOpKind = iota + 1
	pgDelete
	pgUpdate
	// pgMove is a partial update that changes the key: the row moves to its
	// new key, keeping the columns the change did not carry.
	pgMove
)

// pgOp is one row operation derived from a change.
type pgOp struct {
	kind pgOpKind
	row  cdc.Row // upsert: the new row; delete: the old row (key); update: the new row
	key  string  // upsert and delete: the key's text form, to group statements
	// update and move only: the row holding the key to update (move: the old
	// row), and which columns to leave alone.
	where     cdc.Row
	unchanged []bool
}

// pgStmt is one statement of a batch.
type pgStmt struct {
	query string
	args  []any
	desc  string
	move  *pgOp // the move the statement makes; nil for other statements
}

// Apply writes the changes in order, in one transaction unless they contain
// a move (a partial update that changes the key): a move ends its
// transaction, see fetchMoved. Each transaction holds a prefix of what is
// left, so a failed Apply leaves the shadow as if a prefix of the changes was
// applied, and applying all of them again (the engine's retry) is harmless:
// every statement is idempotent and they run again in the same order.
func (a *Postgres) Apply(ctx context.Context, changes []cdc.Change) error {
	if err := a.init(ctx); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	ops, err := a.ops(changes)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	var stmts []pgStmt
	for start := 0; start < len(ops); {
		end, query, args, desc, err := a.statement(ops, start)
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		if query != "" {
			st := pgStmt{query: query, args: args, desc: desc}
			if ops[start].kind == pgMove {
				st.move = &ops[start]
			}
			stmts = append(stmts, st)
		}
		start = end
	}
	for len(stmts) > 0 {
		n := len(stmts)
		for i := range stmts {
			if stmts[i].move != nil {
				n = i + 1
				break
			}
		}
		moved, err := a.send(ctx, stmts[:n])
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		if last := stmts[n-1]; last.move != nil && moved == 0 {
			if err := a.fetchMoved(ctx, *last.move); err != nil {
				return fmt.Errorf("apply: %w", err)
			}
		}
		stmts = stmts[n:]
	}
	return nil
}

// send writes the statements in one transaction and returns how many rows
// the last one moved when it is a move.
func (a *Postgres) send(ctx context.Context, stmts []pgStmt) (moved int64, err error) {
	// The statements of one batch form one implicit transaction (they are
	// pipelined with a single Sync, at which PostgreSQL commits them, or rolls
	// all of them back after an error): atomic like BEGIN … COMMIT, without
	// their two round trips.
	var b pgx.Batch
	for _, st := range stmts {
		b.Queue(st.query, st.args...)
	}
	br := a.pool.SendBatch(ctx, &b)
	for _, st := range stmts {
		if st.move != nil {
			err = br.QueryRow().Scan(&moved)
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			br.Close()
			return 0, fmt.Errorf("%s into %s: %w", st.desc, a.shadow, err)
		}
	}
	if err := br.Close(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return moved, nil
}

// ops turns changes into row operations, in order.
func (a *Postgres) ops(changes []cdc.Change) ([]pgOp, error) {
	ops := make([]pgOp, 0, len(changes))
	for i := range changes {
		c := &changes[i]
		switch c.Op {
		case cdc.Insert, cdc.Update:
			if err := a.checkRow(c.After); err != nil {
				return nil, fmt.Errorf("%s: new row: %w", c.Op, err)
			}
			if c.Unchanged != nil && len(c.Unchanged) != len(c.After) {
				return nil, fmt.Errorf("%s: %d unchanged flags for %d columns", c.Op, len(c.Unchanged), len(c.After))
			}
			var before string
			if c.Before != nil {
				if err := a.checkRow(c.Before); err != nil {
					return nil, fmt.Errorf("%s: old row: %w", c.Op, err)
				}
				before = a.keyText(c.Before, nil)
			}
			if c.Partial() {
				op := pgOp{kind: pgUpdate, row: c.After, where: c.After, unchanged: c.Unchanged}
				if c.Before != nil && before != a.keyText(c.After, c.Unchanged) {
					op.kind, op.where = pgMove, c.Before
				} else if a.keyUnchanged(c.Unchanged) {
					return nil, fmt.Errorf("%s: the key was not sent (unchanged TOAST value) and no old key either", c.Op)
				}
				ops = append(ops, op)
				continue
			}
			after := a.keyText(c.After, nil)
			if c.Before != nil && before != after {
				ops = append(ops, pgOp{kind: pgDelete, row: c.Before, key: before})
			}
			ops = append(ops, pgOp{kind: pgUpsert, row: c.After, key: after})
		case cdc.Delete:
			if err := a.checkRow(c.Before); err != nil {
				return nil, fmt.Errorf("delete: old row: %w", err)
			}
			ops = append(ops, pgOp{kind: pgDelete, row: c.Before, key: a.keyText(c.Before, nil)})
		case cdc.Marker:
		default:
			return nil, fmt.Errorf("unknown change %s", c.Op)
		}
	}
	return ops, nil
}

func (a *Postgres) checkRow(r cdc.Row) error {
	if len(r) != len(a.plan.Source.Columns) {
		return fmt.Errorf("%d values for %d columns", len(r), len(a.plan.Source.Columns))
	}
	return nil
}

func (a *Postgres) keyUnchanged(unchanged []bool) bool {
	for _, k := range a.keys {
		if unchanged[k.index] {
			return true
		}
	}
	return false
}

// keyText identifies a row's key; two rows with the same text have the same
// key (different texts may still be equal values, which only costs a
// redundant delete).
func (a *Postgres) keyText(r cdc.Row, unchanged []bool) string {
	var b strings.Builder
	for _, k := range a.keys {
		if unchanged != nil && unchanged[k.index] {
			b.WriteString("u\x00")
			continue
		}
		fmt.Fprintf(&b, "%T:%v\x00", r[k.index], r[k.index])
	}
	return b.String()
}

// statement builds the statement for the run of operations starting at
// ops[start] and returns where the next run starts. An empty query means
// nothing is to be written for the run.
func (a *Postgres) statement(ops []pgOp, start int) (end int, query string, args []any, desc string, err error) {
	switch ops[start].kind {
	case pgMove:
		query, args, err = a.moveSQL(ops[start])
		return start + 1, query, args, "move 1 row", err
	case pgUpdate:
		query, args, err = a.updateSQL(ops[start])
		return start + 1, query, args, "update 1 row", err
	case pgUpsert:
		seen := map[string]bool{}
		arrays := make([][]*string, len(a.cols))
		end = start
		for ; end < len(ops) && ops[end].kind == pgUpsert && !seen[ops[end].key]; end++ {
			seen[ops[end].key] = true
			for i, c := range a.cols {
				v, err := textValue(ops[end].row[c.index])
				if err != nil {
					return 0, "", nil, "", fmt.Errorf("column %s: %w", c.name, err)
				}
				arrays[i] = append(arrays[i], v)
			}
		}
		return end, a.upsert, arrayArgs(arrays), fmt.Sprintf("upsert %d rows", end-start), nil
	default:
		seen := map[string]bool{}
		arrays := make([][]*string, len(a.keys))
		end = start
		for ; end < len(ops) && ops[end].kind == pgDelete; end++ {
			if seen[ops[end].key] {
				continue
			}
			seen[ops[end].key] = true
			for i, k := range a.keys {
				v, err := textValue(ops[end].row[k.index])
				if err != nil {
					return 0, "", nil, "", fmt.Errorf("key column %s: %w", k.name, err)
				}
				if v == nil {
					return 0, "", nil, "", fmt.Errorf("key column %s: no value in the old row", k.name)
				}
				arrays[i] = append(arrays[i], v)
			}
		}
		return end, a.delete, arrayArgs(arrays), fmt.Sprintf("delete %d rows", len(seen)), nil
	}
}

func arrayArgs(arrays [][]*string) []any {
	args := make([]any, len(arrays))
	for i, a := range arrays {
		args[i] = a
	}
	return args
}

// updateSQL writes the columns a partial change carries (the others keep
// their value in the shadow) to the row with the where-row's key, which may
// not have been copied yet: then it updates nothing, and the engine applies
// the change again once the row's chunk has landed.
func (a *Postgres) updateSQL(op pgOp) (string, []any, error) {
	var (
		set  []string
		args []any
	)
	for _, c := range a.cols {
		if op.unchanged[c.index] || c.always || c.key {
			continue
		}
		v, err := textValue(op.row[c.index])
		if err != nil {
			return "", nil, fmt.Errorf("column %s: %w", c.name, err)
		}
		args = append(args, v)
		set = append(set, fmt.Sprintf("%s = CAST($%d::text AS %s)", c.name, len(args), c.srcType))
	}
	if len(set) == 0 {
		return "", nil, nil
	}
	where, err := a.keyMatch(op.where, &args)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("UPDATE %s SET %s WHERE %s", a.shadow, strings.Join(set, ", "), where), args, nil
}

// moveSQL moves a row to its new key for a partial update that changed the
// key: it deletes the old row and inserts it under the new key with the
// columns the change carries, the others taken from the old row. When the
// shadow already holds the new key — a chunk copied the row after the update
// committed, possibly still in flight — the insert waits for that chunk and
// then updates the copied row instead of failing on the duplicate key.
// The statement returns the number of rows it moved (0 or 1): when the old
// row is not in the shadow yet, it writes nothing and Apply fetches the row
// from the source (fetchMoved).
func (a *Postgres) moveSQL(op pgOp) (string, []any, error) {
	var (
		args             []any
		names, vals, set []string
		conflict         []string
	)
	for _, c := range a.cols {
		names = append(names, c.name)
		if op.unchanged[c.index] {
			vals = append(vals, "moved."+c.name)
			continue
		}
		v, err := textValue(op.row[c.index])
		if err != nil {
			return "", nil, fmt.Errorf("column %s: %w", c.name, err)
		}
		args = append(args, v)
		vals = append(vals, fmt.Sprintf("CAST($%d::text AS %s)", len(args), c.srcType))
		if !c.key && !c.always {
			set = append(set, c.name+" = EXCLUDED."+c.name)
		}
	}
	for _, k := range a.keys {
		conflict = append(conflict, k.name)
	}
	where, err := a.keyMatch(op.where, &args)
	if err != nil {
		return "", nil, err
	}
	action := "DO NOTHING"
	if len(set) > 0 {
		action = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	// A data-modifying WITH runs to completion whether or not the main query
	// reads it.
	return fmt.Sprintf("WITH moved AS (DELETE FROM %s WHERE %s RETURNING *), ins AS (INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM moved ON CONFLICT (%s) %s RETURNING 1) SELECT count(*) FROM moved",
		a.shadow, where, a.shadow, strings.Join(names, ", "), strings.Join(vals, ", "), strings.Join(conflict, ", "), action), args, nil
}

// How long fetchMoved waits for the moving transaction's commit to become
// visible, and how often it looks.
const (
	pgFetchWait = 200 * time.Millisecond
	pgFetchPoll = 10 * time.Millisecond
)

// fetchSQL copies the source row with the new key $1… into the shadow unless
// the shadow holds that key (the copier's INSERT … SELECT: same columns, same
// assignment casts). It returns whether the row is settled — the source
// showed it (then it was inserted, or the shadow had the key: ON CONFLICT
// does nothing only for a row that exists), or the shadow holds the key —
// and whether the source shows a row with the old key $n+1…, all in one
// snapshot.
func (a *Postgres) fetchSQL() string {
	var src, dst, srcKeys, newVals, oldVals, dstKeys, dstVals []string
	for _, c := range a.cols {
		src = append(src, c.srcName)
		dst = append(dst, c.name)
	}
	for i, k := range a.keys {
		p := fmt.Sprintf("$%d::text", i+1)
		srcKeys = append(srcKeys, k.srcName)
		newVals = append(newVals, "CAST("+p+" AS "+k.srcType+")")
		oldVals = append(oldVals, fmt.Sprintf("CAST($%d::text AS %s)", len(a.keys)+i+1, k.srcType))
		dstKeys = append(dstKeys, k.name)
		dstVals = append(dstVals, k.expr(p))
	}
	return fmt.Sprintf("WITH src AS (SELECT %s FROM %s WHERE (%s) = (%s)), "+
		"ins AS (INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT * FROM src ON CONFLICT (%s) DO NOTHING) "+
		"SELECT EXISTS (SELECT 1 FROM src) OR EXISTS (SELECT 1 FROM %s WHERE (%s) = (%s)), EXISTS (SELECT 1 FROM %s WHERE (%s) = (%s))",
		strings.Join(src, ", "), a.source, strings.Join(srcKeys, ", "), strings.Join(newVals, ", "),
		a.shadow, strings.Join(dst, ", "), strings.Join(dstKeys, ", "),
		a.shadow, strings.Join(dstKeys, ", "), strings.Join(dstVals, ", "),
		a.source, strings.Join(srcKeys, ", "), strings.Join(oldVals, ", "))
}

// fetchMoved brings the row of a move that found no old row in the shadow:
// the old row's chunk was not copied yet, and the copy will not bring it (its
// old key is gone from the source); when the new key lies in a range the copy
// has already passed, nothing else would bring it either, and the row would
// be lost at cut-over. The change lacks the unchanged (TOASTed) columns, so
// the row is read from the source under its new key and inserted unless the
// shadow holds that key.
//
// Reading the source is normally the trap: the change is decoded from the WAL
// before its transaction is visible to other snapshots. What the read can see:
//   - nothing, before the move's commit is visible: then the same snapshot
//     still shows the row under its old key (the version the move replaced,
//     whose writer had to finish and become visible before the move could
//     update it), and it looks again every pgFetchPoll, up to pgFetchWait
//     (the gap between writing the commit record and showing the commit is
//     normally microseconds);
//   - the row as the move left it, or a later version (a later transaction
//     changed it): later changes come after this one in the stream and are
//     applied after it (Apply ends its batch at the move and sends the rest
//     afterwards), idempotently;
//   - never an older row at that key: the move's insert of the new key waited
//     for any transaction that had deleted or moved away an older row there,
//     until that one committed and became visible, before the move committed;
//   - nothing, ever, when a later transaction deleted the row or moved it
//     again: its change follows and removes or moves the row, so giving up is
//     correct. When the old key is gone from the source too, the move is
//     visible and it gives up at once: rows that keep moving (and the engine's
//     replays of their moves) must not cost a wait each. Only when a later
//     transaction reused the old key does it wait the full pgFetchWait.
//
// It runs outside the move's transaction (it sleeps between attempts) and is
// idempotent: it inserts only an absent key, and any row it inserts is as
// new as the change or newer.
func (a *Postgres) fetchMoved(ctx context.Context, op pgOp) error {
	args := make([]any, 2*len(a.keys))
	for i, k := range a.keys {
		v := op.row[k.index]
		if op.unchanged[k.index] {
			// An unsent key column kept its old value.
			v = op.where[k.index]
		}
		for j, v := range []any{v, op.where[k.index]} {
			s, err := textValue(v)
			if err != nil {
				return fmt.Errorf("fetch moved row: key column %s: %w", k.name, err)
			}
			if s == nil {
				return fmt.Errorf("fetch moved row: key column %s: no value", k.name)
			}
			args[j*len(a.keys)+i] = s
		}
	}
	deadline := time.Now().Add(pgFetchWait)
	for {
		var settled, oldKey bool
		if err := a.pool.QueryRow(ctx, a.fetch, args...).Scan(&settled, &oldKey); err != nil {
			return fmt.Errorf("fetch moved row from %s into %s: %w", a.source, a.shadow, err)
		}
		if settled || !oldKey || !time.Now().Before(deadline) {
			return nil
		}
		t := time.NewTimer(pgFetchPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("fetch moved row: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// keyMatch is the condition "the key equals r's key", its values appended to
// args as text parameters.
func (a *Postgres) keyMatch(r cdc.Row, args *[]any) (string, error) {
	var names, vals []string
	for _, k := range a.keys {
		v, err := textValue(r[k.index])
		if err != nil {
			return "", fmt.Errorf("key column %s: %w", k.name, err)
		}
		if v == nil {
			return "", fmt.Errorf("key column %s: no value", k.name)
		}
		*args = append(*args, v)
		names = append(names, k.name)
		vals = append(vals, k.expr(fmt.Sprintf("$%d::text", len(*args))))
	}
	return fmt.Sprintf("(%s) = (%s)", strings.Join(names, ", "), strings.Join(vals, ", ")), nil
}

// textValue is a row value as a text parameter: pgoutput sends strings; nil
// is NULL.
func textValue(v any) (*string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return &x, nil
	case []byte:
		s := string(x)
		return &s, nil
	}
	return nil, fmt.Errorf("unexpected value type %T (want the text form)", v)
}
