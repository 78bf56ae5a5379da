package cdc

// pgoutput's restart semantics that the PostgreSQL checkpoint relies on.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/internal/testdb"
	"osc/internal/testplan"
	"osc/table"
)

const pgrvSchema = "pgrv_cdc"

func pgrvSource(t *testing.T, pool *pgxpool.Pool, name, resumeFrom string) *PostgresSource {
	t.Helper()
	tb, key, idx := testplan.PostgresTable(t, pool, pgrvSchema, name)
	p := &table.Plan{Source: tb, Shadow: &table.Table{Schema: tb.Schema, Name: "_" + name + "_new", Columns: tb.Columns}, Key: key, KeyIndex: idx}
	for i, c := range tb.Columns {
		p.Mapping = append(p.Mapping, table.ColumnMap{Source: c.Name, Shadow: c.Name, SourceIndex: i})
	}
	id := "pgrv_cdc_" + strings.ToLower(name)
	src, err := NewPostgres(PostgresConfig{DSN: testdb.PostgresDSN(), Slot: id, Publication: id, Permanent: true, ResumeFrom: resumeFrom}, pool, p)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestPostgresRestartAtCommitLSN: a checkpoint at a change's Pos (its
// transaction's commit LSN, Checkpoint(oldest)) streams that transaction
// again, and one at the applied position after it does not.
func TestPostgresRestartAtCommitLSN(t *testing.T) {
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = pool.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'pgrv\_cdc\_%' AND NOT active`)
		_, _ = pool.Exec(ctx, `DO $$DECLARE p text; BEGIN
			FOR p IN SELECT pubname FROM pg_publication WHERE pubname LIKE 'pgrv\_cdc\_%' LOOP EXECUTE format('DROP PUBLICATION %I', p); END LOOP; END$$`)
	}
	drop()
	t.Cleanup(drop)
	testdb.ResetPostgresSchema(t, pool, pgrvSchema)
	testdb.ExecPostgresIn(t, pool, pgrvSchema, "CREATE TABLE r (id int PRIMARY KEY, v text)")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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
	kill := func(s *PostgresSource) {
		t.Helper()
		s.cancel()
		<-s.done
		if err := s.conn.Close(ctx); err != nil {
			t.Fatal(err)
		}
		for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
			var active bool
			if err := pool.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", s.cfg.Slot).Scan(&active); err != nil {
				t.Fatal(err)
			}
			if !active {
				return
			}
			if time.Since(start) > 10*time.Second {
				t.Fatal("slot still active")
			}
		}
	}
	src := pgrvSource(t, pool, "r", "")
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	testdb.ExecPostgresIn(t, pool, pgrvSchema, "INSERT INTO r VALUES (1, 'a')")
	testdb.ExecPostgresIn(t, pool, pgrvSchema, "INSERT INTO r VALUES (2, 'b')")
	cs := next(src, 2)
	src.Ack(cs[1].Pos)
	time.Sleep(2*statusInterval + 200*time.Millisecond) // T2's Commit arrived, applied position past it
	at := src.Checkpoint(cs[1].Pos)                     // the second transaction's commit LSN
	if at != cs[1].Pos.(LSN).String() {
		t.Fatalf("Checkpoint(%s) = %s", cs[1].Pos, at)
	}
	src.Saved(at)
	time.Sleep(2*statusInterval + 200*time.Millisecond)
	kill(src)
	resumed := pgrvSource(t, pool, "r", at)
	if err := resumed.Start(ctx); err != nil {
		t.Fatal(err)
	}
	testdb.ExecPostgresIn(t, pool, pgrvSchema, "INSERT INTO r VALUES (3, 'c')")
	cs = next(resumed, 2)
	if cs[0].After[0] != "2" || cs[1].After[0] != "3" {
		t.Errorf("resumed at the commit LSN of the insert of 2: got %v then %v, want 2 then 3", cs[0].After, cs[1].After)
	}
	if err := resumed.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
