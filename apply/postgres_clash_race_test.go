package apply

import (
	"context"
	"testing"
	"time"

	"osc/cdc"
	"osc/internal/testdb"
)

// A chunk runs while the applier resolves clashes one statement at a time:
// row 1 held 'x', gave it up, and row 3 took it; a chunk that read the source
// since is inserting row 3 with 'x' (not committed yet) when the applier
// applies row 1's older insert with 'x'. The clash resolution's delete does
// not see the chunk's uncommitted row; the insert then waits for the chunk,
// which commits. The chunk's row is newer than the change, as the rows the
// clash resolution deletes are: applying must not fail.
func TestPostgresApplyClashWithChunkInFlight(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, email text UNIQUE, v text)",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		// A chunk copied row 2 after it took 'y' from row 5: the first
		// statement clashes, and the applier goes one statement at a time.
		"INSERT INTO "+pgTestSchema+"._t_new VALUES (2, 'y', 'new')")
	ctx := context.Background()
	chunk, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer chunk.Rollback(ctx)
	var chunkPid int
	if err := chunk.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&chunkPid); err != nil {
		t.Fatal(err)
	}
	if _, err := chunk.Exec(ctx, "INSERT INTO "+pgTestSchema+"._t_new VALUES (3, 'x', 'new')"); err != nil {
		t.Fatal(err)
	}
	// The chunk commits once a statement of the applier waits for it (or
	// after 10 s: then the race was not reproduced).
	committed := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			var waiting bool
			if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid)))", chunkPid).Scan(&waiting); err != nil {
				committed <- err
				return
			}
			if waiting {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		committed <- chunk.Commit(ctx)
	}()
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	err = ap.Apply(ctx, []cdc.Change{
		{Op: cdc.Insert, After: cdc.Row{"5", "y", "old"}},
		{Op: cdc.Delete, Before: cdc.Row{"7", nil, nil}},
		{Op: cdc.Insert, After: cdc.Row{"1", "x", "old"}},
	})
	if cerr := <-committed; cerr != nil {
		t.Fatalf("chunk: %v", cerr)
	}
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if got, want := shadowRows(t, ap), "(1,x,old);(5,y,old)"; got != want {
		t.Errorf("shadow %s, want %s", got, want)
	}
}
