package checksum

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/copier"
	"osc/engine"
	"osc/internal/testdb"
	"osc/table"
)

const pgckSchema = "ckpg_test"

// pgckPool connects like the dialect (table.OpenPostgres), in a session time
// zone other than the server's, and creates a fresh test schema with stmts
// run in it.
func pgckPool(t testing.TB, stmts ...string) *pgxpool.Pool {
	t.Helper()
	pool := testdb.Connect(t, "PostgreSQL", func(ctx context.Context) (*pgxpool.Pool, error) {
		return table.OpenPostgres(ctx, testdb.PostgresDSN()+"&timezone=America/New_York")
	})
	t.Cleanup(pool.Close)
	testdb.ResetPostgresSchema(t, pool, pgckSchema)
	testdb.ExecPostgresIn(t, pool, pgckSchema, stmts...)
	return pool
}

// pgckMigrate creates the shadow of pgckSchema.name with alter as the dialect
// does and copies the rows with the copier, in chunks of 7.
func pgckMigrate(t testing.TB, pool *pgxpool.Pool, name, alter string) *table.Plan {
	t.Helper()
	return pgckMigrateBy(t, pool, name, alter, 7)
}

// pgckMigrateBy is pgckMigrate copying in chunks of size.
func pgckMigrateBy(t testing.TB, pool *pgxpool.Pool, name, alter string, size int) *table.Plan {
	t.Helper()
	ctx := context.Background()
	in, err := table.InspectPostgresTable(ctx, pool, table.NewPostgresNames(pgckSchema, name))
	if err != nil {
		t.Fatal(err)
	}
	sh, err := table.CreatePostgresShadow(ctx, pool, in, alter, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cp := copier.NewPostgres(pool, sh.Plan)
	var after []any
	for {
		ch, err := cp.CopyChunk(ctx, after, size)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Done {
			return sh.Plan
		}
		after = ch.Last
	}
}

func pgckNew(pool *pgxpool.Pool, plan *table.Plan, log *slog.Logger) *Postgres {
	return NewPostgres(pool, plan, Options{LockTimeout: 100 * time.Millisecond, Retries: 3, Log: log})
}

// pgckOpen opens n readers, calling blocked (nil: nothing) with writes blocked.
func pgckOpen(t testing.TB, ck *Postgres, n int, blocked func(context.Context) error) []engine.ChecksumReader {
	t.Helper()
	if blocked == nil {
		blocked = func(context.Context) error { return nil }
	}
	rs, err := ck.Open(context.Background(), n, nil, blocked)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgckClose(t, rs) })
	return rs
}

// pgckOpenErr opens readers where an error is expected, and closes them if
// there is none.
func pgckOpenErr(t testing.TB, ck *Postgres, n int, blocked func(context.Context) error) error {
	t.Helper()
	rs, err := ck.Open(context.Background(), n, nil, blocked)
	pgckClose(t, rs)
	return err
}

func pgckClose(t testing.TB, rs []engine.ChecksumReader) {
	t.Helper()
	for _, r := range rs {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}
}

// pgckResult is one chunk's fingerprints.
type pgckResult struct {
	chunk            engine.ChecksumChunk
	original, shadow engine.ChecksumSum
}

// pgckSums bounds the chunks with the first reader and sums them with the
// readers in turn.
func pgckSums(t testing.TB, rs []engine.ChecksumReader, size int) []pgckResult {
	t.Helper()
	ctx := context.Background()
	var out []pgckResult
	var after []any
	for i := 0; ; i++ {
		upto, err := rs[0].Bound(ctx, after, size)
		if err != nil {
			t.Fatal(err)
		}
		ch := engine.ChecksumChunk{After: after, Upto: upto}
		o, s, err := rs[i%len(rs)].Sum(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pgckResult{ch, o, s})
		if upto == nil {
			return out
		}
		after = upto
	}
}

// pgckDiffering returns the chunks whose fingerprints differ.
func pgckDiffering(res []pgckResult) []pgckResult {
	var out []pgckResult
	for _, r := range res {
		if r.original != r.shadow {
			out = append(out, r)
		}
	}
	return out
}

// pgckRequireEqual checks every chunk of a fresh Open, naming the first
// difference of a chunk that differs.
func pgckRequireEqual(t testing.TB, ck *Postgres, size int) []pgckResult {
	t.Helper()
	rs, err := ck.Open(context.Background(), 2, nil, func(context.Context) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer pgckClose(t, rs)
	res := pgckSums(t, rs, size)
	for _, r := range pgckDiffering(res) {
		d, err := rs[1].Diff(context.Background(), r.chunk)
		t.Errorf("chunk %v: original %+v, shadow %+v: %s %v", r.chunk, r.original, r.shadow, d, err)
	}
	return res
}

// pgckSameRows compares the text of every row of two queries, whatever their
// order.
func pgckSameRows(t testing.TB, pool *pgxpool.Pool, a, b string) {
	t.Helper()
	for _, q := range []string{
		fmt.Sprintf("SELECT count(*) FROM ((SELECT ckpg_a::text FROM (%s) ckpg_a EXCEPT ALL SELECT ckpg_b::text FROM (%s) ckpg_b) UNION ALL "+
			"(SELECT ckpg_b::text FROM (%s) ckpg_b EXCEPT ALL SELECT ckpg_a::text FROM (%s) ckpg_a)) d", a, b, b, a),
	} {
		var n int
		if err := pool.QueryRow(context.Background(), q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n != 0 {
			t.Errorf("%d rows differ between %s and %s", n, a, b)
		}
	}
}

// pgckTypes creates a table of many types and fills it (run it twice for a
// plain copy: same values).
const pgckTypes = `
CREATE TABLE %[1]s (
	id int PRIMARY KEY,
	i2 smallint, i4 int, i8 bigint, n numeric, n2 numeric(10,3), r real, d double precision,
	t text, vc varchar(10), ch char(5), by bytea, b boolean,
	dt date, tm time, ttz timetz, ts timestamp, tstz timestamptz, iv interval, u uuid,
	j json, jb jsonb, ai int[], at text[], ip inet, mac macaddr, bt bit(4), vb varbit, e mood, dm posint,
	pt point, rg int4range, tv tsvector, x xml, big text, gone text,
	g numeric GENERATED ALWAYS AS (n * 2) STORED
);
INSERT INTO %[1]s (id, i2, i4, i8, n, n2, r, d, t, vc, ch, by, b, dt, tm, ttz, ts, tstz, iv, u, j, jb, ai, at, ip, mac, bt, vb, e, dm, pt, rg, tv, x, big, gone) VALUES
(1, 1, 10, 100, 1.5, 2.125, 1.25, 3.3333333333333335, 'one', 'v1', 'a', '\x01', true, '2024-03-31', '01:02:03', '01:02:03+02', '2024-03-31 02:30:00', '2024-03-31 02:30:00+00',
 '1 day 2 hours', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1, "a": 2}', '{"b": [1, 2]}', '{1,2}', '{x,y}', '10.0.0.1/8', '08:00:2b:01:02:03', B'1010', B'1', 'ok', 5,
 '(1,2)', '[1,5)', 'a fat cat', '<a>1</a>', (SELECT string_agg(md5(i::text) || repeat('z', 32), '') FROM generate_series(1, 300) i), 'g1'),
(2, 2, 20, 200, 2.50, 7.5, 0.1, 0.1, 'two', 'v2', 'bb', '\x0203', false, '2023-10-29', '23:59:59.999999', '12:00:00-05', '2023-10-29 02:30:00', '1999-12-31 23:59:59.5+05',
 '-3 mons', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', '[1, "x"]', '{"a": null}', '{3,NULL}', '{"a b","c,d"}', '::1', '08:00:2b:01:02:04', B'0101', B'', 'happy', 6,
 '(3.5,-4)', '(,)', 'the rat', '<b/>', (SELECT string_agg(md5((i * 7)::text), '') FROM generate_series(1, 300) i), 'g2'),
(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL),
(4, -32768, 2147483647, -9223372036854775808, 'NaN', 0, 'Infinity', '-0', '', '', '', '', false, 'infinity', '24:00', '00:00+14', '-infinity', 'infinity',
 '0', '00000000-0000-0000-0000-000000000000', '""', '[]', '{}', '{NULL,"",NULL}', '0.0.0.0/0', '00:00:00:00:00:00', B'0000', B'', 'sad', 1,
 '(0,0)', 'empty', '', '', '', ''),
(5, 32767, -2147483648, 9223372036854775807, '-1e-20', -9999999.999, '-3.4e38', '3.3999999e38', 'NULL', 'a,b"c)', ' x  ', '\x00ff', true, '0001-01-01 BC', '00:00', '23:59:59-15',
 '294276-12-31 18:59:59.999999', '4713-01-02 00:00:00+00 BC', '-178000000 years', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '{"k": "NULL"}', '{"k": "\\u0000x"}',
 '{-2147483648}', '{"(",")","\\\\",NULL}', '255.255.255.255', 'ff:ff:ff:ff:ff:ff', B'1111', B'10101010101', 'ok', 2147483647,
 '(1e300,-1e-300)', '[-2147483648,2147483647)', 'NULL', 'NULL', 'NULL', 'NULL');
INSERT INTO %[1]s (id, i2, i4, i8, n, n2, r, d, t, vc, ch, by, b, dt, tm, ts, tstz, j, jb, ai, at, e, dm, big, gone)
SELECT 10 + i, i, i * 1000, i * 1000000, i / 7.0, i / 3.0, i / 3.0, i / 7.0, 't' || i, 'v' || i, 'c' || i, int4send(i), i %% 2 = 0,
	'2024-01-01'::date + i, '00:00'::time + i * interval '17 min', '2024-03-30 12:00'::timestamp + i * interval '1 h', '2024-10-26 12:00+00'::timestamptz + i * interval '1 h',
	json_build_object('i', i), jsonb_build_object('i', i, 's', repeat('é', i)), ARRAY[i, -i], ARRAY['s' || i, NULL], (ARRAY['sad', 'ok', 'happy'])[i %% 3 + 1]::mood, i + 1,
	CASE WHEN i %% 5 = 0 THEN (SELECT string_agg(md5((i * k)::text), '') FROM generate_series(1, 200) k) END, 'g'
FROM generate_series(1, 60) i;
`

func TestPostgresChecksumNoFalseMismatch(t *testing.T) {
	for _, tc := range []struct{ name, alter string }{
		// Same types: no cast; an added column, a dropped one, a rename.
		{"same", "ADD COLUMN extra text DEFAULT 'z', DROP COLUMN gone; RENAME COLUMN t TO t2"},
		// Widening, narrowing and converting type changes, and USING.
		{"convert", `ALTER COLUMN i2 TYPE bigint, ALTER COLUMN i8 TYPE numeric(30,2), ALTER COLUMN n2 TYPE numeric(12,1),
			ALTER COLUMN r TYPE double precision, ALTER COLUMN d TYPE real, ALTER COLUMN vc TYPE text, ALTER COLUMN ch TYPE varchar(8),
			ALTER COLUMN ts TYPE timestamptz, ALTER COLUMN tstz TYPE timestamp, ALTER COLUMN dt TYPE timestamptz, ALTER COLUMN j TYPE jsonb,
			ALTER COLUMN ai TYPE bigint[], ALTER COLUMN e TYPE text, ALTER COLUMN dm TYPE bigint, ALTER COLUMN u TYPE text,
			ALTER COLUMN b TYPE int USING b::int, ALTER COLUMN tm TYPE text USING tm::text || '!', ALTER COLUMN big TYPE varchar(20000),
			ALTER COLUMN i4 TYPE ckpg_test.posint USING abs(i4::bigint + 1)::int, ALTER COLUMN at TYPE varchar(3)[], ALTER COLUMN bt TYPE text,
			ALTER COLUMN x TYPE text, ALTER COLUMN iv TYPE interval hour to minute, DROP COLUMN gone`},
		// The key renamed and widened.
		{"key", "ALTER COLUMN id TYPE bigint; RENAME COLUMN id TO pk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "ckpg_" + tc.name
			pool := pgckPool(t, "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); CREATE DOMAIN posint AS integer CHECK (VALUE > 0)",
				fmt.Sprintf(pgckTypes, name), fmt.Sprintf(pgckTypes, name+"_plain"))
			if tc.name == "convert" {
				// abs(i4 + 1) of the extreme row does not fit an int.
				testdb.ExecPostgresIn(t, pool, pgckSchema, "UPDATE "+name+" SET i4 = 0 WHERE i4 = 2147483647", "UPDATE "+name+"_plain SET i4 = 0 WHERE i4 = 2147483647")
			}
			plan := pgckMigrate(t, pool, name, tc.alter)
			// The server is the oracle of the ALTER: the shadow holds what a
			// plain ALTER TABLE gives.
			for _, c := range table.SplitPostgresAlter(tc.alter) {
				testdb.ExecPostgresIn(t, pool, pgckSchema, "ALTER TABLE "+name+"_plain "+c)
			}
			pgckSameRows(t, pool, "SELECT * FROM "+table.QuotePostgres(pgckSchema, plan.Shadow.Name), "SELECT * FROM "+pgckSchema+"."+name+"_plain")

			ck := pgckNew(pool, plan, nil)
			for _, size := range []int{1, 9, 1000} {
				res := pgckRequireEqual(t, ck, size)
				if want := 65/size + 1; len(res) != want {
					t.Errorf("chunk size %d: %d chunks, want %d", size, len(res), want)
				}
			}
			// Every mapped column counts: the shadow's row 1 given row 2's
			// value in one column differs, Diff names the column, and a
			// recopy of the chunk repairs it.
			shadow := table.QuotePostgres(pgckSchema, plan.Shadow.Name)
			key := table.QuotePostgres(plan.Mapping[plan.KeyIndex[0]].Shadow)
			for _, m := range plan.Mapping {
				if m.SourceIndex == plan.KeyIndex[0] {
					continue
				}
				col := table.QuotePostgres(m.Shadow)
				testdb.ExecPostgres(t, pool, fmt.Sprintf("UPDATE %[1]s s SET %[2]s = o.%[2]s FROM %[1]s o WHERE s.%[3]s = 1 AND o.%[3]s = 2", shadow, col, key))
				rs := pgckOpen(t, ck, 1, nil)
				bad := pgckDiffering(pgckSums(t, rs, 3))
				if len(bad) != 1 || bad[0].chunk.After != nil {
					t.Errorf("column %s changed in row 1: differing chunks %+v", m.Shadow, bad)
					pgckClose(t, rs)
					continue
				}
				d, err := rs[0].Diff(context.Background(), bad[0].chunk)
				if want := fmt.Sprintf("key (id=1): column %q differs: original ", m.Shadow); err != nil || !strings.HasPrefix(d, want) {
					t.Errorf("column %s: diff %q (%v), want %q…", m.Shadow, d, err, want)
				}
				pgckClose(t, rs)
				rs = pgckOpen(t, ck, 1, func(ctx context.Context) error { return ck.Recopy(ctx, []engine.ChecksumChunk{bad[0].chunk}) })
				if bad := pgckDiffering(pgckSums(t, rs, 3)); len(bad) != 0 {
					t.Errorf("column %s: the recopy left %+v", m.Shadow, bad)
				}
				pgckClose(t, rs)
			}
			pgckSameRows(t, pool, "SELECT * FROM "+shadow, "SELECT * FROM "+pgckSchema+"."+name+"_plain")
		})
	}
}

// pgckSimple is a table of keys 10, 20, …, 1000 with a large value every
// seventh row, migrated with a rename and a widening.
func pgckSimple(t *testing.T, name string) (*pgxpool.Pool, *table.Plan) {
	t.Helper()
	pool := pgckPool(t, "CREATE TABLE "+name+" (id int PRIMARY KEY, v text, b int)",
		"INSERT INTO "+name+" SELECT i * 10, CASE WHEN i % 7 = 0 THEN (SELECT string_agg(md5((i * k)::text) || repeat('z', 32), '') FROM generate_series(1, 200) k) ELSE 'v' || i END, i FROM generate_series(1, 100) i")
	// The large values are compressed and out of line.
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+pgckSchema+"."+name+" WHERE pg_column_compression(v) = 'pglz' AND pg_column_size(v) > 2100").Scan(&n); err != nil || n != 14 {
		t.Fatalf("%d compressed large values (%v), want 14", n, err)
	}
	return pool, pgckMigrate(t, pool, name, "ALTER COLUMN b TYPE bigint; RENAME COLUMN v TO w")
}

func TestPostgresChecksumRepairs(t *testing.T) {
	for _, tc := range []struct {
		name, corrupt string
		chunk         int // the chunk (of 10 rows) that differs
		diff          string
	}{
		{"value", "UPDATE %s SET w = 'x' WHERE id = 250", 2, `key (id=250): column "w" differs: original "v25", shadow "x"`},
		{"large value", "UPDATE %s SET w = w || 'x' WHERE id = 70", 0, `key (id=70): column "w" differs: original "`},
		{"null", "UPDATE %s SET b = NULL WHERE id = 990", 9, `key (id=990): column "b" differs: original "99", shadow NULL`},
		{"deleted", "DELETE FROM %s WHERE id = 420", 4, "key (id=420) is missing from the shadow"},
		{"extra", "INSERT INTO %s VALUES (425, 'x', 1)", 4, "key (id=425) is in the shadow but not in the original"},
		{"before", "INSERT INTO %s VALUES (-5, 'x', 1)", 0, "key (id=-5) is in the shadow but not in the original"},
		{"after", "INSERT INTO %s VALUES (5000, 'x', 1)", 10, "key (id=5000) is in the shadow but not in the original"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, plan := pgckSimple(t, "ckpg_rep")
			shadow := table.QuotePostgres(pgckSchema, plan.Shadow.Name)
			testdb.ExecPostgres(t, pool, fmt.Sprintf(tc.corrupt, shadow))
			ck := pgckNew(pool, plan, nil)
			rs := pgckOpen(t, ck, 2, nil)
			res := pgckSums(t, rs, 10)
			if len(res) != 11 {
				t.Fatalf("%d chunks, want 11", len(res))
			}
			bad := pgckDiffering(res)
			if len(bad) != 1 || bad[0].chunk.Upto != nil && fmt.Sprint(bad[0].chunk) != fmt.Sprint(res[tc.chunk].chunk) {
				t.Fatalf("differing chunks %+v, want chunk %d %+v", bad, tc.chunk, res[tc.chunk].chunk)
			}
			d, err := rs[1].Diff(context.Background(), bad[0].chunk)
			if err != nil || !strings.HasPrefix(d, tc.diff) {
				t.Errorf("diff %q (%v), want %q", d, err, tc.diff)
			}
			// The other chunks have no difference to show.
			if d, err := rs[0].Diff(context.Background(), res[(tc.chunk+1)%len(res)].chunk); d != "" || err != nil {
				t.Errorf("diff of an equal chunk: %q %v", d, err)
			}
			pgckClose(t, rs)
			pgckOpen(t, ck, 1, func(ctx context.Context) error { return ck.Recopy(ctx, []engine.ChecksumChunk{bad[0].chunk}) })
			pgckRequireEqual(t, ck, 10)
			pgckSameRows(t, pool, "SELECT id, v, b FROM "+pgckSchema+".ckpg_rep", "SELECT id, w, b FROM "+shadow)
		})
	}
}

func TestPostgresChecksumLock(t *testing.T) {
	pool, plan := pgckSimple(t, "ckpg_lock")
	ctx := context.Background()
	orig := pgckSchema + ".ckpg_lock"
	var log testdb.Logs
	ck := pgckNew(pool, plan, slog.New(slog.NewTextHandler(&log, nil)))
	ck.opts.LockTimeout = 2 * time.Second

	// A writer waits while blocked runs, and succeeds after.
	done := make(chan error, 1)
	var waited bool
	rs := pgckOpen(t, ck, 2, func(ctx context.Context) error {
		go func() {
			_, err := pool.Exec(context.Background(), "INSERT INTO "+orig+" VALUES (2000, 'w', 1)")
			done <- err
		}()
		select {
		case err := <-done:
			return fmt.Errorf("the writer was not blocked: %v", err)
		case <-time.After(300 * time.Millisecond):
			waited = true
		}
		// Reads are not blocked.
		var n int
		return pool.QueryRow(ctx, "SELECT count(*) FROM "+orig).Scan(&n)
	})
	if !waited {
		t.Fatal("blocked did not run")
	}
	if err := <-done; err != nil {
		t.Fatalf("the blocked writer: %v", err)
	}
	// The readers' snapshot was taken before the writer's insert committed,
	// and does not see writes committed after Open either.
	testdb.ExecPostgres(t, pool, "INSERT INTO "+orig+" VALUES (3000, 'w', 1)")
	for _, r := range rs {
		o, _, err := r.Sum(ctx, engine.ChecksumChunk{})
		if err != nil || o.Rows != 100 {
			t.Errorf("a reader sees %d rows (%v), want 100", o.Rows, err)
		}
	}
	pgckClose(t, rs)

	// An open transaction that wrote to the original makes the lock time
	// out; Open retries and succeeds once it commits.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "UPDATE "+orig+" SET b = b + 1 WHERE id = 10"); err != nil {
		t.Fatal(err)
	}
	ck.opts.Retries, ck.opts.LockTimeout = 2, 100*time.Millisecond
	if err := pgckOpenErr(t, ck, 1, func(context.Context) error { t.Error("blocked ran without the lock"); return nil }); err == nil ||
		!strings.Contains(err.Error(), "gave up after 2 attempts") {
		t.Errorf("Open behind a writer's transaction: %v", err)
	}
	if n := pool.Stat().AcquiredConns(); n != 1 {
		t.Errorf("%d connections acquired after a failed Open, want 1 (the writer's)", n)
	}
	ck.opts.Retries = 50
	go func() {
		time.Sleep(400 * time.Millisecond)
		_ = tx.Commit(ctx)
	}()
	start := time.Now()
	rs = pgckOpen(t, ck, 1, nil)
	if time.Since(start) < 300*time.Millisecond {
		t.Errorf("Open took the lock in %v, before the writer committed", time.Since(start))
	}
	if !strings.Contains(log.String(), "attempt at the lock on the original rolled back; retrying") {
		t.Errorf("no retry logged:\n%s", log.String())
	}
	if o, _, err := rs[0].Sum(ctx, engine.ChecksumChunk{}); err != nil || o.Rows != 102 {
		t.Errorf("the reader sees %d rows (%v), want 102", o.Rows, err)
	}
	pgckClose(t, rs)
	// A blocked that outlasts the lock timeout is rolled back and tried
	// again, and given up after Retries attempts.
	calls := 0
	rs = pgckOpen(t, ck, 1, func(ctx context.Context) error {
		if calls++; calls == 1 {
			<-ctx.Done()
			return fmt.Errorf("drain: %w", ctx.Err())
		}
		return nil
	})
	pgckClose(t, rs)
	if calls != 2 {
		t.Errorf("blocked called %d times, want 2", calls)
	}
	ck.opts.Retries = 2
	if err := pgckOpenErr(t, ck, 1, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }); !errors.Is(err, errPgBlockedTimeout) ||
		!strings.Contains(err.Error(), "gave up after 2 attempts") {
		t.Errorf("Open with a blocked that outlasts the lock timeout: %v", err)
	}
	// A failing blocked leaves nothing open, and the pool's size bounds
	// the readers: fewer are opened than asked for.
	if err := pgckOpenErr(t, ck, 2, func(context.Context) error { return fmt.Errorf("drain failed") }); err == nil || err.Error() != "drain failed" {
		t.Errorf("Open with a failing blocked: %v", err)
	}
	most := int(pool.Config().MaxConns)
	if readers, err := ck.Open(ctx, most, nil, func(context.Context) error { return nil }); err != nil || len(readers) != most-2 {
		t.Errorf("Open of %d readers with a pool of %d: %d readers, %v; want %d", most, most, len(readers), err, most-2)
	} else {
		for _, r := range readers {
			if err := r.Close(); err != nil {
				t.Error(err)
			}
		}
	}
	if n := pool.Stat().AcquiredConns(); n != 0 {
		t.Errorf("%d connections acquired after failed Opens", n)
	}
	var locks int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE relation = to_regclass($1)", orig).Scan(&locks); err != nil || locks != 0 {
		t.Errorf("%d locks on the original (%v)", locks, err)
	}
}

// A key whose collation the ALTER changes orders the shadow otherwise: one
// chunk, compared whole, which cannot be recopied.
func TestPostgresChecksumKeyOrderChanged(t *testing.T) {
	pool := pgckPool(t, `CREATE TABLE ckpg_coll (k text COLLATE "C" PRIMARY KEY, v int)`,
		"INSERT INTO ckpg_coll SELECT chr(65 + i % 26) || chr(97 + i / 26) || CASE WHEN i % 2 = 0 THEN 'a' ELSE 'B' END, i FROM generate_series(0, 200) i")
	plan := pgckMigrate(t, pool, "ckpg_coll", `ALTER COLUMN k TYPE text COLLATE "de-x-icu"`)
	ck := pgckNew(pool, plan, nil)
	if res := pgckRequireEqual(t, ck, 10); len(res) != 1 {
		t.Errorf("%d chunks, want 1", len(res))
	}
	shadow := table.QuotePostgres(pgckSchema, plan.Shadow.Name)
	testdb.ExecPostgres(t, pool, "UPDATE "+shadow+" SET v = -1 WHERE k = 'BbB'")
	rs := pgckOpen(t, ck, 1, nil)
	bad := pgckDiffering(pgckSums(t, rs, 10))
	if len(bad) != 1 {
		t.Fatalf("differing chunks: %+v", bad)
	}
	if d, err := rs[0].Diff(context.Background(), bad[0].chunk); d != `key (k=BbB): column "v" differs: original "27", shadow "-1"` || err != nil {
		t.Errorf("diff %q %v", d, err)
	}
	err := pgckOpenErr(t, ck, 1, func(ctx context.Context) error { return ck.Recopy(ctx, []engine.ChecksumChunk{bad[0].chunk}) })
	if err == nil || !strings.Contains(err.Error(), `cannot be repaired: the --alter changes the collation of key column k from "C" to "de-x-icu"`) {
		t.Errorf("recopy: %v", err)
	}
}

// TestPgKeyOrderKept: the key changes the checksum ranges the shadow by in
// the original's order are those that keep equality (table).
func TestPgKeyOrderKept(t *testing.T) {
	for _, c := range []struct {
		from, to string
		want     bool
	}{
		{"integer", "bigint", true}, {"bigint", "integer", false}, {"text", "character varying(5)", true},
		{"numeric(10,2)", "numeric(12,3)", true}, {"integer", "text", false}, {"character(3)", "text", false},
		{"timestamp without time zone", "timestamp with time zone", false}, {"uuid", "uuid", true},
	} {
		if got := table.PostgresEqualityKept(c.from, c.to); got != c.want {
			t.Errorf("PostgresEqualityKept(%q, %q) = %v", c.from, c.to, got)
		}
	}
	m := table.ColumnMap{Source: "a b"}
	if got := pgValue(m, "integer", "integer"); got != `"a b"` {
		t.Errorf("same type: %s", got)
	}
	if got := pgValue(m, "integer", "bigint"); got != `CAST(("a b") AS bigint)` {
		t.Errorf("other type: %s", got)
	}
	m.Expr = "length(x)"
	if got := pgValue(m, "text", "integer"); got != `CAST((length(x)) AS integer)` {
		t.Errorf("USING: %s", got)
	}
}

// BenchmarkPostgresChecksum times, on a 200,000-row table, the copy (chunks
// of 1,000 rows) and a checksum of every chunk, with one reader and chunks of
// 1,000 and 10,000 rows, and with two readers in parallel (the engine's
// default) and chunks of 10,000 rows. Run it with -benchtime 1x.
func BenchmarkPostgresChecksum(b *testing.B) {
	pool := pgckPool(b, "CREATE TABLE ckpg_bench (id int PRIMARY KEY, a int, s text, ts timestamptz, n numeric(12,2), j jsonb)",
		`INSERT INTO ckpg_bench SELECT i, i % 1000, md5(i::text) || ' ' || i, '2024-01-01'::timestamptz + i * interval '1 s', i / 7.0,
			jsonb_build_object('i', i) FROM generate_series(1, 200000) i`, "VACUUM ANALYZE ckpg_bench")
	start := time.Now()
	plan := pgckMigrateBy(b, pool, "ckpg_bench", "ALTER COLUMN a TYPE bigint, ADD COLUMN extra int DEFAULT 1", 1000)
	copyTime := time.Since(start)
	testdb.ExecPostgres(b, pool, "VACUUM ANALYZE "+table.QuotePostgres(pgckSchema, plan.Shadow.Name))
	ck := pgckNew(pool, plan, nil)
	b.ReportMetric(copyTime.Seconds(), "copy-s")
	for b.Loop() {
		for _, run := range []struct {
			readers, size int
		}{{1, 1000}, {1, 10000}, {2, 10000}} {
			rs := pgckOpen(b, ck, run.readers, nil)
			start := time.Now()
			pgckParallelSums(b, rs, run.size)
			d := time.Since(start)
			pgckClose(b, rs)
			b.ReportMetric(d.Seconds(), fmt.Sprintf("sum-%dx%d-s", run.readers, run.size))
			b.Logf("copy %v; checksum with %d reader(s), chunks of %d: %v (%.0f%% of the copy)", copyTime.Round(time.Millisecond),
				run.readers, run.size, d.Round(time.Millisecond), 100*d.Seconds()/copyTime.Seconds())
		}
	}
}

// pgckParallelSums bounds the chunks with the first reader, then sums them on
// all readers at once, requiring them equal.
func pgckParallelSums(b *testing.B, rs []engine.ChecksumReader, size int) {
	ctx := context.Background()
	var all []engine.ChecksumChunk
	var after []any
	for {
		upto, err := rs[0].Bound(ctx, after, size)
		if err != nil {
			b.Fatal(err)
		}
		all = append(all, engine.ChecksumChunk{After: after, Upto: upto})
		if upto == nil {
			break
		}
		after = upto
	}
	chunks := make(chan engine.ChecksumChunk, len(all))
	for _, ch := range all {
		chunks <- ch
	}
	close(chunks)
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := range chunks {
				o, s, err := r.Sum(ctx, ch)
				if err == nil && o != s {
					err = fmt.Errorf("chunk %v differs", ch)
				}
				if err != nil {
					b.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}

// TestPgRowHash: each type's value enters the chain by its own hash where
// equality is identity (text in the "C" collation), else by its text form;
// a nullable value as the type's zero with its mask bit, a numeric's or a
// float's sign in the mask.
func TestPgRowHash(t *testing.T) {
	for typ, want := range map[string]string{
		"integer":                        "hashint4extended(v, 0::bigint)",
		"bigint":                         "hashint8extended(v, 0::bigint)",
		"smallint":                       "hashint2extended(v, 0::bigint)",
		"boolean":                        "hashint4extended((v)::integer, 0::bigint)",
		"timestamp(3) without time zone": "timestamp_hash_extended(v, 0::bigint)",
		"timestamp with time zone":       "timestamp_hash_extended((v) AT TIME ZONE 'UTC', 0::bigint)",
		"time without time zone":         "time_hash_extended(v, 0::bigint)",
		"time(2) with time zone":         "timetz_hash_extended(v, 0::bigint)",
		"uuid":                           "uuid_hash_extended(v, 0::bigint)",
		"text":                           `hashtextextended((v) COLLATE "C", 0::bigint)`,
		"character varying(40)":          `hashtextextended((v) COLLATE "C", 0::bigint)`,
		"numeric(10,2)":                  "hash_numeric_extended(v, (CASE WHEN (v) < 0 THEN 1::bigint ELSE 0::bigint END))",
		"numeric":                        `hashtextextended(((v)::text) COLLATE "C", 0::bigint)`,
		"double precision":               `hashfloat8extended(v, (CASE WHEN float8send(v) >= '\x80'::bytea THEN 1::bigint ELSE 0::bigint END))`,
		"real":                           `hashfloat4extended(v, (CASE WHEN float4send(v) >= '\x80'::bytea THEN 1::bigint ELSE 0::bigint END))`,
		"date":                           `hashtextextended(((v)::text) COLLATE "C", 0::bigint)`,
		"character(3)":                   `hashtextextended(((v)::text) COLLATE "C", 0::bigint)`,
		"jsonb":                          `hashtextextended(((v)::text) COLLATE "C", 0::bigint)`,
		"integer[]":                      `hashtextextended(((v)::text) COLLATE "C", 0::bigint)`,
	} {
		if got := pgRowHash([]string{"v"}, []string{typ}, []bool{false}); got != want {
			t.Errorf("%s: %s, want %s", typ, got, want)
		}
	}
	got := pgRowHash([]string{"a", "b", "c"}, []string{"integer", "numeric(5,1)", "text"}, []bool{true, false, true})
	want := `hashtextextended(coalesce((c) COLLATE "C", ''), hash_numeric_extended(b, hashint4extended(coalesce(a, 0::integer), ` +
		`(CASE WHEN (a) IS NULL THEN 1::bigint ELSE 0::bigint END + CASE WHEN (b) < 0 THEN 2::bigint ELSE 0::bigint END + ` +
		`CASE WHEN (c) IS NULL THEN 4::bigint ELSE 0::bigint END))))`
	if got != want {
		t.Errorf("nullable columns:\n%s\nwant\n%s", got, want)
	}
	// More than a word's bits: the further words are hashed first.
	var vals, types []string
	var nullable []bool
	for i := range pgMaskBits + 1 {
		vals, types, nullable = append(vals, fmt.Sprintf("v%d", i)), append(types, "integer"), append(nullable, true)
	}
	h := pgRowHash(vals, types, nullable)
	if !strings.Contains(h, "hashint8extended((CASE WHEN (v62) IS NULL THEN 1::bigint ELSE 0::bigint END), (CASE WHEN (v0) IS NULL") {
		t.Errorf("63 nullable columns: the second word is not chained after the first: %s", h)
	}
}

// TestPostgresChecksumFindsChanges: differences the hashes of the values
// alone do not tell apart (hash_numeric_extended ignores the sign, the
// float hash equates -0 and 0, a NULL must differ from the zero it is
// hashed as), the same change to two rows, and two rows' values swapped,
// are each found, in a table the copy made equal.
func TestPostgresChecksumFindsChanges(t *testing.T) {
	pool := pgckPool(t, "CREATE TABLE fc (id bigint PRIMARY KEY, n numeric(8,2), d double precision, r real, i int, t text, ts timestamp, tz timestamptz, b boolean)",
		`INSERT INTO fc VALUES (1, 5.00, 0, 0, 0, '', 'epoch', '2024-01-01 00:00+00', false), (2, -7.25, 1.5, 1.5, NULL, NULL, NULL, NULL, NULL),
		(3, 5.00, 2.5, 2.5, 3, 'x', '2024-01-01', '2024-06-01 12:00+00', true), (4, 5.00, 2.5, 2.5, 3, 'y', '2024-01-02', '2024-06-01 13:00+00', true)`)
	plan := pgckMigrate(t, pool, "fc", "ADD COLUMN z int")
	ck := pgckNew(pool, plan, nil)
	pgckRequireEqual(t, ck, 10)
	shadow := table.QuotePostgres(pgckSchema, plan.Shadow.Name)
	for _, tc := range []struct{ name, change, undo string }{
		{"numeric sign", "UPDATE %s SET n = -n WHERE id = 1", "UPDATE %s SET n = -n WHERE id = 1"},
		{"numeric sign, negative", "UPDATE %s SET n = -n WHERE id = 2", "UPDATE %s SET n = -n WHERE id = 2"},
		{"double -0", "UPDATE %s SET d = '-0' WHERE id = 1", "UPDATE %s SET d = 0 WHERE id = 1"},
		{"real -0", "UPDATE %s SET r = '-0' WHERE id = 1", "UPDATE %s SET r = 0 WHERE id = 1"},
		{"NULL int as 0", "UPDATE %s SET i = 0 WHERE id = 2", "UPDATE %s SET i = NULL WHERE id = 2"},
		{"NULL text as empty", "UPDATE %s SET t = '' WHERE id = 2", "UPDATE %s SET t = NULL WHERE id = 2"},
		{"NULL timestamp as epoch", "UPDATE %s SET ts = 'epoch' WHERE id = 2", "UPDATE %s SET ts = NULL WHERE id = 2"},
		{"NULL boolean as false", "UPDATE %s SET b = false WHERE id = 2", "UPDATE %s SET b = NULL WHERE id = 2"},
		{"0 as NULL", "UPDATE %s SET i = NULL WHERE id = 1", "UPDATE %s SET i = 0 WHERE id = 1"},
		{"same change to two rows", "UPDATE %s SET n = 6.00 WHERE id IN (3, 4)", "UPDATE %s SET n = 5.00 WHERE id IN (3, 4)"},
		{"two values swapped", "UPDATE %s SET t = CASE id WHEN 3 THEN 'y' ELSE 'x' END WHERE id IN (3, 4)",
			"UPDATE %s SET t = CASE id WHEN 3 THEN 'x' ELSE 'y' END WHERE id IN (3, 4)"},
		{"timestamptz an hour off", "UPDATE %s SET tz = tz + interval '1 hour' WHERE id = 3", "UPDATE %s SET tz = tz - interval '1 hour' WHERE id = 3"},
	} {
		testdb.ExecPostgres(t, pool, fmt.Sprintf(tc.change, shadow))
		rs := pgckOpen(t, ck, 1, nil)
		if bad := pgckDiffering(pgckSums(t, rs, 10)); len(bad) != 1 {
			t.Errorf("%s: %d chunks differ, want 1", tc.name, len(bad))
		}
		pgckClose(t, rs)
		testdb.ExecPostgres(t, pool, fmt.Sprintf(tc.undo, shadow))
		pgckRequireEqual(t, ck, 10)
	}
}

// TestPostgresChecksumManyNullable: past 62 nullable columns the mask
// takes a second word; a NULL there still differs from the zero it is
// hashed as.
func TestPostgresChecksumManyNullable(t *testing.T) {
	cols := make([]string, 70)
	for i := range cols {
		cols[i] = fmt.Sprintf("c%d int", i)
	}
	pool := pgckPool(t, "CREATE TABLE mn (id int PRIMARY KEY, "+strings.Join(cols, ", ")+")",
		"INSERT INTO mn (id, c0, c69) SELECT i, i, i FROM generate_series(1, 20) i")
	plan := pgckMigrate(t, pool, "mn", "ADD COLUMN z int")
	ck := pgckNew(pool, plan, nil)
	pgckRequireEqual(t, ck, 10)
	shadow := table.QuotePostgres(pgckSchema, plan.Shadow.Name)
	for _, col := range []string{"c1", "c61", "c62", "c65"} {
		testdb.ExecPostgres(t, pool, "UPDATE "+shadow+" SET "+col+" = 0 WHERE id = 15")
		rs := pgckOpen(t, ck, 1, nil)
		if bad := pgckDiffering(pgckSums(t, rs, 10)); len(bad) != 1 {
			t.Errorf("%s NULL in the original, 0 in the shadow: %d chunks differ, want 1", col, len(bad))
		}
		pgckClose(t, rs)
		testdb.ExecPostgres(t, pool, "UPDATE "+shadow+" SET "+col+" = NULL WHERE id = 15")
	}
	pgckRequireEqual(t, ck, 10)
}

// TestPostgresRecopyOtherUnique: a shadow row under a wrong key makes two
// chunks differ; recopying the earlier chunk before the later one's stray
// row is deleted met it on another unique index. Recopy deletes every
// chunk's rows first (from the independent review).
func TestPostgresRecopyOtherUnique(t *testing.T) {
	pool := pgckPool(t, "CREATE TABLE ru (id int PRIMARY KEY, u int UNIQUE NOT NULL, v int)",
		"INSERT INTO ru SELECT i, i, i FROM generate_series(1, 30) i")
	plan := pgckMigrate(t, pool, "ru", "ADD COLUMN z int")
	testdb.ExecPostgres(t, pool, "UPDATE "+table.QuotePostgres(pgckSchema, plan.Shadow.Name)+" SET id = 100 WHERE id = 3")
	ck := pgckNew(pool, plan, nil)
	rs := pgckOpen(t, ck, 2, nil)
	bad := pgckDiffering(pgckSums(t, rs, 10))
	pgckClose(t, rs)
	if len(bad) != 2 {
		t.Fatalf("%d chunks differ, want 2", len(bad))
	}
	err := pgckOpenErr(t, ck, 2, func(ctx context.Context) error {
		return ck.Recopy(ctx, []engine.ChecksumChunk{bad[0].chunk, bad[1].chunk})
	})
	if err != nil {
		t.Fatalf("the repair of a shadow row with a wrong key failed: %v", err)
	}
	pgckRequireEqual(t, ck, 10)
}
