package apply

import (
	"context"
	"errors"
	"strings"
	"testing"

	"osc/cdc"
	"osc/internal/testdb"
	"osc/table"
)

// TestPostgresAsideKeyCollation: the --alter moves the key column from one
// collation to another (both deterministic: the plan allows it) and adds a
// unique key. A chunk's row that clashes under the new key is refreshed
// from the original, whose key column has the original's collation: the
// statement compares it with the shadow's and the aside table's keys, of
// the shadow's collation, and must not fail for two implicit collations
// (SQLSTATE 42P22, "could not determine which collation to use").
func TestPostgresAsideKeyCollation(t *testing.T) {
	schema := pgTestName(t)
	ctx := context.Background()
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	t.Cleanup(func() { testdb.ExecPostgres(t, pool, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	testdb.ResetPostgresSchema(t, pool, schema)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+schema+`.t (id text COLLATE "C" PRIMARY KEY, email text, note text)`,
		"CREATE TABLE "+schema+`._t_new (id text COLLATE "en-x-icu" PRIMARY KEY, email text, note text, CONSTRAINT t_email_key UNIQUE (email))`,
		// Row a took 'v' from row b, which moved on to 'w'; the shadow
		// holds b's older row, and a chunk skipped a.
		"INSERT INTO "+schema+".t VALUES ('a', 'v', 'q'), ('b', 'w', 'k')",
		"INSERT INTO "+schema+"._t_new VALUES ('b', 'v', 'k')")
	p := schemaPlan(t, pool, schema, "t", "_t_new")
	p.NewUnique = []table.UniqueKey{{Name: "t_email_key", Columns: []string{"email"}, Shadow: []string{"email"}}}
	if err := table.CreatePostgresAside(ctx, pool, p); err != nil {
		t.Fatal(err)
	}
	ap := NewPostgres(pool, p)
	if err := ap.Refresh(ctx, [][]string{{"a"}}); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if got := schemaRows(t, pool, schema, "_t_osd"); got != "(b,v,k)" {
		t.Errorf("rows set aside %q, want (b,v,k)", got)
	}
	// The refresh of b takes it out of the aside table.
	if err := ap.Refresh(ctx, [][]string{{"b"}}); err != nil {
		t.Fatalf("refresh of a row set aside: %v", err)
	}
	if err := ap.Restore(ctx, true); err != nil {
		t.Fatalf("final restore: %v", err)
	}
	if got := schemaRows(t, pool, schema, "_t_new") + " / " + schemaRows(t, pool, schema, "_t_osd"); got != "(a,v,q);(b,w,k) / " {
		t.Errorf("shadow / aside %q, want (a,v,q);(b,w,k) / ", got)
	}
}

// TestPostgresAsideGeneratedKey: the new unique key is over a stored
// generated column of the original, which the shadow computes (the aside
// table does not hold it). A duplicate the original holds fails the final
// restore with a *table.DuplicateError naming the value and the rows.
func TestPostgresAsideGeneratedKey(t *testing.T) {
	schema := pgTestName(t)
	ctx := context.Background()
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	t.Cleanup(func() { testdb.ExecPostgres(t, pool, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	testdb.ResetPostgresSchema(t, pool, schema)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+schema+".t (id int PRIMARY KEY, email text, g text GENERATED ALWAYS AS (lower(email)) STORED)",
		"CREATE TABLE "+schema+"._t_new (id int PRIMARY KEY, email text, g text GENERATED ALWAYS AS (lower(email)) STORED, CONSTRAINT t_g_key UNIQUE (g))",
		"INSERT INTO "+schema+".t VALUES (1, 'X'), (2, 'x')",
		"INSERT INTO "+schema+"._t_new VALUES (1, 'X')")
	p := schemaPlan(t, pool, schema, "t", "_t_new")
	p.NewUnique = []table.UniqueKey{{Name: "t_g_key", Columns: []string{"g"}, Shadow: []string{"g"}}}
	if err := table.CreatePostgresAside(ctx, pool, p); err != nil {
		t.Fatal(err)
	}
	ap := NewPostgres(pool, p)
	if err := ap.Apply(ctx, []cdc.Change{{Op: cdc.Insert, After: cdc.Row{"2", "x", nil}}}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	if got := schemaRows(t, pool, schema, "_t_osd"); got != "(1,X)" {
		t.Errorf("rows set aside %q, want (1,X)", got)
	}
	err := ap.Restore(ctx, true)
	var dup *table.DuplicateError
	if !errors.As(err, &dup) {
		t.Fatalf("final restore: %v, want a DuplicateError", err)
	}
	for _, want := range []string{"t_g_key (g)", "('x') in 2 rows", "keys (1), (2)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestPostgresClashingBatchReadsMissing: a resumed run's batch clashes, so
// its operations are applied one at a time (applyClashing); one is a partial
// update (an unchanged TOAST value) of a row the shadow does not hold, which
// a killed run's clash resolution deleted (its key was in that run's memory
// only). As outside a clashing batch (readMissing), the update must read
// the row from the source: no later change writes it whole.
func TestPostgresClashingBatchReadsMissing(t *testing.T) {
	schema := pgTestName(t)
	ctx := context.Background()
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	t.Cleanup(func() { testdb.ExecPostgres(t, pool, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	testdb.ResetPostgresSchema(t, pool, schema)
	big := strings.Repeat(randomText(64), 100)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+schema+".t (id int PRIMARY KEY, email text UNIQUE, big text)",
		"CREATE TABLE "+schema+"._t_new (LIKE "+schema+".t INCLUDING ALL)",
		"INSERT INTO "+schema+".t VALUES (1, 'x', 'a'), (2, 'y', 'b'), (3, 'z', '"+big+"')",
		// A chunk copied rows 1 and 2; the killed run deleted row 3.
		"INSERT INTO "+schema+"._t_new VALUES (1, 'x', 'a'), (2, 'y', 'b')")
	x1 := sourceTx(t, pool, "UPDATE "+schema+".t SET email = 'w' WHERE id = 1")
	x2 := sourceTx(t, pool, "UPDATE "+schema+".t SET email = 'x' WHERE id = 2")
	x3 := sourceTx(t, pool, "UPDATE "+schema+".t SET email = 'v' WHERE id = 3")
	ap := NewPostgres(pool, schemaPlan(t, pool, schema, "t", "_t_new"))
	ap.Resumed()
	// Row 2's 'x' clashes with row 1's, whose change giving it up the
	// resumed run applies later.
	if err := ap.Apply(ctx, []cdc.Change{
		{Op: cdc.Update, After: cdc.Row{"2", "x", "b"}, Xid: x2},
		{Op: cdc.Update, After: cdc.Row{"3", "v", nil}, Unchanged: []bool{false, false, true}, Xid: x3},
	}); err != nil {
		t.Fatal(err)
	}
	if err := ap.Apply(ctx, []cdc.Change{{Op: cdc.Update, After: cdc.Row{"1", "w", "a"}, Xid: x1}}); err != nil {
		t.Fatal(err)
	}
	if got, want := schemaRows(t, pool, schema, "_t_new"), "(1,w,a);(2,x,b);(3,v,"+big+")"; got != want {
		t.Errorf("shadow %.40s, want %.40s", got, want)
	}
}

// TestPostgresAsideFinalRestoreReadsTable: the applier keeps in memory
// whether the table of rows set aside may hold rows (asideAny), from the
// results of its statements. A statement that set a row aside and committed,
// whose result the applier never read (the connection lost after the
// commit, the engine then retrying the batch, which no longer clashes),
// leaves the flag unset. The final restore, which decides that the shadow
// and the rows aside are the original, must not trust it: it moves the row
// back (or fails naming a duplicate), never leaves it aside for the cleanup
// to drop.
func TestPostgresAsideFinalRestoreReadsTable(t *testing.T) {
	schema := pgTestName(t)
	ctx := context.Background()
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	t.Cleanup(func() { testdb.ExecPostgres(t, pool, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	ap := asideSetup(t, pool, schema, "(1, 'v', 'q'), (2, 'w', 'k')", "(1, 'v', 'q'), (2, 'a', 'k')")
	if err := ap.Restore(ctx, false); err != nil { // reads the (empty) table of rows set aside
		t.Fatal(err)
	}
	// Another applier stands for the statement whose result was lost: row
	// 2 takes 'v', row 1 goes aside.
	lost := NewPostgres(pool, ap.plan)
	if err := lost.Apply(ctx, []cdc.Change{asideUpd("2", "v", "k")}); err != nil {
		t.Fatal(err)
	}
	if err := ap.Apply(ctx, []cdc.Change{asideUpd("2", "v", "k"), asideUpd("2", "w", "k")}); err != nil {
		t.Fatal(err)
	}
	if err := ap.Restore(ctx, true); err != nil {
		t.Fatalf("final restore: %v", err)
	}
	if got := schemaRows(t, pool, schema, "_t_new") + " / " + schemaRows(t, pool, schema, "_t_osd"); got != "(1,v,q);(2,w,k) / " {
		t.Errorf("shadow / aside %q, want (1,v,q);(2,w,k) / : row 1 back", got)
	}
}

// TestPostgresAsideUnsureAfterError: a call that failed may have set rows
// aside in a statement that committed before the failure (its result lost),
// so the applier then takes keys out of the table of rows set aside as it
// writes them: else row 1, written again after the failure, would be in the
// shadow and, stale, in the aside table, and the final restore would take it
// for a duplicate.
func TestPostgresAsideUnsureAfterError(t *testing.T) {
	schema := pgTestName(t)
	ctx := context.Background()
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	t.Cleanup(func() { testdb.ExecPostgres(t, pool, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	ap := asideSetup(t, pool, schema, "(1, 'v', 'q'), (2, 'w', 'k')", "(1, 'v', 'q'), (2, 'a', 'k')")
	if err := ap.Restore(ctx, false); err != nil { // reads the (empty) table of rows set aside
		t.Fatal(err)
	}
	// Another applier stands for the failed call's statement that
	// committed: row 2 takes 'v', row 1 goes aside.
	if err := NewPostgres(pool, ap.plan).Apply(ctx, []cdc.Change{asideUpd("2", "v", "k")}); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := ap.Apply(canceled, []cdc.Change{asideUpd("2", "v", "k")}); err == nil {
		t.Fatal("apply with a canceled context succeeded")
	}
	if err := ap.Apply(ctx, []cdc.Change{asideUpd("2", "v", "k"), asideUpd("1", "x", "q")}); err != nil {
		t.Fatal(err)
	}
	if err := ap.Restore(ctx, true); err != nil {
		t.Fatalf("final restore: %v", err)
	}
	if got := schemaRows(t, pool, schema, "_t_new") + " / " + schemaRows(t, pool, schema, "_t_osd"); got != "(1,x,q);(2,v,k) / " {
		t.Errorf("shadow / aside %q, want (1,x,q);(2,v,k) / ", got)
	}
}
