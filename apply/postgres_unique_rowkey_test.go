package apply

import (
	"context"
	"errors"
	"testing"

	"osc/cdc"
	"osc/internal/testdb"
	"osc/table"
)

// TestPostgresApplyNewUniqueWidenedKey: when the --alter widens the key (id)
// to (tenant, id), the applier tells rows apart by (tenant, id)
// (Plan.Identity), but the new-unique check asks the original by its own
// key (id): it must be given the rows' ids, not their (tenant, id) in the
// shadow key's order, or it asks about other rows (id = tenant) and misses
// the duplicate, and the clash resolution silently keeps one of two rows
// the original holds.
func TestPostgresApplyNewUniqueWidenedKey(t *testing.T) {
	const schema = "rv2_uniq_rowkey"
	ctx := context.Background()
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	testdb.ResetPostgresSchema(t, pool, schema)
	t.Cleanup(func() { testdb.ExecPostgres(t, pool, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+schema+".t (id int PRIMARY KEY, tenant int NOT NULL, email text)",
		"CREATE TABLE "+schema+"._t_new (id int NOT NULL, tenant int NOT NULL, email text, PRIMARY KEY (tenant, id), CONSTRAINT t_email_key UNIQUE (email))",
		"INSERT INTO "+schema+".t VALUES (1, 100, 'x'), (2, 200, 'x')")
	p := schemaPlan(t, pool, schema, "t", "_t_new")
	p.RowKey, p.RowKeyIndex = []string{"tenant", "id"}, []int{1, 0}
	p.NewUnique = []table.UniqueKey{{Name: "t_email_key", Columns: []string{"email"}, Shadow: []string{"email"}}}
	for _, c := range []struct {
		name, dst string
		changes   []cdc.Change
	}{
		{"with a shadow row", "(1, 100, 'x')", []cdc.Change{{Op: cdc.Insert, After: cdc.Row{"2", "200", "x"}}}},
		{"within the batch", "", []cdc.Change{{Op: cdc.Insert, After: cdc.Row{"1", "100", "x"}}, {Op: cdc.Insert, After: cdc.Row{"2", "200", "x"}}}},
	} {
		testdb.ExecPostgres(t, pool, "TRUNCATE "+schema+"._t_new")
		if c.dst != "" {
			testdb.ExecPostgres(t, pool, "INSERT INTO "+schema+"._t_new VALUES "+c.dst)
		}
		err := NewPostgres(pool, p).Apply(ctx, c.changes)
		var dup *table.DuplicateError
		if !errors.As(err, &dup) {
			t.Errorf("%s: two rows the original holds with one email: %v, want a DuplicateError; the shadow holds %s",
				c.name, err, schemaRows(t, pool, schema, "_t_new"))
		}
	}
}
