package apply

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/cdc"
	"osc/change"
	"osc/table"
)

// Postgres applies captured changes to the shadow table of a PostgreSQL
// migration. Values are pgoutput's text forms (strings); every one is sent as
// a text parameter and converted in SQL with CAST(… AS <source column type>)
// into a row of the original rebuilt as a derived table named like it; each
// shadow column's value is computed over that row as the plan says (the
// column itself, or an ALTER … TYPE … USING expression) and stored with the
// assignment cast to the shadow column's type: what the copy's INSERT …
// SELECT does over the original's rows, so the ALTER treats copied and
// applied rows alike.
//
// A batch is written in one transaction and one round trip (a pipeline of
// statements in one implicit transaction). Of each run of full-row inserts,
// updates and deletes only what it leaves is written (see collapse): the
// deletes become one DELETE … WHERE key IN (SELECT … FROM unnest(…)), the
// rows written last one INSERT … SELECT FROM unnest(…) ON CONFLICT (key) DO
// UPDATE (GENERATED ALWAYS identity columns excluded); the statement texts
// do not depend on the batch size, so they are prepared once.
//
// A partial update that changes the key (a "move") is applied in a
// transaction of its own, between the batches before and after it: see move.
type Postgres struct {
	pool *pgxpool.Pool
	plan *table.Plan

	mu     sync.Mutex
	ready  bool
	shadow string        // quoted shadow table
	source string        // quoted source table
	cols   []pgColumn    // mapped columns, in source order
	keys   []pgKeyColumn // key columns, in key order
	// fillNames and fills are the plan's fills (quoted shadow column, its
	// value): written into every row the applier inserts, as the copy does.
	fillNames, fills []string
	// row is the original's columns (generated ones excepted) that a row
	// is rebuilt from, as the relation rowName, for the shadow's values to
	// be computed over it; ord and out[i] are names no column has, for the
	// upsert's ordinal and the computed values.
	row     []pgRowColumn
	rowName string
	ord     string
	out     []string
	upsert  string
	delete  string
	refresh string // see Refresh
	// unique is the shadow's unique indexes whose clashes the applier
	// resolves (not those over the key alone: see arbiter), clashUpsert
	// the statement that writes an upsert's rows after deleting their
	// clashes, and cleared the keys of the rows it deleted for clashing
	// that no change has written since (see postgres_clash.go).
	unique      []pgUnique
	clashUpsert string
	cleared     map[string]bool
	// duplicated finds rows of an upsert that hold one value of such an
	// index (see duplicatedSQL).
	duplicated string
	// aside is the quoted table of rows set aside of a plan with new unique
	// keys ("" without one), asideCols its columns (the mapped ones, then
	// the fills), asideAny whether it may hold rows: while it cannot, the
	// statements that take written keys out of it are left out (see
	// postgres_aside.go). upsertAside, deleteAside and clashUpsertAside are
	// upsert, delete and clashUpsert that also take their keys out of it.
	aside                                      string
	asideCols                                  []string
	asideAny                                   bool
	upsertAside, deleteAside, clashUpsertAside string
	// keyRow is, for each key column, its position in row.
	keyRow []int
	// verbatim is set when a key's text from pgoutput is the applier's
	// session's too (see loadVerbatim).
	verbatim bool
	// clashRecent is how many more batches of whole rows go straight to
	// the clash resolution (see clashFirst).
	clashRecent int
	// generated is the shadow's stored generated columns: quoted name and
	// expression.
	generated [][2]string
	// ordered: the original or the shadow has an exclusion constraint that
	// is not deferrable, which PostgreSQL checks at each row a statement
	// writes: the changes are written in their order, not collapsed (see
	// collapse).
	ordered bool
	// deferrable: the shadow has a unique or exclusion constraint that is
	// DEFERRABLE, which lets the source hold one value in two rows until
	// its transaction ends (see Apply, cut).
	deferrable bool

	// ahead remembers, by key, the new rows moves wrote from a source read
	// that may have seen later changes than the move (see move). Apply is
	// called by one goroutine at a time.
	ahead map[string]pgAheadRead
	// unseen is the transactions (ids as pgoutput sends them) of the changes
	// applied that may not be visible yet: a refresh's read must see them
	// (see Refresh). Pruned of the visible ones as it grows (pgUnseenPrune).
	unseen map[uint32]bool
	// copyDone is set by CopyDone; missing by CopyDone and Resumed (see
	// readMissing).
	copyDone, missing atomic.Bool
}

// pgAheadRead is a source read a move wrote its new row from: the snapshot
// it read in, and a WAL position after every commit that snapshot saw.
type pgAheadRead struct {
	snap *cdc.PostgresSnapshot
	lsn  cdc.LSN
}

// pgColumn is one mapped column.
type pgColumn struct {
	name    string // quoted shadow column
	srcName string // quoted source column
	srcType string // source column type (format_type)
	index   int    // position in the row images
	key     bool
	always  bool // the shadow column is GENERATED ALWAYS AS IDENTITY: it cannot be updated
	// value is the SQL of the column's value over a row of the original
	// (see Postgres.row): the source column, or the expression of an ALTER
	// … TYPE … USING; inputs are the positions in the row images of the
	// columns it reads.
	value  string
	inputs []int
	// dstType is the shadow column's type ("" when unknown): a unique
	// index's expression over the column is computed over values of it.
	dstType string
	// collate is, for a key column of a collatable type, " COLLATE " and
	// the shadow column's collation (see stored).
	collate string
}

// pgRowColumn is a column of the original in a rebuilt row.
type pgRowColumn struct {
	name  string // quoted
	typ   string
	index int // position in the row images
	// collate is " COLLATE <collation>" when the original's column has a
	// collation other than its type's default (loadRowCollations).
	collate string
}

// fromChange reports whether a partial change (unchanged: the columns it
// does not carry, unchanged TOAST values) gives the column's value: when it
// carries every column the value reads. When it carries none of them, the
// value is unchanged; a value reading both kinds cannot be computed (the plan
// refuses such a USING).
func (c pgColumn) fromChange(unchanged []bool) (bool, error) {
	n := 0
	for _, i := range c.inputs {
		if unchanged[i] {
			n++
		}
	}
	switch {
	case n == 0:
		return true, nil
	case n == len(c.inputs):
		return false, nil
	}
	return false, fmt.Errorf("column %s is computed from columns the change carries and from unchanged TOAST values it does not carry", c.name)
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

	// Rows of the shadow are told apart by its key (Plan.Identity): a
	// change of its values is a key-changing update.
	keyNames, keyIndex := p.Identity()
	isKey := map[int]bool{}
	for _, k := range keyIndex {
		isKey[k] = true
	}
	shadowOf := map[int]string{}
	a.cols = a.cols[:0]
	taken := map[string]bool{}
	for _, c := range p.Source.Columns {
		taken[c.Name] = true
	}
	for _, c := range p.Shadow.Columns {
		taken[c.Name] = true
	}
	unused := func(base string) string {
		for taken[base] {
			base += "_"
		}
		taken[base] = true
		return pgx.Identifier{base}.Sanitize()
	}
	a.row = a.row[:0]
	for i, c := range p.Source.Columns {
		if !c.Generated {
			a.row = append(a.row, pgRowColumn{name: pgx.Identifier{c.Name}.Sanitize(), typ: c.ColumnType, index: i})
		}
	}
	a.rowName = pgx.Identifier{p.Source.Name}.Sanitize()
	a.ord = unused("osc_ord")
	a.out = a.out[:0]
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
			value:   m.PostgresValue(),
			dstType: shadowType(p.Shadow, m.Shadow),
			inputs:  m.Inputs(),
		})
		a.out = append(a.out, unused(fmt.Sprintf("osc_v%d", len(a.cols)-1)))
	}
	a.fillNames, a.fills = a.fillNames[:0], a.fills[:0]
	for _, f := range p.Fills {
		a.fillNames = append(a.fillNames, pgx.Identifier{f.Shadow}.Sanitize())
		a.fills = append(a.fills, f.Expr)
	}
	a.keys = a.keys[:0]
	for n, k := range keyIndex {
		name, ok := shadowOf[k]
		if !ok {
			return fmt.Errorf("key column %q is not copied to the shadow", keyNames[n])
		}
		a.keys = append(a.keys, pgKeyColumn{
			name:    pgx.Identifier{name}.Sanitize(),
			srcName: pgx.Identifier{p.Source.Columns[k].Name}.Sanitize(),
			index:   k,
			srcType: p.Source.Columns[k].ColumnType,
			dstType: shadowType(p.Shadow, name),
		})
	}
	a.keyRow = a.keyRow[:0]
	for _, k := range a.keys {
		at := -1
		for j, r := range a.row {
			if r.index == k.index {
				at = j
			}
		}
		if at < 0 {
			return fmt.Errorf("key column %s is generated", k.srcName)
		}
		a.keyRow = append(a.keyRow, at)
	}
	if err := a.loadKeyCollations(ctx); err != nil {
		return err
	}
	if err := a.loadRowCollations(ctx); err != nil {
		return err
	}
	if err := a.loadUnique(ctx); err != nil {
		return err
	}
	if err := a.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid IN (to_regclass($1), to_regclass($2)) AND indisexclusion AND indimmediate)`,
		a.source, a.shadow).Scan(&a.ordered); err != nil {
		return fmt.Errorf("exclusion constraints of %s: %w", a.source, err)
	}
	if err := a.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = to_regclass($1) AND (indisunique OR indisexclusion) AND NOT indimmediate)`,
		a.shadow).Scan(&a.deferrable); err != nil {
		return fmt.Errorf("deferrable constraints of %s: %w", a.shadow, err)
	}
	if err := a.initAside(ctx); err != nil {
		return err
	}
	if err := a.loadVerbatim(ctx); err != nil {
		return err
	}
	a.upsert, a.delete = a.upsertSQL(false), a.deleteSQL(false)
	a.refresh = a.refreshSQL()
	if len(a.unique) > 0 {
		a.clashUpsert, a.duplicated = a.clashUpsertSQL(false), a.duplicatedSQL()
	}
	if a.aside != "" {
		a.upsertAside, a.deleteAside, a.clashUpsertAside = a.upsertSQL(true), a.deleteSQL(true), a.clashUpsertSQL(true)
	}
	a.ready = true
	return nil
}

// loadKeyCollations sets the collate of the key columns (see stored).
func (a *Postgres) loadKeyCollations(ctx context.Context) error {
	for i := range a.cols {
		c := &a.cols[i]
		if !c.key {
			continue
		}
		err := a.pool.QueryRow(ctx, `SELECT coalesce((SELECT ' COLLATE ' || quote_ident(n.nspname) || '.' || quote_ident(co.collname)
			FROM pg_attribute a JOIN pg_collation co ON co.oid = a.attcollation JOIN pg_namespace n ON n.oid = co.collnamespace
			WHERE a.attrelid = to_regclass($1) AND '"' || replace(a.attname, '"', '""') || '"' = $2), '')`, a.shadow, c.name).Scan(&c.collate)
		if err != nil {
			return fmt.Errorf("collation of %s in %s: %w", c.name, a.shadow, err)
		}
	}
	return nil
}

// loadRowCollations sets the collate of the rebuilt row's columns whose
// collation is not their type's default (COLLATE "C", an ICU collation): a
// USING expression reading one (upper(), a comparison, ORDER BY in a
// subquery) follows the column's collation, as the ALTER and the copy,
// which read the original's columns, do; a value cast from text would
// take the type's.
func (a *Postgres) loadRowCollations(ctx context.Context) error {
	rows, err := a.pool.Query(ctx, `SELECT '"' || replace(a.attname, '"', '""') || '"', ' COLLATE ' || quote_ident(n.nspname) || '.' || quote_ident(co.collname)
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_collation co ON co.oid = a.attcollation
		JOIN pg_namespace n ON n.oid = co.collnamespace
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped AND a.attcollation <> t.typcollation`, a.source)
	if err != nil {
		return fmt.Errorf("collations of %s: %w", a.source, err)
	}
	collate := map[string]string{}
	var name, c string
	if _, err := pgx.ForEachRow(rows, []any{&name, &c}, func() error {
		collate[name] = c
		return nil
	}); err != nil {
		return fmt.Errorf("collations of %s: %w", a.source, err)
	}
	for i := range a.row {
		a.row[i].collate = collate[a.row[i].name]
	}
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

// unnestRow is how a batch's rows are rebuilt (upsertSQL): one text[]
// parameter per column of the original (params), unnested as u(vars), each
// value cast to its column's type (rowVals).
func (a *Postgres) unnestRow() (rowVals, params, vars []string) {
	for i, r := range a.row {
		v := fmt.Sprintf("v%d", i)
		rowVals = append(rowVals, "CAST(u."+v+" AS "+r.typ+")"+r.collate+" AS "+r.name)
		params = append(params, fmt.Sprintf("$%d::text[]", i+1))
		vars = append(vars, v)
	}
	return rowVals, params, vars
}

// upsertSQL is the batch's upsert; with unaside it first takes the rows'
// keys out of the table of rows set aside (postgres_aside.go).
//
// What it costs, measured on BenchmarkPostgresApply's table (PostgreSQL 15,
// 1,000 rows that exist, server CPU): 14–17 ms, of which unnest and the
// casts from text 2 ms (typed binary arrays instead of text[] saved
// nothing measurable); the rest is the non-HOT update of each row: the
// arbiter's probe, which walks the index entries of the key's dead
// versions, and the new index entry. An UPDATE … FROM unnest joined on the
// key skips only the row lock of ON CONFLICT … DO UPDATE: alone it took
// 5–15% less, and with the INSERT of the rows it did not update in the
// same statement (a CTE the insert reads), 18% more. A SET
// that assigns an indexed column its own value keeps the update HOT
// (PostgreSQL compares the values), so the full SET list costs no HOT
// update. The ORDER BY costs nothing (the planner knows the function scan's
// rows come in ordinality order: the plan has no Sort) and writes the rows
// in the order of their changes, whatever the plan.
func (a *Postgres) upsertSQL(unaside bool) string {
	var names, vals, set, conflict []string
	rowVals, params, vars := a.unnestRow()
	with := ""
	if unaside {
		with = "WITH " + a.unasideRows(params, vars) + " "
	}
	for _, c := range a.cols {
		names = append(names, c.name)
		vals = append(vals, c.value)
		if !c.key && !c.always {
			set = append(set, c.name+" = EXCLUDED."+c.name)
		}
	}
	names = append(names, a.fillNames...)
	vals = append(vals, a.fills...)
	for _, k := range a.keys {
		conflict = append(conflict, k.name)
	}
	action := conflictAction(set)
	return fmt.Sprintf("%sINSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM (SELECT %s, u.n AS %s FROM unnest(%s) WITH ORDINALITY AS u(%s, n)) AS %s "+
		"ORDER BY %s.%s ON CONFLICT (%s) %s",
		with, a.shadow, strings.Join(names, ", "), strings.Join(vals, ", "), strings.Join(rowVals, ", "), a.ord, strings.Join(params, ", "), strings.Join(vars, ", "),
		a.rowName, a.rowName, a.ord, strings.Join(conflict, ", "), action)
}

// deleteSQL is the batch's delete; with unaside it also takes the keys out
// of the table of rows set aside (postgres_aside.go).
func (a *Postgres) deleteSQL(unaside bool) string {
	var names, casts, params, vars []string
	for i, k := range a.keys {
		v := fmt.Sprintf("v%d", i)
		names = append(names, k.name)
		casts = append(casts, k.expr("u."+v))
		params = append(params, fmt.Sprintf("$%d::text[]", i+1))
		vars = append(vars, v)
	}
	in := fmt.Sprintf("SELECT %s FROM unnest(%s) AS u(%s)", strings.Join(casts, ", "), strings.Join(params, ", "), strings.Join(vars, ", "))
	with := ""
	if unaside {
		with = "WITH " + a.unaside(in) + " "
	}
	return fmt.Sprintf("%sDELETE FROM %s WHERE (%s) IN (%s)", with, a.shadow, strings.Join(names, ", "), in)
}

// pgOpKind is what one statement of a batch does.
type pgOpKind uint8

const (
	pgUpsert pgOpKind = iota + 1
	pgDelete
	pgUpdate
	// pgMove is a partial update that changes the key: the row moves to its
	// new key, keeping the columns the change did not carry (see move).
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
	xid       uint32  // the transaction that made it
	pos       cdc.LSN // update and move only: its commit position
	// update and move only, on a shadow with a deferrable constraint (see
	// markInside): later, a later operation of the batch, of the same
	// transaction, writes, moves or deletes the row the move writes; open,
	// the batch ends inside its transaction.
	later, open bool
}

// pgStmt is one statement of a batch, or a move.
type pgStmt struct {
	query string
	args  []any
	desc  string
	// update is set on a partial update's statement (updateSQL): send
	// counts the rows it updated into affected, which the statement
	// returns when count is set (it updates the table of rows set aside
	// too).
	update   *pgOp
	affected int64
	count    bool
}

// Apply writes the changes in order, in one transaction unless they contain
// a move (a partial update that changes the key): a move is applied in a
// transaction of its own, see move. Each transaction holds a prefix of what
// is left, so a failed Apply leaves the shadow as if a prefix of the changes
// was applied, and applying all of them again (the engine's retry) is
// harmless: every statement is idempotent and they run again in the same
// order.
func (a *Postgres) Apply(ctx context.Context, changes []cdc.Change) (err error) {
	defer a.unsure(&err)
	if err := a.init(ctx); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	ops, err := a.ops(changes)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if !a.ordered {
		ops = collapse(ops)
	}
	if err := a.applying(ctx, changes); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	// cut: the batch ends inside a source transaction (Change.Cut), which
	// may hold a value of a deferrable constraint in two rows there: the
	// shadow row the batch's last rows clash with may be one the
	// transaction never writes again (it gave a row the value and then
	// another), older than the change, not newer, and deleting it would
	// lose it. Such a clash fails the batch with change.ErrMidTransaction:
	// the engine applies it again with the rest of the transaction. The
	// operations before a move of a transaction they are of end inside it
	// too (the move is a transaction of its own); more changes do not help
	// there: such a clash fails the batch (midTransaction). So may a move
	// whose row a later change of its transaction writes again, or whose
	// transaction goes on after the batch: it deletes no row for a clash
	// (markInside, clashInside).
	cut := a.deferrable && len(changes) > 0 && changes[len(changes)-1].Cut
	if a.deferrable && len(changes) > 0 {
		a.markInside(ops, cut, changes[len(changes)-1].Xid)
	}
	for start := 0; start < len(ops); {
		if err := a.redirect(ctx, ops[start:]); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		if ops[start].kind == pgMove {
			if err := a.move(ctx, ops[start]); err != nil {
				return fmt.Errorf("apply: %w", table.PostgresShadowRefusal(err, a.plan))
			}
			start++
			continue
		}
		// The operations up to the next move, in one transaction.
		end := start
		for end < len(ops) && ops[end].kind != pgMove {
			end++
		}
		mid := a.midTransaction(ops, start, end)
		if a.clashFirst(ops[start:end]) && !(cut && end == len(ops)) && !mid {
			if err := a.applyClashing(ctx, ops[start:end], end == len(ops)); err != nil {
				return fmt.Errorf("apply: %w", table.PostgresShadowRefusal(err, a.plan))
			}
			start = end
			continue
		}
		var stmts []pgStmt
		for i := start; i < end; {
			next, query, args, desc, err := a.statement(ops, i)
			if err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			if query != "" {
				st := pgStmt{query: query, args: args, desc: desc}
				if ops[i].kind == pgUpdate {
					st.update, st.count = &ops[i], a.asideAny
				}
				stmts = append(stmts, st)
			}
			i = next
		}
		var err error
		if len(stmts) > 0 {
			err = a.send(ctx, stmts)
		}
		if isClash(err) && cut && end == len(ops) {
			return fmt.Errorf("apply: the batch ends inside a transaction and clashes with a row it may not write again: %w: %w", change.ErrMidTransaction, err)
		}
		if isClash(err) && mid {
			return fmt.Errorf("apply: the changes before a move of their transaction clash on a deferrable constraint with a row the transaction may not write again: %w",
				table.PostgresShadowRefusal(err, a.plan))
		}
		if isClash(err) {
			a.clashed(true)
			err = a.applyClashing(ctx, ops[start:end], end == len(ops))
		} else if err == nil {
			if err = a.written(ctx, ops[start:end]); err == nil {
				err = a.readMissing(ctx, stmts, ops[start:])
			}
		}
		if err != nil {
			return fmt.Errorf("apply: %w", table.PostgresShadowRefusal(err, a.plan))
		}
		start = end
	}
	return nil
}

// midTransaction reports whether ops[start:end], the operations before the
// move ops[end], on a shadow with a deferrable constraint, end inside the
// move's transaction: one of them is of it.
func (a *Postgres) midTransaction(ops []pgOp, start, end int) bool {
	if !a.deferrable || end == len(ops) || ops[end].xid == 0 {
		return false
	}
	for _, op := range ops[start:end] {
		if op.xid == ops[end].xid {
			return true
		}
	}
	return false
}

// markInside marks, on a shadow with a deferrable constraint, the moves
// and the partial updates (which redirect may make moves) that a move
// applies inside its source transaction, see move: later when an operation
// after it, of the same transaction, writes, moves or deletes the row it
// writes (its new key); open when the batch is cut (cut) inside its
// transaction (lastXid, the batch's last change's), whose rest may do so.
func (a *Postgres) markInside(ops []pgOp, cut bool, lastXid uint32) {
	touched := map[uint32]map[string]bool{} // by transaction, the keys of the operations after i
	for i := len(ops) - 1; i >= 0; i-- {
		op := &ops[i]
		if op.xid == 0 {
			continue
		}
		k := op.key
		if op.kind == pgUpdate || op.kind == pgMove {
			op.open = cut && op.xid == lastXid
			op.later = touched[op.xid][a.keyText(a.newKey(*op), nil)]
			k = a.keyText(op.where, nil)
		}
		if touched[op.xid] == nil {
			touched[op.xid] = map[string]bool{}
		}
		touched[op.xid][k] = true
	}
}

// send writes the statements in one transaction.
func (a *Postgres) send(ctx context.Context, stmts []pgStmt) error {
	// The statements of one batch form one implicit transaction (they are
	// pipelined with a single Sync, at which PostgreSQL commits them, or rolls
	// all of them back after an error): atomic like BEGIN … COMMIT, without
	// their two round trips.
	var b pgx.Batch
	for _, st := range stmts {
		b.Queue(st.query, st.args...)
	}
	br := a.pool.SendBatch(ctx, &b)
	for i := range stmts {
		st := &stmts[i]
		var err error
		switch {
		case st.count:
			err = br.QueryRow().Scan(&st.affected)
		default:
			var tag pgconn.CommandTag
			tag, err = br.Exec()
			st.affected = tag.RowsAffected()
		}
		if err != nil {
			br.Close()
			return fmt.Errorf("%s into %s: %w", st.desc, a.shadow, err)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// collapse keeps, of each run of whole-row operations (upserts and deletes,
// between partial updates and moves), what the run leaves: a delete of every
// key it deletes, then an upsert of the last row of every key it writes last.
// A run is applied in one transaction, whose steps no one else sees, and a
// key's last whole-row write or delete is its row whatever came before; a key
// deleted and written again is deleted first, so that its row is inserted,
// not updated (the upsert leaves a GENERATED ALWAYS column as it was). The
// rows written last hold the source's values as of the run's last change, so
// they clash with none of each other in a unique index except as the source
// allows: a swap of two values, which the clash resolution writes in one
// statement (postgres_clash.go), and, inside a statement or transaction
// that a DEFERRABLE constraint checks at its end, one value in two rows,
// which no statement can write (see upsertClashing). Not so in an exclusion
// constraint, which the clash resolution leaves alone and PostgreSQL checks
// at each row of the statement: the rows of a collapsed run are written in
// the order of their last changes, so a row can take a value another row
// gives up only in an earlier change of its own that the run dropped (row 6
// takes row 5's range, then row 5 takes row 4's: row 6 is written first,
// while row 5 still holds it). Apply does not collapse the changes of a
// table with one (ordered): it writes them in their order, each statement a
// run of one kind that holds each key once (statement), as the source wrote
// them. Under writers that rewrite the same rows, swap values and re-create
// rows, a batch of a hundred changes was about fifty statements; it is now
// two or three per run.
func collapse(ops []pgOp) []pgOp {
	out := make([]pgOp, 0, len(ops))
	for i := 0; i < len(ops); {
		if ops[i].kind != pgUpsert && ops[i].kind != pgDelete {
			out = append(out, ops[i])
			i++
			continue
		}
		end := i
		last := map[string]int{}
		for ; end < len(ops) && (ops[end].kind == pgUpsert || ops[end].kind == pgDelete); end++ {
			last[ops[end].key] = end
		}
		deleted := map[string]bool{}
		for j := i; j < end; j++ {
			if ops[j].kind == pgDelete && !deleted[ops[j].key] {
				deleted[ops[j].key] = true
				out = append(out, ops[j])
			}
		}
		for j := i; j < end; j++ {
			if ops[j].kind == pgUpsert && last[ops[j].key] == j {
				out = append(out, ops[j])
			}
		}
		i = end
	}
	return out
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
				op := pgOp{kind: pgUpdate, row: c.After, where: c.After, unchanged: c.Unchanged, xid: c.Xid}
				op.pos, _ = c.Pos.(cdc.LSN)
				if c.Before != nil && before != a.keyText(c.After, c.Unchanged) {
					if c.Xid == 0 {
						return nil, fmt.Errorf("%s: a key change with an unchanged TOAST value has no transaction id", c.Op)
					}
					op.kind, op.where = pgMove, c.Before
				} else if a.keyUnchanged(c.Unchanged) {
					return nil, fmt.Errorf("%s: the key was not sent (unchanged TOAST value) and no old key either", c.Op)
				}
				ops = append(ops, op)
				continue
			}
			after := a.keyText(c.After, nil)
			if c.Before != nil && before != after {
				ops = append(ops, pgOp{kind: pgDelete, row: c.Before, key: before, xid: c.Xid})
			}
			ops = append(ops, pgOp{kind: pgUpsert, row: c.After, key: after, xid: c.Xid})
		case cdc.Delete:
			if err := a.checkRow(c.Before); err != nil {
				return nil, fmt.Errorf("delete: old row: %w", err)
			}
			ops = append(ops, pgOp{kind: pgDelete, row: c.Before, key: a.keyText(c.Before, nil), xid: c.Xid})
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
		// "%T:%v\x00", without fmt for the values pgoutput sends (a string,
		// or nil): this runs for every change.
		switch v := r[k.index].(type) {
		case string:
			b.WriteString("string:")
			b.WriteString(v)
			b.WriteByte(0)
		case nil:
			b.WriteString("<nil>:<nil>\x00")
		default:
			fmt.Fprintf(&b, "%T:%v\x00", v, v)
		}
	}
	return b.String()
}

// statement builds the statement for the run of operations starting at
// ops[start] and returns where the next run starts. An empty query means
// nothing is to be written for the run.
func (a *Postgres) statement(ops []pgOp, start int) (end int, query string, args []any, desc string, err error) {
	switch ops[start].kind {
	case pgUpdate:
		query, args, err = a.updateSQL(ops[start])
		return start + 1, query, args, "update 1 row", err
	case pgUpsert:
		seen := map[string]bool{}
		arrays := textArrays(len(a.row), ops[start:])
		end = start
		for ; end < len(ops) && ops[end].kind == pgUpsert && !seen[ops[end].key]; end++ {
			seen[ops[end].key] = true
			for i, c := range a.row {
				v, err := textElem(ops[end].row[c.index])
				if err != nil {
					return 0, "", nil, "", fmt.Errorf("column %s: %w", c.name, err)
				}
				arrays[i] = append(arrays[i], v)
			}
		}
		return end, a.withAside(a.upsert, a.upsertAside), arrayArgs(arrays), fmt.Sprintf("upsert %d rows", end-start), nil
	default:
		seen := map[string]bool{}
		arrays := textArrays(len(a.keys), ops[start:])
		end = start
		for ; end < len(ops) && ops[end].kind == pgDelete; end++ {
			if seen[ops[end].key] {
				continue
			}
			seen[ops[end].key] = true
			for i, k := range a.keys {
				v, err := textElem(ops[end].row[k.index])
				if err != nil {
					return 0, "", nil, "", fmt.Errorf("key column %s: %w", k.name, err)
				}
				if v == nil {
					return 0, "", nil, "", fmt.Errorf("key column %s: no value in the old row", k.name)
				}
				arrays[i] = append(arrays[i], v)
			}
		}
		return end, a.withAside(a.delete, a.deleteAside), arrayArgs(arrays), fmt.Sprintf("delete %d rows", len(seen)), nil
	}
}

// pgTextArray is a text[] parameter of a batch's statements: one column's
// values as pgoutput sends them (textElem), which pgx encodes as they are.
// A []*string (one allocation per value, and pgx reflects over the slice
// and boxes each string it dereferences) cost half the applier's client CPU
// in BenchmarkPostgresApply; this costs two allocations per array. An empty
// array is sent as NULL, which unnests to no rows too.
type pgTextArray []any

// Dimensions implements pgtype.ArrayGetter.
func (t pgTextArray) Dimensions() []pgtype.ArrayDimension {
	if len(t) == 0 {
		return nil
	}
	return []pgtype.ArrayDimension{{Length: int32(len(t)), LowerBound: 1}}
}

// Index implements pgtype.ArrayGetter: a string, or nil (NULL).
func (t pgTextArray) Index(i int) any { return t[i] }

// IndexType implements pgtype.ArrayGetter.
func (t pgTextArray) IndexType() any { return "" }

// textElem is a row value as an element of a pgTextArray: a string, or nil
// for NULL (pgoutput sends strings).
func textElem(v any) (any, error) {
	switch x := v.(type) {
	case nil, string:
		return v, nil
	case []byte:
		return string(x), nil
	}
	return nil, fmt.Errorf("unexpected value type %T (want the text form)", v)
}

// textArrays is n empty arrays, each with room for the values of a run of
// ops: at most the operations of ops' first kind that lead it.
func textArrays(n int, ops []pgOp) []pgTextArray {
	most := 0
	for most < len(ops) && ops[most].kind == ops[0].kind {
		most++
	}
	out := make([]pgTextArray, n)
	for i := range out {
		out[i] = make(pgTextArray, 0, most)
	}
	return out
}

// arrayArgs is a statement's arguments, one array parameter each.
func arrayArgs[T any](arrays []T) []any {
	args := make([]any, len(arrays))
	for i, a := range arrays {
		args[i] = a
	}
	return args
}

// updateSQL writes the columns whose values a partial change gives (the
// others keep their value in the shadow) to the row with the where-row's
// key, which may not have been copied yet: then it updates nothing, and the
// engine applies the change again once the row's chunk has landed. While
// the table of rows set aside may hold rows, it updates the key's row there
// too (a key is in one of the two: that row is the key's whole image, see
// postgres_aside.go) and returns the number of rows it updated in both.
func (a *Postgres) updateSQL(op pgOp) (string, []any, error) {
	var (
		set, vals []string
		args      []any
	)
	row, err := a.changeRow(op, &args, nil, "")
	if err != nil {
		return "", nil, err
	}
	for i, c := range a.cols {
		if c.always || c.key {
			continue
		}
		ok, err := c.fromChange(op.unchanged)
		if err != nil {
			return "", nil, err
		}
		if ok {
			vals = append(vals, c.value+" AS "+a.out[i])
			set = append(set, c.name+" = osc_e."+a.out[i])
		}
	}
	if len(set) == 0 {
		return "", nil, nil
	}
	where, err := a.keyMatch(op.where, &args)
	if err != nil {
		return "", nil, err
	}
	if a.asideAny {
		return fmt.Sprintf("WITH osc_e AS (SELECT %s FROM %s), osc_us AS (UPDATE %s SET %s FROM osc_e WHERE %s RETURNING 1), "+
			"osc_ua AS (UPDATE %s SET %s FROM osc_e WHERE %s RETURNING 1) SELECT (SELECT count(*) FROM osc_us) + (SELECT count(*) FROM osc_ua)",
			strings.Join(vals, ", "), row, a.shadow, strings.Join(set, ", "), where, a.aside, strings.Join(set, ", "), where), args, nil
	}
	return fmt.Sprintf("UPDATE %s SET %s FROM (SELECT %s FROM %s) AS osc_e WHERE %s",
		a.shadow, strings.Join(set, ", "), strings.Join(vals, ", "), row, where), args, nil
}

// changeRow is a row of the original rebuilt from a change's values, as the
// derived table rowName, for the shadow's values to be computed over it
// (see pgColumn.value); the values are appended to args as text parameters,
// and from is the derived table's FROM clause (" FROM src"), if any.
// A column the change does not carry (unchanged) is taken from unchanged
// (SQL naming the column, by its quoted name) or, when that is nil, is NULL:
// no value computed from the change reads it (see pgColumn.fromChange).
func (a *Postgres) changeRow(op pgOp, args *[]any, unchanged func(name string) string, from string) (string, error) {
	var vals []string
	for _, r := range a.row {
		switch {
		case op.unchanged[r.index] && unchanged != nil:
			vals = append(vals, unchanged(r.name)+" AS "+r.name)
		case op.unchanged[r.index]:
			vals = append(vals, "CAST(NULL AS "+r.typ+")"+r.collate+" AS "+r.name)
		default:
			v, err := textValue(op.row[r.index])
			if err != nil {
				return "", fmt.Errorf("column %s: %w", r.name, err)
			}
			*args = append(*args, v)
			vals = append(vals, fmt.Sprintf("CAST($%d::text AS %s)%s AS %s", len(*args), r.typ, r.collate, r.name))
		}
	}
	return "(SELECT " + strings.Join(vals, ", ") + from + ") AS " + a.rowName, nil
}

// move applies a move: a partial update that changed the key. The old row
// goes; the row under its new key gets the columns the change carries and,
// for the others (unchanged TOAST values, which the change lacks), the values
// the row had before the move.
//
// Those values cannot be taken from the shadow's row under the old key while
// the copy runs: a chunk that read the source after the move committed holds
// there whatever row took the old key later (another row moved or inserted
// there), or nothing, while the moved row itself is elsewhere. Taking that
// other row's columns wrote its value — NULL, say — into the moved row, and
// a later chunk, finding the key taken, kept it. So the move reads them from
// the source, under the new key, in a snapshot that sees the move's
// transaction (moveSourceSQL): then the source shows the row as the move left
// it, or as a later transaction left it, or (moved on or deleted since) not
// at all. Later changes follow in the stream and are applied after this one,
// so a newer value is overwritten by them in commit order, and nothing to
// read means a later change removes the key anyway. Waiting for the move's
// transaction is exact: it has committed (it was decoded), so it becomes
// visible, however long that takes (a synchronous standby, a busy machine).
//
// Once the copy is over and the applier has passed a marker emitted after
// the last chunk (the engine then calls CopyDone), every row a chunk copied
// is at or behind the changes still to apply, so the shadow's row under the
// old key is the row the move moved, and the move is made within the shadow
// (moveSQL). That is also what the cut-over needs: it holds the source
// locked while it waits for the applier to drain, so the applier could not
// read the source then.
//
// A source read can be ahead of the applier: it may see the row moved on
// from the new key and another row there, whose values the move then writes
// (later changes put that right, in commit order). Until the applier has
// passed every commit the read saw, the row it wrote is not the row as of
// the changes applied meanwhile, and a move within the shadow must not take
// values from it: a move whose old key holds such a row, and whose
// transaction the read saw, reads the source (during the cut-over it waits
// for the lock: that attempt's drain times out and the cut-over retries).
func (a *Postgres) move(ctx context.Context, op pgOp) error {
	for k, r := range a.ahead {
		if r.lsn < op.pos {
			// Every commit the read saw precedes this move's, and has been
			// applied.
			delete(a.ahead, k)
		}
	}
	if a.copyDone.Load() {
		fromShadow := true
		if r, ok := a.ahead[a.keyText(op.where, nil)]; ok {
			fromShadow = !r.snap.Sees(op.xid)
		}
		if fromShadow {
			if done, err := a.moveInShadow(ctx, op); done || err != nil {
				return err
			}
			// No old row in the shadow: a later change moved or deleted it,
			// a source read wrote it elsewhere, or a clash deleted it; or
			// the moved row clashes on a unique index the move cannot
			// resolve. Read the source, which resolves clashes.
		}
	}
	query, args, err := a.moveSourceSQL(op)
	if err != nil {
		return fmt.Errorf("move: %w", err)
	}
	clashes := 0
	for poll := time.Millisecond; ; poll = min(2*poll, pgMovePoll) {
		var (
			visible, wrote bool
			snap           string
			read           pgAheadRead
			clashed        [][]string
			asided         int64
		)
		stmts := []pgStmt{{query: query, args: args, desc: "move 1 row into " + a.shadow}}
		if err := a.sendScan(ctx, stmts, &visible, &wrote, &snap, &read.lsn, &clashed, &asided); err != nil {
			if isClash(err) && (op.later || op.open) {
				return a.clashInside(ctx, op, err)
			}
			// A chunk's row the clash deletion could not see yet (see
			// pgClashAttempts): the next attempt sees it.
			if clashes++; !isClash(err) || clashes == pgClashAttempts {
				return fmt.Errorf("move: %w", err)
			}
			continue
		}
		if visible {
			a.setAside(asided)
			a.clear(clashed)
			if err := a.written(ctx, a.moved(op)); err != nil {
				return fmt.Errorf("move: %w", err)
			}
			if wrote {
				if read.snap, err = cdc.ParsePostgresSnapshot(snap); err != nil {
					return fmt.Errorf("move: %w", err)
				}
				if a.ahead == nil {
					a.ahead = map[string]pgAheadRead{}
				}
				a.ahead[a.keyText(a.newKey(op), nil)] = read
			}
			return nil
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("move: wait for transaction %d to be visible: %w", op.xid, ctx.Err())
		case <-t.C:
		}
	}
}

// moveInShadow makes the move within the shadow (moveSQL) and reports
// whether it did: not when the old key has no row in the shadow nor aside,
// nor when the moved row clashes on a unique index the move does not
// resolve (see move).
func (a *Postgres) moveInShadow(ctx context.Context, op pgOp) (bool, error) {
	q, args, err := a.moveSQL(op)
	if err != nil {
		return false, fmt.Errorf("move: %w", err)
	}
	var (
		moved, asided int64
		clashed       [][]string
	)
	err = a.sendScan(ctx, []pgStmt{{query: q, args: args, desc: "move 1 row in " + a.shadow}}, &moved, &clashed, &asided)
	if isClash(err) && (op.later || op.open) {
		return true, a.clashInside(ctx, op, err)
	}
	if isClash(err) {
		return false, nil // a clash it cannot resolve: the caller reads the source
	}
	if err != nil || moved != 1 {
		return false, err
	}
	a.setAside(asided)
	a.clear(clashed)
	return true, a.written(ctx, a.moved(op))
}

// clashInside handles the clash of a move inside its source
// transaction on a shadow with a deferrable constraint (op.later or
// op.open), which moveSQL and moveSourceSQL write without the clash
// deletion. The source may hold the moved row's value in another row too
// until later in the transaction, and that row may be one the transaction
// never writes again (the moved row gives the value up later): older than
// the move, not newer, and deleting it would lose it. With op.later, an
// operation after the move, of its transaction, writes, moves or deletes the
// moved row (the row's state at the commit is that operation's, not the
// move's): the move only deletes the old key and leaves the new one
// cleared, as a row deleted for a clash is (postgres_clash.go), so that the
// operation writes it, whole, or, a partial update or a move, from the
// source (redirect). Else (op.open) the batch ends inside the transaction,
// whose rest may do so: the move fails with change.ErrMidTransaction, and
// the engine applies the batch again with the rest.
func (a *Postgres) clashInside(ctx context.Context, op pgOp, clash error) error {
	if !op.later {
		return fmt.Errorf("move: the batch ends inside the move's transaction, and the moved row clashes with a row the transaction may not write again: %w: %w", change.ErrMidTransaction, clash)
	}
	var args []any
	where, err := a.keyMatch(op.where, &args)
	if err != nil {
		return fmt.Errorf("move: %w", err)
	}
	if _, err := a.pool.Exec(ctx, "DELETE FROM "+a.shadow+" WHERE "+where, args...); err != nil {
		return fmt.Errorf("move: delete 1 row from %s: %w", a.shadow, err)
	}
	if err := a.written(ctx, a.moved(op)[:1]); err != nil {
		return fmt.Errorf("move: %w", err)
	}
	keys, err := a.writtenKeys(ctx, a.moved(op)[1:])
	if err != nil {
		return fmt.Errorf("move: %w", err)
	}
	if a.cleared == nil {
		a.cleared = map[string]bool{}
	}
	for _, k := range keys {
		a.cleared[k] = true
	}
	return nil
}

// moved is what a move did, for written: it deleted the old key and wrote
// the new one (or found no row to write). Both keys leave cleared: a cleared
// key a move takes away is written by no later change, and the applier would
// never settle.
func (a *Postgres) moved(op pgOp) []pgOp {
	return []pgOp{{kind: pgDelete, row: op.where}, {kind: pgUpsert, row: a.newKey(op)}}
}

// Settled forgets the source reads whose commits have all been applied, every
// change before pos having been, and reports whether none is left and no
// row deleted for a clash waits for the change that writes it again (whose
// partial update would read the source): then no change needs to read the
// source (see move and postgres_clash.go).
func (a *Postgres) Settled(pos cdc.Position) bool {
	if p, ok := pos.(cdc.LSN); ok {
		for k, r := range a.ahead {
			if r.lsn < p {
				delete(a.ahead, k)
			}
		}
	}
	return len(a.ahead) == 0 && len(a.cleared) == 0
}

// CopyDone tells the applier that the copy is over and that it has applied
// every change up to a marker emitted after the last chunk: moves are then
// made within the shadow (see move), and a partial update that finds no row
// reads the source (see readMissing).
func (a *Postgres) CopyDone() {
	a.copyDone.Store(true)
	a.missing.Store(true)
}

// Resumed tells the applier of a resumed run that a partial update that
// finds no row reads the source from the start (see readMissing), whether or
// not the killed run's copy was done: it applies again, from the checkpoint,
// changes a killed run had applied, over rows the killed run deleted for
// clashes it no longer meets, and applies the changes that would have
// written again the rows a killed run's clashes and refreshes deleted
// (postgres_clash.go keeps their keys in memory only). During the resumed
// copy, a row the copy has yet to reach is read too: as a move's source
// read, it is the row as the update left it or newer, which the chunk then
// skips.
func (a *Postgres) Resumed() { a.missing.Store(true) }

// readMissing reads from the source, as a move to the same key does, the rows
// of the partial updates among stmts that updated nothing, once missing is
// set: the copy is over, so every row the source holds is in the shadow, and
// a row that is not is one a clash deleted (its key lost with a killed run's
// memory); or the run was resumed, and the row is one the copy has yet to
// reach or one a killed run's clash or refresh deleted. A key that a later
// operation of the same Apply writes, moves or deletes is left to it (ops:
// the operations from the statements' first on).
func (a *Postgres) readMissing(ctx context.Context, stmts []pgStmt, ops []pgOp) error {
	if !a.missing.Load() {
		return nil
	}
	for _, st := range stmts {
		if st.update == nil || st.affected != 0 {
			continue
		}
		at := len(ops) - 1 // st.update is one of ops
		for i := range ops {
			if &ops[i] == st.update {
				at = i
			}
		}
		k := a.keyText(st.update.where, nil)
		later := false
		for _, o := range ops[at+1:] {
			switch o.kind {
			case pgUpsert, pgDelete:
				later = later || o.key == k
			case pgUpdate:
				later = later || a.keyText(o.where, nil) == k
			case pgMove:
				later = later || a.keyText(o.where, nil) == k || a.keyText(a.newKey(o), nil) == k
			}
		}
		if later {
			continue
		}
		op := *st.update
		op.kind = pgMove
		if err := a.move(ctx, op); err != nil {
			return err
		}
	}
	return nil
}

// pgMovePoll is the longest pause between looks at whether a move's
// transaction is visible yet; it does not affect what is written.
const pgMovePoll = 20 * time.Millisecond

// sendScan runs the statements in one transaction and scans the last one's
// row into dest.
func (a *Postgres) sendScan(ctx context.Context, stmts []pgStmt, dest ...any) error {
	var b pgx.Batch
	for _, st := range stmts {
		b.Queue(st.query, st.args...)
	}
	br := a.pool.SendBatch(ctx, &b)
	for i, st := range stmts {
		var err error
		if i == len(stmts)-1 {
			err = br.QueryRow().Scan(dest...)
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			br.Close()
			return fmt.Errorf("%s: %w", st.desc, err)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// pgFullXid is the full transaction id (xid8) of a transaction from its 32
// bits as pgoutput sends them (the expression xid32): the one within 2^31 of
// xmax (an expression for a snapshot's xmax as bigint), as PostgreSQL's
// wraparound rules guarantee for a recent transaction. A transaction decoded
// but not yet visible can be at or above xmax (xmax is the latest completed
// transaction + 1): it must map there, not into the previous epoch, where it
// would sort below xmin and count as visible.
func pgFullXid(xid32, xmax string) string {
	return "((" + xmax + ") + (((" + xid32 + ") - ((" + xmax + ") & 4294967295) + 6442450944) % 4294967296) - 2147483648)::text::xid8"
}

// newKey is the new row's key columns, in op.row's layout: an unsent key
// column kept its old value.
func (a *Postgres) newKey(op pgOp) cdc.Row {
	row := make(cdc.Row, len(op.row))
	for _, k := range a.keys {
		row[k.index] = op.row[k.index]
		if op.unchanged[k.index] {
			row[k.index] = op.where[k.index]
		}
	}
	return row
}

// moveSourceSQL is the move from the source (see move). In one snapshot, and
// only when that snapshot sees the move's transaction, it deletes the old
// key from the shadow and upserts the new key with the change's values and,
// for the columns the change lacks, the source row's under the new key (no
// row there: nothing is upserted). It returns whether the snapshot saw the
// transaction (when it did not, it wrote nothing), whether it upserted the
// new key, the snapshot, and a WAL position after every commit the snapshot
// saw (read after the snapshot was taken).
func (a *Postgres) moveSourceSQL(op pgOp) (string, []any, error) {
	args := []any{int64(op.xid)}
	var names, src, vals, set []string
	for _, r := range a.row {
		src = append(src, r.name)
	}
	for _, c := range a.cols {
		names = append(names, c.name)
		vals = append(vals, c.value)
		if !c.key && !c.always {
			set = append(set, c.name+" = EXCLUDED."+c.name)
		}
	}
	names = append(names, a.fillNames...)
	vals = append(vals, a.fills...)
	row, err := a.changeRow(op, &args, func(name string) string { return "src." + name }, " FROM src")
	if err != nil {
		return "", nil, err
	}
	newKey := a.newKey(op)
	var srcKeys, newVals, conflict []string
	for _, k := range a.keys {
		s, err := textValue(newKey[k.index])
		if err != nil {
			return "", nil, fmt.Errorf("key column %s: %w", k.name, err)
		}
		if s == nil {
			return "", nil, fmt.Errorf("key column %s: no value", k.name)
		}
		args = append(args, s)
		srcKeys = append(srcKeys, k.srcName)
		newVals = append(newVals, fmt.Sprintf("CAST($%d::text AS %s)", len(args), k.srcType))
		conflict = append(conflict, k.name)
	}
	oldKey, err := a.keyMatch(op.where, &args)
	if err != nil {
		return "", nil, err
	}
	// Both keys leave the table of rows set aside: the old one is moved
	// away, the new one written (or, no row there, moved on since).
	unaside := ""
	if a.aside != "" {
		newMatch, err := a.keyMatch(newKey, &args)
		if err != nil {
			return "", nil, err
		}
		unaside = fmt.Sprintf("osc_unaside AS (DELETE FROM %s WHERE (%s OR %s) AND (SELECT ok FROM vis)), ", a.aside, oldKey, newMatch)
	}
	action := conflictAction(set)
	newRow := make([]string, len(names))
	for i := range names {
		newRow[i] = vals[i] + " AS " + names[i]
	}
	// The rows of other keys that hold the new row's values in a unique
	// index go first (see postgres_clash.go); their keys are returned. The
	// old key's row is del's alone: a row two parts of one statement
	// delete is deleted by either, and the clash deletion would set it
	// aside.
	clashes, after, cleared, asided := a.clashDeletes("osc_cmp", a.moveExcept(op, oldKey))
	// A data-modifying WITH runs to completion whether or not the main query
	// reads it; every part of the statement reads the same snapshot, the one
	// pg_current_snapshot returns. The row is rebuilt from the change's
	// values and the source's (changeRow) for the shadow's values to be
	// computed over it. The insert reads del and the clashes, so the old row
	// and the clashing ones are gone before the new one is written: an
	// unread del would run last, and the new row would clash on another
	// unique index with the old row it replaces.
	return fmt.Sprintf("WITH snap AS (SELECT pg_current_snapshot() AS s, pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax), "+
		"vis AS (SELECT s, pg_visible_in_snapshot(%s, s) AS ok FROM snap), "+
		"src AS (SELECT %s FROM %s WHERE (%s) = (%s) AND (SELECT ok FROM vis)), "+
		"del AS (DELETE FROM %s WHERE %s AND (SELECT ok FROM vis) RETURNING 1), %s"+
		"osc_new AS MATERIALIZED (SELECT %s FROM %s), osc_cmp AS (%s), %s"+
		"ins AS (INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM osc_new WHERE (SELECT count(*) FROM del) >= 0%s ON CONFLICT (%s) %s RETURNING 1) "+
		"SELECT ok, EXISTS (SELECT 1 FROM ins), s::text, (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint, %s, %s FROM vis",
		pgFullXid("$1::bigint", "xmax"),
		strings.Join(src, ", "), a.source, strings.Join(srcKeys, ", "), strings.Join(newVals, ", "),
		a.shadow, oldKey, unaside,
		strings.Join(newRow, ", "), row, a.stored("osc_new"), clashes,
		a.shadow, strings.Join(names, ", "), strings.Join(names, ", "), after, strings.Join(conflict, ", "), action, cleared, asided), args, nil
}

// moveSQL is the move within the shadow, for the cut-over (see move): it
// deletes the old row and inserts it under the new key with the columns the
// change carries, the others taken from the old row; should the shadow hold
// the new key, it updates that row with the carried columns instead. The old
// row may wait in the table of rows set aside (postgres_aside.go): it is
// taken from there, whole, as from the shadow, and the new key leaves that
// table too. The rows of other keys that hold the written row's values in a
// unique index are deleted first, as an upsert's are (postgres_clash.go). The
// statement returns the number of rows it moved (0 or 1), the keys of the
// rows it deleted for clashing and the number it set aside.
func (a *Postgres) moveSQL(op pgOp) (string, []any, error) {
	var (
		args                   []any
		names, vals, set, comp []string
		conflict               []string
	)
	row, err := a.changeRow(op, &args, nil, "")
	if err != nil {
		return "", nil, err
	}
	for i, c := range a.cols {
		names = append(names, c.name)
		ok, err := c.fromChange(op.unchanged)
		if err != nil {
			return "", nil, err
		}
		if !ok {
			vals = append(vals, "moved."+c.name)
			continue
		}
		comp = append(comp, c.value+" AS "+a.out[i])
		vals = append(vals, "osc_e."+a.out[i])
		if !c.key && !c.always {
			set = append(set, c.name+" = EXCLUDED."+c.name)
		}
	}
	for _, f := range a.fillNames {
		names = append(names, f)
		vals = append(vals, "moved."+f)
	}
	from := "moved"
	if len(comp) > 0 {
		from += ", (SELECT " + strings.Join(comp, ", ") + " FROM " + row + ") AS osc_e"
	}
	for _, k := range a.keys {
		conflict = append(conflict, k.name)
	}
	where, err := a.keyMatch(op.where, &args)
	if err != nil {
		return "", nil, err
	}
	cols := strings.Join(names, ", ")
	moved := fmt.Sprintf("moved AS (DELETE FROM %s WHERE %s RETURNING %s), ", a.shadow, where, cols)
	if a.aside != "" {
		newKey, err := a.keyMatch(a.newKey(op), &args)
		if err != nil {
			return "", nil, err
		}
		// A key is in one table or the other: moved holds one row at most.
		// The new key leaves the aside table unless it is the old one,
		// which osc_ma alone deletes (a row two parts of one statement
		// delete is deleted by either, and returned by that one only).
		moved = fmt.Sprintf("osc_ms AS (DELETE FROM %s WHERE %s RETURNING %s), osc_ma AS (DELETE FROM %s WHERE %s RETURNING %s), "+
			"osc_unaside AS (DELETE FROM %s WHERE %s AND NOT %s), moved AS (SELECT * FROM osc_ms UNION ALL SELECT * FROM osc_ma), ",
			a.shadow, where, cols, a.aside, where, cols, a.aside, newKey, where)
	}
	newRow := make([]string, len(names))
	for i := range names {
		newRow[i] = vals[i] + " AS " + names[i]
	}
	action := conflictAction(set)
	// The old key's row is moved's alone (see moveSourceSQL).
	clashes, after, cleared, asided := a.clashDeletes("osc_cmp", a.moveExcept(op, where))
	// A data-modifying WITH runs to completion whether or not the main query
	// reads it. The values the change gives are computed over a row rebuilt
	// from it (changeRow), in a subquery that does not see the old row; the
	// insert reads the deletions, so that they run before it.
	return fmt.Sprintf("WITH %sosc_new AS MATERIALIZED (SELECT %s FROM %s), osc_cmp AS (%s), %s"+
		"ins AS (INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM osc_new WHERE true%s ON CONFLICT (%s) %s RETURNING 1) "+
		"SELECT (SELECT count(*) FROM moved), %s, %s",
		moved, strings.Join(newRow, ", "), from, a.stored("osc_new"), clashes,
		a.shadow, cols, cols, after, strings.Join(conflict, ", "), action, cleared, asided), args, nil
}

// moveExcept is the condition, over the shadow's columns, on the rows a
// move's clash deletion may delete (clashCTEs): not the old key's row
// (oldKey, its keyMatch), which the move deletes itself; none inside the
// move's source transaction on a shadow with a deferrable constraint (see
// clashInside).
func (a *Postgres) moveExcept(op pgOp, oldKey string) string {
	if op.later || op.open {
		return "false"
	}
	return "NOT " + oldKey
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
	e, err := textElem(v)
	if e == nil || err != nil {
		return nil, err
	}
	s := e.(string)
	return &s, nil
}

// conflictAction is an upsert's ON CONFLICT action: set the columns set
// lists (DO UPDATE SET), or nothing when it lists none (a row of key
// columns alone).
func conflictAction(set []string) string {
	if len(set) == 0 {
		return "DO NOTHING"
	}
	return "DO UPDATE SET " + strings.Join(set, ", ")
}
