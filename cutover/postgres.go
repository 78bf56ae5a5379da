package cutover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/table"
)

// PostgresOptions tunes the PostgreSQL cut-over.
type PostgresOptions struct {
	// SourceDefinition describes the original as the shadow was made from
	// it (table.PostgresShadow.SourceDefinition): a change to it since, which
	// the new table would not have, fails the cut-over. "" skips the check.
	SourceDefinition string
	// EnumLabels are the values of the enum types the columns hold, as they
	// were before the change capture started
	// (table.PostgresShadow.EnumLabels): one renamed since fails the
	// cut-over.
	EnumLabels []table.PostgresEnumLabel
	// LockTimeout is the longest one attempt waits for a lock, and for the
	// drain: writers queued behind the cut-over wait at most about twice that.
	LockTimeout time.Duration
	Retries     int // attempts before giving up
	// ForeignKeys are the shadow's foreign keys, set aside while rows were
	// copied; the new table gets them NOT VALID and they are validated after.
	ForeignKeys []table.PostgresForeignKey
	// Checks are the shadow's NOT VALID CHECK constraints, set aside while
	// rows were copied; the new table gets them NOT VALID.
	Checks []table.PostgresCheck
	// Renames give the shadow's objects the original's names, which the
	// original's objects give up.
	Renames []table.PostgresRename
	// RestartedIdentity are the new table's identity columns whose sequence
	// the --alter restarted: their position is not carried over.
	RestartedIdentity []string
	// AlwaysIdentity are the new table's identity columns to make
	// GENERATED ALWAYS again (BY DEFAULT while rows were copied and applied).
	AlwaysIdentity []string
	// OwnerSet: the --alter gave the new table its owner (OWNER TO), which
	// the cut-over keeps; otherwise the new table gets the original's.
	OwnerSet bool
	// Publication is the change capture's publication (PostgresNames'),
	// which lists the table without being a user's publication that the
	// inspection's refusals, checked again, refuse.
	Publication string
	// SwapMessage, when set, is emitted in the swap's transaction as a
	// transactional logical decoding message with prefix
	// table.PostgresSwapPrefix: a revert window's reverse capture, started
	// before the swap, skips everything up to and including it.
	SwapMessage string
	// Attempted, when set, is called after each attempt with how long it
	// took: its lock wait and hold, the longest a writer waited on it.
	Attempted func(time.Duration)
	Log       *slog.Logger
	// Triggers are the table's triggers, made on the shadow in the swap's
	// transaction (postgres_trigger.go).
	Triggers []table.PostgresTrigger
	// Partitions are a partitioned table's partitions as inspected, with
	// their shadow partitions, which take their names (postgres_partition.go).
	Partitions []table.PostgresPartition
}

// pgFirstLockTimeout is the first attempt's lock_timeout; each retry doubles
// it up to PostgresOptions.LockTimeout (pg_repack's ladder).
const pgFirstLockTimeout = 100 * time.Millisecond

// errDrainTimeout is a drain that did not finish within the attempt.
var errDrainTimeout = errors.New("the last changes were not applied within the lock timeout")

// Postgres swaps plan.Shadow in for plan.Source in one transaction and
// carries over what binds to the original's oid rather than its name: index
// and identity-sequence names, sequences owned by its columns, identity
// positions, views, foreign keys both ways, ownership, grants and the table
// comment (the replica identity is the shadow's from its start, before the
// --alter ran on it). Writers wait on the original's lock and,
// once the transaction commits, resolve the name again and write to the new
// table. Lock timeouts (and deadlocks, and a drain that takes too long) roll
// the attempt back and retry with a longer timeout.
//
// drain is called with the original locked and returns once every change
// committed before the call has been applied to the shadow.
func Postgres(ctx context.Context, pool *pgxpool.Pool, plan *table.Plan, opts PostgresOptions, ready, drain func(context.Context) error) error {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	log := opts.Log
	// A foreign key the --alter adds or validates must hold for the rows
	// now, or the plain ALTER TABLE would have failed: fail before the swap,
	// with the original unchanged. A row that breaks it between this check
	// and the swap fails the validation after it (pgValidate).
	for _, fk := range opts.ForeignKeys {
		if fk.Check == nil {
			continue
		}
		if err := table.CheckPostgresForeignKey(ctx, pool, fk.Name, *fk.Check); err != nil {
			var v *table.PostgresForeignKeyViolation
			if errors.As(err, &v) {
				return fmt.Errorf("%w, so a plain ALTER TABLE would fail; %s is unchanged: fix the rows, or add the key NOT VALID",
					err, table.QuotePostgres(plan.Source.Schema, plan.Source.Name))
			}
			return err
		}
		log.Info("cut-over: the rows satisfy the new foreign key", "constraint", fk.Name)
	}
	// The shadow was filled by the copy: without statistics the planner would
	// meet the new table blind, and the autovacuum that would gather them is
	// cancelled below. ANALYZE takes no lock that writers wait for.
	if _, err := pool.Exec(ctx, "ANALYZE "+table.QuotePostgres(plan.Shadow.Schema, plan.Shadow.Name)); err != nil {
		return fmt.Errorf("analyze the shadow table: %w", err)
	}
	timeout := min(pgFirstLockTimeout, opts.LockTimeout)
	for attempt := 1; ; attempt++ {
		if ready != nil {
			if err := ready(ctx); err != nil {
				return fmt.Errorf("cut-over attempt %d: %w", attempt, err)
			}
		}
		if err := CancelPostgresAutovacuum(ctx, pool, plan, log); err != nil {
			return fmt.Errorf("cut-over attempt %d: %w", attempt, pgCause(ctx, err))
		}
		start := time.Now()
		validate, err := pgAttempt(ctx, pool, plan, opts, attempt, timeout, drain)
		if opts.Attempted != nil {
			opts.Attempted(time.Since(start))
		}
		if err == nil {
			log.Info("cut-over: tables swapped", "table", plan.Source.Schema+"."+plan.Source.Name, "old table", plan.OldName,
				"attempt", attempt, "locked for", time.Since(start).Round(time.Millisecond).String())
			return pgValidate(ctx, pool, plan, validate, log)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cut-over attempt %d: %w", attempt, context.Cause(ctx))
		}
		if !pgRetryable(err) {
			return fmt.Errorf("cut-over attempt %d: %w", attempt, err)
		}
		if attempt >= max(opts.Retries, 1) {
			return fmt.Errorf("cut-over: gave up after %d attempts: %w", attempt, err)
		}
		log.Warn("cut-over attempt rolled back; retrying", "attempt", attempt, "lock_timeout", timeout.String(), "err", err)
		timeout = min(2*timeout, opts.LockTimeout)
	}
}

// CancelPostgresAutovacuum cancels autovacuum workers holding or awaiting a
// lock on the original or the shadow (a freshly copied shadow is a prime
// candidate for one). PostgreSQL cancels an autovacuum that blocks a lock
// request only after deadlock_timeout (1 s by default), longer than a
// cut-over attempt (or the checksum's lock) waits: every attempt would time
// out behind it and hold writers for its whole lock_timeout. Autovacuum
// comes back later; one that prevents transaction ID wraparound is left
// alone.
func CancelPostgresAutovacuum(ctx context.Context, pool *pgxpool.Pool, plan *table.Plan, log *slog.Logger) error {
	// The workers are listed first and cancelled one by one: a
	// pg_cancel_backend in the WHERE clause could run before the other
	// conditions and cancel the user's sessions.
	rows, err := pool.Query(ctx, `
		SELECT a.pid, a.query FROM pg_stat_activity a
		WHERE a.backend_type = 'autovacuum worker'
		  AND a.query NOT LIKE '%to prevent wraparound%'
		  AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND (l.relation IN (to_regclass($1), to_regclass($2))
			OR l.relation IN (SELECT relid::oid FROM pg_partition_tree(to_regclass($1)) UNION ALL SELECT relid::oid FROM pg_partition_tree(to_regclass($2)))))`,
		table.QuotePostgres(plan.Source.Schema, plan.Source.Name), table.QuotePostgres(plan.Shadow.Schema, plan.Shadow.Name))
	if err != nil {
		return fmt.Errorf("find autovacuum workers: %w", err)
	}
	type worker struct {
		pid   int32
		query string
	}
	var workers []worker
	for rows.Next() {
		var w worker
		if err := rows.Scan(&w.pid, &w.query); err != nil {
			rows.Close()
			return fmt.Errorf("find autovacuum workers: %w", err)
		}
		workers = append(workers, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find autovacuum workers: %w", err)
	}
	for _, w := range workers {
		if _, err := pool.Exec(ctx, `SELECT pg_cancel_backend(pid) FROM pg_stat_activity
			WHERE pid = $1 AND backend_type = 'autovacuum worker'`, w.pid); err != nil {
			return fmt.Errorf("cancel autovacuum worker %d: %w", w.pid, err)
		}
		log.Info("cancelled an autovacuum that would block the table locks", "pid", w.pid, "query", w.query)
	}
	return nil
}

// pgCause is err, or the cause of ctx once it has ended: a statement its
// end cancelled says only "context canceled".
func pgCause(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// pgRetryable reports whether an attempt failed only because it waited too
// long or lost a race: on a lock, in a deadlock or a serialization failure
// (table.PostgresTransient), or for the drain.
func pgRetryable(err error) bool {
	return table.PostgresTransient(err) || errors.Is(err, errDrainTimeout)
}

// pgValidation is a NOT VALID foreign key to validate after the swap.
type pgValidation struct{ table, name string }

// PostgresNotValidError is a cut-over that swapped the tables but could not
// validate some foreign keys: the new table is in place, with those keys NOT
// VALID (they check new rows only).
type PostgresNotValidError struct {
	Table, OldTable string
	Failed          []string // "constraint on table: error"
	Statements      []string // what validates them once the rows are fixed
}

func (e *PostgresNotValidError) Error() string {
	return fmt.Sprintf("the tables were swapped (%s is the new table, the original is kept as %s), but foreign keys could not be validated: %s; "+
		"they stay NOT VALID, checking new rows only: fix the rows and run %s",
		e.Table, e.OldTable, strings.Join(e.Failed, "; "), strings.Join(e.Statements, "; "))
}

// pgValidate validates the foreign keys the swap added NOT VALID, each in
// its own transaction (SHARE UPDATE EXCLUSIVE on the table, which writers do
// not wait for), and returns a *PostgresNotValidError for those that fail.
func pgValidate(ctx context.Context, pool *pgxpool.Pool, plan *table.Plan, vs []pgValidation, log *slog.Logger) error {
	nv := &PostgresNotValidError{Table: table.QuotePostgres(plan.Source.Schema, plan.Source.Name),
		OldTable: table.QuotePostgres(plan.Source.Schema, plan.OldName)}
	for _, v := range vs {
		stmt := fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", v.table, table.QuotePostgres(v.name))
		if ctx.Err() != nil {
			nv.Failed = append(nv.Failed, fmt.Sprintf("%s on %s: not validated: %v", v.name, v.table, context.Cause(ctx)))
			nv.Statements = append(nv.Statements, stmt)
			continue
		}
		if _, err := pool.Exec(ctx, stmt); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Detail != "" {
				err = fmt.Errorf("%w: %s", err, pgErr.Detail)
			}
			nv.Failed = append(nv.Failed, fmt.Sprintf("%s on %s: %v", v.name, v.table, err))
			nv.Statements = append(nv.Statements, stmt)
			continue
		}
		log.Info("cut-over: foreign key validated", "constraint", v.name, "table", v.table)
	}
	if len(nv.Failed) > 0 {
		return nv
	}
	return nil
}

// pgSwap is one attempt's transaction.
type pgSwap struct {
	ctx  context.Context
	tx   pgx.Tx
	plan *table.Plan
	opts PostgresOptions

	schema, name        string // the original's schema and name: the new table's name after the swap
	orig, shadow, old   string // quoted qualified names
	oldOID, newOID, nsp uint32
}

func (s *pgSwap) exec(sql string, args ...any) error {
	if _, err := s.tx.Exec(s.ctx, sql, args...); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// commentConstraint gives a constraint the cut-over made again its comment
// (a quoted literal; "" for none).
func (s *pgSwap) commentConstraint(rel, name, comment string) error {
	if comment == "" {
		return nil
	}
	return s.exec(fmt.Sprintf("COMMENT ON CONSTRAINT %s ON %s IS %s", table.QuotePostgres(name), rel, comment))
}

func (s *pgSwap) strings(sql string, args ...any) ([]string, error) {
	rows, err := s.tx.Query(s.ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// pgAttempt is cut-over attempt number attempt, its lock waits bounded by
// timeout.
func pgAttempt(ctx context.Context, pool *pgxpool.Pool, plan *table.Plan, opts PostgresOptions, attempt int, timeout time.Duration, drain func(context.Context) error) ([]pgValidation, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	s := &pgSwap{ctx: ctx, tx: tx, plan: plan, opts: opts, schema: plan.Source.Schema, name: plan.Source.Name,
		orig:   table.QuotePostgres(plan.Source.Schema, plan.Source.Name),
		shadow: table.QuotePostgres(plan.Shadow.Schema, plan.Shadow.Name),
		old:    table.QuotePostgres(plan.Source.Schema, plan.OldName)}
	if err := tx.QueryRow(ctx, `SELECT c.oid, c.relnamespace, coalesce(to_regclass($2)::oid, 0) FROM pg_class c WHERE c.oid = to_regclass($1)`,
		s.orig, s.shadow).Scan(&s.oldOID, &s.nsp, &s.newOID); err != nil {
		return nil, fmt.Errorf("find %s: %w", s.orig, err)
	}
	if s.newOID == 0 {
		return nil, fmt.Errorf("shadow table %s is gone", s.shadow)
	}

	// Lock what the swap alters besides the two tables (views reading the
	// original, tables its foreign keys link) up front with the original, in
	// one statement, before the drain: a session reading a view holds the
	// view while it waits for the original, and the swap would otherwise wait
	// for it in turn, a deadlock PostgreSQL resolves by failing the session.
	// Waiting for those locks can still meet a session in the middle of
	// taking them, and either order of the list closes a cycle with some
	// sessions: the original last, with a delete (or key change) of its rows,
	// which then checks the referencing tables the attempt holds; the
	// original first, with an insert into a referencing table (or a view's
	// reader), which then checks the original. The lock_timeout is kept under
	// deadlock_timeout divided by the number of relations, so that this
	// attempt gives up first, and the attempts alternate the two orders: a
	// workload whose transactions take those tables in one order closes no
	// cycle with one of them (one that takes them both ways cycles with both).
	others, err := s.lockList()
	if err != nil {
		return nil, fmt.Errorf("list tables to lock: %w", err)
	}
	// The statement waits once per relation it locks: those listed, each
	// one's partitions, and what each view reads.
	var deadlockMS, n int64
	if err := tx.QueryRow(ctx, `SELECT (SELECT setting::bigint FROM pg_settings WHERE name = 'deadlock_timeout'),
		(SELECT coalesce(sum(greatest(1, (SELECT count(*) FROM pg_partition_tree(c.oid))) +
			(SELECT count(DISTINCT d.refobjid) FROM pg_rewrite rw JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
				WHERE rw.ev_class = c.oid AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> c.oid)), 0)
		FROM unnest($1::text[]) AS r(name) JOIN pg_class c ON c.oid = to_regclass(r.name))`,
		append(others, s.orig)).Scan(&deadlockMS, &n); err != nil {
		return nil, fmt.Errorf("read deadlock_timeout: %w", err)
	}
	lockTimeout := timeout
	if n > 1 {
		lockTimeout = min(lockTimeout, max(time.Duration(deadlockMS/n)*time.Millisecond, 10*time.Millisecond))
	}
	if err := s.exec(fmt.Sprintf("SET LOCAL lock_timeout = %d", max(lockTimeout.Milliseconds(), 1))); err != nil {
		return nil, err
	}
	order := append(others, s.orig)
	if attempt%2 == 0 {
		order = append([]string{s.orig}, others...)
	}
	if err := s.exec(fmt.Sprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", strings.Join(order, ", "))); err != nil {
		return nil, err
	}

	if err := s.checkColumns(); err != nil {
		return nil, err
	}
	if err := s.checkDefinition(); err != nil {
		return nil, err
	}
	if err := s.checkPartitions(); err != nil {
		return nil, err
	}
	// The inspection's refusals again, against what was added to the table
	// during the run (DDL on it waits for this lock now).
	names := table.NewPostgresNames(plan.Source.Schema, plan.Source.Name)
	names.Publication = opts.Publication
	// The plan's names: a revert's are the forward migration's the other
	// way round.
	names.Shadow, names.Old = plan.Shadow.Name, plan.OldName
	if err := table.RecheckPostgresTable(ctx, tx, names); err != nil {
		return nil, err
	}
	locked := time.Now()
	dctx, cancel := context.WithTimeout(ctx, opts.LockTimeout)
	err = drain(dctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, errDrainTimeout
		}
		return nil, fmt.Errorf("drain: %w", err)
	}
	opts.Log.Debug("cut-over: drained with the original locked", "drain", time.Since(locked).String(), "locked", order)
	// ALTER TYPE … RENAME VALUE waits for no lock of the table: checked
	// last, once every change before the lock is applied.
	if err := table.CheckPostgresEnumLabels(ctx, tx, opts.EnumLabels); err != nil {
		return nil, err
	}
	if err := s.exec(fmt.Sprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", s.shadow)); err != nil {
		return nil, err
	}
	return s.swap()
}

// checkColumns fails the cut-over when the original's columns are no longer
// those the shadow was planned from: DDL run on it during the migration
// reaches logical decoding only with the next row change, if any, and the
// swap would silently drop what it added.
func (s *pgSwap) checkColumns() error {
	now, err := s.strings(`SELECT attname::text || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, s.oldOID)
	if err != nil {
		return fmt.Errorf("read the columns of %s: %w", s.orig, err)
	}
	var planned []string
	for _, c := range s.plan.Source.Columns {
		planned = append(planned, c.Name+" "+c.ColumnType)
	}
	if !slices.Equal(now, planned) {
		return fmt.Errorf("%s changed during the migration (columns now: %s; planned: %s): the shadow no longer matches it; run osc again",
			s.orig, strings.Join(now, ", "), strings.Join(planned, ", "))
	}
	return nil
}

// checkDefinition refuses an original whose definition changed since the
// shadow was made from it (an index, a constraint, a trigger, a column's
// comment or statistics target…): the new table would silently not have
// it, where a plain ALTER TABLE run after the change keeps it.
func (s *pgSwap) checkDefinition() error {
	if s.opts.SourceDefinition == "" {
		return nil
	}
	now, err := table.DescribePostgresDefinition(s.ctx, s.tx, s.schema, s.name)
	if err != nil {
		return err
	}
	if now != s.opts.SourceDefinition {
		return fmt.Errorf("%s changed during the migration (%s), which the new table, made before, would not have; run osc again",
			s.orig, table.FirstDescriptionDifference(s.opts.SourceDefinition, now))
	}
	return nil
}

// lockList returns the relations the swap alters besides the two tables, as
// regclass text: views reading the original, tables whose foreign keys
// reference it, tables its or the new table's foreign keys reference. Those
// the user may not lock (a referenced table it only has REFERENCES on) are
// left to the statements that need them.
func (s *pgSwap) lockList() ([]string, error) {
	refs := make([]string, 0, len(s.opts.ForeignKeys))
	for _, fk := range s.opts.ForeignKeys {
		refs = append(refs, fk.References)
	}
	// Locking a view locks the relations it reads too, with the rights of
	// its owner (of the user, for a security_invoker view), even when the
	// user is a superuser: a view reading a table that the user or the
	// view's owner may not lock is left out (the swap's CREATE OR REPLACE
	// VIEW locks it alone).
	return s.strings(`SELECT x.oid::regclass::text FROM (
			SELECT r.ev_class AS oid, 1 AS ord FROM pg_depend d JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
				WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND r.ev_class <> $1
				AND NOT EXISTS (SELECT 1 FROM pg_depend d2 JOIN pg_rewrite r2 ON d2.classid = 'pg_rewrite'::regclass AND r2.oid = d2.objid
					JOIN pg_class b ON b.oid = d2.refobjid JOIN pg_class v ON v.oid = r2.ev_class
					WHERE r2.ev_class = r.ev_class AND d2.refclassid = 'pg_class'::regclass AND b.oid <> r.ev_class
					AND NOT ((pg_has_role(b.relowner, 'USAGE') OR has_table_privilege(b.oid, 'UPDATE, DELETE, TRUNCATE'))
						AND has_table_privilege(v.relowner, b.oid, 'UPDATE, DELETE, TRUNCATE')))
			UNION SELECT conrelid, 2 FROM pg_constraint WHERE contype = 'f' AND confrelid = $1 AND conrelid <> $1
			UNION SELECT confrelid, 3 FROM pg_constraint WHERE contype = 'f' AND conrelid = $1 AND confrelid <> $1
			UNION SELECT to_regclass(r)::oid, 3 FROM unnest($2::text[]) AS r) x
		JOIN pg_class c ON c.oid = x.oid
		WHERE x.oid NOT IN ($1, $3) AND (pg_has_role(c.relowner, 'USAGE') OR has_table_privilege(c.oid, 'UPDATE, DELETE, TRUNCATE'))
		GROUP BY x.oid ORDER BY min(x.ord), 1`, s.oldOID, refs, s.newOID)
}

// pgView is a view to re-create on the new table.
type pgView struct {
	name, def string
	options   []string
}

// pgIncoming is a foreign key of another table referencing the original.
type pgIncoming struct {
	table, name, def string
	comment          string // a quoted literal, "" for none
	validated        bool
}

// pgSequence is a sequence bound to a column: owned (serial, deptype 'a') or
// an identity's (deptype 'i').
type pgSequence struct {
	oid      uint32
	name     string // relname
	regclass string
	owner    string // quoted
	column   string
	identity bool
}

// pgGrant is one row of aclexplode.
type pgGrant struct {
	column, grantee, privilege string
	grantable                  bool
	// grantor is the role that granted it (quoted) when that is not the
	// table's owner: a role holding the privilege with GRANT OPTION.
	grantor string
}

func (s *pgSwap) swap() ([]pgValidation, error) {
	ctx, tx := s.ctx, s.tx
	// Read everything that names the original before the renames change
	// what the names resolve to.
	views, err := s.views()
	if err != nil {
		return nil, err
	}
	incoming, err := s.incoming()
	if err != nil {
		return nil, err
	}
	oldFKs, err := s.strings(`SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = $1 AND conparentid = 0 ORDER BY 1`, s.oldOID)
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	oldSeqs, err := s.sequences(s.oldOID)
	if err != nil {
		return nil, err
	}
	newSeqs, err := s.sequences(s.newOID)
	if err != nil {
		return nil, err
	}
	var owner, newOwner, comment string
	var changeOwner bool
	if err := tx.QueryRow(ctx, `SELECT quote_ident(pg_get_userbyid(o.relowner)), quote_ident(pg_get_userbyid(n.relowner)),
		o.relowner <> n.relowner AND NOT $3,
		coalesce(quote_literal(obj_description(o.oid, 'pg_class')), '')
		FROM pg_class o, pg_class n WHERE o.oid = $1 AND n.oid = $2`, s.oldOID, s.newOID, s.opts.OwnerSet).Scan(
		&owner, &newOwner, &changeOwner, &comment); err != nil {
		return nil, fmt.Errorf("read table properties: %w", err)
	}
	grants, err := s.grants(s.oldOID)
	if err != nil {
		return nil, err
	}
	if !changeOwner && newOwner != owner {
		// The --alter's OWNER TO: the server moves the old owner's
		// privileges to the new owner (aclnewowner).
		for i := range grants {
			if grants[i].grantee == owner {
				grants[i].grantee = newOwner
			}
		}
	}

	if err := s.carryTriggers(); err != nil {
		return nil, err
	}

	// The swap.
	if err := s.exec(fmt.Sprintf("ALTER TABLE %s RENAME TO %s", s.orig, table.QuotePostgres(s.plan.OldName))); err != nil {
		return nil, err
	}
	if err := s.exec(fmt.Sprintf("ALTER TABLE %s RENAME TO %s", s.shadow, table.QuotePostgres(s.name))); err != nil {
		return nil, err
	}
	newTable := s.orig // the original's name now names the new table
	if err := s.swapPartitions(); err != nil {
		return nil, err
	}

	// Ownership first: it moves the owner's privileges and owned sequences.
	// An owner the --alter set (OWNER TO) is kept.
	if changeOwner {
		if err := s.exec(fmt.Sprintf("ALTER TABLE %s OWNER TO %s", newTable, owner)); err != nil {
			return nil, err
		}
		newOwner = owner
	}

	if err := s.carrySequences(newTable, newOwner, oldSeqs, newSeqs); err != nil {
		return nil, err
	}
	// Index (and with them constraint), sequence and statistics names, once
	// the sequences named as read before (oldSeqs) are carried over.
	if err := s.rename(); err != nil {
		return nil, err
	}
	for _, c := range s.opts.AlwaysIdentity {
		if err := s.exec(fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET GENERATED ALWAYS", newTable, table.QuotePostgres(c))); err != nil {
			return nil, err
		}
	}

	for _, v := range views {
		stmt := "CREATE OR REPLACE VIEW " + v.name
		if len(v.options) > 0 {
			stmt += " WITH (" + table.PostgresRelOptions(v.options) + ")"
		}
		if err := s.exec(stmt + " AS " + v.def); err != nil {
			return nil, fmt.Errorf("re-create view %s on the new table: %w", v.name, err)
		}
	}

	var validate []pgValidation
	for _, fk := range incoming {
		if err := s.exec(fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", fk.table, table.QuotePostgres(fk.name))); err != nil {
			return nil, err
		}
		if err := s.exec(fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s NOT VALID", fk.table, table.QuotePostgres(fk.name), fk.def)); err != nil {
			return nil, err
		}
		if err := s.commentConstraint(fk.table, fk.name, fk.comment); err != nil {
			return nil, err
		}
		if fk.validated {
			validate = append(validate, pgValidation{fk.table, fk.name})
		}
	}
	for _, name := range oldFKs { // the old table's rows must not hold back its parents' deletes
		if err := s.exec(fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", s.old, table.QuotePostgres(name))); err != nil {
			return nil, err
		}
	}
	for _, c := range s.opts.Checks {
		if err := s.exec(fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s NOT VALID", newTable, table.QuotePostgres(c.Name), c.Definition)); err != nil {
			return nil, err
		}
		if err := s.commentConstraint(newTable, c.Name, c.Comment); err != nil {
			return nil, err
		}
	}
	for _, fk := range s.opts.ForeignKeys {
		if err := s.exec(fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s NOT VALID", newTable, table.QuotePostgres(fk.Name), fk.Definition)); err != nil {
			return nil, err
		}
		if err := s.commentConstraint(newTable, fk.Name, fk.Comment); err != nil {
			return nil, err
		}
		if fk.Validate {
			validate = append(validate, pgValidation{newTable, fk.Name})
		}
	}

	if err := s.carryGrants(newTable, grants); err != nil {
		return nil, err
	}
	if comment != "" { // LIKE does not copy the table's comment, and ALTER TABLE cannot set one
		if err := s.exec(fmt.Sprintf("COMMENT ON TABLE %s IS %s", newTable, comment)); err != nil {
			return nil, err
		}
	}
	if s.opts.SwapMessage != "" {
		if err := s.exec("SELECT pg_logical_emit_message(true, $1::text, $2::text)", table.PostgresSwapPrefix, s.opts.SwapMessage); err != nil {
			return nil, err
		}
	}
	// The COMMIT is not abandoned when ctx ends meanwhile (an apply or
	// capture failure cancels it, or Ctrl-C): the server commits what it
	// received, and a driver that gave up on the answer would report a
	// swap that happened as failed, which osc would then clean up, or start
	// over from, as if the tables had their names.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pgCommitTimeout)
	defer cancel()
	if err := tx.Commit(cctx); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return validate, nil
}

// pgCommitTimeout bounds the swap's COMMIT, which ctx's end does not
// interrupt (a synchronous standby that never answers).
const pgCommitTimeout = time.Minute

func (s *pgSwap) views() ([]pgView, error) {
	rows, err := s.tx.Query(s.ctx, `SELECT v.oid::regclass::text, pg_get_viewdef(v.oid), coalesce(v.reloptions, '{}')
		FROM pg_class v WHERE v.relkind = 'v' AND v.oid IN (
			SELECT r.ev_class FROM pg_depend d JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
			WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND r.ev_class <> $1)
		ORDER BY v.oid`, s.oldOID)
	if err != nil {
		return nil, fmt.Errorf("read views: %w", err)
	}
	views, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgView, error) {
		var v pgView
		err := r.Scan(&v.name, &v.def, &v.options)
		v.def = strings.TrimRight(strings.TrimSpace(v.def), ";")
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("read views: %w", err)
	}
	return views, nil
}

func (s *pgSwap) incoming() ([]pgIncoming, error) {
	rows, err := s.tx.Query(s.ctx, `SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated,
			coalesce(quote_literal(obj_description(oid, 'pg_constraint')), '')
		FROM pg_constraint WHERE contype = 'f' AND confrelid = $1 AND conrelid <> $1 AND conparentid = 0 ORDER BY 1, 2`, s.oldOID)
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	fks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgIncoming, error) {
		var f pgIncoming
		err := r.Scan(&f.table, &f.name, &f.def, &f.validated, &f.comment)
		f.def = strings.TrimSuffix(f.def, " NOT VALID")
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	return fks, nil
}

func (s *pgSwap) sequences(oid uint32) ([]pgSequence, error) {
	rows, err := s.tx.Query(s.ctx, `SELECT q.oid, q.relname, q.oid::regclass::text, quote_ident(pg_get_userbyid(q.relowner)), a.attname, d.deptype = 'i'
		FROM pg_depend d JOIN pg_class q ON q.oid = d.objid AND q.relkind = 'S'
		JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
		WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1
		AND d.deptype IN ('a', 'i') ORDER BY a.attnum`, oid)
	if err != nil {
		return nil, fmt.Errorf("read sequences: %w", err)
	}
	seqs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgSequence, error) {
		var q pgSequence
		return q, r.Scan(&q.oid, &q.name, &q.regclass, &q.owner, &q.column, &q.identity)
	})
	if err != nil {
		return nil, fmt.Errorf("read sequences: %w", err)
	}
	return seqs, nil
}

// carrySequences gives each identity column of the new table its original's
// sequence position (LIKE gave it a fresh sequence starting at 1; its name is
// among the renames), and hands serial sequences owned by the
// original's columns to the new table's columns (else dropping the old
// table would drop them while the new table's defaults still use them), and
// to the new table's owner (quoted), as an OWNER TO in the --alter would.
func (s *pgSwap) carrySequences(newTable, newOwner string, oldSeqs, newSeqs []pgSequence) error {
	shadowOf, sourceOf := map[string]string{}, map[string]string{}
	for _, m := range s.plan.Mapping {
		shadowOf[m.Source], sourceOf[m.Shadow] = m.Shadow, m.Source
	}
	newIdentity := map[string]bool{}
	for _, nq := range newSeqs {
		if !nq.identity {
			continue
		}
		newIdentity[nq.column] = true
		src, mapped := sourceOf[nq.column]
		var oq *pgSequence
		for i := range oldSeqs {
			if mapped && oldSeqs[i].column == src {
				oq = &oldSeqs[i]
			}
		}
		if oq != nil {
			if err := s.carrySequenceACLAndComment(oq.oid, nq.oid); err != nil {
				return err
			}
		}
		switch {
		case slices.Contains(s.opts.RestartedIdentity, nq.column):
		case oq != nil:
			if err := s.exec(fmt.Sprintf("SELECT setval($1::oid::regclass, last_value, is_called) FROM %s", oq.regclass), nq.oid); err != nil {
				return err
			}
		case mapped: // a column that became an identity: start past its values
			if err := s.exec(fmt.Sprintf("SELECT setval($1::oid::regclass, m) FROM (SELECT max(%s) AS m FROM %s) x WHERE m IS NOT NULL",
				table.QuotePostgres(nq.column), newTable), nq.oid); err != nil {
				return err
			}
		}
	}
	for _, oq := range oldSeqs {
		sh, ok := shadowOf[oq.column]
		if oq.identity || !ok || newIdentity[sh] {
			continue
		}
		if oq.owner != newOwner {
			// A sequence linked to a table has the table's owner.
			for _, stmt := range []string{"ALTER SEQUENCE %[1]s OWNED BY NONE", "ALTER SEQUENCE %[1]s OWNER TO %[2]s"} {
				if err := s.exec(fmt.Sprintf(stmt, oq.regclass, newOwner)); err != nil {
					return err
				}
			}
		}
		if err := s.exec(fmt.Sprintf("ALTER SEQUENCE %s OWNED BY %s.%s", oq.regclass, newTable, table.QuotePostgres(sh))); err != nil {
			return err
		}
	}
	return nil
}

// carrySequenceACLAndComment gives an identity column's new sequence (LIKE
// made it afresh: no comment, and the privileges the schema's or the
// owner's default privileges, ALTER DEFAULT PRIVILEGES, give a new sequence)
// the privileges and the comment of the original's, as a plain ALTER TABLE
// keeps them: the owner's defaults when the original has none of its own
// (NULL), spelled out if the new one has others. The
// original owner's own privileges go to the new owner (an OWNER TO in the
// --alter), as ALTER … OWNER TO moves them. The grants follow the
// original's list, whose order the catalog keeps, each made by its grantor
// (grantAs).
func (s *pgSwap) carrySequenceACLAndComment(oldOID, newOID uint32) error {
	// The statements name the sequence with its schema: a grant runs as its
	// grantor (SET ROLE), under whom a search_path's "$user" is another
	// schema, which may hold a sequence of that name.
	rows, err := s.tx.Query(s.ctx, `WITH seq AS (SELECT format('%I.%I', ns.nspname, q.relname) AS name
			FROM pg_class q JOIN pg_namespace ns ON ns.oid = q.relnamespace WHERE q.oid = $2)
		SELECT x, g FROM (
		SELECT 1 AS o, 0::bigint AS i, format('REVOKE ALL ON SEQUENCE %s FROM %s', (SELECT name FROM seq), string_agg(DISTINCT
				CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, ', ')) AS x, '' AS g
			FROM pg_class n, aclexplode(coalesce(n.relacl, acldefault('s', n.relowner))) a
			WHERE n.oid = $2 AND (n.relacl IS NOT NULL OR (SELECT relacl FROM pg_class WHERE oid = $1) IS NOT NULL)
			HAVING count(*) > 0
		UNION ALL
		SELECT 2, a.i, format('GRANT %s ON SEQUENCE %s TO %s%s', a.privilege_type, (SELECT name FROM seq),
				CASE WHEN a.grantee = 0 THEN 'PUBLIC' WHEN a.grantee = o.relowner THEN quote_ident(pg_get_userbyid(n.relowner))
					ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
				CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END),
				CASE WHEN a.grantor <> o.relowner THEN quote_ident(pg_get_userbyid(a.grantor)) ELSE '' END
			FROM pg_class o, pg_class n, aclexplode(coalesce(o.relacl, acldefault('s', o.relowner))) WITH ORDINALITY a(grantor, grantee, privilege_type, is_grantable, i)
			WHERE o.oid = $1 AND n.oid = $2 AND (n.relacl IS NOT NULL OR o.relacl IS NOT NULL)
		UNION ALL
		SELECT 3, 0, format('COMMENT ON SEQUENCE %s IS %L', (SELECT name FROM seq), d.description), ''
			FROM pg_description d WHERE d.classoid = 'pg_class'::regclass AND d.objoid = $1 AND d.objsubid = 0
		) s ORDER BY o, i`, oldOID, newOID)
	if err != nil {
		return fmt.Errorf("read the privileges and comment of sequence %d: %w", oldOID, err)
	}
	type stmt struct{ sql, grantor string }
	stmts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (stmt, error) {
		var st stmt
		return st, r.Scan(&st.sql, &st.grantor)
	})
	if err != nil {
		return fmt.Errorf("read the privileges and comment of sequence %d: %w", oldOID, err)
	}
	for _, st := range stmts {
		if err := s.grantAs(st.grantor, st.sql); err != nil {
			return err
		}
	}
	return nil
}

// freeName returns name with an _old suffix (and a number if needed) that no
// relation or statistics object of the schema has.
func (s *pgSwap) freeName(name string) (string, error) {
	for i := 1; ; i++ {
		suffix := "_old"
		if i > 1 {
			suffix = fmt.Sprintf("_old%d", i)
		}
		cand := table.FitPostgresName(name, suffix)
		var taken bool
		if err := s.tx.QueryRow(s.ctx, `SELECT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = $1 AND relname = $2)
			OR EXISTS (SELECT 1 FROM pg_statistic_ext WHERE stxnamespace = $1 AND stxname = $2)`, s.nsp, cand).Scan(&taken); err != nil {
			return "", fmt.Errorf("find a free name for %s: %w", name, err)
		}
		if !taken {
			return cand, nil
		}
	}
}

// pgPrivilege is a privilege keyword as aclexplode spells it.
var pgPrivilege = regexp.MustCompile(`^[A-Z][A-Z ]*$`)

// grants reads the table's privileges (the owner's defaults when relacl is
// NULL) and its columns'.
func (s *pgSwap) grants(oid uint32) ([]pgGrant, error) {
	rows, err := s.tx.Query(s.ctx, `SELECT '', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
			a.privilege_type, a.is_grantable, CASE WHEN a.grantor <> c.relowner THEN quote_ident(pg_get_userbyid(a.grantor)) ELSE '' END
		FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a WHERE c.oid = $1
		UNION ALL
		SELECT t.attname, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
			a.privilege_type, a.is_grantable, CASE WHEN a.grantor <> c.relowner THEN quote_ident(pg_get_userbyid(a.grantor)) ELSE '' END
		FROM pg_class c JOIN pg_attribute t ON t.attrelid = c.oid, aclexplode(t.attacl) a
		WHERE c.oid = $1 AND t.attnum > 0 AND NOT t.attisdropped AND t.attacl IS NOT NULL`, oid)
	if err != nil {
		return nil, fmt.Errorf("read privileges: %w", err)
	}
	gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgGrant, error) {
		var g pgGrant
		return g, r.Scan(&g.column, &g.grantee, &g.privilege, &g.grantable, &g.grantor)
	})
	if err != nil {
		return nil, fmt.Errorf("read privileges: %w", err)
	}
	return gs, nil
}

// carryGrants gives the new table exactly the original's table privileges,
// and its column privileges on the columns the new table kept.
func (s *pgSwap) carryGrants(newTable string, grants []pgGrant) error {
	current, err := s.grants(s.newOID)
	if err != nil {
		return err
	}
	revoke := map[string]bool{}
	var grantees []string
	for _, g := range current {
		if g.column == "" && !revoke[g.grantee] {
			revoke[g.grantee] = true
			grantees = append(grantees, g.grantee)
		}
	}
	if len(grantees) > 0 {
		if err := s.exec(fmt.Sprintf("REVOKE ALL ON %s FROM %s CASCADE", newTable, strings.Join(grantees, ", "))); err != nil {
			return err
		}
	}
	shadowOf := map[string]string{}
	for _, m := range s.plan.Mapping {
		shadowOf[m.Source] = m.Shadow
	}
	for _, g := range grants {
		if !pgPrivilege.MatchString(g.privilege) {
			return fmt.Errorf("unexpected privilege %q", g.privilege)
		}
		priv := g.privilege
		if g.column != "" {
			sh, ok := shadowOf[g.column]
			if !ok {
				continue
			}
			priv += " (" + table.QuotePostgres(sh) + ")"
		}
		stmt := fmt.Sprintf("GRANT %s ON %s TO %s", priv, newTable, g.grantee)
		if g.grantable {
			stmt += " WITH GRANT OPTION"
		}
		if err := s.grantAs(g.grantor, stmt); err != nil {
			return err
		}
	}
	return nil
}

// grantAs runs a GRANT as grantor (quoted; "" for the table's owner, whom
// osc's user stands for), so that the privilege keeps the grantor the
// original's has: a role that holds it WITH GRANT OPTION, which alone can
// revoke it, and whose loss of the option revokes it (CASCADE). The
// inspection refuses a grantor osc's user cannot become.
func (s *pgSwap) grantAs(grantor, stmt string) error {
	if grantor == "" {
		return s.exec(stmt)
	}
	var self string
	if err := s.tx.QueryRow(s.ctx, "SELECT quote_ident(current_user)").Scan(&self); err != nil {
		return fmt.Errorf("read the current user: %w", err)
	}
	for _, st := range []string{"SET LOCAL ROLE " + grantor, stmt, "SET LOCAL ROLE " + self} {
		if err := s.exec(st); err != nil {
			return err
		}
	}
	return nil
}
