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

// TestPostgresApplyNewUnique: under a new unique key, a clash the resolution
// deletes a shadow row for is fine when the original does not hold the
// value twice now (the shadow row is stale), and fails, naming the value and
// the key, when it does: with a row already in the shadow, within one batch,
// and in the refresh of a chunk's skipped rows.
func TestPostgresApplyNewUnique(t *testing.T) {
	const schema = "uniq_apply_test"
	ctx := context.Background()
	cfg := testdb.PostgresConfig(t)
	pool := testdb.OpenPostgres(t, cfg)
	setup := func(src, dst string) *Postgres {
		testdb.ResetPostgresSchema(t, pool, schema)
		testdb.ExecPostgres(t, pool,
			"CREATE TABLE "+schema+".t (id int PRIMARY KEY, email text)",
			"CREATE TABLE "+schema+"._t_new (id int PRIMARY KEY, email text, CONSTRAINT t_email_key UNIQUE (email))")
		if src != "" {
			testdb.ExecPostgres(t, pool, "INSERT INTO "+schema+".t VALUES "+src)
		}
		if dst != "" {
			testdb.ExecPostgres(t, pool, "INSERT INTO "+schema+"._t_new VALUES "+dst)
		}
		p := schemaPlan(t, pool, schema, "t", "_t_new")
		p.NewUnique = []table.UniqueKey{{Name: "t_email_key", Columns: []string{"email"}, Shadow: []string{"email"}}}
		return NewPostgres(pool, p)
	}
	ins := func(id, email string) cdc.Change { return cdc.Change{Op: cdc.Insert, After: cdc.Row{id, email}} }
	upd := func(id, email string) cdc.Change {
		return cdc.Change{Op: cdc.Update, Before: cdc.Row{id, nil}, After: cdc.Row{id, email}}
	}

	// Row 1 was inserted with 'x', then gave it up; row 2 then took it, and a
	// chunk copied row 2: the original never held 'x' twice.
	ap := setup("(1, 'w'), (2, 'x')", "(2, 'x')")
	if err := ap.Apply(ctx, []cdc.Change{ins("1", "x")}); err != nil {
		t.Fatalf("stale clash: %v", err)
	}
	if err := ap.Apply(ctx, []cdc.Change{upd("1", "w"), upd("2", "x")}); err != nil {
		t.Fatalf("later changes: %v", err)
	}
	var got string
	if err := pool.QueryRow(ctx, "SELECT string_agg(x::text, ';' ORDER BY id) FROM "+schema+"._t_new x").Scan(&got); err != nil || got != "(1,w);(2,x)" {
		t.Errorf("shadow %q (%v), want (1,w);(2,x)", got, err)
	}

	for _, c := range []struct {
		name, src, dst string
		run            func(*Postgres) error
		when           string
	}{
		{"with a shadow row", "(1, 'x'), (2, 'x')", "(1, 'x')",
			func(ap *Postgres) error { return ap.Apply(ctx, []cdc.Change{ins("2", "x")}) }, "applying captured changes"},
		{"within the batch", "(1, 'x'), (2, 'x')", "",
			func(ap *Postgres) error { return ap.Apply(ctx, []cdc.Change{ins("1", "x"), ins("2", "x")}) }, "applying captured changes"},
		{"refresh", "(1, 'x'), (2, 'x')", "(1, 'x')",
			func(ap *Postgres) error { return ap.Refresh(ctx, [][]string{{"2"}}) }, "the copy of a chunk"},
	} {
		err := c.run(setup(c.src, c.dst))
		var dup *table.DuplicateError
		if !errors.As(err, &dup) {
			t.Fatalf("%s: %v, want a DuplicateError", c.name, err)
		}
		for _, want := range []string{"t_email_key (email)", "('x') in 2 rows", c.when} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q lacks %q", c.name, err, want)
			}
		}
	}
	testdb.ExecPostgres(t, pool, "DROP SCHEMA "+schema+" CASCADE")
}
