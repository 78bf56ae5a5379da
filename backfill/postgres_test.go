package backfill

import (
	"context"
	"os"
	"testing"

	"osc/internal/testdb"
)

// TestPostgresBookkeepingUndoesEventTriggers: an event trigger that gives
// every new table an audit trigger and a publication gave them to the
// backfill's bookkeeping table too, whose checkpoint, written with every
// chunk, the trigger then audited and the publication sent to its
// subscribers; osc undoes them, as on its migration's tables. Event
// triggers fire for the whole database: the test runs where
// OSC_TEST_EVENT_TRIGGERS is set, against a server no one else is using
// (not the shared sandbox).
func TestPostgresBookkeepingUndoesEventTriggers(t *testing.T) {
	if os.Getenv("OSC_TEST_EVENT_TRIGGERS") == "" {
		t.Skip("OSC_TEST_EVENT_TRIGGERS is not set: event triggers fire for every session of the database")
	}
	const schema = "bfet_test"
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	testdb.ResetPostgresSchema(t, pool, schema)
	t.Cleanup(func() {
		for _, s := range []string{"DROP EVENT TRIGGER IF EXISTS bfet_test_every_table", "DROP PUBLICATION IF EXISTS bfet_test_every"} {
			if _, err := pool.Exec(context.Background(), s); err != nil {
				t.Error(err)
			}
		}
	})
	testdb.ExecPostgresIn(t, pool, schema,
		"CREATE TABLE users (id int PRIMARY KEY, a int)",
		"INSERT INTO users SELECT g, 0 FROM generate_series(1, 50) g",
		"CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
		"CREATE PUBLICATION bfet_test_every",
		`CREATE FUNCTION every_table() RETURNS event_trigger LANGUAGE plpgsql AS $$
		DECLARE r record;
		BEGIN
			FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE TABLE' AND object_type = 'table' AND schema_name = '`+schema+`' LOOP
				EXECUTE format('CREATE TRIGGER audited AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION `+schema+`.audit_row()', r.object_identity);
				EXECUTE format('ALTER PUBLICATION bfet_test_every ADD TABLE %s', r.object_identity);
			END LOOP;
		END $$`,
		"CREATE EVENT TRIGGER bfet_test_every_table ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION "+schema+".every_table()")
	ctx := context.Background()
	b := NewPostgres(Options{Schema: schema, Table: "users", Set: "a = id"}, testdb.PostgresDSN())
	defer b.Close()
	if _, err := b.Inspect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Begin(ctx, false); err != nil {
		t.Fatal(err)
	}
	var left []string
	if err := pool.QueryRow(ctx, `SELECT ARRAY(
		SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal
		UNION ALL SELECT 'publication ' || p.pubname FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid WHERE r.prrelid = $1::regclass)`,
		b.book).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("the bookkeeping table %s has what the event trigger gave it: %v", b.book, left)
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Error(err)
	}
}
