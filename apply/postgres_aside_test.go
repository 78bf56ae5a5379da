package apply

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/cdc"
	"osc/internal/testdb"
	"osc/table"
)

// asideSetup makes schema.t (id, email, note) and its shadow _t_new with a
// new unique key on email, the rows given (src, dst: VALUES lists), the
// table of rows set aside, and the plan's applier.
func asideSetup(t *testing.T, pool *pgxpool.Pool, schema, src, dst string) *Postgres {
	t.Helper()
	testdb.ResetPostgresSchema(t, pool, schema)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+schema+".t (id int PRIMARY KEY, email text, note text)",
		"ALTER TABLE "+schema+".t REPLICA IDENTITY FULL",
		"CREATE TABLE "+schema+"._t_new (id int PRIMARY KEY, email text, note text, CONSTRAINT t_email_key UNIQUE (email))")
	if src != "" {
		testdb.ExecPostgres(t, pool, "INSERT INTO "+schema+".t VALUES "+src)
	}
	if dst != "" {
		testdb.ExecPostgres(t, pool, "INSERT INTO "+schema+"._t_new VALUES "+dst)
	}
	p := schemaPlan(t, pool, schema, "t", "_t_new")
	p.NewUnique = []table.UniqueKey{{Name: "t_email_key", Columns: []string{"email"}, Shadow: []string{"email"}}}
	if err := table.CreatePostgresAside(context.Background(), pool, p); err != nil {
		t.Fatal(err)
	}
	return NewPostgres(pool, p)
}

func asideIns(id, email, note string) cdc.Change {
	return cdc.Change{Op: cdc.Insert, After: cdc.Row{id, email, note}}
}

func asideUpd(id, email, note string) cdc.Change {
	return cdc.Change{Op: cdc.Update, Before: cdc.Row{id, nil, nil}, After: cdc.Row{id, email, note}}
}

// TestPostgresAsideLostRow is the row the old check (ask the original at
// every clash) lost: row 1 holds 'v' (copied); T1 gives row 2 'v' too (the
// original has no unique key), T2 moves row 2 on to 'w'. The applier,
// behind, applies T1 when the original is past T2: row 1 must not be
// dropped for good, since no later change of row 1 writes it again. It waits
// aside and goes back once T2 is applied.
func TestPostgresAsideLostRow(t *testing.T) {
	schema := pgTestName(t)
	ctx := context.Background()
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	t.Cleanup(func() { testdb.ExecPostgres(t, pool, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	ap := asideSetup(t, pool, schema, "(1, 'v', 'q'), (2, 'w', 'k')", "(1, 'v', 'q'), (2, 'a', 'k')")
	if err := ap.Apply(ctx, []cdc.Change{asideUpd("2", "v", "k")}); err != nil {
		t.Fatalf("T1: %v", err)
	}
	if got := schemaRows(t, pool, schema, "_t_osd"); got != "(1,v,q)" {
		t.Errorf("after T1 the rows set aside are %q, want (1,v,q)", got)
	}
	// The move back before T2 leaves row 1 aside: 'v' is row 2's.
	if err := ap.Restore(ctx, false); err != nil {
		t.Fatalf("restore before T2: %v", err)
	}
	if err := ap.Apply(ctx, []cdc.Change{asideUpd("2", "w", "k")}); err != nil {
		t.Fatalf("T2: %v", err)
	}
	if err := ap.Restore(ctx, true); err != nil {
		t.Fatalf("final restore: %v", err)
	}
	if got := schemaRows(t, pool, schema, "_t_new"); got != "(1,v,q);(2,w,k)" {
		t.Errorf("shadow %q, want (1,v,q);(2,w,k): the original's rows", got)
	}
	if got := schemaRows(t, pool, schema, "_t_osd"); got != "" {
		t.Errorf("rows left aside: %q", got)
	}
}

// TestPostgresAsideChanges: a row set aside is a row of the shadow for every
// change: a partial update (unchanged TOAST value) updates it aside, a move
// takes the values it lacks from it, a whole write or a delete takes it out
// of the aside table; and a stale clash resolved under the new key (the
// original never held the value twice) ends with the original's rows.
func TestPostgresAsideChanges(t *testing.T) {
	schema := pgTestName(t)
	ctx := context.Background()
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	t.Cleanup(func() { testdb.ExecPostgres(t, pool, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })

	// Row 1 was inserted with 'x', then gave it up; row 2 then took it, and
	// a chunk copied row 2: the original never held 'x' twice.
	ap := asideSetup(t, pool, schema, "(1, 'w', 'a'), (2, 'x', 'b')", "(2, 'x', 'b')")
	if err := ap.Apply(ctx, []cdc.Change{asideIns("1", "x", "a")}); err != nil {
		t.Fatalf("stale clash: %v", err)
	}
	if err := ap.Apply(ctx, []cdc.Change{asideUpd("1", "w", "a"), asideUpd("2", "x", "b")}); err != nil {
		t.Fatalf("later changes: %v", err)
	}
	if err := ap.Restore(ctx, true); err != nil {
		t.Fatalf("final restore: %v", err)
	}
	if got := schemaRows(t, pool, schema, "_t_new"); got != "(1,w,a);(2,x,b)" {
		t.Errorf("shadow %q, want (1,w,a);(2,x,b)", got)
	}

	// Row 1 is set aside by row 2's 'x'; a partial update of row 1 (note
	// unchanged) updates it aside; a move of row 1 to id 3 takes note from
	// there; row 2 gives 'x' up; everything goes back.
	ap = asideSetup(t, pool, schema, "", "(1, 'x', 'long'), (2, 'y', 'b')")
	if err := ap.Apply(ctx, []cdc.Change{asideUpd("2", "x", "b")}); err != nil {
		t.Fatalf("set row 1 aside: %v", err)
	}
	partial := cdc.Change{Op: cdc.Update, Before: cdc.Row{"1", nil, nil}, After: cdc.Row{"1", "z", nil}, Unchanged: []bool{false, false, true}, Xid: 1}
	if err := ap.Apply(ctx, []cdc.Change{partial}); err != nil {
		t.Fatalf("partial update aside: %v", err)
	}
	if got := schemaRows(t, pool, schema, "_t_osd"); got != "(1,z,long)" {
		t.Errorf("after the partial update the rows set aside are %q, want (1,z,long)", got)
	}
	ap.CopyDone()
	move := cdc.Change{Op: cdc.Update, Before: cdc.Row{"1", "z", nil}, After: cdc.Row{"3", "z", nil}, Unchanged: []bool{false, false, true}, Xid: 2}
	if err := ap.Apply(ctx, []cdc.Change{move}); err != nil {
		t.Fatalf("move of a row set aside: %v", err)
	}
	if got := schemaRows(t, pool, schema, "_t_new"); got != "(2,x,b);(3,z,long)" {
		t.Errorf("after the move the shadow is %q, want (2,x,b);(3,z,long)", got)
	}
	if got := schemaRows(t, pool, schema, "_t_osd"); got != "" {
		t.Errorf("after the move the rows set aside are %q, want none", got)
	}

	// A partial update whose new value clashes, once the copy is over, is
	// resolved within the shadow (the cut-over holds the source locked):
	// row 3 takes 'x', row 2 goes aside; row 2 is deleted, which takes it
	// out of the aside table.
	if err := ap.Apply(ctx, []cdc.Change{{Op: cdc.Update, Before: cdc.Row{"3", nil, nil}, After: cdc.Row{"3", "x", nil}, Unchanged: []bool{false, false, true}, Xid: 3}}); err != nil {
		t.Fatalf("partial update that clashes: %v", err)
	}
	if got := schemaRows(t, pool, schema, "_t_osd"); got != "(2,x,b)" {
		t.Errorf("after the clashing partial update the rows set aside are %q, want (2,x,b)", got)
	}
	if err := ap.Apply(ctx, []cdc.Change{{Op: cdc.Delete, Before: cdc.Row{"2", "x", "b"}}}); err != nil {
		t.Fatalf("delete of a row set aside: %v", err)
	}
	if err := ap.Restore(ctx, true); err != nil {
		t.Fatalf("final restore: %v", err)
	}
	if got := schemaRows(t, pool, schema, "_t_new") + " / " + schemaRows(t, pool, schema, "_t_osd"); got != "(3,x,long) / " {
		t.Errorf("shadow / aside %q, want (3,x,long) / ", got)
	}
}

// TestPostgresAsideDuplicate: rows the original holds with one value of the
// new unique key are kept aside, not dropped, and the final Restore (under
// the cut-over's lock) fails naming the value and the rows' keys: with a row
// already in the shadow, within one batch, in the refresh of a chunk's
// skipped rows, and when the --alter widens the key.
func TestPostgresAsideDuplicate(t *testing.T) {
	schema := pgTestName(t)
	ctx := context.Background()
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	t.Cleanup(func() { testdb.ExecPostgres(t, pool, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	for _, c := range []struct {
		name, src, dst string
		run            func(*Postgres) error
	}{
		{"with a shadow row", "(1, 'x', 'a'), (2, 'x', 'b')", "(1, 'x', 'a')",
			func(ap *Postgres) error { return ap.Apply(ctx, []cdc.Change{asideIns("2", "x", "b")}) }},
		{"within the batch", "(1, 'x', 'a'), (2, 'x', 'b')", "",
			func(ap *Postgres) error {
				return ap.Apply(ctx, []cdc.Change{asideIns("1", "x", "a"), asideIns("2", "x", "b")})
			}},
		{"refresh", "(1, 'x', 'a'), (2, 'x', 'b')", "(1, 'x', 'a')",
			func(ap *Postgres) error { return ap.Refresh(ctx, [][]string{{"2"}}) }},
		{"refresh of rows that clash with each other", "(1, 'x', 'a'), (2, 'x', 'b')", "",
			func(ap *Postgres) error { return ap.Refresh(ctx, [][]string{{"1"}, {"2"}}) }},
	} {
		ap := asideSetup(t, pool, schema, c.src, c.dst)
		if err := c.run(ap); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if err := ap.Restore(ctx, false); err != nil {
			t.Fatalf("%s: restore: %v", c.name, err)
		}
		err := ap.Restore(ctx, true)
		var dup *table.DuplicateError
		if !errors.As(err, &dup) {
			t.Fatalf("%s: %v, want a DuplicateError; shadow %s, aside %s", c.name, err,
				schemaRows(t, pool, schema, "_t_new"), schemaRows(t, pool, schema, "_t_osd"))
		}
		for _, want := range []string{"t_email_key (email)", "('x') in 2 rows", "keys (1), (2)"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q lacks %q", c.name, err, want)
			}
		}
		if got := schemaRows(t, pool, schema, "_t_new") + " / " + schemaRows(t, pool, schema, "_t_osd"); got != "(1,x,a) / (2,x,b)" && got != "(2,x,b) / (1,x,a)" {
			t.Errorf("%s: shadow / aside %q, want both rows, one in each", c.name, got)
		}
	}

	// The --alter widens the key (id) to (tenant, id): rows are told apart
	// by (tenant, id), and the aside table's key is that.
	testdb.ResetPostgresSchema(t, pool, schema)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+schema+".t (id int PRIMARY KEY, tenant int NOT NULL, email text)",
		"CREATE TABLE "+schema+"._t_new (id int NOT NULL, tenant int NOT NULL, email text, PRIMARY KEY (tenant, id), CONSTRAINT t_email_key UNIQUE (email))",
		"INSERT INTO "+schema+".t VALUES (1, 100, 'x'), (2, 200, 'x')")
	p := schemaPlan(t, pool, schema, "t", "_t_new")
	p.RowKey, p.RowKeyIndex = []string{"tenant", "id"}, []int{1, 0}
	p.NewUnique = []table.UniqueKey{{Name: "t_email_key", Columns: []string{"email"}, Shadow: []string{"email"}}}
	if err := table.CreatePostgresAside(ctx, pool, p); err != nil {
		t.Fatal(err)
	}
	ap := NewPostgres(pool, p)
	if err := ap.Apply(ctx, []cdc.Change{{Op: cdc.Insert, After: cdc.Row{"1", "100", "x"}}, {Op: cdc.Insert, After: cdc.Row{"2", "200", "x"}}}); err != nil {
		t.Fatal(err)
	}
	err := ap.Restore(ctx, true)
	var dup *table.DuplicateError
	if !errors.As(err, &dup) || !strings.Contains(err.Error(), "('x') in 2 rows (keys (100, 1), (200, 2))") {
		t.Errorf("widened key: %v, want a DuplicateError naming keys (100, 1), (200, 2)", err)
	}
	// The keys are structured, as MySQL's (mysql_unique_rowkey_test.go),
	// and the message the same.
	if dup != nil && (len(dup.Duplicates) != 1 || !reflect.DeepEqual(dup.Duplicates[0].Keys, [][]string{{"100", "1"}, {"200", "2"}}) || dup.When != table.DuplicateAtCutOver) {
		t.Errorf("duplicates %+v met %q, want keys [[100 1] [200 2]] met %q", dup.Duplicates, dup.When, table.DuplicateAtCutOver)
	}
}
