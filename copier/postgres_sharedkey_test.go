package copier

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestPostgresCopyWidenedKey: when the shadow's key only holds the
// original's (table.Plan.RowKey), a chunk read by the original's key
// inserts with ON CONFLICT on the shadow's key, and the rows it skips for a
// clash on another unique index are reported by the shadow's key, which the
// applier refreshes rows by.
func TestPostgresCopyWidenedKey(t *testing.T) {
	pool := pgTestPool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range []string{
		"CREATE TABLE " + pgTestSchema + ".a (id int PRIMARY KEY, tenant int NOT NULL, u int UNIQUE)",
		"CREATE TABLE " + pgTestSchema + ".b (id int, tenant int, u int UNIQUE, PRIMARY KEY (id, tenant))",
		"INSERT INTO " + pgTestSchema + ".a SELECT g, g % 3, g * 10 FROM generate_series(1, 10) g",
		// An applied row of another key holds the u of the source row 3;
		// the applied row 5 is the source's.
		"INSERT INTO " + pgTestSchema + ".b VALUES (0, 0, 30), (5, 2, 50)",
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	p := pgTestPlan(t, pool, "a", "b", "id")
	p.RowKey, p.RowKeyIndex = []string{"id", "tenant"}, []int{0, 1}
	chunk, err := NewPostgres(pool, p).CopyChunk(ctx, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(chunk.Stale); !chunk.Done || got != "[[3 0] [5 2]]" {
		t.Errorf("chunk done %v, stale keys %s: want done, [[3 0] [5 2]]", chunk.Done, got)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+pgTestSchema+".b").Scan(&n); err != nil || n != 10 {
		t.Errorf("shadow holds %d rows (%v), want 10: the 8 copied and the 2 applied", n, err)
	}
}
