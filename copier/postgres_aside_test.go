package copier

import (
	"context"
	"fmt"
	"testing"
	"time"

	"osc/table"
)

// TestPostgresCopyAsideKeyCollation: the --alter moves the key column from
// one collation to another (both deterministic) and adds a unique key. A
// chunk skips the keys set aside and reports the rows that clash under the
// new key, comparing the original's keys (its collation) with the aside
// table's and the shadow's (the shadow's collation): that must not fail for
// two implicit collations (SQLSTATE 42P22).
func TestPostgresCopyAsideKeyCollation(t *testing.T) {
	pool := pgTestPool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range []string{
		"CREATE TABLE " + pgTestSchema + `.t (id text COLLATE "C" PRIMARY KEY, email text)`,
		"CREATE TABLE " + pgTestSchema + `._t_new (id text COLLATE "en-x-icu" PRIMARY KEY, email text, CONSTRAINT t_email_key UNIQUE (email))`,
		"INSERT INTO " + pgTestSchema + ".t VALUES ('a', 'x'), ('b', 'y'), ('c', 'z')",
		// The applier wrote row d with 'y' (the original since gave it to
		// b), and set row c aside.
		"INSERT INTO " + pgTestSchema + "._t_new VALUES ('d', 'y')",
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	p := pgTestPlan(t, pool, "t", "_t_new", "id")
	p.NewUnique = []table.UniqueKey{{Name: "t_email_key", Columns: []string{"email"}, Shadow: []string{"email"}}}
	if err := table.CreatePostgresAside(ctx, pool, p); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "INSERT INTO "+pgTestSchema+"._t_osd VALUES ('c', 'w')"); err != nil {
		t.Fatal(err)
	}
	chunk, err := NewPostgres(pool, p).CopyChunk(ctx, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(chunk.Stale); !chunk.Done || got != "[[b]]" {
		t.Errorf("chunk done %v, stale keys %s: want done, [[b]]", chunk.Done, got)
	}
	var got string
	if err := pool.QueryRow(ctx, "SELECT string_agg(id || '=' || email, ',' ORDER BY id COLLATE \"C\") FROM "+pgTestSchema+"._t_new").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "a=x,d=y" {
		t.Errorf("shadow %s, want a=x,d=y: a copied, b skipped (stale), c aside", got)
	}
}
