package table

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The shadow's non-unique indexes are built after the copy, as pg_repack
// builds its indexes: inserting a chunk into a table without them costs
// only the heap and the unique indexes, and one CREATE INDEX sorts the rows
// once instead of descending each btree for every row. They decide nothing
// about which rows the shadow holds: the copy's and the applier's conflicts
// (ON CONFLICT's arbiter, the clash resolution of README "Why nothing is
// lost", step 5) are on the key and the unique indexes, and a constraint that
// checks rows (an exclusion constraint) is an index too, unique in kind: all
// of them stay on the shadow. A unique index built afterwards would also
// meet the transient duplicates that step 5 resolves (an older row applied
// behind a newer copied one) and fail a run that would end equal.

// PostgresIndex is a non-unique index of the shadow, set aside while rows are
// copied and built, under its name, once the copy is over.
type PostgresIndex struct {
	Name string
	// Create is pg_get_indexdef's CREATE INDEX statement, names qualified.
	Create string
	// Tablespace is the index's own tablespace ("" for the database's).
	Tablespace string
	// Comment is the index's comment as a quoted literal ("" for none).
	Comment   string
	Clustered bool
	// Stats are the index's "ALTER COLUMN n SET STATISTICS m" clauses.
	Stats []string
	// Columns are the index's column names, in order: a column keeps the
	// name it had when the index was made (a RENAME COLUMN of the table does
	// not rename it), which CREATE INDEX would not give it.
	Columns []string
}

// pgSetAsideIndexes reads the shadow's non-unique indexes that nothing
// depends on (pg_depend) and that depend on no extension, and drops them.
func pgSetAsideIndexes(ctx context.Context, tx pgx.Tx, shadowOID uint32, schema string) ([]PostgresIndex, error) {
	var idx []PostgresIndex
	err := pgCatalogPath(ctx, tx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT x.relname::text, pg_get_indexdef(i.indexrelid),
				coalesce((SELECT spcname::text FROM pg_tablespace WHERE oid = x.reltablespace), ''),
				coalesce(quote_literal(obj_description(i.indexrelid, 'pg_class')), ''), i.indisclustered,
				ARRAY(SELECT format('ALTER COLUMN %s SET STATISTICS %s', a.attnum, a.attstattarget) FROM pg_attribute a
					WHERE a.attrelid = i.indexrelid AND a.attstattarget >= 0 ORDER BY a.attnum),
				ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = i.indexrelid ORDER BY a.attnum)
			FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
			WHERE i.indrelid = $1 AND NOT i.indisunique AND NOT i.indisexclusion AND NOT i.indisreplident
				AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indexrelid)
				AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid AND d.deptype = 'x')
			ORDER BY 1`, shadowOID)
		if err != nil {
			return err
		}
		idx, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (PostgresIndex, error) {
			var x PostgresIndex
			return x, r.Scan(&x.Name, &x.Create, &x.Tablespace, &x.Comment, &x.Clustered, &x.Stats, &x.Columns)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create shadow: read the indexes built after the copy: %w", err)
	}
	for _, x := range idx {
		if _, err := tx.Exec(ctx, "DROP INDEX "+QuotePostgres(schema, x.Name)+" RESTRICT"); err != nil {
			return nil, fmt.Errorf("create shadow: set index %s aside until the copy is over: %w", x.Name, err)
		}
	}
	return idx, nil
}

// pgBuildIndex builds one set-aside index in tx, with its properties and
// its columns' names.
func pgBuildIndex(ctx context.Context, tx pgx.Tx, schema, shadowName string, x PostgresIndex) error {
	if _, err := tx.Exec(ctx, "SELECT set_config('default_tablespace', $1, true)", x.Tablespace); err != nil {
		return fmt.Errorf("build index %s on the shadow: set its tablespace: %w", x.Name, err)
	}
	if _, err := tx.Exec(ctx, x.Create); err != nil {
		return fmt.Errorf("build index %s on the shadow (%s): %w", x.Name, x.Create, err)
	}
	if err := pgNameIndexColumns(ctx, tx, schema, x); err != nil {
		return err
	}
	var stmts []string
	if x.Comment != "" {
		stmts = append(stmts, "COMMENT ON INDEX "+QuotePostgres(schema, x.Name)+" IS "+x.Comment)
	}
	if x.Clustered {
		stmts = append(stmts, "ALTER TABLE "+QuotePostgres(schema, shadowName)+" CLUSTER ON "+QuotePostgres(x.Name))
	}
	for _, s := range x.Stats {
		stmts = append(stmts, "ALTER INDEX "+QuotePostgres(schema, x.Name)+" "+s)
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("build index %s on the shadow (%s): %w", x.Name, s, err)
		}
	}
	return nil
}

// pgNameIndexColumns gives the built index x's columns their names from
// when it was set aside: those that differ are renamed to a free name
// first, so that two may trade names.
func pgNameIndexColumns(ctx context.Context, tx pgx.Tx, schema string, x PostgresIndex) error {
	index := QuotePostgres(schema, x.Name)
	now, err := pgStrings(ctx, tx, "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass ORDER BY attnum", index)
	if err != nil {
		return fmt.Errorf("build index %s on the shadow: read its columns: %w", x.Name, err)
	}
	if len(now) != len(x.Columns) {
		return fmt.Errorf("build index %s on the shadow: it has %d columns, it had %d", x.Name, len(now), len(x.Columns))
	}
	var differ []int
	for i := range now {
		if now[i] != x.Columns[i] {
			differ = append(differ, i)
		}
	}
	taken := map[string]bool{}
	for i := range now {
		taken[now[i]], taken[x.Columns[i]] = true, true
	}
	free := func(i int) string {
		name := fmt.Sprintf("osc_column_%d", i+1)
		for taken[name] {
			name += "_"
		}
		return name
	}
	var stmts []string
	for _, i := range differ {
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", index, QuotePostgres(now[i]), QuotePostgres(free(i))))
	}
	for _, i := range differ {
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", index, QuotePostgres(free(i)), QuotePostgres(x.Columns[i])))
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("build index %s on the shadow (%s): %w", x.Name, s, err)
		}
	}
	return nil
}

// BuildPostgresIndexes builds the set-aside indexes on the shadow, each in
// its own transaction, sessions of them at a time (several CREATE INDEX on
// one table run at once: each takes a SHARE lock), skipping those that
// exist (built by a killed run). A plain CREATE INDEX holds the applier's
// writes to the shadow until it commits; the changes wait in the capture
// meanwhile. A failed build rolls back whole, leaving no index behind, and
// the first failure cancels the others and is returned.
func BuildPostgresIndexes(ctx context.Context, pool *pgxpool.Pool, schema, shadowName string, idx []PostgresIndex, sessions int) error {
	todo := make(chan PostgresIndex, len(idx))
	for _, x := range idx {
		todo <- x
	}
	close(todo)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range max(1, min(sessions, len(idx))) {
		wg.Go(func() {
			for x := range todo {
				if ctx.Err() != nil {
					return
				}
				if err := pgBuildMissingIndex(ctx, pool, schema, shadowName, x); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// The first failure, or the caller's cancellation: the builds it
	// cancelled fail with it too.
	return context.Cause(ctx)
}

// pgBuildMissingIndex builds x in its own transaction unless an index of its
// name exists.
func pgBuildMissingIndex(ctx context.Context, pool *pgxpool.Pool, schema, shadowName string, x PostgresIndex) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", QuotePostgres(schema, x.Name)).Scan(&exists); err != nil {
			return fmt.Errorf("look for index %s on the shadow: %w", x.Name, err)
		}
		if exists {
			return nil
		}
		return pgBuildIndex(ctx, tx, schema, shadowName, x)
	})
}

// pgBuildExisting builds on the shadow tx made, in tx, the set-aside indexes
// the shadow described by existing has (a killed run built them), so that
// the two can be compared.
func pgBuildExisting(ctx context.Context, tx pgx.Tx, n PostgresNames, existing string, idx []PostgresIndex) error {
	lines := map[string]bool{}
	for _, l := range strings.Split(existing, "\n") {
		lines[l] = true
	}
	for _, x := range idx {
		if !pgDescribedIndex(lines, x) {
			continue
		}
		if err := pgBuildIndex(ctx, tx, n.Schema, n.Shadow, x); err != nil {
			return fmt.Errorf("plan the shadow again: %w", err)
		}
	}
	return nil
}

// pgDescribedIndex reports whether a description's lines (pgDescribeSQL)
// hold index x.
func pgDescribedIndex(lines map[string]bool, x PostgresIndex) bool {
	return lines["index "+x.Create+" replident=f"]
}

// WithoutPlainIndexes is a description (DescribePostgresTable) without its
// non-unique indexes, which the shadow gains after the copy.
func WithoutPlainIndexes(desc string) string {
	var keep []string
	for _, l := range strings.Split(desc, "\n") {
		if !strings.HasPrefix(l, "index CREATE INDEX ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
