package copier

import (
	"context"
	"fmt"
	"testing"
	"time"

	"osc/internal/testdb"
	"osc/internal/testplan"
	"osc/table"
)

// TestPostgresCopyBigChunkClash: a chunk that clashes with the shadow on
// another unique index is inserted by execSkipping, which lists the rows it
// skipped. With --target-chunk-time a chunk holds up to 100,000 rows; the
// skipped rows must be found in time linear in the chunk whatever work_mem
// is: a NOT IN (subquery) that does not fit work_mem is rescanned for every
// source row, hours for such a chunk.
func TestPostgresCopyBigChunkClash(t *testing.T) {
	const schema = "review7_copier_bigchunk"
	cfg := testdb.PostgresConfig(t)
	// The least work_mem: the key list of even a few thousand rows does
	// not fit it.
	cfg.ConnConfig.RuntimeParams["work_mem"] = "64kB"
	pool := testdb.OpenPostgres(t, cfg)
	testdb.ResetPostgresSchema(t, pool, schema)
	const rows = 20000
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+schema+".a (a int, b int, c int, PRIMARY KEY (a, b))",
		"CREATE TABLE "+schema+".b (a bigint, b int, c int UNIQUE, PRIMARY KEY (a, b))",
		"INSERT INTO "+schema+".a SELECT g, g, g FROM generate_series(1, 20000) g",
		"ANALYZE "+schema+".a",
		// The shadow's row (0, 0) holds c = 5000, which the row (5000,
		// 5000) clashes with: every other row is inserted.
		"INSERT INTO "+schema+".b VALUES (0, 0, 5000)",
	)
	tb, _, _ := testplan.PostgresTable(t, pool, schema, "a")
	sh, _, _ := testplan.PostgresTable(t, pool, schema, "b")
	p := &table.Plan{Source: tb, Shadow: sh, Key: []string{"a", "b"}, KeyIndex: []int{0, 1}}
	for i, col := range tb.Columns {
		p.Mapping = append(p.Mapping, table.ColumnMap{Source: col.Name, Shadow: col.Name, SourceIndex: i})
	}
	c := NewPostgres(pool, p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	chunk, err := c.CopyChunk(ctx, nil, rows+1)
	if err != nil {
		t.Fatalf("copy a chunk of %d rows that clashes on another unique index (after %s): %v", rows, time.Since(start).Round(time.Millisecond), err)
	}
	if got := fmt.Sprint(chunk.Stale); !chunk.Done || chunk.Rows != rows-1 || got != "[[5000 5000]]" {
		t.Errorf("chunk done %v, %d rows, stale keys %s: want done, %d rows, [[5000 5000]]", chunk.Done, chunk.Rows, got, rows-1)
	}
}
