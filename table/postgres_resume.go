package table

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The checkpoint of a PostgreSQL migration lives in a bookkeeping table
// _<t>_osk next to the shadow, created with it in one transaction and
// dropped at cleanup: one row, replaced at every save, holding the
// dialect's encoding of the checkpoint and the descriptions of the shadow
// and the original at the time (PostgresDescription). It is in no
// publication (osc's publishes the original only). It also keeps the one
// value of a column the --alter adds that the shadow keeps none of
// (postgres_added.go): made for that alone when checkpoints are off.

// leftovers describes what a killed run of this migration left (shadow,
// checkpoint table, table of rows set aside, slot, publication) and the
// old table an earlier run kept, each with the ways out.
func (f *pgTableFacts) leftovers(n PostgresNames) []string {
	var p []string
	var left []string
	if f.LeftoverShadow {
		left = append(left, "shadow table "+n.Schema+"."+n.Shadow)
	}
	if f.LeftoverCheckpoint {
		left = append(left, "checkpoint table "+n.Schema+"."+n.Checkpoint)
	}
	if f.LeftoverAside {
		left = append(left, "table of rows set aside "+n.Schema+"."+n.Aside)
	}
	if f.LeftoverSlot {
		drop := fmt.Sprintf("SELECT pg_drop_replication_slot('%s')", n.Slot)
		if f.LeftoverSlotPID != 0 {
			drop = fmt.Sprintf("SELECT pg_terminate_backend(%d); then %s", f.LeftoverSlotPID, drop)
		}
		left = append(left, fmt.Sprintf("replication slot %s (it retains WAL until dropped, %s now; if abandoned, drop it by hand: %s)",
			n.Slot, pgSize(max(f.LeftoverSlotRetained, 0)), drop))
	}
	if f.LeftoverPub {
		left = append(left, "publication "+n.Publication)
	}
	swapped := f.LeftoverCheckpoint && !f.LeftoverShadow && f.LeftoverOld
	if len(left) > 0 {
		what := "a killed osc run of this migration left " + strings.Join(left, ", ")
		switch {
		case f.CheckpointSaved != "" && swapped:
			p = append(p, fmt.Sprintf("%s after it had swapped the tables (%s.%s is the old table): run again with --resume to finish it (checkpoint saved %s), "+
				"or with --initially-drop-ghost-table to drop it", what, n.Schema, n.Old, f.CheckpointSaved))
			return p
		case f.CheckpointSaved != "":
			p = append(p, fmt.Sprintf("%s: run again with --resume to continue it (checkpoint saved %s), or with --initially-drop-ghost-table to drop it and start afresh",
				what, f.CheckpointSaved))
		default:
			p = append(p, what+": it saved no checkpoint, so it cannot be resumed; run again with --initially-drop-ghost-table to drop it and start afresh")
		}
	}
	if f.LeftoverOld {
		p = append(p, fmt.Sprintf("table %s.%s exists (~%d rows): the old table an earlier migration of %s.%s kept, and the name this one gives the original at cut-over; "+
			"it may be the only copy of the data as it was before that migration: drop it (DROP TABLE %s) or rename it, or run with --initially-drop-old-table to drop it first",
			n.Schema, n.Old, max(f.OldRows, 0), n.Schema, n.Table, QuotePostgres(n.Schema, n.Old)))
	}
	return p
}

// pgCheckpointSaved is when the checkpoint in the bookkeeping table was
// saved, "" when it holds none.
func pgCheckpointSaved(ctx context.Context, q PostgresQuerier, n PostgresNames) (string, error) {
	var saved time.Time
	err := q.QueryRow(ctx, "SELECT saved FROM "+QuotePostgres(n.Schema, n.Checkpoint)+" WHERE id = 1").Scan(&saved)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read checkpoint: %w", err)
	}
	return fmt.Sprintf("%s UTC, %s ago", saved.UTC().Format(time.DateTime), time.Since(saved).Round(time.Second)), nil
}

// pgDescribeSQL is an expression describing the table named by the text
// parameter param (quoted, qualified) as the catalog defines it: columns
// (name, type, NOT NULL, identity, generated, default, collation, in
// order), constraints, indexes (with the replica identity) and the table's
// own properties; nothing that depends on rows or oids.
func pgDescribeSQL(param string) string {
	r := "to_regclass(" + param + ")"
	return `concat_ws(E'\n',
		(SELECT string_agg(format('column %s %s notnull=%s identity=%s generated=%s default=%s collation=%s',
				quote_ident(a.attname), format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity, a.attgenerated,
				coalesce(pg_get_expr(d.adbin, d.adrelid), ''), coalesce(co.collname::text, '')), E'\n' ORDER BY a.attnum)
			FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
			LEFT JOIN pg_collation co ON co.oid = a.attcollation
			WHERE a.attrelid = ` + r + ` AND a.attnum > 0 AND NOT a.attisdropped),
		(SELECT string_agg(format('constraint %s %s', quote_ident(c.conname), pg_get_constraintdef(c.oid)), E'\n' ORDER BY c.conname)
			FROM pg_constraint c WHERE c.conrelid = ` + r + `),
		(SELECT string_agg(format('index %s replident=%s', pg_get_indexdef(i.indexrelid), i.indisreplident), E'\n' ORDER BY x.relname)
			FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid WHERE i.indrelid = ` + r + `),
		(SELECT format('table kind=%s persistence=%s replident=%s options=%s', c.relkind, c.relpersistence, c.relreplident, coalesce(c.reloptions::text, ''))
			FROM pg_class c WHERE c.oid = ` + r + `))`
}

// PostgresBeginner is a pool, a connection or a transaction (a nested Begin
// is a savepoint).
type PostgresBeginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// pgCatalogPath runs fn in a transaction (a savepoint in one) whose
// search_path is pg_catalog alone, so that the catalog's deparsing functions
// (pg_get_indexdef, pg_get_constraintdef, pg_get_expr, format_type) qualify
// every other name, whatever the session's search_path; the search_path is
// restored before the transaction ends.
func pgCatalogPath(ctx context.Context, db PostgresBeginner, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var path string
		if err := tx.QueryRow(ctx, "SELECT current_setting('search_path')").Scan(&path); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_catalog"); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", path)
		return err
	})
}

// pgDefinitionExtrasSQL describes, beyond pgDescribeSQL, what the shadow
// takes from the table when it is made (LIKE … INCLUDING ALL, the triggers,
// the storage parameters, CLUSTER ON) and the cut-over does not read again:
// each column's statistics target, storage, compression, options and
// comment, each index's comment, statistics targets and CLUSTER ON mark,
// each constraint's comment, the extended statistics, the triggers and
// their comments, the TOAST table's storage parameters, and the options of
// each identity column's sequence (LIKE makes the new one with them; the
// cut-over carries its position, privileges and comment).
func pgDefinitionExtrasSQL(param string) string {
	r := "to_regclass(" + param + ")"
	return `concat_ws(E'\n',
		(SELECT string_agg(format('column %s stattarget=%s storage=%s compression=%s options=%s comment=%s',
				quote_ident(a.attname), a.attstattarget, a.attstorage, a.attcompression, coalesce(a.attoptions::text, ''),
				coalesce(col_description(a.attrelid, a.attnum), '')), E'\n' ORDER BY a.attnum)
			FROM pg_attribute a WHERE a.attrelid = ` + r + ` AND a.attnum > 0 AND NOT a.attisdropped),
		(SELECT string_agg(format('index %s comment=%s stattargets=%s clustered=%s', quote_ident(x.relname), coalesce(obj_description(x.oid, 'pg_class'), ''),
				(SELECT string_agg(ia.attstattarget::text, ',' ORDER BY ia.attnum) FROM pg_attribute ia WHERE ia.attrelid = x.oid), i.indisclustered), E'\n' ORDER BY x.relname)
			FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid WHERE i.indrelid = ` + r + `),
		(SELECT string_agg(format('constraint %s comment=%s', quote_ident(c.conname), coalesce(obj_description(c.oid, 'pg_constraint'), '')), E'\n' ORDER BY c.conname)
			FROM pg_constraint c WHERE c.conrelid = ` + r + `),
		(SELECT string_agg(format('statistics %s target=%s', pg_get_statisticsobjdef(x.oid), x.stxstattarget), E'\n' ORDER BY x.stxname)
			FROM pg_statistic_ext x WHERE x.stxrelid = ` + r + `),
		(SELECT string_agg(format('trigger %s enabled=%s comment=%s', pg_get_triggerdef(g.oid), g.tgenabled, coalesce(obj_description(g.oid, 'pg_trigger'), '')), E'\n' ORDER BY g.tgname)
			FROM pg_trigger g WHERE g.tgrelid = ` + r + ` AND NOT g.tgisinternal),
		(SELECT format('toast options=%s', coalesce(tc.reloptions::text, ''))
			FROM pg_class c JOIN pg_class tc ON tc.oid = c.reltoastrelid WHERE c.oid = ` + r + `),
		(SELECT string_agg(format('identity %s sequence %s type=%s start=%s increment=%s min=%s max=%s cache=%s cycle=%s', quote_ident(a.attname),
				quote_ident(q.relname), format_type(sq.seqtypid, NULL), sq.seqstart, sq.seqincrement, sq.seqmin, sq.seqmax, sq.seqcache, sq.seqcycle), E'\n' ORDER BY a.attnum)
			FROM pg_attribute a JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum
				AND d.classid = 'pg_class'::regclass AND d.deptype = 'i'
			JOIN pg_class q ON q.oid = d.objid AND q.relkind = 'S' JOIN pg_sequence sq ON sq.seqrelid = q.oid
			WHERE a.attrelid = ` + r + ` AND a.attidentity <> '' AND NOT a.attisdropped))`
}

// DescribePostgresDefinition describes schema.name as pgDescribeSQL and
// pgDefinitionExtrasSQL do, names qualified (pgCatalogPath): what the
// shadow was made from, which must not change until the cut-over.
func DescribePostgresDefinition(ctx context.Context, db PostgresBeginner, schema, name string) (string, error) {
	var d *string
	err := pgCatalogPath(ctx, db, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "SELECT concat_ws(E'\n', "+pgDescribeSQL("$1")+", "+pgDefinitionExtrasSQL("$1")+")", QuotePostgres(schema, name)).Scan(&d)
	})
	if err != nil {
		return "", fmt.Errorf("describe %s.%s: %w", schema, name, err)
	}
	if d == nil {
		return "", nil
	}
	return *d, nil
}

// DescribePostgresTable describes schema.name as pgDescribeSQL does ("" when
// it does not exist), names qualified (pgCatalogPath).
func DescribePostgresTable(ctx context.Context, db PostgresBeginner, schema, name string) (string, error) {
	var d *string
	err := pgCatalogPath(ctx, db, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "SELECT "+pgDescribeSQL("$1"), QuotePostgres(schema, name)).Scan(&d)
	})
	if err != nil {
		return "", fmt.Errorf("describe %s.%s: %w", schema, name, err)
	}
	if d == nil {
		return "", nil
	}
	return *d, nil
}

// CreatePostgresCheckpointed is CreatePostgresShadow that also creates the
// bookkeeping table for checkpoints, first, in the same transaction: the
// schema then holds the same names whenever the shadow is planned again
// (RebuildPostgresShadow).
func CreatePostgresCheckpointed(ctx context.Context, pool *pgxpool.Pool, in *PostgresInspection, alter string, lockTimeout time.Duration) (*PostgresShadow, error) {
	n := in.Names
	return createPostgresShadow(ctx, pool, in, alter, lockTimeout, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "CREATE TABLE "+QuotePostgres(n.Schema, n.Checkpoint)+" "+pgCheckpointColumns); err != nil {
			return fmt.Errorf("create checkpoint table %s.%s: %w", n.Schema, n.Checkpoint, err)
		}
		_, err := UndoPostgresEventTriggers(ctx, tx, QuotePostgres(n.Schema, n.Checkpoint))
		return err
	})
}

// pgCheckpointColumns defines the checkpoint table's columns (and
// constraints); it also holds the columns osc_fill_<attnum> (postgres_added.go).
const pgCheckpointColumns = `(id int PRIMARY KEY CHECK (id = 1), saved timestamptz NOT NULL, checkpoint text NOT NULL, shadow text NOT NULL, original text NOT NULL)`

// SavePostgresCheckpoint replaces the checkpoint (the dialect's encoding)
// in one statement, with the descriptions of the shadow and the original
// as they are now (names qualified: pgCatalogPath).
func SavePostgresCheckpoint(ctx context.Context, db PostgresBeginner, n PostgresNames, saved time.Time, checkpoint string) error {
	err := pgCatalogPath(ctx, db, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO "+QuotePostgres(n.Schema, n.Checkpoint)+" (id, saved, checkpoint, shadow, original) VALUES (1, $1, $2, "+
			pgDescribeSQL("$3")+", "+pgDescribeSQL("$4")+`)
		ON CONFLICT (id) DO UPDATE SET saved = excluded.saved, checkpoint = excluded.checkpoint, shadow = excluded.shadow, original = excluded.original`,
			saved, checkpoint, QuotePostgres(n.Schema, n.Shadow), QuotePostgres(n.Schema, n.Table))
		return err
	})
	if err != nil {
		return fmt.Errorf("save checkpoint into %s.%s: %w", n.Schema, n.Checkpoint, err)
	}
	return nil
}

// PostgresSavedCheckpoint is the row of the bookkeeping table.
type PostgresSavedCheckpoint struct {
	Saved            time.Time
	Checkpoint       string // the dialect's encoding
	Shadow, Original string // their descriptions at the save
}

// PostgresLeftover is what a killed run of the migration left.
type PostgresLeftover struct {
	Shadow, Old, CheckpointTable bool
	// Aside: the table of rows set aside (a plan with new unique keys).
	Aside bool
	// Checkpoint is the saved one, nil when the table holds none.
	Checkpoint *PostgresSavedCheckpoint
}

// ReadPostgresLeftover reads which of the migration's tables exist and the
// saved checkpoint.
func ReadPostgresLeftover(ctx context.Context, q PostgresQuerier, n PostgresNames) (*PostgresLeftover, error) {
	var l PostgresLeftover
	err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL, to_regclass($3) IS NOT NULL, to_regclass($4) IS NOT NULL`,
		QuotePostgres(n.Schema, n.Shadow), QuotePostgres(n.Schema, n.Old), QuotePostgres(n.Schema, n.Checkpoint), QuotePostgres(n.Schema, n.Aside)).
		Scan(&l.Shadow, &l.Old, &l.CheckpointTable, &l.Aside)
	if err != nil {
		return nil, fmt.Errorf("look for what the killed run left: %w", err)
	}
	if !l.CheckpointTable {
		return &l, nil
	}
	var ck PostgresSavedCheckpoint
	err = q.QueryRow(ctx, "SELECT saved, checkpoint, shadow, original FROM "+QuotePostgres(n.Schema, n.Checkpoint)+" WHERE id = 1").
		Scan(&ck.Saved, &ck.Checkpoint, &ck.Shadow, &ck.Original)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("read checkpoint from %s.%s: %w", n.Schema, n.Checkpoint, err)
	default:
		l.Checkpoint = &ck
	}
	return &l, nil
}

// RebuildPostgresShadow plans the migration again for the shadow a killed
// run left, exactly as CreatePostgresCheckpointed planned it: in a
// transaction it rolls back, it drops the existing shadow, creates it
// afresh from the original and the --alter (the same code, on the same
// names: the bookkeeping table was there then too), and compares the fresh
// shadow's description with the existing one's. Equal, the fresh plan is the
// existing shadow's (names, renames, foreign keys and checks set aside,
// identity columns); otherwise it refuses, naming the first difference. The
// fresh shadow gets the set-aside indexes (PostgresShadow.Indexes) the
// existing one has: the killed run built them after its copy.
// Nothing is changed either way.
func RebuildPostgresShadow(ctx context.Context, pool *pgxpool.Pool, in *PostgresInspection, alter string, lockTimeout time.Duration) (*PostgresShadow, error) {
	clauses := SplitPostgresAlter(alter)
	if len(clauses) == 0 {
		return nil, errors.New("the --alter is empty")
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan the shadow again: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	n := in.Names
	existing, err := DescribePostgresTable(ctx, tx, n.Schema, n.Shadow)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", max(lockTimeout.Milliseconds(), 1))); err != nil {
		return nil, fmt.Errorf("plan the shadow again: %w", err)
	}
	if _, err := tx.Exec(ctx, "DROP TABLE "+QuotePostgres(n.Schema, n.Shadow)+" RESTRICT"); err != nil {
		return nil, fmt.Errorf("plan the shadow again: set the existing shadow aside (rolled back): %w", err)
	}
	// Its table of rows set aside too, which the resumed run takes up as
	// the killed run left it (the drop is rolled back).
	if _, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+QuotePostgres(n.Schema, n.Aside)+" RESTRICT"); err != nil {
		return nil, fmt.Errorf("plan the shadow again: drop the existing table of rows set aside (rolled back): %w", err)
	}
	sh, err := pgCreateShadow(ctx, tx, in, clauses, lockTimeout)
	if err != nil {
		return nil, fmt.Errorf("plan the shadow again: %w", err)
	}
	// A killed run may have built some of the indexes set aside until the
	// copy is over: the fresh shadow gets those too.
	if err := pgBuildExisting(ctx, tx, n, existing, sh.Indexes); err != nil {
		return nil, err
	}
	fresh, err := DescribePostgresTable(ctx, tx, n.Schema, n.Shadow)
	if err != nil {
		return nil, err
	}
	if fresh != existing {
		return nil, fmt.Errorf("the shadow table %s.%s is not what the --alter makes of %s.%s now: %s",
			n.Schema, n.Shadow, n.Schema, n.Table, FirstDescriptionDifference(existing, fresh))
	}
	return sh, nil
}

// FirstDescriptionDifference names the first line in which two descriptions
// (DescribePostgresTable) differ.
func FirstDescriptionDifference(was, now string) string {
	a, b := strings.Split(was, "\n"), strings.Split(now, "\n")
	for i := 0; i < max(len(a), len(b)); i++ {
		switch {
		case i >= len(a):
			return fmt.Sprintf("%q was not there", b[i])
		case i >= len(b):
			return fmt.Sprintf("%q is gone", a[i])
		case a[i] != b[i]:
			return fmt.Sprintf("%q is now %q", a[i], b[i])
		}
	}
	return "no difference"
}

// DropPostgresRunTables drops the shadow, its table of rows set aside
// (postgres_aside.go) and the checkpoint table a killed
// run left (--initially-drop-ghost-table), never cascading, and reports what
// it dropped.
func DropPostgresRunTables(ctx context.Context, q PostgresQuerier, n PostgresNames) ([]string, error) {
	var dropped []string
	for _, t := range []struct{ name, what string }{{n.Aside, "table of rows set aside"}, {n.Shadow, "shadow table"}, {n.Checkpoint, "checkpoint table"}} {
		var exists bool
		if err := q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", QuotePostgres(n.Schema, t.name)).Scan(&exists); err != nil {
			return dropped, fmt.Errorf("look for %s %s.%s: %w", t.what, n.Schema, t.name, err)
		}
		if !exists {
			continue
		}
		if err := DropPostgresTable(ctx, q, n.Schema, t.name); err != nil {
			return dropped, err
		}
		dropped = append(dropped, t.what+" "+n.Schema+"."+t.name)
	}
	return dropped, nil
}

// DropPostgresOld drops the old table an earlier migration kept
// (--initially-drop-old-table), never cascading, and returns its row
// estimate; dropped is false when there is none.
func DropPostgresOld(ctx context.Context, q PostgresQuerier, n PostgresNames) (rows int64, dropped bool, err error) {
	err = q.QueryRow(ctx, "SELECT reltuples::int8 FROM pg_class WHERE oid = to_regclass($1)", QuotePostgres(n.Schema, n.Old)).Scan(&rows)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("look for the old table %s.%s: %w", n.Schema, n.Old, err)
	}
	if err := DropPostgresTable(ctx, q, n.Schema, n.Old); err != nil {
		return 0, false, err
	}
	return max(rows, 0), true, nil
}
