package apply

import (
	"context"
	"strings"
	"testing"

	"osc/cdc"
	"osc/internal/testdb"
)

// shadowRows is the shadow's rows as text, ordered by id.
func shadowRows(t *testing.T, ap *Postgres) string {
	t.Helper()
	var got string
	if err := ap.pool.QueryRow(context.Background(), "SELECT coalesce(string_agg(x::text, ';' ORDER BY id), '') FROM "+pgTestSchema+"._t_new x").Scan(&got); err != nil {
		t.Fatal(err)
	}
	return got
}

// A chunk copied row 2 after it took the unique value 'x' that row 1 held
// before; the applier, behind the copy, then applies row 1's insert with
// 'x'. The source never held 'x' twice: the shadow's row 2 is newer than the
// change, and the changes after it write it again. Applying must not fail on
// the unique index, whatever its form, and applying everything again (the
// engine's retry) changes nothing.
func TestPostgresApplyClashWithNewerRow(t *testing.T) {
	for _, c := range []struct{ name, index string }{
		{"column", "CREATE UNIQUE INDEX ON " + pgTestSchema + ".t (email)"},
		{"expression_partial", "CREATE UNIQUE INDEX ON " + pgTestSchema + ".t (lower(email), (v IS NULL)) WHERE id > 0"},
		{"collation", `CREATE UNIQUE INDEX ON ` + pgTestSchema + `.t (email COLLATE "C")`},
	} {
		t.Run(c.name, func(t *testing.T) {
			pool := pgTestPool(t)
			testdb.ExecPostgres(t, pool,
				"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, email text, v text)", c.index,
				"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
				"INSERT INTO "+pgTestSchema+"._t_new VALUES (2, 'x', 'new'), (5, 'y', 'other')")
			ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
			changes := []cdc.Change{
				{Op: cdc.Insert, After: cdc.Row{"1", "x", "old"}},
				{Op: cdc.Insert, After: cdc.Row{"4", "z", "v"}},
				{Op: cdc.Delete, Before: cdc.Row{"1", nil, nil}},
				{Op: cdc.Insert, After: cdc.Row{"2", "x", "new"}},
			}
			for range 2 {
				if err := ap.Apply(context.Background(), changes); err != nil {
					t.Fatal(err)
				}
				if got, want := shadowRows(t, ap), "(2,x,new);(4,z,v);(5,y,other)"; got != want {
					t.Errorf("shadow %s, want %s", got, want)
				}
			}
		})
	}
}

// An exclusion constraint's clash with a newer row of another key (the copy
// read it after the change being applied) is resolved as a unique index's,
// under the constraint's operators: the newer row is deleted and its key
// remembered (a later change writes it again). The rows that do not clash
// stay. Before, the clash failed the apply (conflicting key value violates
// exclusion constraint), at the row or, deferred, at the commit.
func TestPostgresApplyExclusionClashWithNewerRow(t *testing.T) {
	for _, c := range []struct{ name, deferrable string }{{"immediate", ""}, {"deferred", " DEFERRABLE INITIALLY DEFERRED"}} {
		t.Run(c.name, func(t *testing.T) {
			pool := pgTestPool(t)
			testdb.ExecPostgres(t, pool,
				"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, room int, r int4range, CONSTRAINT t_excl EXCLUDE USING gist (r WITH &&) WHERE (room > 0)"+c.deferrable+")",
				"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
				"INSERT INTO "+pgTestSchema+"._t_new VALUES (2, 1, '[10,20)'), (5, 1, '[30,40)'), (6, 0, '[10,20)')")
			ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
			changes := []cdc.Change{{Op: cdc.Insert, After: cdc.Row{"1", "1", "[15,25)"}}}
			for range 2 {
				if err := ap.Apply(context.Background(), changes); err != nil {
					t.Fatal(err)
				}
				if got, want := shadowRows(t, ap), `(1,1,"[15,25)");(5,1,"[30,40)");(6,0,"[10,20)")`; got != want {
					t.Errorf("shadow %s, want %s", got, want)
				}
			}
			if len(ap.cleared) != 1 {
				t.Errorf("cleared keys %v, want row 2's", ap.cleared)
			}
		})
	}
}

// A unique index whose clashes the applier cannot judge by SQL equality
// (here NULLS NOT DISTINCT) is left alone: the clash fails the apply, as it
// did before, rather than deleting a row that may not clash.
func TestPostgresApplyClashUnresolved(t *testing.T) {
	pool := pgTestPool(t)
	var version int
	if err := pool.QueryRow(context.Background(), "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version < 150000 {
		t.Skip("NULLS NOT DISTINCT needs PostgreSQL 15")
	}
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, email text, v text)",
		"CREATE UNIQUE INDEX ON "+pgTestSchema+".t (email) NULLS NOT DISTINCT",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+"._t_new VALUES (2, 'x', 'new')")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	err := ap.Apply(context.Background(), []cdc.Change{{Op: cdc.Insert, After: cdc.Row{"1", "x", "old"}}})
	if err == nil || !strings.Contains(err.Error(), "23505") {
		t.Fatalf("apply: %v, want the unique violation", err)
	}
	if got, want := shadowRows(t, ap), "(2,x,new)"; got != want {
		t.Errorf("shadow %s, want %s", got, want)
	}
}

// The row a clash deleted comes back through the changes after the one
// applied; when the first of them is a partial update (its TOASTed value
// unchanged, not sent), there is no row for it to update: the applier reads
// the row from the source instead. Once in one Apply, once across Applies.
func TestPostgresApplyClashThenPartialUpdate(t *testing.T) {
	for _, split := range []bool{false, true} {
		name := "one_apply"
		if split {
			name = "separate_applies"
		}
		t.Run(name, func(t *testing.T) {
			pool := pgTestPool(t)
			big := strings.Repeat(randomText(64), 100)
			testdb.ExecPostgres(t, pool,
				"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, email text UNIQUE, big text)",
				"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
				"INSERT INTO "+pgTestSchema+".t VALUES (2, 'y', '"+big+"')")
			x1 := sourceTx(t, pool, "INSERT INTO "+pgTestSchema+".t VALUES (3, 'x', 'small')")
			x2 := sourceTx(t, pool, "DELETE FROM "+pgTestSchema+".t WHERE id = 3")
			x3 := sourceTx(t, pool, "UPDATE "+pgTestSchema+".t SET email = 'x' WHERE id = 2")
			// A chunk copies the table as it is now.
			testdb.ExecPostgres(t, pool, "INSERT INTO "+pgTestSchema+"._t_new SELECT * FROM "+pgTestSchema+".t")
			ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
			changes := []cdc.Change{
				{Op: cdc.Insert, After: cdc.Row{"3", "x", "small"}, Xid: x1},
				{Op: cdc.Delete, Before: cdc.Row{"3", nil, nil}, Xid: x2},
				{Op: cdc.Update, After: cdc.Row{"2", "x", nil}, Unchanged: []bool{false, false, true}, Xid: x3},
			}
			ctx := context.Background()
			if split {
				for i := range changes {
					if err := ap.Apply(ctx, changes[i:i+1]); err != nil {
						t.Fatal(err)
					}
				}
			} else if err := ap.Apply(ctx, changes); err != nil {
				t.Fatal(err)
			}
			if got, want := shadowRows(t, ap), "(2,x,"+big+")"; got != want {
				t.Errorf("shadow %.80s, want %.80s", got, want)
			}
			if len(ap.cleared) != 0 {
				t.Errorf("keys still cleared: %v", ap.cleared)
			}
		})
	}
}

// A partial update that clashes itself: row 1 took 'x', gave it up, and row
// 2 took it, all before a chunk copied both rows; applying row 1's first
// update (its TOASTed value not sent) meets row 2. The applier reads row 1
// from the source, which holds it as the later changes leave it.
func TestPostgresApplyPartialUpdateClash(t *testing.T) {
	pool := pgTestPool(t)
	big1, big2 := strings.Repeat(randomText(64), 100), strings.Repeat(randomText(64), 100)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, email text UNIQUE, big text)",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+".t VALUES (1, 'a', '"+big1+"'), (2, 'y', '"+big2+"')")
	x1 := sourceTx(t, pool, "UPDATE "+pgTestSchema+".t SET email = 'x' WHERE id = 1")
	x2 := sourceTx(t, pool, "UPDATE "+pgTestSchema+".t SET email = 'z' WHERE id = 1")
	x3 := sourceTx(t, pool, "UPDATE "+pgTestSchema+".t SET email = 'x' WHERE id = 2")
	testdb.ExecPostgres(t, pool, "INSERT INTO "+pgTestSchema+"._t_new SELECT * FROM "+pgTestSchema+".t")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	unchanged := []bool{false, false, true}
	err := ap.Apply(context.Background(), []cdc.Change{
		{Op: cdc.Update, After: cdc.Row{"1", "x", nil}, Unchanged: unchanged, Xid: x1},
		{Op: cdc.Update, After: cdc.Row{"1", "z", nil}, Unchanged: unchanged, Xid: x2},
		{Op: cdc.Update, After: cdc.Row{"2", "x", nil}, Unchanged: unchanged, Xid: x3},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := shadowRows(t, ap), "(1,z,"+big1+");(2,x,"+big2+")"; got != want {
		t.Errorf("shadow %.100s, want %.100s", got, want)
	}
}
