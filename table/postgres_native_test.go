package table

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestPostgresNativePlan: the server's own answer, on a scratch table
// rolled back, decides which --alters are metadata only.
func TestPostgresNativePlan(t *testing.T) {
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
		{"ADD COLUMN u int, ADD UNIQUE (u)", "run in steps (building and validating first) it fails"},
		{"VALIDATE CONSTRAINT a_pos", "it validates a constraint"},
		{"ALTER COLUMN nope TYPE int", `the server refuses it on a copy of the table's definition: column "nope" of relation "_nat_osc" does not exist`},
	} {
		plan, why, err := PostgresNativePlan(context.Background(), pool, in, c.alter, time.Second)
		switch {
		case err != nil:
			t.Errorf("%s: %v", c.alter, err)
		case c.why == "" && (why != "" || len(plan.Steps) != 1 || len(plan.Steps[0].SQL) != len(SplitPostgresAlter(c.alter))):
			t.Errorf("%s: not native in one step (%s), want native", c.alter, why)
		case c.why != "" && (plan != nil && plan.Steps != nil || !strings.HasPrefix(why, c.why)):
			t.Errorf("%s: %q (plan %v), want %q", c.alter, why, plan, c.why)
		}
	}
	// Renaming or moving the table is refused, before the copy too.
	for _, alter := range []string{"SET SCHEMA public", "RENAME TO nat2", "ADD COLUMN n int; RENAME TO nat2"} {
		_, _, err := PostgresNativePlan(context.Background(), pool, in, alter, time.Second)
		wantErr(t, err, "renames the table or moves it to another schema (RENAME TO, SET SCHEMA)", "run that ALTER TABLE directly")
	}
	if pgTestExists(t, pool, "_nat_osc") {
		t.Error("the scratch table is left")
	}
}

// TestPostgresNativeSteps: the clauses that build an index or read the rows
// run in steps that do not block writers while they read, with the plain
// ALTER's names.
func TestPostgresNativeSteps(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE TABLE natp (id int PRIMARY KEY, a int)",
		"CREATE TABLE nats (k int NOT NULL CONSTRAINT nats_k UNIQUE, a int, b int NOT NULL, c text)",
		"ALTER TABLE nats REPLICA IDENTITY USING INDEX nats_k",
		"CREATE TABLE nats_a_key (x int)", // takes the name ADD UNIQUE (a) would get
		"INSERT INTO natp SELECT g, g FROM generate_series(1, 10) g",
		"INSERT INTO nats SELECT g, g, g, 'c' FROM generate_series(1, 10) g")
	in, err := pgInspect(t, pool, "nats")
	if err != nil {
		t.Fatal(err)
	}
	rel := pgTestSchema + ".nats"
	for _, c := range []struct {
		alter string
		want  []string
	}{
		{"ADD UNIQUE (a)", []string{
			"CREATE UNIQUE INDEX CONCURRENTLY nats_a_key1 ON " + rel + " USING btree (a)",
			"ALTER TABLE " + rel + " ADD CONSTRAINT nats_a_key1 UNIQUE USING INDEX nats_a_key1"}},
		{"ADD CONSTRAINT u UNIQUE (b) INCLUDE (c) DEFERRABLE INITIALLY DEFERRED", []string{
			"CREATE UNIQUE INDEX CONCURRENTLY u ON " + rel + " USING btree (b) INCLUDE (c)",
			"ALTER TABLE " + rel + " ADD CONSTRAINT u UNIQUE USING INDEX u DEFERRABLE INITIALLY DEFERRED"}},
		{"ADD PRIMARY KEY (a, b)", []string{
			"ALTER TABLE " + rel + " ADD CONSTRAINT _osc_nn_2 CHECK (a IS NOT NULL) NOT VALID",
			"ALTER TABLE " + rel + " VALIDATE CONSTRAINT _osc_nn_2",
			"CREATE UNIQUE INDEX CONCURRENTLY nats_pkey ON " + rel + " USING btree (a, b)",
			"ALTER TABLE " + rel + " ADD CONSTRAINT nats_pkey PRIMARY KEY USING INDEX nats_pkey; ALTER TABLE " + rel + " DROP CONSTRAINT _osc_nn_2"}},
		{"ADD CHECK (a > 0), ADD FOREIGN KEY (a) REFERENCES " + pgTestSchema + ".natp", []string{
			"ALTER TABLE " + rel + " ADD CONSTRAINT nats_a_check CHECK ((a > 0)) NOT VALID",
			"ALTER TABLE " + rel + " VALIDATE CONSTRAINT nats_a_check",
			"ALTER TABLE " + rel + " ADD CONSTRAINT nats_a_fkey FOREIGN KEY (a) REFERENCES " + pgTestSchema + ".natp(id) NOT VALID",
			"ALTER TABLE " + rel + " VALIDATE CONSTRAINT nats_a_fkey"}},
		{"ADD COLUMN d int DEFAULT 1, ALTER COLUMN c SET NOT NULL; RENAME COLUMN d TO e", []string{
			"ALTER TABLE " + rel + " ADD CONSTRAINT _osc_nn_4 CHECK (c IS NOT NULL) NOT VALID",
			"ALTER TABLE " + rel + " VALIDATE CONSTRAINT _osc_nn_4",
			"ALTER TABLE " + rel + " ADD COLUMN d int DEFAULT 1; ALTER TABLE " + rel + " ALTER COLUMN c SET NOT NULL; ALTER TABLE " + rel +
				" RENAME COLUMN d TO e; ALTER TABLE " + rel + " DROP CONSTRAINT _osc_nn_4"}},
	} {
		plan, why, err := PostgresNativePlan(context.Background(), pool, in, c.alter, time.Second)
		if err != nil || plan == nil {
			t.Errorf("%s: %v %s", c.alter, err, why)
			continue
		}
		var got []string
		for _, s := range plan.Steps {
			// Unquoted, for legibility.
			got = append(got, strings.ReplaceAll(strings.Join(s.SQL, "; "), `"`, ""))
		}
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%s:\n%s\nwant\n%s", c.alter, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
}
