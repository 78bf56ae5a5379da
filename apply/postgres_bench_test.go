package apply

import (
	"context"
	"fmt"
	"testing"
	"time"

	"osc/cdc"
	"osc/internal/testdb"
)

// BenchmarkPostgresApply times the applier alone (capture excluded) on the
// changes of one UPDATE of every row of osc-bench's table, applied in
// batches of each size; it reports changes/s.
func BenchmarkPostgresApply(b *testing.B) {
	const schema, rows = "applyspeed_bench", 20000
	pool := testdb.OpenPostgres(b, testdb.PostgresConfig(b))
	testdb.ResetPostgresSchema(b, pool, schema)
	testdb.ExecPostgresIn(b, pool, schema, `CREATE TABLE t (
		id bigserial PRIMARY KEY, account_id int NOT NULL, qty int NOT NULL, status varchar(16) NOT NULL,
		label varchar(64) NOT NULL, price numeric(12,2) NOT NULL, created_at timestamp NOT NULL, updated_at timestamp NOT NULL)`,
		`INSERT INTO t (account_id, qty, status, label, price, created_at, updated_at)
		SELECT g % 50000, g % 100, (ARRAY['new', 'paid', 'shipped', 'done'])[1 + g % 4], 'item ' || g || ' ' || md5(g::text),
		(g % 100000) / 100.0, timestamp '2024-01-01' + g * interval '1 second', timestamp '2024-01-01' + g * interval '1 second'
		FROM generate_series(1, `+fmt.Sprint(rows)+`) g`,
		"CREATE TABLE t_shadow (LIKE t INCLUDING ALL)", "INSERT INTO t_shadow SELECT * FROM t")
	p := schemaPlan(b, pool, schema, "t", "t_shadow")
	src := startSource(b, pool, p)
	testdb.ExecPostgresIn(b, pool, schema, "UPDATE t SET qty = qty + 1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := src.EmitMarker(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	var changes []cdc.Change
	for len(changes) == 0 || changes[len(changes)-1].Op != cdc.Marker {
		cs, err := src.Next(ctx, 10000)
		if err != nil {
			b.Fatal(err)
		}
		changes = append(changes, cs...)
		src.Ack(cs[len(cs)-1].Pos)
	}
	changes = changes[:len(changes)-1]
	BenchBatches(b, changes, func() interface {
		Apply(context.Context, []cdc.Change) error
	} {
		return NewPostgres(pool, p)
	})
}
