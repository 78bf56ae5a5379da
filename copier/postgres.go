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
	"osc/change"
	"osc/table"
)

// Postgres copies chunks with INSERT … SELECT in short READ COMMITTED
// transactions. A plain INSERT is about twice as fast as ON CONFLICT's
// speculative insertion: with an exact key it leaves out the rows the
// applier wrote by an anti-join (postgres_antijoin.go); otherwise most chunks
// meet no row the applier wrote, and a probe of the shadow's key range
// decides. A range that holds applied rows,
// or a plain INSERT that meets one written meanwhile (it fails whole on the
// duplicate key), is copied with ON CONFLICT (key) DO NOTHING: rows the
// applier already wrote win. A row that clashes with the shadow on another
// unique index then fails that insert too; the chunk is then inserted with
// ON CONFLICT DO NOTHING, and the rows it skipped are reported for the
// applier to refresh (see execSkipping). Chunk bounds
// are the key's text forms, read back with CAST(… AS <source key type>); the
// row comparison (k1, k2) > (…) is served by the key's btree index.
type Postgres struct {
	pool *pgxpool.Pool
	plan *table.Plan

	mu    sync.Mutex
	ready bool
	sql   *PostgresStatements
	// onConf is " ORDER BY key ON CONFLICT (shadow key) DO NOTHING", onAny
	// the same without the conflict target (any unique index).
	onConf, onAny string
	// deferred: the shadow has a deferrable unique or exclusion constraint,
	// which PostgreSQL refuses as an arbiter of ON CONFLICT without a
	// target (see execSkipping).
	deferred bool
	// inserted is the rows the copy inserted, analyzed their number at the
	// shadow's last ANALYZE (see analyze), under statsMu: chunks run
	// concurrently (--copy-threads).
	statsMu            sync.Mutex
	inserted, analyzed int64
	// limit is the highest key when the copy started, as text (nil: the
	// table was empty): rows inserted above it later reach the shadow as
	// captured changes, so the copy stops there instead of chasing them.
	limit []any
	// indexes are the shadow's indexes set aside until the copy is over
	// (BuildIndexes).
	indexes []table.PostgresIndex
	// antiKeys are the shadow's key columns qualified by the anti-join's
	// alias when the key is exact (pgExactKey), else nil; antiOn is the
	// anti-join's condition (postgres_antijoin.go).
	antiKeys []string
	antiOn   string
	alias    string // the shadow's alias in the anti-join
	// notAside is the condition, over the source's unqualified columns,
	// that a row's key is not in the table of rows set aside of a plan with
	// new unique keys ("" without one): those keys are rows of the shadow
	// (see apply/postgres_aside.go), which a chunk does not overwrite.
	notAside string
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
	s, err := NewPostgresStatements(c.plan)
	if err != nil {
		return err
	}
	c.sql = s
	// ORDER BY names the table's columns qualified: unqualified, a name
	// would be an output column's (a USING expression's) if one is so named.
	order := make([]string, len(s.Keys))
	for i, k := range s.Keys {
		order[i] = pgx.Identifier{c.plan.Source.Name}.Sanitize() + "." + k
	}
	c.onConf = fmt.Sprintf(" ORDER BY %s ON CONFLICT (%s) DO NOTHING", strings.Join(order, ", "), strings.Join(s.RowKeys, ", "))
	c.onAny = fmt.Sprintf(" ORDER BY %s ON CONFLICT DO NOTHING", strings.Join(order, ", "))
	if err := c.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = to_regclass($1) AND NOT indimmediate)", s.Shadow).Scan(&c.deferred); err != nil {
		return fmt.Errorf("deferrable constraints of %s: %w", s.Shadow, err)
	}
	if err := c.initAntiJoin(ctx); err != nil {
		return err
	}
	if err := c.initNotAside(ctx); err != nil {
		return err
	}
	// Read on the first chunk, after change capture started.
	limit, err := s.Edge(ctx, c.pool, nil, nil, "DESC", 0)
	if err != nil {
		return fmt.Errorf("highest key: %w", err)
	}
	c.limit = limit
	c.ready = true
	return nil
}

// CopyChunk copies the rows with a key after after (nil: from the first row)
// up to the size-th such row into the shadow: Bound, then CopyRange.
func (c *Postgres) CopyChunk(ctx context.Context, after []any, size int) (Chunk, error) {
	return copyChunk(ctx, c, after, size)
}

// Bound returns the key of the size-th row past after (nil: from the first
// row), up to the highest key the table had when the copy started, or nil
// when fewer rows remain: the next range is (after, Bound]. It reads the
// key's index only.
func (c *Postgres) Bound(ctx context.Context, after []any, size int) ([]any, error) {
	if err := c.init(ctx); err != nil {
		return nil, err
	}
	if c.limit == nil {
		return nil, nil
	}
	var (
		conds []string
		args  []any
	)
	for _, b := range []struct {
		op  string
		key []any
	}{{"<=", c.limit}, {">", after}} {
		if b.key == nil {
			continue
		}
		cond, err := c.sql.Compare(c.sql.Keys, b.op, b.key, &args)
		if err != nil {
			return nil, fmt.Errorf("upper bound: %w", err)
		}
		conds = append(conds, cond)
	}
	upper, err := c.sql.Edge(ctx, c.pool, conds, args, "", max(size, 1)-1)
	if err != nil {
		return nil, fmt.Errorf("upper bound: %w", err)
	}
	return upper, nil
}

// CopyRange copies the rows with a key in (after, upto] (nil after: from the
// first row; nil upto: up to the highest key the table had when the copy
// started, and the chunk is the last, Done) into the shadow. Its Rows are
// the rows it inserted.
func (c *Postgres) CopyRange(ctx context.Context, after, upto []any) (Chunk, error) {
	if err := c.init(ctx); err != nil {
		return Chunk{}, err
	}
	if c.limit == nil {
		return Chunk{Last: after, Done: true}, nil
	}
	var (
		conds, probe    []string // the chunk's range on the source's and on the shadow's key
		args, probeArgs []any
		anti            []string // conds on the anti-join's shadow key (c.antiKeys), same parameters
	)
	srcKey := "(" + strings.Join(c.sql.Keys, ", ") + ")"
	bound := func(op string, key []any) error {
		cond, err := c.sql.Compare(c.sql.Keys, op, key, &args)
		if err != nil {
			return err
		}
		conds = append(conds, cond)
		if c.antiKeys != nil {
			anti = append(anti, "("+strings.Join(c.antiKeys, ", ")+")"+strings.TrimPrefix(cond, srcKey))
		}
		cond, err = c.sql.Compare(c.sql.SKeys, op, key, &probeArgs)
		probe = append(probe, cond)
		return err
	}
	if err := bound("<=", c.limit); err != nil {
		return Chunk{}, fmt.Errorf("highest key: %w", err)
	}
	if after != nil {
		if err := bound(">", after); err != nil {
			return Chunk{}, fmt.Errorf("lower bound: %w", err)
		}
	}
	if upto != nil {
		if err := bound("<=", upto); err != nil {
			return Chunk{}, fmt.Errorf("upper bound: %w", err)
		}
	}
	// The rows the chunk reads: the range's, but for the keys set aside.
	rowConds := conds
	if c.notAside != "" {
		rowConds = append(conds[:len(conds):len(conds)], c.notAside)
	}
	query, probeQuery := c.sql.Insert, "SELECT EXISTS (SELECT 1 FROM "+c.sql.Shadow
	if len(rowConds) > 0 {
		query += " WHERE " + strings.Join(rowConds, " AND ")
	}
	if len(probe) > 0 {
		probeQuery += " WHERE " + strings.Join(probe, " AND ")
	}
	// With an exact key the plain INSERT leaves out the keys the shadow
	// holds (antiJoin). Otherwise a range the applier already wrote rows
	// into goes straight to ON CONFLICT, and the plain INSERT is tried
	// first elsewhere. Either way a row the applier writes meanwhile sends
	// the chunk to ON CONFLICT.
	plain := query
	mode := plainInsert
	if c.antiKeys != nil {
		plain += c.antiJoin(len(rowConds) > 0, anti)
	} else {
		var applied bool
		if err := c.pool.QueryRow(ctx, probeQuery+")", probeArgs...).Scan(&applied); err != nil {
			return Chunk{}, fmt.Errorf("look for applied rows: %w", err)
		}
		if applied {
			mode = keyConflict
		}
	}
	var (
		rows  int64
		snap  *cdc.PostgresSnapshot
		stale [][]string
		err   error
	)
	for {
		switch mode {
		case plainInsert:
			rows, snap, err = c.exec(ctx, plain, args)
		case keyConflict:
			rows, snap, err = c.exec(ctx, query+c.onConf, args)
		case anyConflict:
			rows, snap, stale, err = c.execSkipping(ctx, rowConds, args)
		}
		var pgErr *pgconn.PgError
		if mode == anyConflict || !errors.As(err, &pgErr) || pgErr.Code != pgUniqueViolation && pgErr.Code != pgExclusionViolation {
			break
		}
		// The plain INSERT met a row the applier wrote meanwhile: skip it.
		// Under ON CONFLICT (key), the clash is on another unique index or
		// an exclusion constraint with a shadow row of another key, one of
		// the two not the latest: the rows that clash are skipped and
		// reported (Chunk.Stale). A deferrable constraint's clash comes
		// at the commit, with the same code.
		mode++
	}
	if err != nil {
		return Chunk{}, table.PostgresShadowRefusal(err, c.plan)
	}
	if err := c.analyze(ctx, rows); err != nil {
		return Chunk{}, err
	}
	if upto == nil {
		return Chunk{Last: after, Rows: rows, Done: true, Snapshot: snap, Stale: stale}, nil
	}
	return Chunk{Last: upto, Rows: rows, Snapshot: snap, Stale: stale}, nil
}

// analyze counts the rows the copy inserted and, each time they have doubled
// since the shadow's last ANALYZE (from pgAnalyzeFirst on), analyzes the
// shadow. The applier's statements are prepared once per connection, and
// after five executions PostgreSQL may keep a generic plan for good: one
// planned while the shadow was empty scans it whole, and went on scanning it
// for every batch as the copy filled it (the applier 10 to 30 times slower,
// until autovacuum's ANALYZE replanned it). An ANALYZE invalidates the plans,
// which are then made for the shadow's size; it samples the fewest rows (a
// few milliseconds). It waits for no lock: one that another ANALYZE or a
// vacuum holds is left to the next chunk.
func (c *Postgres) analyze(ctx context.Context, rows int64) error {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	c.inserted += rows
	if c.inserted < max(pgAnalyzeFirst, 2*c.analyzed) {
		return nil
	}
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("analyze %s: begin: %w", c.sql.Shadow, err)
	}
	// A no-op after Commit.
	defer tx.Rollback(context.WithoutCancel(ctx))
	// The least sample: the row count is what the plans need, and the
	// cut-over analyzes the shadow in full before the swap.
	for _, q := range []string{"SET LOCAL lock_timeout = 1", "SET LOCAL default_statistics_target = 1"} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("analyze %s: %w", c.sql.Shadow, err)
		}
	}
	if _, err := tx.Exec(ctx, "ANALYZE "+c.sql.Shadow); err != nil {
		if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == pgLockNotAvailable {
			return nil
		}
		return fmt.Errorf("analyze %s: %w", c.sql.Shadow, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("analyze %s: commit: %w", c.sql.Shadow, err)
	}
	c.analyzed = c.inserted
	return nil
}

// pgAnalyzeFirst is how many rows the copy inserts before it first analyzes
// the shadow (see analyze).
const pgAnalyzeFirst = 1000

// pgLockNotAvailable is SQLSTATE lock_not_available (a lock_timeout).
const pgLockNotAvailable = "55P03"

// The ways a chunk is inserted, each tried after the one before it failed on
// a unique violation.
const (
	plainInsert = iota // no ON CONFLICT
	keyConflict        // ON CONFLICT (key) DO NOTHING: rows the applier wrote win
	anyConflict        // ON CONFLICT DO NOTHING: rows clashing on any unique index are skipped and reported
)

// initNotAside sets notAside for a plan with new unique keys: the key as
// the shadow stores it (the copy's value of each key column, as the
// shadow's type, under the shadow's collation) is not among the keys set
// aside. The condition is NOT IN a subquery (the aside table is small, and
// hashed), its left side over the source's columns, which inside a
// subquery the aside table's columns of the same names would hide; neither
// side holds a NULL. The collation is explicit: an --alter may move a key
// column to another (deterministic) collation, and two columns of
// different collations compare under neither (SQLSTATE 42P22).
func (c *Postgres) initNotAside(ctx context.Context) error {
	aside := table.PostgresAside(c.plan)
	if aside == "" {
		return nil
	}
	_, keyIndex := c.plan.Identity()
	vals := make([]string, len(keyIndex))
	for i, k := range keyIndex {
		for _, m := range c.plan.Mapping {
			if m.SourceIndex != k {
				continue
			}
			vals[i] = m.PostgresValue()
			if j := c.plan.Shadow.ColumnIndex(m.Shadow); j >= 0 && c.plan.Shadow.Columns[j].ColumnType != "" {
				vals[i] = "CAST(" + vals[i] + " AS " + c.plan.Shadow.Columns[j].ColumnType + ")"
			}
			var collate string
			if err := c.pool.QueryRow(ctx, `SELECT coalesce((SELECT ' COLLATE ' || quote_ident(n.nspname) || '.' || quote_ident(co.collname)
				FROM pg_attribute a JOIN pg_collation co ON co.oid = a.attcollation JOIN pg_namespace n ON n.oid = co.collnamespace
				WHERE a.attrelid = to_regclass($1) AND a.attname = $2), '')`, aside, m.Shadow).Scan(&collate); err != nil {
				return fmt.Errorf("collation of %s in %s: %w", m.Shadow, aside, err)
			}
			vals[i] += collate
		}
	}
	c.notAside = "(" + strings.Join(vals, ", ") + ") NOT IN (SELECT " + strings.Join(c.sql.RowKeys, ", ") + " FROM " + aside + ")"
	return nil
}

// ReportsSnapshots marks the copier's chunks as carrying the snapshot they
// read (Chunk.Snapshot).
func (c *Postgres) ReportsSnapshots() {}

// CurrentSnapshot returns the server's snapshot now: every chunk read later
// sees at least the transactions it sees.
func (c *Postgres) CurrentSnapshot(ctx context.Context) (change.Snapshot, error) {
	var text string
	if err := c.pool.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&text); err != nil {
		return nil, fmt.Errorf("read the current snapshot: %w", err)
	}
	snap, err := cdc.ParsePostgresSnapshot(text)
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// pgUniqueViolation and pgExclusionViolation are SQLSTATE unique_violation
// and exclusion_violation.
const (
	pgUniqueViolation    = "23505"
	pgExclusionViolation = "23P01"
)

// execSkipping inserts the chunk's rows (the source rows matching conds)
// that clash with no shadow row in any unique index, and returns, besides
// exec's results, the keys (RowKeys) of the source rows it did not insert: those whose
// key the shadow holds (the applier wrote it) and those that clash with a row
// of another key on another unique index. Which of two clashing rows is the
// latest the copier cannot tell (README, "Why nothing is lost", step 5): the
// engine has the applier write the skipped keys' rows as the source holds
// them then (Chunk.Stale). A skipped key the shadow held costs a source read,
// never a wrong row. The keys are read in the insert's snapshot, as the
// source's key columns' texts, compared byte for byte (COLLATE "C": an
// --alter may move a key column to another collation, and texts of two
// collations compare under neither, SQLSTATE 42P22). A shadow with a deferrable unique or
// exclusion constraint refuses ON CONFLICT without a target (SQLSTATE
// 55000: every index would be an arbiter): the chunk then inserts nothing
// and reports all its rows. The skipped rows are found by an anti-join
// (NOT EXISTS), which the planner hashes, spilling to disk when needed: a NOT
// IN (subquery) is hashed only when the inserted keys fit work_mem, and is
// otherwise rescanned for every source row, quadratic in the chunk, which
// holds up to 100,000 rows (engine/chunksize.go).
func (c *Postgres) execSkipping(ctx context.Context, conds []string, args []any) (int64, *cdc.PostgresSnapshot, [][]string, error) {
	var src, dst []string
	// The keys the applier refreshes rows by (RowKeys).
	for i, k := range c.sql.RowKeySrc {
		src = append(src, "o."+k+"::text COLLATE \"C\"")
		dst = append(dst, "CAST("+c.sql.RowKeys[i]+" AS "+c.sql.RowKeyTypes[i]+")::text COLLATE \"C\"")
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	ins := c.sql.Insert + where + c.onAny + " RETURNING ARRAY[" + strings.Join(dst, ", ") + "] AS osc_key"
	if c.deferred {
		ins = "SELECT CAST(NULL AS text[]) AS osc_key WHERE false"
	}
	// Every part of the statement reads one snapshot: the keys the source
	// holds are the rows the insert read.
	q := "WITH ins AS (" + ins + ") " +
		"SELECT (SELECT count(*) FROM ins), pg_current_snapshot()::text, " +
		"coalesce((SELECT jsonb_agg(ARRAY[" + strings.Join(src, ", ") + "]) FROM " + c.sql.Source + " AS o" + where +
		andWhere(where) + "NOT EXISTS (SELECT FROM ins WHERE ins.osc_key = ARRAY[" + strings.Join(src, ", ") + "])), '[]'::jsonb)"
	var stale [][]string
	rows, snap, err := c.run(ctx, q, args, &stale)
	if err != nil {
		return 0, nil, nil, err
	}
	return rows, snap, stale, nil
}

// andWhere is what joins one more condition to where: " WHERE " after no
// condition, " AND " after some.
func andWhere(where string) string {
	if where == "" {
		return " WHERE "
	}
	return " AND "
}

// exec runs one chunk's INSERT in its own READ COMMITTED transaction and
// returns the rows it inserted and the snapshot it read the source with: the
// statement's own, read by pg_current_snapshot() in the same statement (every
// part of a statement with a data-modifying WITH runs on one snapshot).
func (c *Postgres) exec(ctx context.Context, insert string, args []any) (int64, *cdc.PostgresSnapshot, error) {
	return c.run(ctx, "WITH ins AS ("+insert+" RETURNING 1) SELECT (SELECT count(*) FROM ins), pg_current_snapshot()::text", args)
}

// run runs a chunk's statement, which returns the rows it inserted, the
// snapshot it read (as text) and then the columns extra is scanned into, in
// its own READ COMMITTED transaction.
func (c *Postgres) run(ctx context.Context, q string, args []any, extra ...any) (int64, *cdc.PostgresSnapshot, error) {
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
	if err := tx.QueryRow(ctx, q, args...).Scan(append([]any{&rows, &text}, extra...)...); err != nil {
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
