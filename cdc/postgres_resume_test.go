package cdc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/internal/testdb"
	"osc/internal/testplan"
	"osc/table"
)

const rspgSchema = "rspg_cdc"

// rspgSource returns a source on rspg_cdc.name with a permanent slot,
// resumed from resumeFrom when set; its slot and publication are named for
// the test.
func rspgSource(t *testing.T, pool *pgxpool.Pool, name, resumeFrom string) *PostgresSource {
	t.Helper()
	tb, key, idx := testplan.PostgresTable(t, pool, rspgSchema, name)
	p := &table.Plan{Source: tb, Shadow: &table.Table{Schema: tb.Schema, Name: "_" + name + "_new", Columns: tb.Columns}, Key: key, KeyIndex: idx}
	for i, c := range tb.Columns {
		p.Mapping = append(p.Mapping, table.ColumnMap{Source: c.Name, Shadow: c.Name, SourceIndex: i})
	}
	id := "rspg_cdc_" + strings.ToLower(name)
	src, err := NewPostgres(PostgresConfig{DSN: testdb.PostgresDSN(), Slot: id, Publication: id, Permanent: true, ResumeFrom: resumeFrom}, pool, p)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func rspgCDCPool(t *testing.T, stmts ...string) *pgxpool.Pool {
	t.Helper()
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = pool.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'rspg\_cdc\_%' AND NOT active`)
		_, _ = pool.Exec(ctx, `DO $$DECLARE p text; BEGIN
			FOR p IN SELECT pubname FROM pg_publication WHERE pubname LIKE 'rspg\_cdc\_%' LOOP EXECUTE format('DROP PUBLICATION %I', p); END LOOP; END$$`)
	}
	drop()
	t.Cleanup(drop)
	testdb.ResetPostgresSchema(t, pool, rspgSchema)
	testdb.ExecPostgresIn(t, pool, rspgSchema, stmts...)
	return pool
}

// rspgConfirmed is the slot's confirmed_flush_lsn once the source has sent
// a status update or two.
func rspgConfirmed(t *testing.T, pool *pgxpool.Pool, slot string) LSN {
	t.Helper()
	time.Sleep(2*statusInterval + 200*time.Millisecond)
	var s string
	if err := pool.QueryRow(context.Background(), "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&s); err != nil {
		t.Fatal(err)
	}
	l, err := pglogrepl.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return LSN(l)
}

// TestPostgresPermanentSlot: the slot survives the source (a killed run),
// is confirmed only up to the last saved checkpoint, a source resumed from
// that checkpoint streams again every change after it, and Close drops the
// slot and the publication.
func TestPostgresPermanentSlot(t *testing.T) {
	pool := rspgCDCPool(t, "CREATE TABLE p (id int PRIMARY KEY, v text)")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := rspgSource(t, pool, "p", "")
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	start := src.Checkpoint(nil)
	var temporary bool
	if err := pool.QueryRow(ctx, "SELECT temporary FROM pg_replication_slots WHERE slot_name = $1", src.cfg.Slot).Scan(&temporary); err != nil || temporary {
		t.Fatalf("slot temporary %v (%v)", temporary, err)
	}
	next := func(s *PostgresSource, want int) []Change {
		t.Helper()
		var got []Change
		for len(got) < want {
			cs, err := s.Next(ctx, want-len(got))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, cs...)
		}
		return got
	}
	testdb.ExecPostgresIn(t, pool, rspgSchema, "INSERT INTO p VALUES (1, 'a')")
	cs := next(src, 1)
	src.Ack(cs[0].Pos)
	if got := rspgConfirmed(t, pool, src.cfg.Slot); got.String() != start {
		t.Errorf("slot confirmed %s before any checkpoint was saved, want %s", got, start)
	}
	saved := src.Checkpoint(nil)
	if saved == start {
		t.Fatalf("the checkpoint did not move past the acked change: %s", saved)
	}
	// The oldest change the replay window holds bounds the position.
	// (The applied position is at or after the acked change's commit.)
	if got := src.Checkpoint(cs[0].Pos); got != cs[0].Pos.(LSN).String() {
		t.Errorf("Checkpoint(%s) = %s, applied %s", cs[0].Pos, got, saved)
	}
	if got := src.Checkpoint(LSN(1 << 62)); got != saved {
		t.Errorf("Checkpoint(later than applied) = %s, want %s", got, saved)
	}
	src.Saved(saved)
	if got := rspgConfirmed(t, pool, src.cfg.Slot); got.String() != saved {
		t.Errorf("slot confirmed %s after the checkpoint at %s was saved", got, saved)
	}
	if lag := src.Lag(); !strings.Contains(lag, "permanent slot "+src.cfg.Slot+" confirmed "+saved+", retains ") {
		t.Errorf("status %q does not show the permanent slot's confirmed position", lag)
	}
	// Two more transactions, returned and acked but not saved: then killed
	// (the connection ends, nothing is dropped).
	testdb.ExecPostgresIn(t, pool, rspgSchema, "INSERT INTO p VALUES (2, 'b')")
	testdb.ExecPostgresIn(t, pool, rspgSchema, "UPDATE p SET v = 'c' WHERE id = 1")
	cs = next(src, 2)
	src.Ack(cs[1].Pos)
	time.Sleep(2 * statusInterval)
	src.cancel()
	<-src.done
	if err := src.conn.Close(ctx); err != nil {
		t.Fatal(err)
	}

	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		var active bool
		if err := pool.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", src.cfg.Slot).Scan(&active); err != nil {
			t.Fatal(err)
		}
		if !active {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the slot is still active 10 s after its connection closed")
		}
	}
	resumed := rspgSource(t, pool, "p", saved)
	if err := resumed.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := resumed.Checkpoint(nil); got != saved {
		t.Errorf("resumed at %s, want %s", got, saved)
	}
	cs = next(resumed, 2)
	if cs[0].Op != Insert || cs[0].After[0] != "2" || cs[1].Op != Update || cs[1].After[1] != "c" {
		t.Errorf("resumed stream: %+v", cs)
	}
	if err := resumed.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1)
		+ (SELECT count(*) FROM pg_publication WHERE pubname = $1)`, src.cfg.Slot).Scan(&left); err != nil || left != 0 {
		t.Errorf("after Close: %d slots and publications left (%v)", left, err)
	}
}
