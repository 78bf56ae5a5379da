package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/copier"
	"osc/engine"
	"osc/probe"
	"osc/table"
	"osc/throttle"
)

// Postgres is the backfill of a PostgreSQL table.
type Postgres struct {
	opt Options
	dsn string

	pool   *pgxpool.Pool
	lock   *table.PostgresLock
	sql    *copier.PostgresStatements // the key's ranges, as the copy's
	keys   []string
	book   string // quoted bookkeeping table
	bookN  string
	made   bool
	limit  []any // the highest key at the first chunk, as text (nil: empty table)
	limitd bool
	// setsUnique: the --set assigns a column of a unique index (rowLock).
	setsUnique bool
}

var _ engine.BackfillDialect = (*Postgres)(nil)

// NewPostgres returns the backfill of o.Schema.o.Table on the server dsn
// names.
func NewPostgres(o Options, dsn string) *Postgres {
	if o.Schema == "" {
		o.Schema = "public"
	}
	return &Postgres{opt: o, dsn: dsn}
}

// Inspect connects, takes the table's advisory lock, reads its key and has
// the server prepare the backfill's statements.
func (p *Postgres) Inspect(ctx context.Context) (*engine.BackfillPlan, error) {
	pool, err := table.OpenPostgres(ctx, p.dsn)
	if err != nil {
		return nil, err
	}
	p.pool = pool
	pair, err := table.PairPostgres(ctx, pool, p.opt.Schema, p.opt.Table, p.opt.Schema, p.opt.Table)
	if err != nil {
		return nil, err
	}
	if p.lock, err = table.LockPostgres(ctx, pool, p.opt.Schema, p.opt.Table); err != nil {
		return nil, fmt.Errorf("backfill: %w", err)
	}
	if p.sql, err = copier.NewPostgresStatements(pair.Plan); err != nil {
		return nil, err
	}
	p.keys = pair.Plan.Key
	p.bookN = table.FitPostgresName(p.opt.Table, bookkeepingSuffix)
	p.book = table.QuotePostgres(p.opt.Schema, p.bookN)
	size, err := table.ReadPostgresTableSize(ctx, pool, p.opt.Schema, p.opt.Table)
	if err != nil {
		return nil, err
	}
	if size.Rows < 0 {
		// Never analyzed: no estimate (reltuples -1), which is not an
		// empty table. Count, as a migration's inspection does.
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+p.sql.Source).Scan(&size.Rows); err != nil {
			return nil, fmt.Errorf("count the rows of %s: %w", p.sql.Source, err)
		}
	}
	if err := p.checkStatements(ctx); err != nil {
		return nil, err
	}
	plan := &engine.BackfillPlan{Schema: p.opt.Schema, Table: p.opt.Table, Key: p.keys, EstimatedRows: size.Rows, Bookkeeping: p.bookN}
	plan.Notes = append(plan.Notes, fmt.Sprintf("each chunk locks its rows without waiting (%s NOWAIT) and waits at most %s for other locks (lock_timeout); a row an application holds makes it roll back and retry", p.rowLock(), p.lockWait()))
	return plan, nil
}

func (p *Postgres) lockWait() time.Duration { return max(p.opt.LockWait, time.Millisecond) }

// checkStatements checks the expressions (check.go) and has the server
// parse the statements made of them: an unnamed prepared statement, which
// the server refuses to make of more than one statement.
func (p *Postgres) checkStatements(ctx context.Context) error {
	var scs string
	if err := p.pool.QueryRow(ctx, "SHOW standard_conforming_strings").Scan(&scs); err != nil {
		return fmt.Errorf("read standard_conforming_strings: %w", err)
	}
	l := lexer{backslash: scs != "on"}
	var stmts []string
	if p.opt.Set != "" {
		// At its top level a SET list could start another clause.
		items, err := l.items("--set", p.opt.Set, "FROM", "WHERE", "RETURNING")
		if err != nil {
			return err
		}
		targets := pgSetTargets(items)
		for _, c := range targets {
			if slices.Contains(p.keys, c) {
				return refuseKeyAssignment(c, p.keys)
			}
		}
		// Any unique index's columns: PostgreSQL's own rule (those of
		// unique indexes without predicate or expressions) is narrower,
		// and a stronger lock than the UPDATE's only blocks a little more.
		if err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
			WHERE i.indrelid = $1::regclass AND i.indisunique AND a.attname = ANY ($2))`, p.sql.Source, targets).Scan(&p.setsUnique); err != nil {
			return fmt.Errorf("read the table's unique indexes: %w", err)
		}
		if p.opt.Where != "" {
			if err := l.checkFragment("--where", p.opt.Where); err != nil {
				return err
			}
		}
		bound := make([]any, len(p.keys))
		for i := range bound {
			bound[i] = ""
		}
		q, _, err := p.update(bound, bound)
		if err != nil {
			return err
		}
		stmts = append(stmts, q)
	}
	if p.opt.Verify != "" {
		if err := l.checkFragment("--verify", p.opt.Verify); err != nil {
			return err
		}
		stmts = append(stmts, p.failing("count(*)"))
	}
	c, err := p.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("backfill: connect: %w", err)
	}
	defer c.Release()
	for _, q := range stmts {
		if _, err := c.Conn().PgConn().Prepare(ctx, "", q, nil); err != nil {
			return fmt.Errorf("the server refuses the statement osc makes of the expressions: %w\n%s", err, q)
		}
	}
	return nil
}

// update is the chunk's UPDATE of the keys in (after, upto] (after nil:
// from the first), and its arguments.
//
// Before it changes a row, the statement locks the rows it changes without
// waiting (NOWAIT), in a sub-select its WHERE evaluates once, first (an
// InitPlan, uncorrelated), on the statement's own snapshot, so that the
// rows locked are the rows updated. A chunk that waited for an
// application's row while holding the rows it had updated would make the
// application the victim of the deadlock in which it then asked for one of
// them, once the chunk had waited longer than deadlock_timeout: PostgreSQL
// checks a wait for a deadlock once, at that timeout, so the later waiter,
// the application, finds the cycle and is rolled back. The lock is the one
// the UPDATE takes (rowLock), so that it never waits for a stronger one.
func (p *Postgres) update(after, upto []any) (string, []any, error) {
	where, args, err := p.chunkRows(after, upto)
	if err != nil {
		return "", nil, err
	}
	locked := "(SELECT count(*) FROM (SELECT FROM " + p.sql.Source + " WHERE " + where + "\n" + p.rowLock() + " NOWAIT) AS osc_locked)"
	return "UPDATE " + p.sql.Source + " SET " + p.opt.Set + "\nWHERE " + where + "\nAND " + locked + " >= 0", args, nil
}

// rowLock is the row lock the chunk's UPDATE takes: FOR UPDATE when the
// --set assigns a column of a unique index (a key a foreign key may
// reference), else FOR NO KEY UPDATE, which lets foreign key checks (FOR
// KEY SHARE) go on meanwhile.
func (p *Postgres) rowLock() string {
	if p.setsUnique {
		return "FOR UPDATE"
	}
	return "FOR NO KEY UPDATE"
}

// chunkRows is the condition of the rows of the keys in (after, upto]
// (after nil: from the first) that match the --where, and its arguments.
func (p *Postgres) chunkRows(after, upto []any) (string, []any, error) {
	var args []any
	conds, err := p.rangeConds(after, upto, &args)
	if err != nil {
		return "", nil, err
	}
	return strings.Join(conds, " AND ") + " AND (" + p.opt.where() + "\n)", args, nil
}

// rangeConds are the conditions of the keys in (after, upto].
func (p *Postgres) rangeConds(after, upto []any, args *[]any) ([]string, error) {
	var conds []string
	if after != nil {
		c, err := p.sql.Compare(p.sql.Keys, ">", after, args)
		if err != nil {
			return nil, err
		}
		conds = append(conds, c)
	}
	c, err := p.sql.Compare(p.sql.Keys, "<=", upto, args)
	if err != nil {
		return nil, err
	}
	return append(conds, c), nil
}

// failing selects what of the rows for which --verify is not true.
func (p *Postgres) failing(what string) string {
	return "SELECT " + what + " FROM " + p.sql.Source + " WHERE " + p.opt.fails()
}

// Estimate times reading the first chunk's rows.
func (p *Postgres) Estimate(ctx context.Context, size int) (*engine.BackfillEstimate, error) {
	est := &engine.BackfillEstimate{}
	start := time.Now()
	upto, err := p.sql.Edge(ctx, p.pool, nil, nil, "", size-1)
	if err != nil {
		return nil, fmt.Errorf("read a sample chunk: %w", err)
	}
	// The sample's rows: fewer than size in a smaller table.
	q, args := "SELECT count(*) FROM "+p.sql.Source, []any(nil)
	if upto != nil {
		conds, err := p.rangeConds(nil, upto, &args)
		if err != nil {
			return nil, err
		}
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	if err := p.pool.QueryRow(ctx, q, args...).Scan(&est.SampleRows); err != nil {
		return nil, fmt.Errorf("read a sample chunk: %w", err)
	}
	est.SampleTook = time.Since(start)
	return est, nil
}

// Begin creates the bookkeeping table, or takes up a killed run's.
func (p *Postgres) Begin(ctx context.Context, resume bool) ([]any, error) {
	var saved, v string
	err := p.pool.QueryRow(ctx, "SELECT to_char(saved AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS UTC'), value FROM "+p.book+" WHERE id = 1").Scan(&saved, &v)
	var pgErr *pgconn.PgError
	missing := errors.As(err, &pgErr) && pgErr.Code == "42P01" // undefined_table
	switch {
	case err != nil && !missing && !errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("read the backfill's checkpoint: %w", err)
	case !resume && !missing:
		return nil, refuseLeftover(p.bookN, saved, "DROP TABLE "+p.book)
	case resume && missing:
		return nil, fmt.Errorf("nothing to resume: no checkpoint table %s (a backfill that ended, even by failing or Ctrl-C, removes it)", p.bookN)
	case resume:
		var ck checkpoint
		if err := json.Unmarshal([]byte(v), &ck); err != nil {
			return nil, fmt.Errorf("read the backfill's checkpoint: %w", err)
		}
		if !ck.of(p.opt) {
			return nil, refuseOther(ck, p.opt)
		}
		p.made = true
		var key []any
		if err := json.Unmarshal(ck.Key, &key); err != nil {
			return nil, fmt.Errorf("read the backfill's checkpoint: %w", err)
		}
		return key, nil
	}
	ck, err := json.Marshal(newCheckpoint(p.opt, json.RawMessage("null")))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	// The table and its first checkpoint in one transaction: a run killed
	// in between leaves neither.
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("create the backfill's checkpoint table %s: %w", p.bookN, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // after Commit a no-op
	if _, err := tx.Exec(ctx, "CREATE TABLE "+p.book+" (id int PRIMARY KEY, saved timestamptz NOT NULL DEFAULT clock_timestamp(), value text NOT NULL)"); err != nil {
		return nil, fmt.Errorf("create the backfill's checkpoint table %s: %w", p.bookN, err)
	}
	// What an event trigger gives a new table (an audit trigger firing
	// for every checkpoint, a publication sending them to its
	// subscribers), as osc undoes on its other tables.
	if _, err := table.UndoPostgresEventTriggers(ctx, tx, p.book); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+p.book+" (id, value) VALUES (1, $1)", string(ck)); err != nil {
		return nil, fmt.Errorf("save the first checkpoint: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("create the backfill's checkpoint table %s: %w", p.bookN, err)
	}
	p.made = true
	return nil, nil
}

// UpdateChunk updates one chunk and saves its checkpoint, in one
// transaction.
func (p *Postgres) UpdateChunk(ctx context.Context, after []any, size int) (engine.BackfillChunk, error) {
	if !p.limitd {
		limit, err := p.sql.Edge(ctx, p.pool, nil, nil, "DESC", 0)
		if err != nil {
			return engine.BackfillChunk{}, fmt.Errorf("highest key: %w", err)
		}
		p.limit, p.limitd = limit, true
	}
	if p.limit == nil {
		return engine.BackfillChunk{Last: after, Done: true}, nil
	}
	tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return engine.BackfillChunk{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // after Commit a no-op; a failed chunk's error is the one reported
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", p.lockWait().Milliseconds())); err != nil {
		return engine.BackfillChunk{}, fmt.Errorf("lock_timeout: %w", err)
	}
	var args []any
	conds, err := p.rangeConds(after, p.limit, &args)
	if err != nil {
		return engine.BackfillChunk{}, err
	}
	upper, err := p.sql.Edge(ctx, tx, conds, args, "", size-1)
	if err != nil {
		return engine.BackfillChunk{}, fmt.Errorf("upper bound: %w", err)
	}
	ch := engine.BackfillChunk{Last: upper, Scanned: int64(size)}
	if upper == nil {
		ch.Last, ch.Done = p.limit, true
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+p.sql.Source+" WHERE "+strings.Join(conds, " AND "), args...).Scan(&ch.Scanned); err != nil {
			return engine.BackfillChunk{}, fmt.Errorf("count the last chunk: %w", err)
		}
	}
	uq, uargs, err := p.update(after, ch.Last)
	if err != nil {
		return engine.BackfillChunk{}, err
	}
	tag, err := tx.Exec(ctx, uq, uargs...)
	if err != nil {
		return engine.BackfillChunk{}, fmt.Errorf("update: %w", err)
	}
	ch.Updated = tag.RowsAffected()
	key, err := json.Marshal(ch.Last)
	if err != nil {
		return engine.BackfillChunk{}, fmt.Errorf("checkpoint: %w", err)
	}
	ck, err := json.Marshal(newCheckpoint(p.opt, key))
	if err != nil {
		return engine.BackfillChunk{}, fmt.Errorf("checkpoint: %w", err)
	}
	if _, err := tx.Exec(ctx, "UPDATE "+p.book+" SET value = $1, saved = clock_timestamp() WHERE id = 1", string(ck)); err != nil {
		return engine.BackfillChunk{}, fmt.Errorf("save the checkpoint: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return engine.BackfillChunk{}, fmt.Errorf("commit: %w", err)
	}
	return ch, nil
}

// Behind estimates the rows with keys up to after, from the planner's
// estimate of the range (EXPLAIN: statistics, no scan).
func (p *Postgres) Behind(ctx context.Context, after []any) (int64, error) {
	var args []any
	cond, err := p.sql.Compare(p.sql.Keys, "<=", after, &args)
	if err != nil {
		return 0, err
	}
	var raw []byte
	if err := p.pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) SELECT 1 FROM "+p.sql.Source+" WHERE "+cond, args...).Scan(&raw); err != nil {
		return 0, fmt.Errorf("explain: %w", err)
	}
	var plans []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		}
	}
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) == 0 {
		return 0, fmt.Errorf("explain: no rows estimate in %s (%v)", raw, err)
	}
	return int64(plans[0].Plan.Rows), nil
}

// CountChunk counts the rows the --where selects, or that fail --verify,
// among the size rows after after.
func (p *Postgres) CountChunk(ctx context.Context, after []any, size int, failing bool, most int) (engine.BackfillCount, error) {
	var args []any
	var conds []string
	if after != nil {
		c, err := p.sql.Compare(p.sql.Keys, ">", after, &args)
		if err != nil {
			return engine.BackfillCount{}, err
		}
		conds = append(conds, c)
	}
	upper, err := p.sql.Edge(ctx, p.pool, conds, args, "", size-1)
	if err != nil {
		return engine.BackfillCount{}, fmt.Errorf("upper bound: %w", err)
	}
	c := engine.BackfillCount{Last: upper, Scanned: int64(size)}
	where := func() string {
		if len(conds) == 0 {
			return "TRUE"
		}
		return strings.Join(conds, " AND ")
	}
	if upper == nil {
		c.Done = true
		if err := p.pool.QueryRow(ctx, "SELECT count(*) FROM "+p.sql.Source+" WHERE "+where(), args...).Scan(&c.Scanned); err != nil {
			return engine.BackfillCount{}, fmt.Errorf("count the last chunk: %w", err)
		}
	} else {
		u, err := p.sql.Compare(p.sql.Keys, "<=", upper, &args)
		if err != nil {
			return engine.BackfillCount{}, err
		}
		conds = append(conds, u)
	}
	pred := "(" + p.opt.where() + "\n)"
	if failing {
		pred = p.opt.fails()
	}
	rows := " FROM " + p.sql.Source + " WHERE " + where() + " AND " + pred
	if err := p.pool.QueryRow(ctx, "SELECT count(*)"+rows, args...).Scan(&c.Counted); err != nil {
		return engine.BackfillCount{}, err
	}
	if !failing || c.Counted == 0 || most <= 0 {
		return c, nil
	}
	c.Keys, err = p.readKeys(ctx, rows, args, most)
	return c, err
}

// readKeys renders the keys of the first most rows of rows (" FROM … WHERE
// …") as "(k1=v1, k2=v2)".
func (p *Postgres) readKeys(ctx context.Context, rows string, args []any, most int) ([]string, error) {
	// ORDER BY names the table's columns qualified: unqualified, they
	// would be the text output columns, ordered as text (10 before 9).
	sel := make([]string, len(p.sql.Keys))
	order := make([]string, len(p.sql.Keys))
	for i, k := range p.sql.Keys {
		sel[i] = k + "::text"
		order[i] = p.sql.Source + "." + k
	}
	res, err := p.pool.Query(ctx, "SELECT "+strings.Join(sel, ", ")+rows+" ORDER BY "+strings.Join(order, ", ")+fmt.Sprintf(" LIMIT %d", most), args...)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	var keys []string
	for res.Next() {
		vals := make([]*string, len(p.keys))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := res.Scan(ptrs...); err != nil {
			return nil, err
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = p.keys[i] + "=NULL"
			if v != nil {
				parts[i] = p.keys[i] + "=" + *v
			}
		}
		keys = append(keys, "("+strings.Join(parts, ", ")+")")
	}
	return keys, res.Err()
}

// Cleanup drops the bookkeeping table.
func (p *Postgres) Cleanup(ctx context.Context) error {
	if !p.made {
		return nil
	}
	if err := table.DropPostgresTable(ctx, p.pool, p.opt.Schema, p.bookN); err != nil {
		return err
	}
	p.made = false
	return nil
}

// Throttle returns the probe (no replication slot: no retained WAL).
func (p *Postgres) Throttle() (throttle.Probe, error) {
	return probe.NewPostgres(p.pool, p.dsn, "", p.opt.Log), nil
}

// Retryable: a lock timeout, a deadlock or a serialization failure.
func (p *Postgres) Retryable(err error) bool { return table.PostgresTransient(err) }

// Driver names the database for hooks.
func (p *Postgres) Driver() string { return "postgres" }

// ParseReplicas takes host:port entries and connection strings.
func (p *Postgres) ParseReplicas(list string) ([]string, error) {
	return throttle.ParseReplicas(list, true)
}

// DisplayReplica shows a connection string as its host:port.
func (p *Postgres) DisplayReplica(entry string) string { return probe.DisplayReplica(entry) }

// Close releases the advisory lock and the connections.
func (p *Postgres) Close() error {
	var err error
	if p.lock != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = p.lock.Release(ctx)
	}
	if p.pool != nil {
		p.pool.Close()
	}
	return err
}
