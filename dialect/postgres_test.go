package dialect

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/engine"
	"osc/internal/testdb"
	"osc/table"
)

const pgEngineSchema = "pgeng_test"

func pgEngineDSN() string {
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	return fmt.Sprintf("postgres://%s@%s:%s/osc_test?sslmode=disable",
		env("OSC_PG_USER", "postgres"), env("OSC_PG_HOST", "127.0.0.1"), env("OSC_PG_PORT", "15432"))
}

// pgEngineDB connects to the sandbox and creates the test schema with stmts
// run in it (search_path set), dropped when the test ends.
func pgEngineDB(t *testing.T, stmts ...string) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool, err := table.OpenPostgres(ctx, pgEngineDSN())
	if err != nil {
		testdb.Unreachable(t, "PostgreSQL", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgEngineSchema+" CASCADE"); err != nil {
			t.Errorf("drop test schema: %v", err)
		}
		pool.Close()
	})
	pgEngineExec(t, pool, append([]string{"DROP SCHEMA IF EXISTS " + pgEngineSchema + " CASCADE", "CREATE SCHEMA " + pgEngineSchema}, stmts...)...)
	return pool
}

func pgEngineExec(t *testing.T, pool *pgxpool.Pool, stmts ...string) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), "SET LOCAL search_path = "+pgEngineSchema); err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := tx.Exec(context.Background(), s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// pgLeftovers lists the osc objects of table name that exist.
func pgLeftovers(t *testing.T, pool *pgxpool.Pool, name string) []string {
	t.Helper()
	n := pgTestNames(t, pgEngineSchema, name)
	var out []string
	err := pool.QueryRow(context.Background(), `SELECT array_remove(ARRAY[
		(SELECT 'table ' || relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relname = $2),
		(SELECT 'table ' || relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relname = $3),
		(SELECT 'slot ' || slot_name FROM pg_replication_slots WHERE slot_name = $4),
		(SELECT 'publication ' || pubname FROM pg_publication WHERE pubname = $5),
		(SELECT 'table ' || relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relname = $6)], NULL)`,
		pgEngineSchema, n.Shadow, n.Old, n.Slot, n.Publication, n.Checkpoint).Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNewPostgresValidates(t *testing.T) {
	for _, tc := range []struct {
		cfg                engine.Config
		schema, name, want string
	}{
		{cfg: engine.Config{Table: "t", Alter: "x"}, schema: "public", name: "t"},
		{cfg: engine.Config{Table: "s.t", Alter: "x"}, schema: "s", name: "t"},
		{cfg: engine.Config{Schema: "s", Table: "a.b", Alter: "x"}, schema: "s", name: "a.b"},
		{cfg: engine.Config{Alter: "x"}, want: "table is required"},
		{cfg: engine.Config{Table: ".t", Alter: "x"}, want: "schema"},
		{cfg: engine.Config{Table: "t", Alter: " "}, want: "--alter is empty"},
	} {
		d, err := NewPostgres(tc.cfg, PostgresOptions{}, nil)
		if tc.want != "" {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", tc.cfg, err)
			continue
		}
		n := d.(*postgresDialect).names
		if n.Schema != tc.schema || n.Table != tc.name {
			t.Errorf("%+v: names %+v", tc.cfg, n)
		}
	}
}

func TestPostgresDialectLockAndDryRun(t *testing.T) {
	const name = "dry"
	pool := pgEngineDB(t, "CREATE TABLE dry (id int PRIMARY KEY, v text)", "INSERT INTO dry VALUES (1, 'a')")
	ctx := context.Background()
	cfg := engine.Config{Schema: pgEngineSchema, Table: name, Alter: "ADD COLUMN w int"}
	first, err := NewPostgres(cfg, PostgresOptions{DSN: pgEngineDSN()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Inspect(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := NewPostgres(cfg, PostgresOptions{DSN: pgEngineDSN()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Inspect(ctx); err == nil || !strings.Contains(err.Error(), "another osc is migrating pgeng_test.dry") {
		t.Errorf("second Inspect: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}

	// Cleanup is idempotent, keeps the old table unless asked, and never
	// cascades.
	d, err := NewPostgres(cfg, PostgresOptions{DSN: pgEngineDSN()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Inspect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateShadow(ctx); err != nil {
		t.Fatal(err)
	}
	shadow := d.(*postgresDialect).shadow
	for range 2 {
		if err := d.Cleanup(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	if got := pgLeftovers(t, pool, name); len(got) != 0 {
		t.Errorf("cleanup left %v", got)
	}
	pgEngineExec(t, pool, "CREATE TABLE _dry_old (id int)", "CREATE VIEW dry_old_v AS SELECT id FROM _dry_old")
	if err := d.Cleanup(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := pgLeftovers(t, pool, name); fmt.Sprint(got) != "[table _dry_old]" {
		t.Errorf("old table dropped without --ok-to-drop-table: %v", got)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.OkToDropTable = true
	if d, err = NewPostgres(cfg, PostgresOptions{DSN: pgEngineDSN()}, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Inspect(ctx); err == nil || !strings.Contains(err.Error(), `DROP TABLE "pgeng_test"."_dry_old"`) {
		t.Errorf("Inspect with _dry_old present: %v", err)
	}
	d.(*postgresDialect).shadow = shadow // as if this dialect had made it
	if err := d.Cleanup(ctx, true); err == nil || !strings.Contains(err.Error(), "drop or move those objects") {
		t.Errorf("cleanup cascading to a view: %v", err)
	}
	pgEngineExec(t, pool, "DROP VIEW dry_old_v")
	if err := d.Cleanup(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := pgLeftovers(t, pool, name); len(got) != 0 {
		t.Errorf("cleanup left %v", got)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.OkToDropTable = false

	// The engine's dry run: shadow created, reported and dropped.
	d, err = NewPostgres(cfg, PostgresOptions{DSN: pgEngineDSN()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.New(cfg, d, slog.New(slog.DiscardHandler), io.Discard).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pgLeftovers(t, pool, name); len(got) != 0 {
		t.Errorf("dry run left %v", got)
	}
	var cols int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
		pgEngineSchema, name).Scan(&cols); err != nil || cols != 2 {
		t.Errorf("dry run changed the table: %d columns (%v)", cols, err)
	}
}

// TestPostgresMigration runs a whole migration through the engine while
// writers insert, update (the key too) and delete, through the cut-over; each
// writer owns its rows and remembers what it did, and the new table must
// hold exactly that.
func TestPostgresMigration(t *testing.T) {
	const name = "e2e"
	pool := pgEngineDB(t,
		"CREATE TABLE e2e (id bigserial PRIMARY KEY, owner int NOT NULL, v int NOT NULL DEFAULT 1, s text, junk text)",
		"INSERT INTO e2e (owner, v, s, junk) SELECT i % 3, i, 's' || i, repeat('j', 100) FROM generate_series(1, 20000) i",
		"CREATE VIEW e2e_v AS SELECT id, s FROM e2e",
		"CREATE TABLE e2e_child (id serial PRIMARY KEY, e2e_id bigint REFERENCES e2e ON DELETE CASCADE)",
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := engine.Config{Schema: pgEngineSchema, Table: name, Execute: true, ChunkSize: 500, DMLBatchSize: 50,
		Alter:              "RENAME COLUMN v TO val; ALTER COLUMN val TYPE bigint, DROP COLUMN junk, ADD COLUMN c int NOT NULL DEFAULT 7",
		CutOverLockTimeout: time.Second, CutOverRetries: 10, StatusInterval: time.Hour, OkToDropTable: true}
	want := migrateUnderPGWriters(t, ctx, pool, cfg, 7)
	checkPGRows(t, ctx, pool, "SELECT id, val, s FROM "+pgEngineSchema+".e2e WHERE c = 7", want)
	if got := pgLeftovers(t, pool, name); len(got) != 0 {
		t.Errorf("left behind: %v", got)
	}
	var viewRows, tableRows int64
	if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM "+pgEngineSchema+".e2e_v), (SELECT count(*) FROM "+pgEngineSchema+".e2e)").Scan(&viewRows, &tableRows); err != nil {
		t.Fatal(err)
	}
	if viewRows != tableRows {
		t.Errorf("view has %d rows, table %d", viewRows, tableRows)
	}
}
