package apply

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/cdc"
	"osc/copier"
	"osc/internal/testdb"
	"osc/table"
)

// A review of the refresh of a chunk's stale rows (Refresh,
// change.Chunk.Stale, copier/postgres.go execSkipping).

const rrSchema = "rr_apply"

// rrPool is pgTestPool with the review's own schema.
func rrPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	testdb.ResetPostgresSchema(t, pool, rrSchema)
	return pool
}

// rrPlan maps src's columns to the same-named columns of shadow.
func rrPlan(t *testing.T, pool *pgxpool.Pool, src, shadow string) *table.Plan {
	t.Helper()
	return schemaPlan(t, pool, rrSchema, src, shadow)
}

// rrRows is a table's rows as text, ordered by id.
func rrRows(t *testing.T, pool *pgxpool.Pool, name string) string {
	t.Helper()
	return schemaRows(t, pool, rrSchema, name)
}

// DEFECT (fixed: the copier, on such a shadow, inserts none of the chunk's
// rows and reports them all as stale): a unique constraint of the original
// that is DEFERRABLE is on the
// shadow too (CREATE TABLE … LIKE … INCLUDING ALL), and PostgreSQL refuses
// INSERT … ON CONFLICT DO NOTHING without a conflict target on a table with
// one ("ON CONFLICT does not support deferrable unique
// constraints/exclusion constraints as arbiters", SQLSTATE 55000): every
// index is an arbiter then. The chunk of TestClashReviewChunkMeetsOlderAppliedRow
// (the applier behind the chunk's read: its row 1 holds 'x', which row 2
// holds now) fails its ON CONFLICT (key) insert on the deferred constraint
// at commit, and the copier's skipping insert then fails the run, where the
// applier resolves the same clash (TestClashReviewDeferrableUnique).
func TestRefreshReviewDeferrableUniqueChunk(t *testing.T) {
	pool := rrPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+rrSchema+".t (id int PRIMARY KEY, email text, v text, UNIQUE (email) DEFERRABLE INITIALLY DEFERRED)",
		"CREATE TABLE "+rrSchema+"._t_new (LIKE "+rrSchema+".t INCLUDING ALL)",
		"INSERT INTO "+rrSchema+".t VALUES (2, 'y', 'two')")
	plan := rrPlan(t, pool, "t", "_t_new")
	ctx := context.Background()
	cp := copier.NewPostgres(pool, plan)
	ap := NewPostgres(pool, plan)
	x1 := sourceTx(t, pool, "INSERT INTO "+rrSchema+".t VALUES (1, 'x', 'one')")
	if err := ap.Apply(ctx, []cdc.Change{{Op: cdc.Insert, After: cdc.Row{"1", "x", "one"}, Xid: x1}}); err != nil {
		t.Fatal(err)
	}
	x2 := sourceTx(t, pool, "UPDATE "+rrSchema+".t SET email = 'z' WHERE id = 1")
	x3 := sourceTx(t, pool, "UPDATE "+rrSchema+".t SET email = 'x' WHERE id = 2")
	chunk, err := cp.CopyChunk(ctx, nil, 100)
	if err != nil {
		t.Fatalf("copy the chunk while the applier is two changes behind (a deferrable unique constraint on the shadow): %v", err)
	}
	if err := ap.Refresh(ctx, chunk.Stale); err != nil {
		t.Fatalf("refresh the stale rows %v: %v", chunk.Stale, err)
	}
	if err := ap.Apply(ctx, []cdc.Change{
		{Op: cdc.Update, After: cdc.Row{"1", "z", "one"}, Xid: x2},
		{Op: cdc.Update, After: cdc.Row{"2", "x", "two"}, Xid: x3},
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := rrRows(t, pool, "_t_new"), rrRows(t, pool, "t"); got != want {
		t.Errorf("shadow %s, want %s", got, want)
	}
}

// DEFECT (fixed: Refresh waits until every transaction the applier applied
// changes of is visible): the refresh's read is not the newest state the
// applier knows. A
// transaction is decoded (and applied) once its commit record is flushed,
// before it is visible to other sessions: while a synchronous standby has
// not acknowledged it, or between the WAL flush and the ProcArray update
// (README step 10 says so for the replay window). Say the applier applied
// such a change of a stale key — an update of row 1, or its delete — and
// the refresh then reads the source without it: it writes row 1 as it was
// before the change (the update undone, the deleted row resurrected), and
// nothing applies the change again (the replay window replays only for
// chunks, and the next chunk sees the change: it forgets it). Row 1 is in
// the chunk's stale keys whenever the chunk fell back to its skipping insert
// and the applier had written row 1 (skipped for its key). Here the change's
// transaction stays open while the refresh runs, which is what the refresh
// sees of a transaction decoded but not yet visible; it commits a moment
// later.
func TestRefreshReviewAppliedNotVisible(t *testing.T) {
	for _, c := range []struct {
		name   string
		stmt   string
		change cdc.Change
	}{
		{"update", "UPDATE " + rrSchema + ".t SET v = 'new' WHERE id = 1", cdc.Change{Op: cdc.Update, After: cdc.Row{"1", "x", "new"}}},
		{"delete", "DELETE FROM " + rrSchema + ".t WHERE id = 1", cdc.Change{Op: cdc.Delete, Before: cdc.Row{"1", nil, nil}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			pool := rrPool(t)
			testdb.ExecPostgres(t, pool,
				"CREATE TABLE "+rrSchema+".t (id int PRIMARY KEY, email text UNIQUE, v text)",
				"CREATE TABLE "+rrSchema+"._t_new (LIKE "+rrSchema+".t INCLUDING ALL)",
				"INSERT INTO "+rrSchema+".t VALUES (1, 'x', 'old')",
				"INSERT INTO "+rrSchema+"._t_new SELECT * FROM "+rrSchema+".t")
			ctx := context.Background()
			ap := NewPostgres(pool, rrPlan(t, pool, "t", "_t_new"))
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			ch := c.change
			ch.Xid = openTx(t, tx, c.stmt)
			if err := ap.Apply(ctx, []cdc.Change{ch}); err != nil {
				t.Fatal(err)
			}
			// The commit becomes visible a moment later.
			committed := make(chan error, 1)
			go func() {
				time.Sleep(300 * time.Millisecond)
				committed <- tx.Commit(ctx)
			}()
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := ap.Refresh(rctx, [][]string{{"1"}}); err != nil {
				t.Fatal(err)
			}
			if err := <-committed; err != nil {
				t.Fatal(err)
			}
			if got, want := rrRows(t, pool, "_t_new"), rrRows(t, pool, "t"); got != want {
				t.Errorf("shadow %s, want %s (the refresh wrote row 1 as it was before the change the applier had applied)", got, want)
			}
		})
	}
}

// CHECKED (passes): a refresh computes the rows it writes and the clashes it
// deletes as the shadow stores them: a USING expression (email || '!'), a
// fill (n), a stored generated column with a unique index over it (g), and
// a partial unique index (on v, but for 'free'). Row 2's refresh deletes the
// shadow's older row 1 (its g) and row 3 (its v), leaves row 4 (v 'free'
// is outside the partial index), and the pending changes write rows 1 and 3
// again.
func TestRefreshReviewComputedValues(t *testing.T) {
	pool := rrPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+rrSchema+".t (id int PRIMARY KEY, email text UNIQUE, v text)",
		"CREATE UNIQUE INDEX ON "+rrSchema+".t (v) WHERE v <> 'free'",
		"CREATE TABLE "+rrSchema+"._t_new (LIKE "+rrSchema+".t INCLUDING ALL)",
		"ALTER TABLE "+rrSchema+"._t_new ADD COLUMN n int, ADD COLUMN g text GENERATED ALWAYS AS (email || '#') STORED UNIQUE",
		"INSERT INTO "+rrSchema+".t VALUES (1, 'x', 'a'), (3, 'w', 'p'), (4, 'q', 'free')",
		"INSERT INTO "+rrSchema+"._t_new (id, email, v, n) SELECT id, email || '!', v, 3 + 4 FROM "+rrSchema+".t")
	plan := rrPlan(t, pool, "t", "_t_new")
	for i, m := range plan.Mapping {
		if m.Source == "email" {
			plan.Mapping[i].Expr, plan.Mapping[i].Reads = "email || '!'", []int{m.SourceIndex}
		}
	}
	plan.Fills = []table.ColumnFill{{Shadow: "n", Expr: "(3 + 4)"}}
	ctx := context.Background()
	ap := NewPostgres(pool, plan)
	x1 := sourceTx(t, pool, "UPDATE "+rrSchema+".t SET email = 'z', v = 'free' WHERE id = 1")
	x3 := sourceTx(t, pool, "UPDATE "+rrSchema+".t SET v = 'free' WHERE id = 3")
	x2 := sourceTx(t, pool, "INSERT INTO "+rrSchema+".t VALUES (2, 'x', 'p')")
	if err := ap.Refresh(ctx, [][]string{{"2"}}); err != nil {
		t.Fatal(err)
	}
	if got, want := rrRows(t, pool, "_t_new"), "(2,x!,p,7,x!#);(4,q!,free,7,q!#)"; got != want {
		t.Errorf("shadow after the refresh %s, want %s", got, want)
	}
	if len(ap.cleared) != 2 {
		t.Errorf("cleared keys %v, want rows 1 and 3", ap.cleared)
	}
	if err := ap.Apply(ctx, []cdc.Change{
		{Op: cdc.Update, After: cdc.Row{"1", "z", "free"}, Xid: x1},
		{Op: cdc.Update, After: cdc.Row{"3", "w", "free"}, Xid: x3},
		{Op: cdc.Insert, After: cdc.Row{"2", "x", "p"}, Xid: x2},
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := rrRows(t, pool, "_t_new"), "(1,z!,free,7,z!#);(2,x!,p,7,x!#);(3,w!,free,7,w!#);(4,q!,free,7,q!#)"; got != want {
		t.Errorf("shadow %s, want %s", got, want)
	}
	if len(ap.cleared) != 0 {
		t.Errorf("cleared keys %v left", ap.cleared)
	}
}
