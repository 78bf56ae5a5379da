package table

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestPostgresShadowUndoesEventTriggers: an event trigger on CREATE TABLE
// that gives every new table an audit trigger, a publication, row level
// security with a policy and a comment (made after the tables, which have
// none of that but their own audit trigger) does so to the shadow and its
// partitions as osc creates them. osc undoes it: the trigger would fire for
// every row osc copies and applies, and the new table would have it besides
// the original's own, which the cut-over makes (every write audited twice);
// the publication would send osc's copy to its subscribers; the plain ALTER
// TABLE creates no table, and leaves none of it. The event trigger acts on
// the test's schema only, and its function is in that schema, so that
// dropping the schema drops the event trigger too.
func TestPostgresShadowUndoesEventTriggers(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
		"CREATE TABLE aud (id int PRIMARY KEY, a int)",
		"CREATE TRIGGER audited AFTER INSERT OR UPDATE OR DELETE ON aud FOR EACH ROW EXECUTE FUNCTION audit_row()",
		"CREATE TABLE paud (id int PRIMARY KEY, a int) PARTITION BY RANGE (id)",
		"CREATE TABLE paud_1 PARTITION OF paud FOR VALUES FROM (0) TO (10)",
		"CREATE TABLE kaud (id int PRIMARY KEY, a int)",
		"CREATE PUBLICATION pgplan_test_every",
		`CREATE FUNCTION every_table() RETURNS event_trigger LANGUAGE plpgsql AS $$
		DECLARE r record;
		BEGIN
			FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE TABLE' AND object_type = 'table' AND schema_name = '`+pgTestSchema+`'
				AND NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = objid AND tgname = 'audited') LOOP
				EXECUTE format('CREATE TRIGGER audited AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION `+pgTestSchema+`.audit_row()', r.object_identity);
				EXECUTE format('ALTER PUBLICATION pgplan_test_every ADD TABLE %s', r.object_identity);
				EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', r.object_identity);
				EXECUTE format('CREATE POLICY mine ON %s USING (true)', r.object_identity);
				EXECUTE format('COMMENT ON TABLE %s IS %L', r.object_identity, 'made ' || now());
			END LOOP;
		END $$`,
		"CREATE EVENT TRIGGER pgplan_test_every_table ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION every_table()")
	t.Cleanup(func() {
		for _, s := range []string{"DROP EVENT TRIGGER IF EXISTS pgplan_test_every_table", "DROP PUBLICATION IF EXISTS pgplan_test_every"} {
			if _, err := pool.Exec(context.Background(), s); err != nil {
				t.Error(err)
			}
		}
	})
	undone := func(what, rel string) string {
		return what + ", which an event trigger gave " + pgTestSchema + "." + rel + " as osc created it, undone"
	}
	// osc's checkpoint table and table of rows set aside (a new unique key)
	// too.
	in, err := pgInspect(t, pool, "kaud")
	if err != nil {
		t.Fatal(err)
	}
	ksh, err := CreatePostgresCheckpointed(context.Background(), pool, in, "ADD CONSTRAINT kaud_a UNIQUE (a)", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	knotes := strings.Join(ksh.Plan.Notes, "\n")
	if !strings.Contains(knotes, undone("trigger audited", "_kaud_osc")) {
		t.Errorf("kaud: notes %q", knotes)
	}
	for _, tc := range []struct {
		table    string
		triggers int // the original's own
		undone   []string
	}{
		{"aud", 1, []string{undone("trigger audited", "_aud_osc"), undone("publication pgplan_test_every", "_aud_osc"),
			undone("policy mine", "_aud_osc"), undone("row level security", "_aud_osc"), undone("a comment", "_aud_osc")}},
		{"paud", 0, []string{undone("trigger audited", "_paud_osc"), undone("trigger audited", "_paud_1_osc"),
			undone("publication pgplan_test_every", "_paud_1_osc"), undone("row level security", "_paud_1_osc")}},
	} {
		sh, err := pgShadow(t, pool, tc.table, "ALTER COLUMN a TYPE bigint")
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		if err := pool.QueryRow(context.Background(), `SELECT ARRAY(
			SELECT g.tgname || ' on ' || c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
				WHERE c.relnamespace = $1::regnamespace AND c.relname LIKE '\_%' AND NOT g.tgisinternal
			UNION ALL SELECT 'publication of ' || c.relname FROM pg_publication_rel r JOIN pg_class c ON c.oid = r.prrelid
				WHERE c.relnamespace = $1::regnamespace AND c.relname LIKE '\_%'
			UNION ALL SELECT 'policy on ' || tablename FROM pg_policies WHERE schemaname = $1::text AND tablename LIKE '\_%'
			UNION ALL SELECT 'rls or comment on ' || relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relname LIKE '\_%'
				AND (relrowsecurity OR obj_description(oid, 'pg_class') IS NOT NULL))`, pgTestSchema).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if len(left) > 0 {
			t.Errorf("%s: left on the shadow tree: %v", tc.table, left)
		}
		notes := strings.Join(sh.Plan.Notes, "\n")
		for _, u := range tc.undone {
			if !strings.Contains(notes, u) {
				t.Errorf("%s: notes %q lack %q", tc.table, notes, u)
			}
		}
		if len(sh.Triggers) != tc.triggers {
			t.Errorf("%s: triggers made at the cut-over: %+v, want the original's %d", tc.table, sh.Triggers, tc.triggers)
		}
	}
}
