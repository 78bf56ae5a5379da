package cutover

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/internal/testdb"
	"osc/table"
)

const (
	pgTestSchema = "pgcut_test"
	pgTestRole   = "pgcut_test_reader"
)

// pgTestPool connects to the sandbox and creates a fresh test schema, with
// the given statements run in it, and a fresh role; both are dropped when the
// test ends.
func pgTestPool(t *testing.T, stmts ...string) *pgxpool.Pool {
	t.Helper()
	pool := testdb.Connect(t, "PostgreSQL", func(ctx context.Context) (*pgxpool.Pool, error) {
		return table.OpenPostgres(ctx, testdb.PostgresDSN())
	})
	t.Cleanup(pool.Close)
	// The role goes after the schema, whose objects may hold its grants.
	dropRole := "DROP ROLE IF EXISTS " + pgTestRole
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, dropRole); err != nil {
			t.Errorf("drop test role: %v", err)
		}
	})
	testdb.ResetPostgresSchema(t, pool, pgTestSchema)
	testdb.ExecPostgres(t, pool, dropRole)
	testdb.ExecPostgresIn(t, pool, pgTestSchema, append([]string{"CREATE ROLE " + pgTestRole}, stmts...)...)
	return pool
}

func pgQuery[T any](t *testing.T, pool *pgxpool.Pool, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// pgTestShadow inspects the table, creates the shadow with alter, copies
// the rows into it and builds its indexes (what the copier would do).
func pgTestShadow(t *testing.T, pool *pgxpool.Pool, name, alter string) *table.PostgresShadow {
	t.Helper()
	ctx := context.Background()
	in, err := table.InspectPostgresTable(ctx, pool, table.NewPostgresNames(pgTestSchema, name))
	if err != nil {
		t.Fatal(err)
	}
	sh, err := table.CreatePostgresShadow(ctx, pool, in, alter, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var cols, src []string
	for _, m := range sh.Plan.Mapping {
		cols, src = append(cols, table.QuotePostgres(m.Shadow)), append(src, table.QuotePostgres(m.Source))
	}
	testdb.ExecPostgresIn(t, pool, pgTestSchema, fmt.Sprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s",
		table.QuotePostgres(pgTestSchema, sh.Plan.Shadow.Name), strings.Join(cols, ", "), strings.Join(src, ", "),
		table.QuotePostgres(pgTestSchema, name)))
	// The indexes the engine builds after the copy.
	if err := table.BuildPostgresIndexes(ctx, pool, pgTestSchema, sh.Plan.Shadow.Name, sh.Indexes, 2); err != nil {
		t.Fatal(err)
	}
	return sh
}

// pgWriters runs one goroutine per statement, each executing it in a loop
// until stop, counting successes and keeping the first error.
type pgWriters struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	ok     atomic.Int64
	mu     sync.Mutex
	errors []error
}

func pgStartWriters(pool *pgxpool.Pool, stmts ...string) *pgWriters {
	w := &pgWriters{stop: make(chan struct{})}
	for _, s := range stmts {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for {
				select {
				case <-w.stop:
					return
				default:
				}
				if _, err := pool.Exec(context.Background(), s); err != nil {
					w.mu.Lock()
					w.errors = append(w.errors, fmt.Errorf("%s: %w", s, err))
					w.mu.Unlock()
					return
				}
				w.ok.Add(1)
			}
		}()
	}
	return w
}

func (w *pgWriters) finish(t *testing.T) {
	t.Helper()
	close(w.stop)
	w.wg.Wait()
	for _, err := range w.errors {
		t.Errorf("writer: %v", err)
	}
	if w.ok.Load() == 0 {
		t.Error("the writers wrote nothing")
	}
}

func TestPostgresCutOverUnderWrites(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE TABLE parent (id int PRIMARY KEY)",
		"INSERT INTO parent VALUES (1), (2)",
		"CREATE TABLE acct (id bigserial PRIMARY KEY, name text NOT NULL, p int REFERENCES parent, code int UNIQUE)",
		"CREATE INDEX acct_name ON acct (name)",
		"INSERT INTO acct (name, p, code) SELECT 'n' || i, 1 + i % 2, i FROM generate_series(1, 200) i",
		"CREATE VIEW acct_v WITH (security_barrier) AS SELECT id, name FROM acct WHERE id > 0",
		"CREATE TABLE orders (id serial PRIMARY KEY, acct_id bigint REFERENCES acct (id))",
		"INSERT INTO orders (acct_id) VALUES (1), (2)",
		"COMMENT ON TABLE acct IS 'the accounts'",
		"ALTER TABLE acct REPLICA IDENTITY FULL",
		"GRANT SELECT ON acct TO "+pgTestRole,
		"GRANT UPDATE (name) ON acct TO "+pgTestRole,
		"GRANT SELECT ON acct_v TO "+pgTestRole,
	)
	sh := pgTestShadow(t, pool, "acct", "ADD COLUMN extra int DEFAULT 7")
	oldOID := pgQuery[uint32](t, pool, "SELECT 'pgcut_test.acct'::regclass::oid")

	w := pgStartWriters(pool,
		"INSERT INTO pgcut_test.acct (name, p) VALUES ('w', 1)",
		"INSERT INTO pgcut_test.orders (acct_id) VALUES (1)",
		"SELECT count(*) FROM pgcut_test.acct_v",
	)
	time.Sleep(100 * time.Millisecond)
	drained := 0
	err := Postgres(context.Background(), pool, sh.Plan, PostgresOptions{Renames: sh.Renames, Checks: sh.Checks, RestartedIdentity: sh.RestartedIdentity, LockTimeout: 2 * time.Second, Retries: 10, ForeignKeys: sh.ForeignKeys}, nil,
		func(ctx context.Context) error {
			drained++
			time.Sleep(50 * time.Millisecond) // writers queue up on the lock meanwhile
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	w.finish(t)
	if drained != 1 {
		t.Errorf("drained %d times", drained)
	}

	if oid := pgQuery[uint32](t, pool, "SELECT 'pgcut_test.acct'::regclass::oid"); oid == oldOID {
		t.Fatal("acct is still the original table")
	}
	if got := pgQuery[uint32](t, pool, "SELECT 'pgcut_test._acct_old'::regclass::oid"); got != oldOID {
		t.Errorf("_acct_old is %d, want the original %d", got, oldOID)
	}
	if n := pgQuery[int64](t, pool, "SELECT count(*) FROM pgcut_test.acct WHERE extra = 7 AND name = 'w'"); n == 0 {
		t.Error("no writer row reached the new table")
	}
	if n := pgQuery[int](t, pool, "SELECT count(*) FROM pg_class WHERE relname = '_acct_osc' AND relnamespace = 'pgcut_test'::regnamespace"); n != 0 {
		t.Error("the shadow name still exists")
	}

	// Names of indexes (and the constraints they back) carried over.
	idx := pgQuery[[]string](t, pool, `SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = 'pgcut_test.acct'::regclass`)
	if fmt.Sprint(idx) != "[acct_code_key acct_name acct_pkey]" {
		t.Errorf("new table's indexes %v", idx)
	}
	oldIdx := pgQuery[[]string](t, pool, `SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = 'pgcut_test._acct_old'::regclass`)
	if fmt.Sprint(oldIdx) != "[acct_code_key_old acct_name_old acct_pkey_old]" {
		t.Errorf("old table's indexes %v", oldIdx)
	}
	if c := pgQuery[string](t, pool, "SELECT conname::text FROM pg_constraint WHERE conrelid = 'pgcut_test.acct'::regclass AND contype = 'p'"); c != "acct_pkey" {
		t.Errorf("primary key constraint %q", c)
	}

	// The view reads the new table, with its options.
	if n := pgQuery[int64](t, pool, `SELECT count(*) FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
		WHERE r.ev_class = 'pgcut_test.acct_v'::regclass AND d.refobjid = 'pgcut_test.acct'::regclass`); n == 0 {
		t.Error("the view does not read the new table")
	}
	if n := pgQuery[int64](t, pool, `SELECT count(*) FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
		WHERE r.ev_class = 'pgcut_test.acct_v'::regclass AND d.refobjid = $1`, oldOID); n != 0 {
		t.Error("the view still reads the old table")
	}
	if o := pgQuery[[]string](t, pool, "SELECT reloptions FROM pg_class WHERE oid = 'pgcut_test.acct_v'::regclass"); fmt.Sprint(o) != "[security_barrier=true]" {
		t.Errorf("view options %v", o)
	}

	// Foreign keys: the child's points at the new table, the new table
	// references the parent, the old table references nothing; all valid.
	fks := pgQuery[[]string](t, pool, `SELECT array_agg(format('%s %s->%s %s', conname, conrelid::regclass, confrelid::regclass, convalidated) ORDER BY conname)
		FROM pg_constraint WHERE contype = 'f' AND connamespace = 'pgcut_test'::regnamespace`)
	if want := "[acct_p_fkey pgcut_test.acct->pgcut_test.parent t orders_acct_id_fkey pgcut_test.orders->pgcut_test.acct t]"; fmt.Sprint(fks) != want {
		t.Errorf("foreign keys %v, want %s", fks, want)
	}

	// Sequence, grants, comment, replica identity.
	if s := pgQuery[string](t, pool, "SELECT pg_get_serial_sequence('pgcut_test.acct', 'id')"); s != "pgcut_test.acct_id_seq" {
		t.Errorf("serial sequence %q", s)
	}
	for _, q := range []string{
		"SELECT has_table_privilege('" + pgTestRole + "', 'pgcut_test.acct', 'SELECT')",
		"SELECT has_column_privilege('" + pgTestRole + "', 'pgcut_test.acct', 'name', 'UPDATE')",
		"SELECT NOT has_table_privilege('" + pgTestRole + "', 'pgcut_test.acct', 'INSERT')",
		"SELECT NOT has_column_privilege('" + pgTestRole + "', 'pgcut_test.acct', 'p', 'UPDATE')",
		"SELECT obj_description('pgcut_test.acct'::regclass, 'pg_class') = 'the accounts'",
		"SELECT relreplident = 'f' FROM pg_class WHERE oid = 'pgcut_test.acct'::regclass",
		"SELECT relowner = (SELECT relowner FROM pg_class WHERE oid = 'pgcut_test._acct_old'::regclass) FROM pg_class WHERE oid = 'pgcut_test.acct'::regclass",
	} {
		if !pgQuery[bool](t, pool, q) {
			t.Errorf("%s: false", q)
		}
	}

	// Nothing depends on the old table any more: it drops without CASCADE,
	// and the new table keeps working.
	if err := table.DropPostgresTable(context.Background(), pool, pgTestSchema, "_acct_old"); err != nil {
		t.Fatal(err)
	}
	maxID := pgQuery[int64](t, pool, "SELECT max(id) FROM pgcut_test.acct")
	if id := pgQuery[int64](t, pool, "INSERT INTO pgcut_test.acct (name, p) VALUES ('after', 2) RETURNING id"); id <= maxID {
		t.Errorf("insert after the cut-over got id %d, max was %d", id, maxID)
	}
	testdb.ExecPostgresIn(t, pool, pgTestSchema, "INSERT INTO orders (acct_id) VALUES (1)")
	if _, err := pool.Exec(context.Background(), "INSERT INTO pgcut_test.orders (acct_id) VALUES (-1)"); err == nil {
		t.Error("the moved foreign key does not hold")
	}
}

func TestPostgresCutOverIdentity(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)",
		"INSERT INTO ident (v) SELECT 'x' FROM generate_series(1, 100)",
	)
	sh := pgTestShadow(t, pool, "ident", "ALTER COLUMN id TYPE bigint")
	w := pgStartWriters(pool, "INSERT INTO pgcut_test.ident (v) VALUES ('w')")
	time.Sleep(50 * time.Millisecond)
	if err := Postgres(context.Background(), pool, sh.Plan, PostgresOptions{Renames: sh.Renames, Checks: sh.Checks, RestartedIdentity: sh.RestartedIdentity, LockTimeout: time.Second, Retries: 5}, nil,
		func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	w.finish(t)
	if s := pgQuery[string](t, pool, "SELECT pg_get_serial_sequence('pgcut_test.ident', 'id')"); s != "pgcut_test.ident_id_seq" {
		t.Errorf("identity sequence %q", s)
	}
	if s := pgQuery[string](t, pool, "SELECT pg_get_serial_sequence('pgcut_test._ident_old', 'id')"); s != "pgcut_test.ident_id_seq_old" {
		t.Errorf("old identity sequence %q", s)
	}
	oldMax := pgQuery[int64](t, pool, "SELECT max(id)::bigint FROM pgcut_test._ident_old")
	if id := pgQuery[int64](t, pool, "INSERT INTO pgcut_test.ident (v) VALUES ('after') RETURNING id"); id <= oldMax {
		t.Errorf("identity after the cut-over gave %d, the old table reached %d", id, oldMax)
	}
}

// A session holding a lock on the table delays the cut-over, which retries
// with growing timeouts; a lock held for good makes it give up with both
// tables untouched.
func TestPostgresCutOverRetries(t *testing.T) {
	pool := pgTestPool(t, "CREATE TABLE busy (id int PRIMARY KEY)", "INSERT INTO busy VALUES (1)")
	sh := pgTestShadow(t, pool, "busy", "ADD COLUMN c int")
	ctx := context.Background()
	hold := func() func() {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SELECT * FROM pgcut_test.busy"); err != nil {
			t.Fatal(err)
		}
		return func() { tx.Rollback(ctx) }
	}

	release := hold()
	var tries []time.Duration
	err := Postgres(ctx, pool, sh.Plan, PostgresOptions{Renames: sh.Renames, Checks: sh.Checks, RestartedIdentity: sh.RestartedIdentity, LockTimeout: 150 * time.Millisecond, Retries: 3}, nil,
		func(context.Context) error { t.Error("drained without the lock"); return nil })
	release()
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 attempts") || !pgRetryable(errors.Unwrap(err)) {
		t.Fatalf("err %v, want giving up after 3 attempts on a lock timeout", err)
	}
	if n := pgQuery[int](t, pool, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'pgcut_test' AND table_name = 'busy'"); n != 1 {
		t.Errorf("busy has %d columns: it changed", n)
	}
	if !pgQuery[bool](t, pool, "SELECT to_regclass('pgcut_test._busy_osc') IS NOT NULL") {
		t.Error("the shadow is gone after a failed cut-over")
	}

	release = hold()
	go func() {
		time.Sleep(300 * time.Millisecond)
		release()
	}()
	start := time.Now()
	err = Postgres(ctx, pool, sh.Plan, PostgresOptions{Renames: sh.Renames, Checks: sh.Checks, RestartedIdentity: sh.RestartedIdentity, LockTimeout: 150 * time.Millisecond, Retries: 20}, nil,
		func(context.Context) error { tries = append(tries, time.Since(start)); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(tries) != 1 || tries[0] < 300*time.Millisecond {
		t.Errorf("drained at %v, want once after the blocker released its lock", tries)
	}
	if n := pgQuery[int](t, pool, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'pgcut_test' AND table_name = 'busy'"); n != 2 {
		t.Errorf("busy has %d columns after the cut-over", n)
	}
}

// A drain that does not finish in time rolls the attempt back and retries.
func TestPostgresCutOverSlowDrain(t *testing.T) {
	pool := pgTestPool(t, "CREATE TABLE slow (id int PRIMARY KEY)")
	sh := pgTestShadow(t, pool, "slow", "ADD COLUMN c int")
	calls := 0
	var attempts []time.Duration
	attempted := func(d time.Duration) { attempts = append(attempts, d) }
	err := Postgres(context.Background(), pool, sh.Plan, PostgresOptions{Renames: sh.Renames, Checks: sh.Checks, RestartedIdentity: sh.RestartedIdentity, LockTimeout: 100 * time.Millisecond, Retries: 5, Attempted: attempted}, nil,
		func(ctx context.Context) error {
			calls++
			if calls == 1 {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("drain called %d times, want 2", calls)
	}
	// Both attempts are reported; the first held the lock for its drain's
	// whole timeout.
	if len(attempts) != 2 || attempts[0] < 100*time.Millisecond {
		t.Errorf("attempts reported: %v, want 2, the first at least 100ms", attempts)
	}
}

// DDL on the original after the shadow was planned (it reaches logical
// decoding only with a later row change) fails the cut-over before the swap.
func TestPostgresCutOverRefusesChangedTable(t *testing.T) {
	pool := pgTestPool(t, "CREATE TABLE drift (id int PRIMARY KEY, v text)", "INSERT INTO drift VALUES (1, 'a')")
	sh := pgTestShadow(t, pool, "drift", "ADD COLUMN c int")
	testdb.ExecPostgresIn(t, pool, pgTestSchema, "ALTER TABLE pgcut_test.drift ADD COLUMN added_meanwhile int")
	err := Postgres(context.Background(), pool, sh.Plan, PostgresOptions{Renames: sh.Renames, Checks: sh.Checks, RestartedIdentity: sh.RestartedIdentity, LockTimeout: time.Second, Retries: 3}, nil,
		func(context.Context) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "changed during the migration") || !strings.Contains(err.Error(), "added_meanwhile") {
		t.Fatalf("err %v, want the cut-over refused because the table changed", err)
	}
	if !pgQuery[bool](t, pool, "SELECT to_regclass('pgcut_test._drift_osc') IS NOT NULL AND to_regclass('pgcut_test._drift_old') IS NULL") {
		t.Error("the tables were swapped anyway")
	}
}

// A change during the run to what the shadow took from the original when it
// was made, and the cut-over does not read again, refuses the cut-over
// (naming it): a CLUSTER ON index, a trigger's comment, the TOAST table's
// storage parameters, the options of an identity column's sequence. Each was
// lost before: the new table kept what the original had when the run began.
func TestPostgresCutOverRefusesChangedProperties(t *testing.T) {
	for _, c := range []struct{ name, change, want string }{
		{"cluster", "ALTER TABLE pgcut_test.props CLUSTER ON props_v", "clustered=t"},
		{"trigger_comment", "COMMENT ON TRIGGER props_trg ON pgcut_test.props IS 'set meanwhile'", "comment=set meanwhile"},
		{"toast_options", "ALTER TABLE pgcut_test.props SET (toast.autovacuum_enabled = false)", "toast options={autovacuum_enabled=false}"},
		{"identity_options", "ALTER TABLE pgcut_test.props ALTER COLUMN c SET INCREMENT BY 5", "increment=5"},
		{"identity_sequence_options", "ALTER SEQUENCE pgcut_test.props_c_seq CACHE 7", "cache=7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pool := pgTestPool(t, "CREATE TABLE props (id int PRIMARY KEY, c int GENERATED BY DEFAULT AS IDENTITY, v text)",
				"CREATE INDEX props_v ON props (v)",
				"CREATE TRIGGER props_trg BEFORE UPDATE ON props FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
				"INSERT INTO props (id, v) VALUES (1, 'a')")
			sh := pgTestShadow(t, pool, "props", "ADD COLUMN n int")
			testdb.ExecPostgresIn(t, pool, pgTestSchema, c.change)
			err := Postgres(context.Background(), pool, sh.Plan, PostgresOptions{Renames: sh.Renames, Checks: sh.Checks, RestartedIdentity: sh.RestartedIdentity,
				AlwaysIdentity: sh.AlwaysIdentity, Triggers: sh.Triggers, SourceDefinition: sh.SourceDefinition, LockTimeout: time.Second, Retries: 3}, nil,
				func(context.Context) error { return nil })
			if err == nil || !strings.Contains(err.Error(), "changed during the migration") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want the cut-over refused naming %q", err, c.want)
			}
			if !pgQuery[bool](t, pool, "SELECT to_regclass('pgcut_test._props_osc') IS NOT NULL AND to_regclass('pgcut_test._props_old') IS NULL") {
				t.Error("the tables were swapped anyway")
			}
		})
	}
}

// A trigger created on the original during the run (the swap would leave it
// on the old table) refuses the cut-over, with the table locked.
func TestPostgresCutOverRefusesNewTrigger(t *testing.T) {
	pool := pgTestPool(t, "CREATE TABLE trig (id int PRIMARY KEY, v text)", "INSERT INTO trig VALUES (1, 'a')")
	sh := pgTestShadow(t, pool, "trig", "ADD COLUMN c int")
	testdb.ExecPostgresIn(t, pool, pgTestSchema, "CREATE TRIGGER added_meanwhile BEFORE UPDATE ON pgcut_test.trig FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()")
	err := Postgres(context.Background(), pool, sh.Plan, PostgresOptions{Renames: sh.Renames, Checks: sh.Checks, RestartedIdentity: sh.RestartedIdentity, LockTimeout: time.Second, Retries: 3}, nil,
		func(context.Context) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "changed during the migration") || !strings.Contains(err.Error(), "added_meanwhile") {
		t.Fatalf("err %v, want the cut-over refused because a trigger was added", err)
	}
	if !pgQuery[bool](t, pool, "SELECT to_regclass('pgcut_test._trig_osc') IS NOT NULL AND to_regclass('pgcut_test._trig_old') IS NULL") {
		t.Error("the tables were swapped anyway")
	}
}
