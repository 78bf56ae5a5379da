package apply

import (
	"context"
	"testing"

	"osc/cdc"
	"osc/internal/testdb"
	"osc/table"
)

// The plan's fills (an added column's one value, see table.pgMissingValue)
// go into every row the applier writes: an insert, a row a move writes from
// the source during the copy, and one it moves within the shadow after it.
// The column's DEFAULT (99) would give another value.
func TestPostgresApplyFills(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, v text, big text)",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"ALTER TABLE "+pgTestSchema+"._t_new ADD COLUMN n int DEFAULT 99",
		"INSERT INTO "+pgTestSchema+".t VALUES (1, 'one', 'b1'), (3, 'three', 'b3'), (5, 'five', 'b5')",
		"INSERT INTO "+pgTestSchema+"._t_new SELECT *, 7 FROM "+pgTestSchema+".t WHERE id = 5")
	x1 := sourceTx(t, pool, "UPDATE "+pgTestSchema+".t SET id = 2 WHERE id = 1")
	x2 := sourceTx(t, pool, "UPDATE "+pgTestSchema+".t SET id = 6 WHERE id = 5")
	plan := pgTestPlan(t, pool, "t", "_t_new")
	plan.Fills = []table.ColumnFill{{Shadow: "n", Expr: "(3 + 4)"}}
	ap := NewPostgres(pool, plan)
	unchanged := []bool{false, false, true}
	ctx := context.Background()
	if err := ap.Apply(ctx, []cdc.Change{
		{Op: cdc.Insert, After: cdc.Row{"4", "four", "b4"}},
		{Op: cdc.Update, Before: cdc.Row{"1", nil, nil}, After: cdc.Row{"2", "one", nil}, Unchanged: unchanged, Xid: x1},
	}); err != nil {
		t.Fatal(err)
	}
	ap.CopyDone()
	if err := ap.Apply(ctx, []cdc.Change{
		{Op: cdc.Update, Before: cdc.Row{"5", nil, nil}, After: cdc.Row{"6", "five", nil}, Unchanged: unchanged, Xid: x2},
	}); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := pool.QueryRow(ctx, "SELECT string_agg(format('%s,%s,%s', id, big, n), ';' ORDER BY id) FROM "+pgTestSchema+"._t_new").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "2,b1,7;4,b4,7;6,b5,7"; got != want {
		t.Errorf("shadow %s, want %s", got, want)
	}
}
