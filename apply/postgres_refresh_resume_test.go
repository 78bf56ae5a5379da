package apply

import (
	"context"
	"strings"
	"testing"

	"osc/cdc"
	"osc/internal/testdb"
)

// DEFECT (fixed: every resumed run's applier, not only one whose copy was
// done, reads the source for a partial update that finds no row: the
// dialect calls Resumed): the keys a refresh cleared live in memory only,
// and a resumed run whose copy was not done forgets them. Row 1 held 'x' and gave
// it up in a partial update (big unchanged, not sent); row 2 took 'x'. The
// applier, behind, holds row 1 with 'x'; a chunk skips row 2 and its refresh
// deletes the shadow's row 1 (cleared). The engine publishes its checkpoint
// after the refresh, at a position before row 1's update (not applied yet),
// and the run is killed. The resumed run's applier, with no cleared keys and
// the copy not done, applies the partial update of row 1: it finds no row
// and updates nothing, and the resumed copy starts after the watermark,
// past row 1. Row 1 is lost (only a --checksum pass would notice). Before
// the refresh the engine drained the applier (the clash never deleted a
// row); the applier's own clash deletion had the same hole with a
// checkpoint after the clash (TestClashReviewClearedLostOnResume covers
// only a copy that was done), but the refresh deletes on every chunk that
// meets a moved value.
func TestRefreshReviewClearedLostOnResumeDuringCopy(t *testing.T) {
	pool := rrPool(t)
	big := strings.Repeat(randomText(64), 100)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+rrSchema+".t (id int PRIMARY KEY, email text UNIQUE, big text)",
		"CREATE TABLE "+rrSchema+"._t_new (LIKE "+rrSchema+".t INCLUDING ALL)",
		"INSERT INTO "+rrSchema+".t VALUES (1, 'x', '"+big+"')",
		"INSERT INTO "+rrSchema+"._t_new SELECT * FROM "+rrSchema+".t")
	ctx := context.Background()
	plan := rrPlan(t, pool, "t", "_t_new")
	x1 := sourceTx(t, pool, "UPDATE "+rrSchema+".t SET email = 'z' WHERE id = 1")
	x2 := sourceTx(t, pool, "INSERT INTO "+rrSchema+".t VALUES (2, 'x', 'small')")
	killed := NewPostgres(pool, plan)
	if err := killed.Refresh(ctx, [][]string{{"2"}}); err != nil {
		t.Fatal(err)
	}
	resumed := NewPostgres(pool, plan)
	resumed.Resumed()
	if err := resumed.Apply(ctx, []cdc.Change{
		{Op: cdc.Update, After: cdc.Row{"1", "z", nil}, Unchanged: []bool{false, false, true}, Xid: x1},
		{Op: cdc.Insert, After: cdc.Row{"2", "x", "small"}, Xid: x2},
	}); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := pool.QueryRow(ctx, "SELECT string_agg(format('%s %s %s', id, email, big = '"+big+"'), ';' ORDER BY id) FROM "+rrSchema+"._t_new").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "1 z t;2 x f"; got != want {
		t.Errorf("shadow %s, want %s", got, want)
	}
}
