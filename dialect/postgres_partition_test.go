package dialect

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/engine"
)

// pgPartitionSetup makes the partitioned table name, RANGE on its key id:
// the writers' key changes (id + 10,000,000) move rows to the DEFAULT
// partition, which the stream carries, through the root, as a delete of
// the old key and an insert of the row.
func pgPartitionSetup(name string) []string {
	return []string{
		fmt.Sprintf("CREATE TABLE %s (id bigserial PRIMARY KEY, owner int NOT NULL, v int NOT NULL DEFAULT 1, s text, junk text) PARTITION BY RANGE (id)", name),
		fmt.Sprintf("CREATE TABLE %[1]s_lo PARTITION OF %[1]s FOR VALUES FROM (MINVALUE) TO (5000)", name),
		fmt.Sprintf("CREATE TABLE %[1]s_mid PARTITION OF %[1]s FOR VALUES FROM (5000) TO (12000)", name),
		fmt.Sprintf("CREATE TABLE %[1]s_hi PARTITION OF %[1]s FOR VALUES FROM (12000) TO (20001)", name),
		fmt.Sprintf("CREATE TABLE %[1]s_rest PARTITION OF %[1]s DEFAULT", name),
		fmt.Sprintf("CREATE INDEX ON %s (owner, v)", name),
		fmt.Sprintf("INSERT INTO %s (owner, v, s, junk) SELECT i %% 3, i, 's' || i, repeat('j', 100) FROM generate_series(1, 20000) i", name),
		fmt.Sprintf("CREATE VIEW %[1]s_v AS SELECT id, s FROM %[1]s", name),
	}
}

// pgTree describes the partition tree of schema.name: each partition with
// its bound, in name order (the names of their indexes, which a type change
// of an indexed column changes, are the differential cases' part_*).
func pgTree(t *testing.T, pool *pgxpool.Pool, name string) string {
	t.Helper()
	var out string
	err := pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid), '; ' ORDER BY c.relname), '')
		FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = to_regclass($1)`, pgEngineSchema+"."+name).Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pgRelations lists the schema's tables (partitions included) whose names
// start with prefix.
func pgRelations(t *testing.T, pool *pgxpool.Pool, prefix string) string {
	t.Helper()
	var out string
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(relname, ' ' ORDER BY relname), '') FROM pg_class
		WHERE relnamespace = $1::regnamespace AND relkind IN ('r', 'p') AND strpos(relname, $2) = 1`, pgEngineSchema, prefix).Scan(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPostgresPartitionedMigration migrates a partitioned table while
// writers insert, update, delete and move rows between partitions (a key
// change), through the cut-over: the new tree holds exactly what they
// wrote, its partitions have the original partitions' names and bounds, and
// its indexes the names a plain ALTER TABLE leaves.
func TestPostgresPartitionedMigration(t *testing.T) {
	const name = "pt"
	pool := pgEngineDB(t, pgPartitionSetup(name)...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := pgTree(t, pool, name)
	if !strings.Contains(before, "pt_rest DEFAULT") {
		t.Fatalf("setup: tree %s", before)
	}
	cfg := engine.Config{Schema: pgEngineSchema, Table: name, Execute: true, ChunkSize: 500, DMLBatchSize: 50,
		Alter:              "RENAME COLUMN v TO val; ALTER COLUMN val TYPE bigint, DROP COLUMN junk, ADD COLUMN c int NOT NULL DEFAULT 7",
		CutOverLockTimeout: time.Second, CutOverRetries: 10, StatusInterval: time.Hour, OkToDropTable: true}
	want := migrateUnderPGWriters(t, ctx, pool, cfg, 11)
	checkPGRows(t, ctx, pool, "SELECT id, val, s FROM "+pgEngineSchema+"."+name+" WHERE c = 7", want)
	// Every row is in the partition its key belongs to, under the
	// partition's name.
	var moved, misplaced int64
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+pgEngineSchema+`.pt_rest WHERE id > 10000000),
		(SELECT count(*) FROM `+pgEngineSchema+`.pt_lo WHERE id >= 5000) + (SELECT count(*) FROM `+pgEngineSchema+`.pt_rest WHERE id BETWEEN 1 AND 20000)`).Scan(&moved, &misplaced); err != nil {
		t.Fatal(err)
	}
	if moved == 0 || misplaced != 0 {
		t.Errorf("rows moved to the DEFAULT partition: %d (want some); rows in the wrong partition: %d", moved, misplaced)
	}
	if after := pgTree(t, pool, name); after != before {
		t.Errorf("partitions after the migration:\n%s\nbefore:\n%s", after, before)
	}
	if got := pgLeftovers(t, pool, name); len(got) != 0 {
		t.Errorf("left behind: %v", got)
	}
	if got := pgRelations(t, pool, "_"); got != "" {
		t.Errorf("osc's tables left behind (the old tree was to be dropped): %s", got)
	}
	var viewRows, tableRows int64
	if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM "+pgEngineSchema+".pt_v), (SELECT count(*) FROM "+pgEngineSchema+".pt)").Scan(&viewRows, &tableRows); err != nil {
		t.Fatal(err)
	}
	if viewRows != tableRows {
		t.Errorf("view has %d rows, table %d", viewRows, tableRows)
	}
}

// TestPostgresPartitionTruncated: a TRUNCATE of one partition is published
// only as the partition's own, never through the root, so the capture does
// not see it. Without the checksum the cut-over finds the partition's new
// storage and fails; with it, the checksum finds the rows the shadow still
// has (or, had it repaired them, the cut-over would fail as well). osc leaves
// nothing behind (no slot, publication, shadow tree or shadow partition), the
// table as it was. So does a TRUNCATE of a sub-partition.
func TestPostgresPartitionTruncated(t *testing.T) {
	// ptt_mid partitioned in turn: its sub-partition ptt_mid1 is truncated.
	sub := pgPartitionSetup("ptt")
	sub[2] = "CREATE TABLE ptt_mid PARTITION OF ptt FOR VALUES FROM (5000) TO (12000) PARTITION BY HASH (id)"
	sub = slices.Insert(sub, 3, "CREATE TABLE ptt_mid0 PARTITION OF ptt_mid FOR VALUES WITH (MODULUS 2, REMAINDER 0)",
		"CREATE TABLE ptt_mid1 PARTITION OF ptt_mid FOR VALUES WITH (MODULUS 2, REMAINDER 1)")
	for _, tc := range []struct {
		name       string
		setup      []string
		truncate   string
		tree       string
		noChecksum bool
		want       string
	}{
		{"cut-over", pgPartitionSetup("ptt"), "ptt_mid", "_ptt_hi_osc _ptt_lo_osc _ptt_mid_osc _ptt_osc _ptt_osk _ptt_rest_osc", true, "the partitions of"},
		{"checksum", pgPartitionSetup("ptt"), "ptt_mid", "_ptt_hi_osc _ptt_lo_osc _ptt_mid_osc _ptt_osc _ptt_osk _ptt_rest_osc", false, "is in the shadow but not in the original"},
		{"sub-partition", sub, "ptt_mid1", "_ptt_hi_osc _ptt_lo_osc _ptt_mid0_osc _ptt_mid1_osc _ptt_mid_osc _ptt_osc _ptt_osk _ptt_rest_osc", true, "the partitions of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const name = "ptt"
			pool := pgEngineDB(t, tc.setup...)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			flag := filepath.Join(t.TempDir(), "postpone")
			if err := os.WriteFile(flag, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := engine.Config{Schema: pgEngineSchema, Table: name, Execute: true, ChunkSize: 2000, Alter: "ADD COLUMN c int", NoChecksum: tc.noChecksum,
				PostponeCutOverFlagFile: flag, CutOverLockTimeout: time.Second, CutOverRetries: 3, StatusInterval: time.Hour}
			d, err := NewPostgres(cfg, PostgresOptions{DSN: pgEngineDSN()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			m := engine.New(cfg, d, slog.New(slog.DiscardHandler), io.Discard)
			done := make(chan error, 1)
			go func() { done <- m.Run(ctx) }()
			waitPostponed(t, ctx, m, done)
			if got := pgRelations(t, pool, "_"); got != tc.tree {
				t.Errorf("shadow tree: %s", got)
			}
			pgEngineExec(t, pool, "TRUNCATE "+tc.truncate)
			if err := os.Remove(flag); err != nil {
				t.Fatal(err)
			}
			err = <-done
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("migration after a partition's TRUNCATE: %v, want %q", err, tc.want)
			}
			if got := pgLeftovers(t, pool, name); len(got) != 0 {
				t.Errorf("left behind: %v", got)
			}
			if got := pgRelations(t, pool, "_"); got != "" {
				t.Errorf("osc's tables left behind: %s", got)
			}
			var cols int
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
				pgEngineSchema, name).Scan(&cols); err != nil || cols != 5 {
				t.Errorf("the failed migration changed the table: %d columns (%v)", cols, err)
			}
		})
	}
}

// TestPostgresPartitionedResumeRefused: a killed run of a partitioned
// table's migration is resumed only while its partitions are those it
// inspected (TestPostgresKillAndResume resumes one): without --resume the
// refusal names --resume; a partition truncated while no osc ran (pgoutput
// publishes that TRUNCATE as the partition's own, not through the table)
// makes Resume refuse, naming the partitions, and keep what the killed run
// left; --initially-drop-ghost-table drops it all, shadow partitions
// included.
func TestPostgresPartitionedResumeRefused(t *testing.T) {
	const schema, name = "partition_rs", "pr"
	pool := pgSchemaDB(t, schema, pgPartitionSetup(name)...)
	cfg := engine.Config{Schema: schema, Table: name, Alter: "ADD COLUMN c int"}
	rspgKilled(t, pool, cfg, engine.Checkpoint{Version: "test", Alter: cfg.Alter, After: []any{"17"}, Copied: 17})
	before := rspgLeftIn(t, pool, schema, name)
	slot := pgTestNames(t, schema, name).Slot
	if fmt.Sprint(before) != "[table _pr_osc table _pr_osk slot "+slot+" publication "+slot+"]" {
		t.Fatalf("the killed run left %v", before)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := rspgDialect(t, cfg, pgEngineDSN())
	err := d.Inspect(ctx)
	d.Close()
	if err == nil || !strings.Contains(err.Error(), "run again with --resume") {
		t.Errorf("Inspect without --resume: %v", err)
	}
	if _, err := pool.Exec(ctx, "TRUNCATE "+schema+"."+name+"_mid"); err != nil {
		t.Fatal(err)
	}
	cfg.Resume = true
	d = rspgDialect(t, cfg, pgEngineDSN())
	if err := d.Inspect(ctx); err != nil {
		t.Fatal(err)
	}
	_, _, err = d.Resume(ctx)
	d.Close()
	if err == nil || !strings.Contains(err.Error(), "the partitions of "+schema+"."+name+" changed since the killed run inspected them") ||
		!strings.Contains(err.Error(), " "+name+"_mid ") {
		t.Errorf("Resume after a partition's TRUNCATE: %v", err)
	}
	if got := rspgLeftIn(t, pool, schema, name); !slices.Equal(got, before) {
		t.Errorf("the refused resume changed what the killed run left: %v", got)
	}
	cfg.Resume, cfg.InitiallyDropShadow, cfg.Execute = false, true, true
	d = rspgDialect(t, cfg, pgEngineDSN())
	defer d.Close()
	if err := d.Inspect(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rspgLeftIn(t, pool, schema, name); len(got) != 0 {
		t.Errorf("--initially-drop-ghost-table left %v", got)
	}
	var left string
	if err := pool.QueryRow(ctx, `SELECT coalesce(string_agg(relname, ' '), '') FROM pg_class WHERE relnamespace = $1::regnamespace AND relname LIKE '\_%'`, schema).Scan(&left); err != nil || left != "" {
		t.Errorf("shadow partitions left: %q (%v)", left, err)
	}
}

// migrateUnderPGWriters runs the migration cfg describes while the writers
// (startPGWriters) write to the table, through the cut-over and a moment
// after it, and returns what they wrote.
func migrateUnderPGWriters(t *testing.T, ctx context.Context, pool *pgxpool.Pool, cfg engine.Config, seed uint64) map[int64]pgRow {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := NewPostgres(cfg, PostgresOptions{DSN: pgEngineDSN()}, log)
	if err != nil {
		t.Fatal(err)
	}
	m := engine.New(cfg, d, log, io.Discard)
	// Before the cut-over their changes are captured and applied, after
	// it they land on the new table.
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	writers := startPGWriters(t, ctx, pool, cfg.Schema+"."+cfg.Table, seed)
	var runErr error
	select {
	case runErr = <-done:
	case <-ctx.Done():
		runErr = ctx.Err()
	}
	time.Sleep(100 * time.Millisecond) // writes to the new table
	want := writers.wait(t)
	if runErr != nil {
		t.Fatalf("migration: %v", runErr)
	}
	return want
}

// waitPostponed waits until the migration m, running into done, postpones
// its cut-over.
func waitPostponed(t *testing.T, ctx context.Context, m *engine.Migration, done <-chan error) {
	t.Helper()
	for m.State() != engine.StatePostponed {
		select {
		case err := <-done:
			t.Fatalf("migration ended before its cut-over: %v", err)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
