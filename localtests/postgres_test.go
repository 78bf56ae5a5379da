package localtests

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"osc/internal/testdb"
	osctable "osc/table"
)

// TestPostgres runs every case under postgres/ against the sandbox's
// PostgreSQL.
func TestPostgres(t *testing.T) {
	runCases(t, pgDialect{dsn: pgDSN()})
}

type pgDialect struct {
	dsn string // the database the cases' schemas are created in
}

func (pgDialect) dir() string { return "postgres" }

func (d pgDialect) connectAdmin(t *testing.T) *sql.DB {
	return connect(t, "PostgreSQL", "pgx", d.dsn)
}

func (d pgDialect) resetNamespace(ctx context.Context, admin *sql.DB, ns string) error {
	if err := d.dropLeftCapture(ctx, admin, ns); err != nil {
		return err
	}
	if err := d.dropNamespace(ctx, admin, ns); err != nil {
		return err
	}
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+d.quote(ns)); err != nil {
		return fmt.Errorf("create schema %s: %w", ns, err)
	}
	return nil
}

// dropLeftCapture drops the slots (inactive) and publications that osc
// runs on ns's tables left when a test process was killed.
func (d pgDialect) dropLeftCapture(ctx context.Context, admin *sql.DB, ns string) error {
	var database string
	if err := admin.QueryRowContext(ctx, "SELECT current_database()").Scan(&database); err != nil {
		return err
	}
	return testdb.DropPostgresCapture(ctx, database, ns, func(ctx context.Context, q string) ([]string, error) {
		return queryStrings(ctx, admin, q)
	}, func(ctx context.Context, q string) error {
		_, err := admin.ExecContext(ctx, q)
		return err
	})
}

func (d pgDialect) dropNamespace(ctx context.Context, admin *sql.DB, ns string) error {
	if _, err := admin.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+d.quote(ns)+" CASCADE"); err != nil {
		return fmt.Errorf("drop schema %s: %w", ns, err)
	}
	return nil
}

func (d pgDialect) open(ns string) (*sql.DB, error) {
	dsn, err := withSearchPath(d.dsn, ns)
	if err != nil {
		return nil, err
	}
	return sql.Open("pgx", dsn)
}

func (d pgDialect) oscArgs(ns, table string) []string {
	return []string{"--dsn", d.dsn, "--table", ns + "." + table}
}

func (pgDialect) quote(ident string) string {
	return `"` + strings.ReplaceAll(ident, `"`, `""`) + `"`
}

// textExpr renders every type with its output function, which round-trips.
func (pgDialect) textExpr(quoted string) string { return quoted + "::text" }

func (d pgDialect) describe(ctx context.Context, db *sql.DB, ns, table string) (*tableInfo, error) {
	rel := d.quote(ns) + "." + d.quote(table)
	rows, err := db.QueryContext(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod),
			a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype), a.attgenerated <> '', a.attidentity = 'a'
		FROM pg_attribute a
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, rel)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", table, err)
	}
	info := &tableInfo{name: table}
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.typ, &c.integer, &c.generated, &c.identityAlways); err != nil {
			rows.Close()
			return nil, fmt.Errorf("describe %s: %w", table, err)
		}
		info.columns = append(info.columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("describe %s: %w", table, err)
	}
	if len(info.columns) == 0 {
		return nil, nil
	}

	if info.key, err = queryKey(ctx, db, `SELECT i.indexrelid::regclass::text, a.attname, a.attnotnull
		FROM pg_index i
		CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
		  AND k.ord <= i.indnkeyatts
		ORDER BY i.indisprimary DESC, i.indexrelid, k.ord`, rel); err != nil {
		return nil, fmt.Errorf("describe %s: %w", table, err)
	}
	return info, nil
}

func (d pgDialect) updateFromRow(table, key, col string) string {
	t, k, c := d.quote(table), d.quote(key), d.quote(col)
	return fmt.Sprintf("UPDATE %s AS dst SET %s = src.%s FROM %s AS src WHERE src.%s = {id} AND dst.%s = {id}", t, c, c, t, k, k)
}

func (pgDialect) duplicateKey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" // unique_violation
}

func (pgDialect) writerInit() string { return "" }

func (pgDialect) helperTables(table string) ([]string, string) {
	return []string{"_" + table + "_osc", "_" + table + "_osk", "_" + table + "_osd"}, "_" + table + "_old"
}

// replicationLeftovers lists publications that publish a table of ns or
// are named as osc names those of ns.table, and replication slots named like
// such a publication. A slot of another run is not judged: with checkpoints
// osc's slot is permanent, and inactive for a moment while osc runs (between
// its creation and the start of streaming, and before its drop at exit), so
// an inactive slot need not be a leaked one.
func (d pgDialect) replicationLeftovers(ctx context.Context, db *sql.DB, ns, table string) ([]string, error) {
	capture, revert, err := d.captureNames(ns, table)
	if err != nil {
		return nil, fmt.Errorf("replication leftovers: %w", err)
	}
	rows, err := db.QueryContext(ctx, `WITH pubs AS (SELECT p.pubname FROM pg_publication p
		WHERE p.pubname IN ($2, $3) OR EXISTS (SELECT 1 FROM pg_publication_rel r JOIN pg_class c ON c.oid = r.prrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE r.prpubid = p.oid AND n.nspname = $1))
		SELECT 'publication ' || pubname FROM pubs
		UNION ALL
		SELECT 'replication slot ' || slot_name FROM pg_replication_slots
		WHERE (slot_name IN ($2, $3) OR slot_name IN (SELECT pubname FROM pubs)) AND database = current_database()
		ORDER BY 1`, ns, capture, revert)
	if err != nil {
		return nil, fmt.Errorf("replication leftovers: %w", err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("replication leftovers: %w", err)
		}
		found = append(found, s)
	}
	return found, rows.Err()
}

// captureNames are the names osc gives the slot and the publication of
// ns.table in the cases' database (table.PostgresNames.InDatabase), and those
// of its revert window's reverse capture. Matched exactly, not as a part of a
// name: the names of osct_resume_copy's objects are a part of
// osct_resume_copy_threads's, whose test runs at the same time.
func (d pgDialect) captureNames(ns, table string) (capture, revert string, err error) {
	cfg, err := pgconn.ParseConfig(d.dsn)
	if err != nil {
		return "", "", fmt.Errorf("parse the DSN: %w", err)
	}
	n := osctable.NewPostgresNames(ns, table).InDatabase(cfg.Database)
	return n.Slot, n.ReverseCapture(), nil
}
