package dialect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/engine"
	"osc/internal/testdb"
	"osc/table"
)

const pgRevertSchema = "pgrevert_test"

// pgRevertAlter drops a column (c: its values must come back), renames one
// and widens it (b: renamed back, its type back), changes a type (a: bigint,
// whose big values do not fit back) and adds one (d: not written back).
const pgRevertAlter = "DROP COLUMN c, ALTER COLUMN a TYPE bigint, ALTER COLUMN b TYPE varchar(40), ADD COLUMN d int NOT NULL DEFAULT 7; RENAME COLUMN b TO bb"

// pgRevertDB makes the schema with the table name and its control table
// holding the same rows: every tenth row has a TOASTed value in big, so that
// updates leaving it alone arrive without it (partial changes).
func pgRevertDB(t *testing.T, rows int, names ...string) *pgxpool.Pool {
	t.Helper()
	var stmts []string
	for i, n := range names {
		stmts = append(stmts, "CREATE TABLE "+n+" (id int PRIMARY KEY, a int NOT NULL, b varchar(20), c int, big text)",
			"CREATE INDEX ON "+n+" (a)")
		if i == 0 {
			stmts = append(stmts, fmt.Sprintf(`INSERT INTO %s SELECT g, g, 'b' || g, CASE WHEN g %% 3 <> 0 THEN g * 11 END,
				CASE WHEN g %% 10 = 0 THEN (SELECT string_agg(md5(random()::text || g || x), '') FROM generate_series(1, 200) x) END
				FROM generate_series(1, %d) g`, n, rows))
		} else {
			stmts = append(stmts, "INSERT INTO "+n+" SELECT * FROM "+names[0])
		}
	}
	pool := pgSchemaDB(t, pgRevertSchema, stmts...)
	drop := func() {
		// The reverse capture's publication (its slot is temporary).
		_, err := pool.Exec(context.Background(), `DO $$DECLARE p text; BEGIN
			FOR p IN SELECT pubname FROM pg_publication WHERE pubname LIKE 'oscr\_pgrevert\_test\_%' LOOP
				EXECUTE format('DROP PUBLICATION %I', p); END LOOP; END$$`)
		if err != nil {
			t.Errorf("drop test publications: %v", err)
		}
	}
	t.Cleanup(drop)
	return pool
}

// pgRevertWriter writes the same random changes (inserts, updates that leave
// the TOASTed column alone, key changes, deletes) into the migrated table and
// into the control table, which is never migrated: each statement runs on
// the table first and, when it succeeded there, on the control table. It
// names the renamed column as the table has it now.
type pgRevertWriter struct {
	pool          *pgxpool.Pool
	table, ctl    string
	next          int
	stop, stopped chan struct{}
	mu            sync.Mutex // held for each statement pair
	writes        atomic.Int64
	err           error
}

func startPGRevertWriter(t *testing.T, pool *pgxpool.Pool, tbl, ctl string, rows int) *pgRevertWriter {
	w := &pgRevertWriter{pool: pool, table: pgRevertSchema + "." + tbl, ctl: pgRevertSchema + "." + ctl, next: rows + 1,
		stop: make(chan struct{}), stopped: make(chan struct{})}
	go w.run()
	t.Cleanup(func() {
		select {
		case <-w.stop:
		default:
			close(w.stop)
			<-w.stopped
		}
	})
	return w
}

func (w *pgRevertWriter) run() {
	defer close(w.stopped)
	rng := rand.New(rand.NewPCG(3, 4))
	col := "b"
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		id := 1 + rng.IntN(w.next-1)
		var stmt string
		switch rng.IntN(7) {
		case 5:
			// A key change: the dropped column's value moves with the row.
			stmt = fmt.Sprintf("UPDATE %%s SET id = %d WHERE id = %d AND %%s IS NOT NULL", w.next, id)
			w.next++
		case 6:
			// A key change leaving the TOASTed value alone.
			stmt = fmt.Sprintf("UPDATE %%s SET id = %d, a = a + 1 WHERE id = %d AND %%s IS NOT NULL AND big IS NOT NULL", w.next, 10*(1+rng.IntN(w.next/10)))
			w.next++
		case 0:
			stmt = fmt.Sprintf("INSERT INTO %%s (id, a, %%s) VALUES (%d, %d, 'n%d')", w.next, rng.IntN(1000), w.next)
			w.next++
		case 1:
			stmt = fmt.Sprintf("DELETE FROM %%s WHERE id = %d AND %%s IS NOT NULL", id)
		case 2:
			stmt = fmt.Sprintf("UPDATE %%s SET %%s = 'u%d' WHERE id = %d", rng.IntN(1000), id)
		default:
			stmt = fmt.Sprintf("UPDATE %%s SET a = a + 1, %%s = coalesce(%%[2]s, '') || 'x' WHERE id = %d", id)
		}
		w.mu.Lock()
		err := w.pair(stmt, &col)
		w.mu.Unlock()
		if err != nil {
			w.err = err
			return
		}
		w.writes.Add(1)
		time.Sleep(time.Millisecond)
	}
}

// pair runs stmt on the table (switching the renamed column's name once when
// the table has the other one) and then on the control table.
func (w *pgRevertWriter) pair(stmt string, col *string) error {
	ctx := context.Background()
	for try := 0; ; try++ {
		_, err := w.pool.Exec(ctx, fmt.Sprintf(stmt, w.table, *col))
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42703" && try == 0 { // undefined_column
			*col = map[string]string{"b": "bb", "bb": "b"}[*col]
			continue
		}
		if table.PostgresTransient(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", fmt.Sprintf(stmt, w.table, *col), err)
		}
		break
	}
	if _, err := w.pool.Exec(ctx, fmt.Sprintf(stmt, w.ctl, "b")); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	return nil
}

func (w *pgRevertWriter) finish(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.stopped
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
}

// pgRows renders every row of the query as text.
func pgRows(t *testing.T, pool *pgxpool.Pool, q string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pgSameRows fails unless both tables hold the same rows, in key order.
func pgSameRows(t *testing.T, pool *pgxpool.Pool, want, got string) {
	t.Helper()
	q := "SELECT format('%%s|%%s|%%s|%%s|%%s', id, a, b, c, md5(big)) FROM " + pgRevertSchema + ".%s ORDER BY id"
	w, g := pgRows(t, pool, fmt.Sprintf(q, want)), pgRows(t, pool, fmt.Sprintf(q, got))
	if len(w) < 100 {
		t.Fatalf("the control table has only %d rows", len(w))
	}
	if strings.Join(w, "\n") == strings.Join(g, "\n") {
		return
	}
	t.Errorf("%s has %d rows, %s %d", got, len(g), want, len(w))
	for i := 0; i < len(g) || i < len(w); i++ {
		var gi, wi string
		if i < len(g) {
			gi = g[i]
		}
		if i < len(w) {
			wi = w[i]
		}
		if gi != wi {
			t.Fatalf("first difference at row %d: %s has %s, %s has %s", i, got, gi, want, wi)
		}
	}
}

// pgDefinition is the table's definition — columns, indexes, constraints —
// with the table's name written as as.
func pgDefinition(t *testing.T, pool *pgxpool.Pool, name, as string) string {
	t.Helper()
	var def string
	err := pool.QueryRow(context.Background(), `SELECT concat_ws(E'\n',
		(SELECT string_agg(format('%s %s %s %s', attname, format_type(atttypid, atttypmod), attnotnull,
			pg_get_expr(d.adbin, d.adrelid)), E'\n' ORDER BY attnum)
		 FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		 WHERE a.attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped),
		(SELECT string_agg(pg_get_indexdef(indexrelid), E'\n' ORDER BY pg_get_indexdef(indexrelid)) FROM pg_index WHERE indrelid = $1::regclass),
		(SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), E'\n' ORDER BY conname) FROM pg_constraint WHERE conrelid = $1::regclass))`,
		pgRevertSchema+"."+name).Scan(&def)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(def, name, as)
}

// pgRevertLeft lists what the migration and its window made that exists,
// the old table apart.
func pgRevertLeft(t *testing.T, pool *pgxpool.Pool, name string) []string {
	t.Helper()
	n := pgTestNames(t, pgRevertSchema, name)
	var out []string
	err := pool.QueryRow(context.Background(), `SELECT array_remove(ARRAY[
		(SELECT 'table ' || relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relname = $2),
		(SELECT 'table ' || relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relname = $3),
		(SELECT 'slot ' || slot_name FROM pg_replication_slots WHERE slot_name IN ($4, $5) LIMIT 1),
		(SELECT 'publication ' || pubname FROM pg_publication WHERE pubname IN ($4, $5) LIMIT 1)], NULL)`,
		pgRevertSchema, n.Shadow, n.Checkpoint, n.Slot, n.ReverseCapture()).Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pgRevertRun starts a migration of name with a revert window and a writer
// into name and ctl, and waits for the window to open and take writes.
func pgRevertRun(t *testing.T, name, ctl string, okToDrop bool) (*ctlRun, *pgxpool.Pool, *pgRevertWriter) {
	t.Helper()
	const rows = 2000
	pool := pgRevertDB(t, rows, name, ctl)
	cfg := engine.Config{Schema: pgRevertSchema, Table: name, Alter: pgRevertAlter, RevertWindow: time.Minute,
		OkToDropTable: okToDrop, ChunkSize: 200}
	d, err := NewPostgres(cfg, PostgresOptions{DSN: testdb.PostgresDSN()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := startPGRevertWriter(t, pool, name, ctl, rows)
	r := startCtl(t, cfg, d)
	r.until(t, "the revert window", func() bool { return r.m.State() == engine.StateRevertWindow })
	before := w.writes.Load()
	r.until(t, "writes after the cut-over", func() bool { return w.writes.Load() > before+200 })
	return r, pool, w
}

// TestPostgresRevert: with writes going on through the migration, the window
// and the revert, the reverted table equals a control table that took the
// same writes and was never migrated — rows (the dropped column's values
// included) and definition (index names too); a change the old table cannot
// take is refused, naming its key, until it is written again; and nothing is
// left behind.
func TestPostgresRevert(t *testing.T) {
	const name, ctl = "rv", "rv_ctl"
	r, pool, w := pgRevertRun(t, name, ctl, true)
	q := func(s string) string { return strings.ReplaceAll(s, "T.", pgRevertSchema+".") }

	// A bigint that the old int cannot hold, in a row the writer leaves
	// alone: written to the table only.
	w.mu.Lock()
	testdb.ExecPostgres(t, pool, q("INSERT INTO T.rv (id, a, bb) VALUES (1000007, 1, 'z')"), q("INSERT INTO T.rv_ctl (id, a, b) VALUES (1000007, 1, 'z')"),
		q("UPDATE T.rv SET a = 5000000000 WHERE id = 1000007"))
	w.mu.Unlock()
	r.until(t, "the unfit row to be refused", func() bool { return r.m.Status().RevertRefused == 1 })
	reply := send(t, r.sock, "revert")
	if !strings.Contains(reply, "cannot revert exactly") || !strings.Contains(reply, "key (id=1000007)") || !strings.Contains(reply, "out of range") {
		t.Fatalf("revert with an unfit row: %q", reply)
	}
	if s := r.m.Status(); s.State != engine.StateRevertWindow || !strings.Contains(s.String(), "Unrevertable rows: 1") {
		t.Fatalf("after the refusal: %s", s)
	}
	w.mu.Lock()
	testdb.ExecPostgres(t, pool, q("UPDATE T.rv SET a = 70 WHERE id = 1000007"), q("UPDATE T.rv_ctl SET a = 70 WHERE id = 1000007"))
	w.mu.Unlock()
	r.until(t, "the refusal to be lifted", func() bool { return r.m.Status().RevertRefused == 0 })

	if reply := send(t, r.sock, "revert"); !strings.HasPrefix(reply, "Reverted") {
		t.Fatalf("revert: %q", reply)
	}
	before := w.writes.Load()
	deadline := time.Now().Add(20 * time.Second)
	for w.writes.Load() < before+100 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	w.finish(t)
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	if got, want := pgDefinition(t, pool, name, "x"), pgDefinition(t, pool, ctl, "x"); got != want {
		t.Errorf("the reverted table's definition differs from the original's:\n%s\nwant\n%s", got, want)
	}
	pgSameRows(t, pool, ctl, name)
	if left := pgRevertLeft(t, pool, name); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	var old bool
	if err := pool.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", pgRevertSchema+"."+pgTestNames(t, pgRevertSchema, name).Old).Scan(&old); err != nil || old {
		t.Errorf("an old table is left (%v)", err)
	}
}

// TestPostgresRevertFinish: finish ends the window with the old table
// current (equal to a control table that took the same writes) and kept,
// and leaves nothing else behind: no slot, publication or checkpoint table.
func TestPostgresRevertFinish(t *testing.T) {
	const name, ctl = "rvf", "rvf_ctl"
	r, pool, w := pgRevertRun(t, name, ctl, false)
	w.finish(t)
	if reply := send(t, r.sock, "finish"); !strings.HasPrefix(reply, "Finishing") {
		t.Fatalf("finish: %q", reply)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	old := pgTestNames(t, pgRevertSchema, name).Old
	pgSameRows(t, pool, ctl, old)
	if left := pgRevertLeft(t, pool, name); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestPostgresRevertPartitioned: the revert window of a partitioned table
// (partitions at two levels, a DEFAULT one) keeps the old partition tree
// current under writes that move rows between partitions, and the revert
// swaps every partition back: the reverted tree has its partitions' names,
// bounds and indexes as before the migration, and the rows of a control
// table that took the same writes and was never migrated. An --alter that
// drops a column is refused.
func TestPostgresRevertPartitioned(t *testing.T) {
	const name, ctl, rows = "rvp", "rvp_ctl", 2000
	pool := pgRevertDB(t, rows, ctl)
	q := func(s string) string { return strings.ReplaceAll(s, "T.", pgRevertSchema+".") }
	testdb.ExecPostgres(t, pool,
		q("CREATE TABLE T.rvp (id int PRIMARY KEY, a int NOT NULL, b varchar(20), c int, big text) PARTITION BY RANGE (id)"),
		q("CREATE TABLE T.rvp_lo PARTITION OF T.rvp FOR VALUES FROM (MINVALUE) TO (700)"),
		q("CREATE TABLE T.rvp_mid PARTITION OF T.rvp FOR VALUES FROM (700) TO (1500) PARTITION BY HASH (id)"),
		q("CREATE TABLE T.rvp_mid0 PARTITION OF T.rvp_mid FOR VALUES WITH (MODULUS 2, REMAINDER 0)"),
		q("CREATE TABLE T.rvp_mid1 PARTITION OF T.rvp_mid FOR VALUES WITH (MODULUS 2, REMAINDER 1)"),
		q("CREATE TABLE T.rvp_rest PARTITION OF T.rvp DEFAULT"),
		q("CREATE INDEX ON T.rvp (a)"),
		q("INSERT INTO T.rvp SELECT * FROM T.rvp_ctl"))
	tree := func() string {
		t.Helper()
		var out string
		if err := pool.QueryRow(context.Background(), `SELECT string_agg(c.relname || ' < ' || p.relname || ' ' || coalesce(pg_get_expr(c.relpartbound, c.oid), '') || ' ' ||
				(SELECT coalesce(string_agg(x.relname, ',' ORDER BY x.relname), '') FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid WHERE i.indrelid = c.oid),
				E'\n' ORDER BY c.relname)
			FROM pg_partition_tree($1::regclass) t JOIN pg_class c ON c.oid = t.relid JOIN pg_class p ON p.oid = t.parentrelid`, q("T.rvp")).Scan(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	treeBefore, defBefore := tree(), pgDefinition(t, pool, name, "x")

	// Dropping c is refused: a row moved to another partition arrives as a
	// delete and an insert, which cannot carry c's value.
	cfg := engine.Config{Schema: pgRevertSchema, Table: name, Alter: pgRevertAlter, RevertWindow: time.Minute, OkToDropTable: true, ChunkSize: 200}
	d, err := NewPostgres(cfg, PostgresOptions{DSN: testdb.PostgresDSN()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = engine.New(cfg, d, slog.New(slog.DiscardHandler), io.Discard).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "the --alter drops column c, whose values the old table keeps during the window, but") {
		t.Fatalf("dropping a column: %v", err)
	}
	cfg.Alter = strings.Replace(pgRevertAlter, "DROP COLUMN c, ", "", 1)
	if d, err = NewPostgres(cfg, PostgresOptions{DSN: testdb.PostgresDSN()}, nil); err != nil {
		t.Fatal(err)
	}
	w := startPGRevertWriter(t, pool, name, ctl, rows)
	r := startCtl(t, cfg, d)
	r.until(t, "the revert window", func() bool { return r.m.State() == engine.StateRevertWindow })
	before := w.writes.Load()
	r.until(t, "writes after the cut-over", func() bool { return w.writes.Load() > before+200 })
	if reply := send(t, r.sock, "revert"); !strings.HasPrefix(reply, "Reverted") {
		t.Fatalf("revert: %q", reply)
	}
	before = w.writes.Load()
	for deadline := time.Now().Add(20 * time.Second); w.writes.Load() < before+100 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	w.finish(t)
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	if got := tree(); got != treeBefore {
		t.Errorf("the reverted partition tree differs from the original's:\n%s\nwant\n%s", got, treeBefore)
	}
	if got := pgDefinition(t, pool, name, "x"); got != defBefore {
		t.Errorf("the reverted table's definition differs from the original's:\n%s\nwant\n%s", got, defBefore)
	}
	pgSameRows(t, pool, ctl, name)
	if left := pgRevertLeft(t, pool, name); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	var others string
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(relname, ' ' ORDER BY relname), '') FROM pg_class
		WHERE relnamespace = $1::regnamespace AND relname LIKE '\_rvp%'`, pgRevertSchema).Scan(&others); err != nil || others != "" {
		t.Errorf("tables left: %q (%v)", others, err)
	}
}

// TestPostgresRevertWindowRefusals: an --alter whose reverse is not a plain
// column mapping is refused before anything is copied, in a dry run too,
// naming why.
func TestPostgresRevertWindowRefusals(t *testing.T) {
	const name = "rvu"
	pool := pgRevertDB(t, 10, name)
	testdb.ExecPostgresIn(t, pool, pgRevertSchema, "CREATE UNIQUE INDEX rvu_b ON rvu (b)",
		"CREATE TABLE rvu_p (id int PRIMARY KEY)", "INSERT INTO rvu_p SELECT generate_series(1, 100)")
	for _, tc := range []struct{ alter, want string }{
		{"ALTER COLUMN a TYPE bigint USING a * 2", "USING expression"},
		{"ALTER COLUMN b TYPE int USING length(b)", "USING expression"},
		{"ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY", "identity of column id"},
		{"ALTER COLUMN c TYPE real", "may round or reformat"},
		{"ADD COLUMN e int", "unique indexes or exclusion constraints besides its key (rvu_b)"},
		{"ADD CONSTRAINT rvu_fk FOREIGN KEY (a) REFERENCES " + pgRevertSchema + ".rvu_p (id)", "changes foreign key rvu_fk"},
	} {
		for _, execute := range []bool{false, true} {
			cfg := engine.Config{Schema: pgRevertSchema, Table: name, Alter: tc.alter, RevertWindow: time.Minute, Execute: execute}
			if !strings.Contains(tc.want, "rvu_b") {
				testdb.ExecPostgresIn(t, pool, pgRevertSchema, "DROP INDEX IF EXISTS rvu_b")
			} else {
				testdb.ExecPostgresIn(t, pool, pgRevertSchema, "CREATE UNIQUE INDEX IF NOT EXISTS rvu_b ON rvu (b)")
			}
			d, err := NewPostgres(cfg, PostgresOptions{DSN: testdb.PostgresDSN()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err = engine.New(cfg, d, slog.New(slog.DiscardHandler), nil).Run(ctx)
			cancel()
			var refused *engine.RefusedError
			if !errors.As(err, &refused) || !strings.Contains(err.Error(), "--revert-window") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s (execute %v): want a refusal naming %q, got %v", tc.alter, execute, tc.want, err)
			}
			if left := pgRevertLeft(t, pool, name); len(left) != 0 {
				t.Errorf("%s: left behind: %v", tc.alter, left)
			}
		}
	}
}

// TestPostgresRevertWindowTriggers: a table with a trigger (which the
// cut-over carries to the new table) is refused a revert window, leaving
// nothing behind.
func TestPostgresRevertWindowTriggers(t *testing.T) {
	const name = "rvt"
	pool := pgRevertDB(t, 10, name)
	testdb.ExecPostgresIn(t, pool, pgRevertSchema,
		"CREATE FUNCTION rvt_touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$",
		"CREATE TRIGGER rvt_bi BEFORE INSERT ON rvt FOR EACH ROW EXECUTE FUNCTION rvt_touch()")
	cfg := engine.Config{Schema: pgRevertSchema, Table: name, Alter: "ADD COLUMN e int", RevertWindow: time.Minute, Execute: true}
	d, err := NewPostgres(cfg, PostgresOptions{DSN: testdb.PostgresDSN()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = engine.New(cfg, d, slog.New(slog.DiscardHandler), nil).Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "--revert-window") || !strings.Contains(err.Error(), "triggers") {
		t.Fatalf("want a refusal naming the triggers, got %v", err)
	}
	t.Logf("refused: %v", err)
	if left := pgRevertLeft(t, pool, name); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestPostgresRevertPartialKeepsRefusal: a value the old table refuses that
// is TOASTed (too long for the old varchar) stays refused through later
// updates that leave it alone, which pgoutput sends without it: the old
// table still lacks it, so the revert is refused until it is written again.
// A refused insert stays refused the same way.
func TestPostgresRevertPartialKeepsRefusal(t *testing.T) {
	const name = "rvp"
	pool := pgSchemaDB(t, pgRevertSchema, "CREATE TABLE rvp (id int PRIMARY KEY, a int, t varchar(3000))",
		"INSERT INTO rvp SELECT g, g, 'short' FROM generate_series(1, 100) g")
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), `DO $$DECLARE p text; BEGIN
			FOR p IN SELECT pubname FROM pg_publication WHERE pubname LIKE 'oscr\_pgrevert\_test\_%' LOOP
				EXECUTE format('DROP PUBLICATION %I', p); END LOOP; END$$`); err != nil {
			t.Errorf("drop test publications: %v", err)
		}
	})
	cfg := engine.Config{Schema: pgRevertSchema, Table: name, Alter: "ALTER COLUMN t TYPE text", RevertWindow: time.Minute}
	d, err := NewPostgres(cfg, PostgresOptions{DSN: testdb.PostgresDSN()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := startCtl(t, cfg, d)
	r.until(t, "the revert window", func() bool { return r.m.State() == engine.StateRevertWindow })
	long := "(SELECT string_agg(md5(x::text), '') FROM generate_series(1, 200) x)" // 6400 characters, stored out of line
	testdb.ExecPostgresIn(t, pool, pgRevertSchema, "UPDATE rvp SET t = "+long+" WHERE id = 5",
		"INSERT INTO rvp VALUES (500, 500, "+long+")")
	r.until(t, "the long values to be refused", func() bool { return r.m.Status().RevertRefused == 2 })
	testdb.ExecPostgresIn(t, pool, pgRevertSchema, "UPDATE rvp SET a = 55 WHERE id = 5", "UPDATE rvp SET a = 555 WHERE id = 500")
	r.until(t, "the partial updates", func() bool { return r.m.Status().RevertApplied >= 4 })
	if reply := send(t, r.sock, "revert"); !strings.Contains(reply, "cannot revert exactly: 2 row(s)") ||
		!strings.Contains(reply, "key (id=5)") || !strings.Contains(reply, "key (id=500)") {
		t.Fatalf("revert after partial updates of refused rows: %q", reply)
	}
	testdb.ExecPostgresIn(t, pool, pgRevertSchema, "UPDATE rvp SET t = 'fits' WHERE id IN (5, 500)")
	r.until(t, "the refusals to be lifted", func() bool { return r.m.Status().RevertRefused == 0 })
	if reply := send(t, r.sock, "revert"); !strings.HasPrefix(reply, "Reverted") {
		t.Fatalf("revert: %q", reply)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	got := pgRows(t, pool, "SELECT format('%s|%s|%s|%s', id, a, t, format_type(atttypid, atttypmod)) FROM "+pgRevertSchema+
		".rvp, pg_attribute WHERE attrelid = '"+pgRevertSchema+".rvp'::regclass AND attname = 't' AND id IN (5, 500) ORDER BY id")
	if want := "5|55|fits|character varying(3000) 500|555|fits|character varying(3000)"; strings.Join(got, " ") != want {
		t.Errorf("reverted rows: %v, want %s", got, want)
	}
}

// TestPostgresRevertKilledLeftover: a run killed in its revert window leaves
// the reverse capture's publication, which lists the table: the next
// migration of the table refuses it, naming it, and
// --initially-drop-ghost-table drops it.
func TestPostgresRevertKilledLeftover(t *testing.T) {
	const name = "rvk"
	pool := pgRevertDB(t, 20, name)
	pub := pgTestNames(t, pgRevertSchema, name).ReverseCapture()
	testdb.ExecPostgres(t, pool, "CREATE PUBLICATION "+pub+" FOR TABLE "+pgRevertSchema+"."+name)
	run := func(initiallyDrop bool) error {
		cfg := engine.Config{Schema: pgRevertSchema, Table: name, Alter: "ADD COLUMN e int", Execute: true, InitiallyDropShadow: initiallyDrop}
		d, err := NewPostgres(cfg, PostgresOptions{DSN: testdb.PostgresDSN()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return engine.New(cfg, d, slog.New(slog.DiscardHandler), nil).Run(ctx)
	}
	if err := run(false); err == nil || !strings.Contains(err.Error(), pub) {
		t.Fatalf("want a refusal naming %s, got %v", pub, err)
	}
	if err := run(true); err != nil {
		t.Fatalf("with --initially-drop-ghost-table: %v", err)
	}
	if left := pgRevertLeft(t, pool, name); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestPostgresRevertCarries: the revert's cut-over gives the original table
// back what the forward cut-over moved to the migrated one: its foreign key
// (validated), the view reading it, the foreign key referencing it, its serial sequence, its identity
// sequence's position (advanced by inserts during the window), its grants
// and its comment.
func TestPostgresRevertCarries(t *testing.T) {
	const name = "rvc"
	pool := pgSchemaDB(t, pgRevertSchema,
		"CREATE TABLE rvc_parent (id int PRIMARY KEY)",
		"INSERT INTO rvc_parent SELECT generate_series(1, 100)",
		"CREATE TABLE rvc (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n serial, a int REFERENCES rvc_parent (id), c int)",
		"INSERT INTO rvc (a, c) SELECT g, g * 2 FROM generate_series(1, 50) g",
		"CREATE VIEW rvc_v AS SELECT id, a FROM rvc",
		"CREATE TABLE rvc_child (id int PRIMARY KEY, pid int REFERENCES rvc (id))",
		"INSERT INTO rvc_child VALUES (1, 1)",
		"GRANT SELECT ON rvc TO PUBLIC",
		"COMMENT ON TABLE rvc IS 'kept'")
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), `DO $$DECLARE p text; BEGIN
			FOR p IN SELECT pubname FROM pg_publication WHERE pubname LIKE 'oscr\_pgrevert\_test\_%' LOOP
				EXECUTE format('DROP PUBLICATION %I', p); END LOOP; END$$`); err != nil {
			t.Errorf("drop test publications: %v", err)
		}
	})
	before := pgDefinition(t, pool, name, name)
	cfg := engine.Config{Schema: pgRevertSchema, Table: name, Alter: "DROP COLUMN c", RevertWindow: time.Minute, OkToDropTable: true}
	d, err := NewPostgres(cfg, PostgresOptions{DSN: testdb.PostgresDSN()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := startCtl(t, cfg, d)
	r.until(t, "the revert window", func() bool { return r.m.State() == engine.StateRevertWindow })
	testdb.ExecPostgresIn(t, pool, pgRevertSchema, "INSERT INTO rvc (a) SELECT g FROM generate_series(51, 60) g", "DELETE FROM rvc WHERE id = 2")
	r.until(t, "the window's writes", func() bool { return r.m.Status().RevertApplied >= 11 })
	if reply := send(t, r.sock, "revert"); !strings.HasPrefix(reply, "Reverted") {
		t.Fatalf("revert: %q", reply)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	if after := pgDefinition(t, pool, name, name); after != before {
		t.Errorf("the reverted table's definition:\n%s\nwant\n%s", after, before)
	}
	testdb.ExecPostgresIn(t, pool, pgRevertSchema, "INSERT INTO rvc (a) VALUES (61)")
	var got string
	q := strings.NewReplacer("S.", pgRevertSchema+".").Replace(`SELECT concat_ws(' | ',
		(SELECT string_agg(format('%s:%s:%s', id, n, coalesce(c::text, '-')), ',' ORDER BY id) FROM S.rvc WHERE id IN (1, 3, 60, 61)),
		(SELECT count(*) FROM S.rvc_v),
		EXISTS (SELECT 1 FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid WHERE w.ev_class = 'S.rvc_v'::regclass AND d.refobjid = 'S.rvc'::regclass),
		(SELECT confrelid = 'S.rvc'::regclass FROM pg_constraint WHERE conrelid = 'S.rvc_child'::regclass AND contype = 'f'),
		pg_get_serial_sequence('S.rvc', 'n') IS NOT NULL,
		has_table_privilege('public', 'S.rvc', 'SELECT'),
		obj_description('S.rvc'::regclass, 'pg_class'),
		to_regclass('S._rvc_osc') IS NULL)`)
	if err := pool.QueryRow(context.Background(), q).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "1:1:2,3:3:6,60:60:-,61:61:- | 60 | t | t | t | t | kept | t"; got != want {
		t.Errorf("after the revert: %s\nwant %s", got, want)
	}
}

// TestPostgresRevertWindowEnds: a window that elapses ends as finish does,
// and so does an interruption (the panic command, as Ctrl-C): the table
// stays migrated, the old table is current (kept) or dropped
// (--ok-to-drop-table), and nothing else is left: no slot, publication or
// checkpoint table.
func TestPostgresRevertWindowEnds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		panic bool
	}{{"rve", false}, {"rvx", true}} {
		t.Run(tc.name, func(t *testing.T) {
			pool := pgRevertDB(t, 100, tc.name)
			window := 2 * time.Second
			if tc.panic {
				window = time.Hour
			}
			cfg := engine.Config{Schema: pgRevertSchema, Table: tc.name, Alter: pgRevertAlter, RevertWindow: window, OkToDropTable: !tc.panic}
			d, err := NewPostgres(cfg, PostgresOptions{DSN: testdb.PostgresDSN()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := startCtl(t, cfg, d)
			r.until(t, "the revert window", func() bool { return r.m.State() == engine.StateRevertWindow })
			testdb.ExecPostgresIn(t, pool, pgRevertSchema, "UPDATE "+tc.name+" SET a = 1000, bb = 'w' WHERE id = 5")
			if tc.panic {
				send(t, r.sock, "panic")
			}
			if err := r.wait(t); err != nil {
				t.Fatalf("migration: %v", err)
			}
			if cols := pgRows(t, pool, "SELECT string_agg(column_name::text, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = '"+
				pgRevertSchema+"' AND table_name = '"+tc.name+"'"); len(cols) != 1 || cols[0] != "id,a,bb,big,d" {
				t.Fatalf("the table is not the migrated one: %v", cols)
			}
			if left := pgRevertLeft(t, pool, tc.name); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
			old := pgTestNames(t, pgRevertSchema, tc.name).Old
			got := pgRows(t, pool, "SELECT coalesce(to_regclass('"+pgRevertSchema+"."+old+"')::text, 'dropped')")
			if tc.panic {
				got = pgRows(t, pool, "SELECT format('%s|%s|%s', a, b, c) FROM "+pgRevertSchema+"."+old+" WHERE id = 5")
			}
			want := map[bool]string{true: "1000|w|55", false: "dropped"}[tc.panic]
			if len(got) != 1 || got[0] != want {
				t.Errorf("the old table: %v, want %s", got, want)
			}
		})
	}
}

// TestPostgresRevertPartitionTruncated: a TRUNCATE of a sub-partition of the
// altered table during the revert window is published only as the
// sub-partition's own, never through the table, so the old table still
// holds its rows: the revert's cut-over must refuse (naming the partitions)
// and leave the table migrated; finish then ends the window.
func TestPostgresRevertPartitionTruncated(t *testing.T) {
	const name, ctl = "rvt", "rvt_ctl"
	pool := pgRevertDB(t, 1500, ctl)
	q := func(s string) string { return strings.ReplaceAll(s, "T.", pgRevertSchema+".") }
	testdb.ExecPostgres(t, pool,
		q("CREATE TABLE T.rvt (id int PRIMARY KEY, a int NOT NULL, b varchar(20), c int, big text) PARTITION BY RANGE (id)"),
		q("CREATE TABLE T.rvt_lo PARTITION OF T.rvt FOR VALUES FROM (MINVALUE) TO (700)"),
		q("CREATE TABLE T.rvt_mid PARTITION OF T.rvt FOR VALUES FROM (700) TO (1500) PARTITION BY HASH (id)"),
		q("CREATE TABLE T.rvt_mid0 PARTITION OF T.rvt_mid FOR VALUES WITH (MODULUS 2, REMAINDER 0)"),
		q("CREATE TABLE T.rvt_mid1 PARTITION OF T.rvt_mid FOR VALUES WITH (MODULUS 2, REMAINDER 1)"),
		q("CREATE TABLE T.rvt_rest PARTITION OF T.rvt DEFAULT"),
		q("INSERT INTO T.rvt SELECT * FROM T.rvt_ctl"))
	cfg := engine.Config{Schema: pgRevertSchema, Table: name, Alter: "ALTER COLUMN a TYPE bigint", RevertWindow: time.Minute, OkToDropTable: true, ChunkSize: 200}
	d, err := NewPostgres(cfg, PostgresOptions{DSN: testdb.PostgresDSN()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := startCtl(t, cfg, d)
	r.until(t, "the revert window", func() bool { return r.m.State() == engine.StateRevertWindow })
	testdb.ExecPostgres(t, pool, q("TRUNCATE T.rvt_mid1"))
	if reply := send(t, r.sock, "revert"); strings.HasPrefix(reply, "Reverted") || !strings.Contains(reply, "the partitions of") || !strings.Contains(reply, "rvt_mid1") {
		t.Fatalf("revert after a sub-partition's TRUNCATE: %q", reply)
	}
	if reply := send(t, r.sock, "finish"); !strings.HasPrefix(reply, "Finishing") {
		t.Fatalf("finish: %q", reply)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	var typ string
	if err := pool.QueryRow(context.Background(), "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'a'",
		q("T.rvt")).Scan(&typ); err != nil || typ != "bigint" {
		t.Errorf("the table after the refused revert: a is %q (%v), want the migrated bigint", typ, err)
	}
	if left := pgRevertLeft(t, pool, name); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestPostgresRevertEnumRenamed: an enum value renamed during the revert
// window refuses the revert, naming it (the reverse capture decoded the
// altered table's rows with the old label); the migration can still finish.
func TestPostgresRevertEnumRenamed(t *testing.T) {
	const name, ctl = "rve", "rve_ctl"
	pool := pgRevertDB(t, 10, ctl)
	q := func(s string) string { return strings.ReplaceAll(s, "T.", pgRevertSchema+".") }
	testdb.ExecPostgres(t, pool,
		q("CREATE TYPE T.rve_mood AS ENUM ('sad', 'ok')"),
		q("CREATE TABLE T.rve (id int PRIMARY KEY, m T.rve_mood, a int)"),
		q("INSERT INTO T.rve SELECT i, 'sad', i FROM generate_series(1, 100) i"))
	cfg := engine.Config{Schema: pgRevertSchema, Table: name, Alter: "ALTER COLUMN a TYPE bigint", RevertWindow: time.Minute, OkToDropTable: true, ChunkSize: 20}
	d, err := NewPostgres(cfg, PostgresOptions{DSN: testdb.PostgresDSN()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := startCtl(t, cfg, d)
	r.until(t, "the revert window", func() bool { return r.m.State() == engine.StateRevertWindow })
	testdb.ExecPostgres(t, pool, q("ALTER TYPE T.rve_mood ADD VALUE 'meh' BEFORE 'sad'"), q("ALTER TYPE T.rve_mood RENAME VALUE 'sad' TO 'blue'"))
	if reply := send(t, r.sock, "revert"); strings.HasPrefix(reply, "Reverted") || !strings.Contains(reply, "rve_mood value 'sad' renamed to 'blue'") {
		t.Fatalf("revert after an enum value's rename: %q", reply)
	}
	if reply := send(t, r.sock, "finish"); !strings.HasPrefix(reply, "Finishing") {
		t.Fatalf("finish: %q", reply)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	if left := pgRevertLeft(t, pool, name); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestPostgresRevertReplicaIdentityFull: the shadow has the original's
// replica identity FULL from its start (it used to get it at the cut-over):
// the reverse capture publishes the new table, whose updates and deletes log
// whole old rows (the TOASTed column among them) during the window; the
// reverted table equals the control table that took the same writes.
func TestPostgresRevertReplicaIdentityFull(t *testing.T) {
	const name, ctl, rows = "rvf", "rvf_ctl", 2000
	pool := pgRevertDB(t, rows, name, ctl)
	testdb.ExecPostgres(t, pool, "ALTER TABLE "+pgRevertSchema+"."+name+" REPLICA IDENTITY FULL")
	cfg := engine.Config{Schema: pgRevertSchema, Table: name, Alter: pgRevertAlter, RevertWindow: time.Minute,
		OkToDropTable: true, ChunkSize: 200}
	d, err := NewPostgres(cfg, PostgresOptions{DSN: testdb.PostgresDSN()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := startPGRevertWriter(t, pool, name, ctl, rows)
	r := startCtl(t, cfg, d)
	r.until(t, "the revert window", func() bool { return r.m.State() == engine.StateRevertWindow })
	var ident string
	if err := pool.QueryRow(context.Background(), "SELECT relreplident::text FROM pg_class WHERE oid = $1::regclass", pgRevertSchema+"."+name).Scan(&ident); err != nil || ident != "f" {
		t.Errorf("the migrated table's replica identity: %q (%v), want f", ident, err)
	}
	before := w.writes.Load()
	r.until(t, "writes after the cut-over", func() bool { return w.writes.Load() > before+300 })
	if reply := send(t, r.sock, "revert"); !strings.HasPrefix(reply, "Reverted") {
		t.Fatalf("revert: %q", reply)
	}
	w.finish(t)
	if err := r.wait(t); err != nil {
		t.Fatalf("migration: %v", err)
	}
	pgSameRows(t, pool, ctl, name)
	if err := pool.QueryRow(context.Background(), "SELECT relreplident::text FROM pg_class WHERE oid = $1::regclass", pgRevertSchema+"."+name).Scan(&ident); err != nil || ident != "f" {
		t.Errorf("the reverted table's replica identity: %q (%v), want f", ident, err)
	}
	if left := pgRevertLeft(t, pool, name); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
