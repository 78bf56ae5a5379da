package table

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestPostgresNativeStatements: the server's own answer, on a scratch table
// rolled back, decides which --alters are metadata only.
func TestPostgresNativeStatements(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE TABLE nat (id int PRIMARY KEY, a int, b varchar(10), c text, CONSTRAINT a_pos CHECK (a >= 0) NOT VALID)",
		"CREATE INDEX nat_b ON nat (b)",
		"INSERT INTO nat SELECT g, g, 'b', 'c' FROM generate_series(1, 100) g")
	in, err := pgInspect(t, pool, "nat")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ alter, why string }{
		{"ADD COLUMN n int", ""},
		{"ADD COLUMN n int NOT NULL DEFAULT 5, ADD COLUMN m timestamptz DEFAULT now()", ""},
		{"DROP COLUMN c; RENAME COLUMN a TO a2", ""},
		{"ALTER COLUMN b TYPE varchar(20)", ""},
		{"ALTER COLUMN b TYPE text", ""},
		{"ALTER COLUMN a SET DEFAULT 1, ALTER COLUMN a DROP DEFAULT, ALTER COLUMN b DROP NOT NULL", ""},
		{"ADD CONSTRAINT c_short CHECK (length(c) < 100) NOT VALID", ""},
		{"SET (fillfactor = 70), ALTER COLUMN c SET STATISTICS 500", ""},
		{"ALTER COLUMN a TYPE bigint", "it rewrites the table"},
		{"ALTER COLUMN b TYPE varchar(5)", "it rewrites the table"},
		{"ADD COLUMN r float8 DEFAULT random()", "it rewrites the table"},
		{"ADD COLUMN s serial", "it rewrites the table"},
		{"ADD COLUMN u int UNIQUE", "it builds index nat_u_key"},
		{"ADD CONSTRAINT c_short CHECK (length(c) < 100)", "it adds constraint c_short"},
		{"ALTER COLUMN a SET NOT NULL", "it sets NOT NULL on an existing column"},
		{"VALIDATE CONSTRAINT a_pos", "it validates a constraint"},
		{"ALTER COLUMN nope TYPE int", `the server refuses it on a copy of the table's definition: column "nope" of relation "_nat_osc" does not exist`},
	} {
		stmts, why, err := PostgresNativeStatements(context.Background(), pool, in, c.alter, time.Second)
		switch {
		case err != nil:
			t.Errorf("%s: %v", c.alter, err)
		case c.why == "" && (why != "" || len(stmts) != len(SplitPostgresAlter(c.alter))):
			t.Errorf("%s: not native (%s), want native", c.alter, why)
		case c.why != "" && (stmts != nil || !strings.HasPrefix(why, c.why)):
			t.Errorf("%s: %q (statements %q), want %q", c.alter, why, stmts, c.why)
		}
	}
	if pgTestExists(t, pool, "_nat_osc") {
		t.Error("the scratch table is left")
	}
}
