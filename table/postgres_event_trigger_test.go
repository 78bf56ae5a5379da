package table

import (
	"context"
	"strings"
	"testing"
)

// TestPostgresShadowDropsMadeTriggers: an event trigger that adds a trigger
// to every new table (an audit trigger, say) adds one to the shadow and its
// partitions as osc creates them. osc drops those: they would fire for
// every row it copies and applies, and the new table would have them
// besides the original's own, which the cut-over makes: every write audited
// twice, where the plain ALTER TABLE creates no table. The event trigger
// acts on the test's schema only, and its function is in that schema, so
// that dropping the schema drops the event trigger too.
func TestPostgresShadowDropsMadeTriggers(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
		`CREATE FUNCTION auto_audit() RETURNS event_trigger LANGUAGE plpgsql AS $$
		DECLARE r record;
		BEGIN
			FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE TABLE' AND object_type = 'table' AND schema_name = '`+pgTestSchema+`'
				AND NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = objid AND tgname = 'audited') LOOP
				EXECUTE format('CREATE TRIGGER audited AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION `+pgTestSchema+`.audit_row()', r.object_identity);
			END LOOP;
		END $$`,
		"CREATE EVENT TRIGGER pgplan_test_auto_audit ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION auto_audit()",
		"CREATE TABLE aud (id int PRIMARY KEY, a int)",
		"CREATE TABLE paud (id int PRIMARY KEY, a int) PARTITION BY RANGE (id)",
		"CREATE TABLE paud_1 PARTITION OF paud FOR VALUES FROM (0) TO (10)")
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP EVENT TRIGGER IF EXISTS pgplan_test_auto_audit"); err != nil {
			t.Error(err)
		}
	})
	made := func(rel string) string {
		return "trigger audited, which an event trigger made on " + pgTestSchema + "." + rel + " as osc created it, dropped"
	}
	for _, tc := range []struct {
		table string
		made  []string
	}{
		{"aud", []string{made("_aud_osc")}},
		{"paud", []string{made("_paud_osc"), made("_paud_1_osc")}},
	} {
		sh, err := pgShadow(t, pool, tc.table, "ALTER COLUMN a TYPE bigint")
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		if err := pool.QueryRow(context.Background(), `SELECT coalesce(array_agg(g.tgname || ' on ' || c.relname ORDER BY 1), '{}') FROM pg_trigger g
			JOIN pg_class c ON c.oid = g.tgrelid WHERE c.relnamespace = $1::regnamespace AND c.relname LIKE '\_%' AND NOT g.tgisinternal`, pgTestSchema).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if len(left) > 0 {
			t.Errorf("%s: triggers on the shadow tree: %v", tc.table, left)
		}
		for _, m := range tc.made {
			if notes := strings.Join(sh.Plan.Notes, "\n"); !strings.Contains(notes, m) {
				t.Errorf("%s: notes %q lack %q", tc.table, notes, m)
			}
		}
		if len(sh.Triggers) != 1 || sh.Triggers[0].Name != "audited" {
			t.Errorf("%s: triggers made at the cut-over: %+v, want the original's audited", tc.table, sh.Triggers)
		}
	}
}
