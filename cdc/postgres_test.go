package cdc

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/internal/testdb"
	"osc/internal/testplan"
	"osc/table"
)

const pgTestSchema = "pgdata_test_cdc"

// pgTestPool connects to the sandbox and creates a fresh test schema, dropped
// when the test ends.
func pgTestPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	testdb.ResetPostgresSchema(t, pool, pgTestSchema)
	return pool
}

// pgTestTable reads a table's columns and primary key from the catalog.
func pgTestTable(t *testing.T, pool *pgxpool.Pool, name string) (*table.Table, []string, []int) {
	t.Helper()
	return testplan.PostgresTable(t, pool, pgTestSchema, name)
}

// pgTestPlan is the plan of migrating src into an identical shadow.
func pgTestPlan(t *testing.T, pool *pgxpool.Pool, src string) *table.Plan {
	t.Helper()
	tb, key, idx := pgTestTable(t, pool, src)
	p := &table.Plan{Source: tb, Shadow: &table.Table{Schema: tb.Schema, Name: "_" + src + "_new", Columns: tb.Columns}, Key: key, KeyIndex: idx}
	for i, c := range tb.Columns {
		if !c.Generated {
			p.Mapping = append(p.Mapping, table.ColumnMap{Source: c.Name, Shadow: c.Name, SourceIndex: i})
		}
	}
	return p
}

// pgTestName is a slot and publication name unique to the test.
func pgTestName(t *testing.T) string {
	n := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(pgTestSchema+"_"+t.Name()))
	return n[:min(len(n), 63)]
}

// startSource starts a source on the table; it is closed when the test ends.
func startSource(t *testing.T, pool *pgxpool.Pool, name string) *PostgresSource {
	t.Helper()
	id := pgTestName(t)
	src, err := NewPostgres(PostgresConfig{DSN: testdb.PostgresDSN(), Slot: id, Publication: id}, pool, pgTestPlan(t, pool, name))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := src.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return src
}

// untilMarker reads changes (limit at a time) up to the marker id.
func untilMarker(t *testing.T, src *PostgresSource, id string, limit int) []Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []Change
	for {
		cs, err := src.Next(ctx, limit)
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		// Up to limit changes, and then the rest of the last transaction:
		// never part of one.
		if len(cs) == 0 || len(cs) > limit && cs[limit].Pos != cs[limit-1].Pos {
			t.Fatalf("next returned %d changes (limit %d)", len(cs), limit)
		}
		if len(out) > 0 && out[len(out)-1].Pos == cs[0].Pos {
			t.Fatalf("a transaction (%s) split across two batches", cs[0].Pos)
		}
		out = append(out, cs...)
		src.Ack(cs[len(cs)-1].Pos)
		if last := cs[len(cs)-1]; last.Op == Marker && last.Marker == id {
			return out
		}
	}
}

func describe(c Change) string {
	s := c.Op.String()
	row := func(r Row) string {
		var p []string
		for _, v := range r {
			if v == nil {
				p = append(p, "∅")
			} else if str := v.(string); len(str) > 20 {
				p = append(p, fmt.Sprintf("<%d>", len(str)))
			} else {
				p = append(p, str)
			}
		}
		return strings.Join(p, ",")
	}
	if c.Before != nil {
		s += " before=" + row(c.Before)
	}
	if c.After != nil {
		s += " after=" + row(c.After)
	}
	if c.Unchanged != nil {
		s += fmt.Sprintf(" unchanged=%v", c.Unchanged)
	}
	if c.Op == Marker {
		s += " " + c.Marker
	}
	return s
}

func TestPostgresSourceChanges(t *testing.T) {
	pool := pgTestPool(t)
	big := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz", 4000) // 144 kB
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, v text, g int GENERATED ALWAYS AS (id * 2) STORED, big text)",
		"ALTER TABLE "+pgTestSchema+".t ALTER COLUMN big SET STORAGE EXTERNAL",
		"INSERT INTO "+pgTestSchema+".t (id, v) VALUES (100, 'before start')")
	src := startSource(t, pool, "t")
	if lag := src.Lag(); !strings.HasPrefix(lag, "lsn ") || !strings.Contains(lag, "(server ") {
		t.Errorf("lag %q", lag)
	}
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO " + pgTestSchema + ".t (id, v, big) VALUES (1, 'a', '" + big + "'), (2, NULL, NULL)",
		"UPDATE " + pgTestSchema + ".t SET v = 'b' WHERE id = 1",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	testdb.ExecPostgres(t, pool,
		"UPDATE "+pgTestSchema+".t SET v = 'c' WHERE id = 1",
		"UPDATE "+pgTestSchema+".t SET id = 3 WHERE id = 2",
		"UPDATE "+pgTestSchema+".t SET id = 4 WHERE id = 1",
		"DELETE FROM "+pgTestSchema+".t WHERE id = 3",
		"UPDATE "+pgTestSchema+".t SET v = 'after start' WHERE id = 100")
	if err := src.EmitMarker(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	got := untilMarker(t, src, "m1", 2)
	var desc []string
	for _, c := range got {
		desc = append(desc, describe(c))
	}
	want := []string{
		"insert after=1,a,∅,<144000>",
		"insert after=2,∅,∅,∅",
		// Even in the inserting transaction the big value is not sent again.
		"update after=1,b,∅,∅ unchanged=[false false false true]",
		"update after=1,c,∅,∅ unchanged=[false false false true]",
		"update before=2,∅,∅,∅ after=3,∅,∅,∅",
		"update before=1,∅,∅,∅ after=4,c,∅,∅ unchanged=[false false false true]",
		"delete before=3,∅,∅,∅",
		"update after=100,after start,∅,∅",
		"marker m1",
	}
	if strings.Join(desc, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(desc, "\n"), strings.Join(want, "\n"))
	}
	// Positions are commit LSNs, in commit order; one transaction shares one.
	for i := 1; i < len(got); i++ {
		if got[i].Pos.(LSN) < got[i-1].Pos.(LSN) {
			t.Errorf("position %d (%s) before %d (%s)", i, got[i].Pos, i-1, got[i-1].Pos)
		}
	}
	if got[0].Pos != got[2].Pos || got[2].Pos == got[3].Pos {
		t.Errorf("positions %s %s %s: want one per transaction", got[0].Pos, got[2].Pos, got[3].Pos)
	}
}

func TestPostgresSourceAck(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool, "CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY)")
	src := startSource(t, pool, "t")
	testdb.ExecPostgres(t, pool,
		"INSERT INTO "+pgTestSchema+".t SELECT generate_series(1, 3)",
		"INSERT INTO "+pgTestSchema+".t SELECT generate_series(4, 6)")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for src.queued() < 6 {
		if ctx.Err() != nil {
			t.Fatalf("%d changes queued", src.queued())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A limit inside a transaction returns the transaction whole: acking
	// its position confirms it. (The flushed position may have moved
	// before it: WAL other sessions write elsewhere is confirmed while
	// nothing is pending.)
	a, err := src.Next(ctx, 2)
	if err != nil || len(a) != 3 || a[0].Pos != a[2].Pos {
		t.Fatalf("next: %d changes, %v", len(a), err)
	}
	src.Ack(a[2].Pos)
	if f := src.flushedPos(); f != a[0].Pos {
		t.Errorf("flushed %s, want the first transaction's %s", f, a[0].Pos)
	}
	c, err := src.Next(ctx, 10)
	if err != nil || len(c) != 3 || c[0].Pos == a[0].Pos {
		t.Fatalf("next: %d changes, %v", len(c), err)
	}
	src.Ack(c[2].Pos)
	if f := src.flushedPos(); f < c[2].Pos.(LSN) {
		t.Errorf("flushed %s, want at least %s", f, c[2].Pos)
	}
	// The server hears of it with the next status update.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var text string
		if err := pool.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
			src.cfg.Slot).Scan(&text); err != nil {
			t.Fatal(err)
		}
		confirmed, err := pglogrepl.ParseLSN(text)
		if err != nil {
			t.Fatal(err)
		}
		if LSN(confirmed) >= c[2].Pos.(LSN) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("confirmed_flush_lsn %s, want %s", confirmed, c[2].Pos)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A transaction larger than the queue: the reader waits for room
	// before it reads the Commit, so Next returns part of it; acking the
	// part confirms none of it, acking its last change all of it.
	big := maxQueuedChanges + 5
	testdb.ExecPostgres(t, pool, fmt.Sprintf("INSERT INTO "+pgTestSchema+".t SELECT generate_series(101, %d)", 100+big))
	for src.queued() < maxQueuedChanges {
		if ctx.Err() != nil {
			t.Fatalf("%d changes queued", src.queued())
		}
		time.Sleep(10 * time.Millisecond)
	}
	d, err := src.Next(ctx, 2)
	if err != nil || len(d) != 2 {
		t.Fatalf("next: %d changes, %v", len(d), err)
	}
	if d[0].Cut || !d[1].Cut {
		t.Errorf("the split transaction's head: Cut %v, %v, want false, true (its last change only)", d[0].Cut, d[1].Cut)
	}
	src.Ack(d[1].Pos)
	if f := src.flushedPos(); f >= d[0].Pos.(LSN) {
		t.Errorf("acked a split transaction: flushed %s, its position %s", f, d[0].Pos)
	}
	for got := len(d); got < big; {
		e, err := src.Next(ctx, big)
		if err != nil {
			t.Fatalf("next after %d of %d changes: %v", got, big, err)
		}
		if e[0].Pos != d[0].Pos {
			t.Fatalf("position %s after %d of %d changes, want %s", e[0].Pos, got, big, d[0].Pos)
		}
		got += len(e)
		for i, c := range e[:len(e)-1] {
			if c.Cut {
				t.Fatalf("change %d of a batch of %d marked Cut", i, len(e))
			}
		}
		if got == big && e[len(e)-1].Cut {
			t.Errorf("the large transaction's last change, returned after its Commit, marked Cut")
		}
		src.Ack(e[len(e)-1].Pos)
	}
	if f := src.flushedPos(); f < d[0].Pos.(LSN) {
		t.Errorf("flushed %s, want at least the large transaction's %s", f, d[0].Pos)
	}
}

func (s *PostgresSource) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

func (s *PostgresSource) flushedPos() LSN {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushed
}

func TestPostgresSourceTruncate(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool, "CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY)")
	src := startSource(t, pool, "t")
	testdb.ExecPostgres(t, pool, "INSERT INTO "+pgTestSchema+".t VALUES (1)", "TRUNCATE "+pgTestSchema+".t")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		cs, err := src.Next(ctx, 10)
		if err != nil {
			if !strings.Contains(err.Error(), "TRUNCATE of "+pgTestSchema+".t during migration; the migration is aborted") {
				t.Fatalf("error %v", err)
			}
			return
		}
		for _, c := range cs {
			if c.Op != Insert {
				t.Fatalf("unexpected %s", describe(c))
			}
		}
	}
}

func TestPostgresSourceTableChanged(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool, "CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, v int)")
	src := startSource(t, pool, "t")
	testdb.ExecPostgres(t, pool,
		"INSERT INTO "+pgTestSchema+".t VALUES (1, 1)",
		"ALTER TABLE "+pgTestSchema+".t ALTER COLUMN v TYPE bigint",
		"INSERT INTO "+pgTestSchema+".t VALUES (2, 2)")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	for {
		cs, err := src.Next(ctx, 10)
		if err != nil {
			// The insert before the ALTER may come first or not (Next
			// returns the reader's failure as soon as it happens, ahead
			// of what is queued: the migration ends on it either way);
			// the one after it never.
			if !strings.Contains(err.Error(), "changed during migration") || n > 1 {
				t.Fatalf("after %d changes: %v", n, err)
			}
			return
		}
		n += len(cs)
	}
}

func TestPostgresSourceRefusesMissingReplicaIdentity(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool, "CREATE TABLE "+pgTestSchema+".t (id int NOT NULL, v int)",
		"CREATE UNIQUE INDEX t_id ON "+pgTestSchema+".t (id)")
	tb, _, _ := pgTestTable(t, pool, "t")
	name := pgTestName(t)
	plan := &table.Plan{Source: tb, Shadow: tb, Key: []string{"id"}, KeyIndex: []int{0}}
	src, err := NewPostgres(PostgresConfig{DSN: testdb.PostgresDSN(), Slot: name, Publication: name}, pool, plan)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err = src.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "REPLICA IDENTITY USING INDEX") {
		t.Fatalf("start: %v", err)
	}
	assertNothingLeft(t, pool, name)
	// With the index as replica identity it works.
	testdb.ExecPostgres(t, pool, "ALTER TABLE "+pgTestSchema+".t REPLICA IDENTITY USING INDEX t_id")
	src, err = NewPostgres(PostgresConfig{DSN: testdb.PostgresDSN(), Slot: name, Publication: name}, pool, plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	testdb.ExecPostgres(t, pool, "INSERT INTO "+pgTestSchema+".t VALUES (1, 1)", "DELETE FROM "+pgTestSchema+".t")
	if err := src.EmitMarker(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	got := untilMarker(t, src, "x", 10)
	if len(got) != 3 || describe(got[1]) != "delete before=1,∅" {
		t.Errorf("changes %v", got)
	}
	if err := src.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, pool, name)
}

func assertNothingLeft(t *testing.T, pool *pgxpool.Pool, name string) {
	t.Helper()
	var slots, pubs int
	err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1),
		(SELECT count(*) FROM pg_publication WHERE pubname = $1)`, name).Scan(&slots, &pubs)
	if err != nil {
		t.Fatal(err)
	}
	if slots != 0 || pubs != 0 {
		t.Errorf("%d slots and %d publications named %s left", slots, pubs, name)
	}
}

func TestPostgresSourceCloseAfterCancel(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool, "CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY)")
	plan := pgTestPlan(t, pool, "t")
	name := pgTestName(t)
	// The DSN in key=value form.
	cfg := pool.Config().ConnConfig
	dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", cfg.Host, cfg.Port, cfg.User, cfg.Database)
	src, err := NewPostgres(PostgresConfig{DSN: dsn, Slot: name, Publication: name}, pool, plan)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var active bool
	if err := pool.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1 AND temporary", name).Scan(&active); err != nil || !active {
		t.Fatalf("slot: active %v, %v", active, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := src.Next(ctx, 10)
		done <- err
	}()
	testdb.ExecPostgres(t, pool, "INSERT INTO "+pgTestSchema+".t VALUES (1)")
	cancel()
	_ = <-done // a change or the cancellation: either will do
	cctx, ccancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer ccancel()
	if err := src.Close(cctx); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, pool, name)
	if _, err := src.Next(cctx, 1); err == nil {
		t.Error("next after close: no error")
	}
	if err := src.Close(cctx); err != nil {
		t.Errorf("second close: %v", err)
	}
}
