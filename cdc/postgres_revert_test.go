package cdc

import (
	"context"
	"strings"
	"testing"
	"time"

	"osc/internal/testdb"
	"osc/internal/testplan"
	"osc/table"
)

// TestPostgresSourceSkipThrough: a source with SkipThrough (a revert
// window's reverse capture, started before the swap) returns nothing
// committed up to and including the transaction that emitted the swap
// message with its id — not another id's, nor a rolled-back one's — and
// everything after.
func TestPostgresSourceSkipThrough(t *testing.T) {
	const schema = "pgrevert_test_cdc"
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	testdb.ResetPostgresSchema(t, pool, schema)
	testdb.ExecPostgresIn(t, pool, schema, "CREATE TABLE s (id int PRIMARY KEY, v int)", "INSERT INTO s SELECT g, g FROM generate_series(1, 5) g")
	tb, key, idx := testplan.PostgresTable(t, pool, schema, "s")
	plan := &table.Plan{Source: tb, Shadow: tb, Key: key, KeyIndex: idx,
		Mapping: []table.ColumnMap{{Source: "id", Shadow: "id"}, {Source: "v", Shadow: "v", SourceIndex: 1}}}
	const id = "pgrevert_skip"
	src, err := NewPostgres(PostgresConfig{DSN: testdb.PostgresDSN(), Slot: id, Publication: id, SkipThrough: "swap-1"}, pool, plan)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := src.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	emit := "SELECT pg_logical_emit_message(true, '" + table.PostgresSwapPrefix + "', '%s')"
	testdb.ExecPostgresIn(t, pool, schema,
		"INSERT INTO s VALUES (6, 6)",
		strings.Replace(emit, "%s", "swap-0", 1), // another run's id
		"UPDATE s SET v = 10 WHERE id = 1")
	// A swap attempt that rolled back emits nothing.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, strings.Replace(emit, "%s", "swap-1", 1)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	testdb.ExecPostgresIn(t, pool, schema, "DELETE FROM s WHERE id = 2")
	// The swap: its own changes are skipped too.
	tx, err = pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"UPDATE " + schema + ".s SET v = 30 WHERE id = 3", strings.Replace(emit, "%s", "swap-1", 1)} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	testdb.ExecPostgresIn(t, pool, schema, "INSERT INTO s VALUES (7, 7)", "DELETE FROM s WHERE id = 4")
	if err := src.EmitMarker(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range untilMarker(t, src, "m1", 100) {
		got = append(got, describe(c))
	}
	if want := "insert after=7,7 | delete before=4,∅ | marker m1"; strings.Join(got, " | ") != want {
		t.Errorf("changes:\n%s\nwant\n%s", strings.Join(got, " | "), want)
	}
}
