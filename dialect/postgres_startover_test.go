package dialect

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/engine"
	"osc/internal/testdb"
)

const pgStartOverSchema = "pgso_dialect"

// pgQuietSchemaDB is pgSchemaDB on the sandbox's quiet primary
// (testdb.PostgresQuietDSN), where the tests that provoke PostgreSQL's
// decoding bug run: on the shared one, the other packages' logical slots
// keep the bug away (pgProvocation), and the provocation's open
// transactions hold up the creation of their slots.
func pgQuietSchemaDB(t *testing.T, schema string, stmts ...string) *pgxpool.Pool {
	t.Helper()
	return pgSchemaDBOn(t, testdb.PostgresQuietConfig(t), schema, stmts...)
}

// pgProvocation follows a test's attempts at PostgreSQL's decoding bug
// (cdc.DecodeMapBug). The bug needs the new slot to build its first snapshot
// itself: while another logical slot is active, the new one may take up the
// snapshot that slot saved at the same record (pg_logical/snapshots) and be
// right at once (checked with a pg_recvlogical stream beside the test).
type pgProvocation struct {
	alone  bool     // an attempt ran while no other logical slot was active
	others []string // the other active logical slots the last attempt met
}

// more reports whether a test makes its nth attempt: the first always;
// another only after one that ran while no other logical slot was active
// (with other slots active, the next would likely meet them too, and the
// test is skipped), up to three.
func (p *pgProvocation) more(n int) bool { return n == 1 || n <= 3 && len(p.others) == 0 }

// giveUp ends a test none of whose attempts met the bug: skipped when other
// slots were active in every attempt, failed otherwise.
func (p *pgProvocation) giveUp(t *testing.T, what string) {
	t.Helper()
	if !p.alone {
		t.Skipf("%s, but other logical slots were active in every attempt (%v): a new slot may take up their snapshot", what, p.others)
	}
	t.Fatal(what + ", though an attempt ran while no other logical slot was active: the test no longer provokes it")
}

// provoke runs attempt (its number from 1) as long as more allows, until
// one reports that it met the bug; then gives up saying what never happened.
func (p *pgProvocation) provoke(t *testing.T, what string, attempt func(n int) bool) {
	t.Helper()
	for n := 1; p.more(n); n++ {
		if attempt(n) {
			return
		}
	}
	p.giveUp(t, what)
}

// pgOtherSlots lists the active logical slots but slot.
func pgOtherSlots(t *testing.T, ctx context.Context, pool *pgxpool.Pool, slot string) []string {
	t.Helper()
	var names []string
	if err := pool.QueryRow(ctx, `SELECT coalesce(array_agg(slot_name::text), '{}') FROM pg_replication_slots
		WHERE active AND slot_type = 'logical' AND slot_name <> $1`, slot).Scan(&names); err != nil {
		t.Fatal(err)
	}
	return names
}

// pgProvokeDecodeBug lays out PostgreSQL's decoding bug for the slot named
// slot, which the run into done makes: a is a transaction begun before the
// run started, holding a transaction id that the slot's first snapshot
// waits for. Once other sessions' logical slots are idle (or after 5 s)
// and the slot has reserved its WAL, C begins after the slot's first
// running-transactions record; a CREATE TABLE of bug commits while the
// snapshot builds (ignored); a's end lets the snapshot be built (CHECKPOINT
// logs the running transactions) without that table; D inserts into it,
// decoded with that snapshot; C's end makes the slot ready. It returns D:
// decoding D's commit fails ("could not map filenode"), so the caller
// commits it when the failure is to strike. prov records whether other
// slots were active meanwhile (watched every 10 ms).
func pgProvokeDecodeBug(t *testing.T, ctx context.Context, pool *pgxpool.Pool, prov *pgProvocation, schema, bug, slot string, a pgx.Tx, done <-chan error) pgx.Tx {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); len(pgOtherSlots(t, ctx, pool, slot)) > 0 && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	// Other slots are watched all along: one active for a moment, at a
	// running-transactions record the new slot reads, saves the snapshot
	// it takes up.
	watch, stopWatch := context.WithCancel(ctx)
	seen := make(chan []string, 1)
	go func() {
		var all []string
		defer func() { seen <- all }()
		for watch.Err() == nil {
			var names []string
			if err := pool.QueryRow(watch, `SELECT coalesce(array_agg(slot_name::text), '{}') FROM pg_replication_slots
				WHERE active AND slot_type = 'logical' AND slot_name <> $1`, slot).Scan(&names); err == nil {
				all = append(all, names...)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	defer func() {
		stopWatch()
		prov.others = append(prov.others, <-seen...)
		prov.alone = prov.alone || len(prov.others) == 0
	}()
	prov.others = nil
	for {
		var reserved bool
		err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1 AND restart_lsn IS NOT NULL)", slot).Scan(&reserved)
		if err != nil {
			t.Fatal(err)
		}
		if reserved {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the run ended before it made its slot: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	time.Sleep(300 * time.Millisecond) // the slot's first running-transactions record, right after restart_lsn
	exec := func(stmt string) {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	c := pgBegin(t, ctx, pool, "SELECT pg_current_xact_id()")
	exec("CREATE TABLE " + schema + "." + bug + " (id int)")
	if err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	exec("CHECKPOINT")
	d := pgBegin(t, ctx, pool, "INSERT INTO "+schema+"."+bug+" VALUES (1)")
	if err := c.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	exec("CHECKPOINT")
	return d
}

// pgBegin begins a transaction on a connection of its own and runs stmt in it.
func pgBegin(t *testing.T, ctx context.Context, pool *pgxpool.Pool, stmt string) pgx.Tx {
	t.Helper()
	c, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	tx, err := c.Begin(ctx)
	if err == nil {
		_, err = tx.Exec(ctx, stmt)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// TestPostgresStartsOverOnDecodingBug provokes PostgreSQL's decoding bug in
// osc's new slot while writers change the table (pgProvokeDecodeBug). osc
// must start over by itself with a new shadow and slot, and end with the
// writers' rows and nothing left behind. The scenario runs again until osc
// meets the bug (pgProvocation.more).
func TestPostgresStartsOverOnDecodingBug(t *testing.T) {
	const name = "so"
	pool := pgQuietSchemaDB(t, pgStartOverSchema,
		"CREATE TABLE so (id bigserial PRIMARY KEY, owner int NOT NULL, v int NOT NULL DEFAULT 1, s text)",
		"INSERT INTO so (owner, v, s) SELECT i % 3, i, 's' || i FROM generate_series(1, 5000) i")
	var prov pgProvocation
	prov.provoke(t, "osc never met PostgreSQL's decoding bug", func(attempt int) bool {
		if pgStartOverRun(t, pool, &prov, name, attempt) {
			return true
		}
		t.Logf("attempt %d: osc did not meet the decoding bug (other active logical slots: %v)", attempt, prov.others)
		return false
	})
}

// pgStartOverRun runs one migration of name through the provocation and
// checks its result; it reports whether osc started over.
func pgStartOverRun(t *testing.T, pool *pgxpool.Pool, prov *pgProvocation, name string, attempt int) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	flag := filepath.Join(t.TempDir(), "postpone")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{Schema: pgStartOverSchema, Table: name, Alter: fmt.Sprintf("ADD COLUMN c%d int NOT NULL DEFAULT 7", attempt),
		Execute: true, Version: "test", StatusInterval: time.Hour, OkToDropTable: true, PostponeCutOverFlagFile: flag,
		CutOverLockTimeout: time.Second, CutOverRetries: 30}
	var logs testdb.Logs
	log := slog.New(slog.NewTextHandler(&logs, nil))
	d, err := NewPostgres(cfg, PostgresOptions{DSN: testdb.PostgresQuietDSN()}, log)
	if err != nil {
		t.Fatal(err)
	}
	writers := startPGWriters(t, ctx, pool, pgStartOverSchema+"."+name, uint64(attempt))
	a := pgBegin(t, ctx, pool, "SELECT pg_current_xact_id()")
	m := engine.New(cfg, d, log, io.Discard)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	dtx := pgProvokeDecodeBug(t, ctx, pool, prov, pgStartOverSchema, fmt.Sprintf("so_x%d", attempt), pgTestNames(t, pgStartOverSchema, name).Slot, a, done)
	if err := dtx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	waitPostponed(t, ctx, m, done)
	startedOver := strings.Contains(logs.String(), "starting the migration over")
	if startedOver && !strings.Contains(logs.String(), "could not map filenode") {
		t.Errorf("osc started over without the decoding bug:\n%s", logs.String())
	}
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	runErr := <-done
	time.Sleep(100 * time.Millisecond) // writes to the new table
	want := writers.wait(t)
	if runErr != nil {
		t.Fatalf("migration: %v\n%s", runErr, logs.String())
	}
	checkPGRows(t, ctx, pool, "SELECT id, v, s FROM "+pgStartOverSchema+"."+name, want)
	var added bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2 AND NOT attisdropped)`,
		pgStartOverSchema+"."+name, fmt.Sprintf("c%d", attempt)).Scan(&added); err != nil || !added {
		t.Errorf("the new table lacks column c%d (%v)", attempt, err)
	}
	if left := rspgLeftIn(t, pool, pgStartOverSchema, name); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	return startedOver
}
