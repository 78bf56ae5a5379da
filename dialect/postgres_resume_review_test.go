package dialect

// Tests of the PostgreSQL resume from its review: each failed on main as of
// ae8275d, except those marked as passing (checked behaviour).

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

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/engine"
	"osc/internal/testdb"
	"osc/table"
)

const pgrvSchema = "pgrv_dialect"

// pgrvDB is rspgDB for the schema pgrvSchema.
func pgrvDB(t *testing.T, stmts ...string) *pgxpool.Pool {
	t.Helper()
	return pgSchemaDB(t, pgrvSchema, stmts...)
}

// pgTestNames are osc's names for schema.name in the test database.
func pgTestNames(t *testing.T, schema, name string) table.PostgresNames {
	t.Helper()
	return table.NewPostgresNames(schema, name).InDatabase(testdb.PostgresConfig(t).ConnConfig.Database)
}

// rspgSlot is the slot's name for the table name of rspgSchema.
func rspgSlot(t *testing.T, name string) string {
	t.Helper()
	return pgTestNames(t, rspgSchema, name).Slot
}

// pgrvSavedCheckpoint reads the checkpoint saved for table name (nil: none).
func pgrvSavedCheckpoint(ctx context.Context, pool *pgxpool.Pool, name string) *engine.Checkpoint {
	left, err := table.ReadPostgresLeftover(ctx, pool, table.NewPostgresNames(pgrvSchema, name))
	if err != nil || left.Checkpoint == nil {
		return nil
	}
	ck, err := decodePostgresCheckpoint(left.Checkpoint.Checkpoint)
	if err != nil {
		return nil
	}
	return ck
}

// pgrvRows lists the rows of schema.name (id, rest as text), ordered.
func pgrvRows(t *testing.T, pool *pgxpool.Pool, name, cols string) []string {
	t.Helper()
	var out []string
	err := pool.QueryRow(context.Background(), fmt.Sprintf("SELECT coalesce(array_agg(format('%%s', ROW(%s)) ORDER BY id), '{}') FROM %s.%s", cols, pgrvSchema, name)).Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPostgresResumeAfterSwapRLS: a run killed after its cut-over swapped the
// tables leaves its permanent slot, its publication and its checkpoint
// table; --resume is the way to clean them up. But Inspect, which runs
// before Resume, judges the table — now the altered one — by the refusals
// for a table to migrate, and an --alter osc accepts (ENABLE ROW LEVEL
// SECURITY, SET UNLOGGED) makes the new table one it refuses: --resume can
// then never finish the run, and the slot keeps retaining WAL. (The MySQL
// side skips those refusals after a swap, bd30e4d.)
func TestPostgresResumeAfterSwapRLS(t *testing.T) {
	const name = "rls"
	pool := pgrvDB(t, "CREATE TABLE rls (id int PRIMARY KEY, v text)", "INSERT INTO rls SELECT i, 'v' FROM generate_series(1, 10) i")
	cfg := engine.Config{Schema: pgrvSchema, Table: name, Alter: "ENABLE ROW LEVEL SECURITY", Version: "test", Execute: true}
	rspgKilled(t, pool, cfg, engine.Checkpoint{Version: "test", Alter: cfg.Alter, CopyDone: true})
	// What the cut-over's transaction does to the names.
	testdb.ExecPostgresIn(t, pool, pgrvSchema, "ALTER TABLE rls RENAME TO _rls_old", "ALTER TABLE _rls_osc RENAME TO rls")
	cfg.Resume = true
	d := rspgDialect(t, cfg, testdb.PostgresDSN())
	if err := engine.New(cfg, d, slog.New(slog.DiscardHandler), io.Discard).Run(context.Background()); err != nil {
		t.Errorf("--resume after the swap: %v", err)
	}
	var slots int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", pgTestNames(t, pgrvSchema, name).Slot).Scan(&slots); err != nil {
		t.Fatal(err)
	}
	if slots != 0 {
		t.Error("the killed run's permanent slot is still there")
	}
}

// TestPostgresInitiallyDropOtherDatabase: slot names are cluster-wide. A
// killed run migrating the same schema.table in another database of the
// cluster (a staging copy, a tenant per database) leaves a permanent slot;
// this database's run must neither take it for its own leftover nor drop it
// (--initially-drop-ghost-table): the other run could no longer be resumed.
// The slot names differ per database (a hash of the database's name among
// others); a slot of another database that has this run's name anyway (made
// by hand) is refused, not dropped. (Before the names had the hash, the
// other run's slot was this one's, and was dropped.)
func TestPostgresInitiallyDropOtherDatabase(t *testing.T) {
	const name = "od"
	pool := pgrvDB(t, "CREATE TABLE od (id int PRIMARY KEY, v text)")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ours := pgTestNames(t, pgrvSchema, name)
	theirs := table.NewPostgresNames(pgrvSchema, name).InDatabase("pgrv_other")
	if ours.Slot == theirs.Slot {
		t.Fatalf("the same table in two databases has the same slot name %s", ours.Slot)
	}
	if _, err := pool.Exec(ctx, "DROP DATABASE IF EXISTS pgrv_other"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "CREATE DATABASE pgrv_other"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = 'pgrv_other'")
		_, _ = pool.Exec(context.Background(), "DROP DATABASE IF EXISTS pgrv_other")
	})
	cfgOther := testdb.PostgresConfig(t)
	cfgOther.ConnConfig.Database = "pgrv_other"
	other, err := pgxpool.NewWithConfig(ctx, cfgOther)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	otherLeft := func(slot string) bool {
		t.Helper()
		var left bool
		if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND database = 'pgrv_other')", slot).Scan(&left); err != nil {
			t.Fatal(err)
		}
		return left
	}
	cfg := engine.Config{Schema: pgrvSchema, Table: name, Alter: "ADD COLUMN w int", Version: "test", Execute: true, InitiallyDropShadow: true}
	for _, c := range []struct {
		slot, want string // want: Inspect's error
	}{
		{slot: theirs.Slot}, // the other database's killed run left its permanent slot
		{slot: ours.Slot, want: "replication slot " + ours.Slot + ` is of database "pgrv_other", not this one: it is not a leftover of this migration, not dropped`},
	} {
		if _, err := other.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", c.slot); err != nil {
			t.Fatal(err)
		}
		d := rspgDialect(t, cfg, testdb.PostgresDSN())
		err = d.Inspect(ctx)
		d.Close()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("Inspect with the slot %s of database pgrv_other: %v, want %q", c.slot, err, c.want)
		}
		if !otherLeft(c.slot) {
			t.Errorf("--initially-drop-ghost-table in database %s dropped the slot %s of database pgrv_other", ours.Database, c.slot)
		}
	}
}

// TestPostgresResumeIdleAdvanceWaitsForLastBatch: the source advances the applied
// position to the last position received ("idle") when nothing is queued,
// no transaction is open and ackedPos >= returned. But every change of a
// transaction has the same Pos (its commit LSN): once the first batch of a
// transaction larger than the capture's queue (Next returns whole
// transactions, but the reader cannot read this one's Commit before the
// applier takes some of it) is acked, the last batch, taken by Next after the
// Commit arrived, satisfies ackedPos >= returned while it is still being
// applied. The applied position then jumps past the
// transaction, a checkpoint saves it, the permanent slot is confirmed past
// it, and a run killed before that batch commits resumes after the
// transaction: its last batch is lost.
func TestPostgresResumeIdleAdvanceWaitsForLastBatch(t *testing.T) {
	const name = "ib"
	pool := pgrvDB(t, "CREATE TABLE ib (id int PRIMARY KEY, v text)", "INSERT INTO ib SELECT i, 'old' FROM generate_series(1, 10200) i")
	flag := filepath.Join(t.TempDir(), "postpone")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{Schema: pgrvSchema, Table: name, Alter: "ADD COLUMN w int", Execute: true, Version: "test",
		DMLBatchSize: 50, NoChecksum: true, CheckpointInterval: 200 * time.Millisecond, StatusInterval: time.Hour,
		PostponeCutOverFlagFile: flag, OkToDropTable: true, CutOverLockTimeout: time.Second, CutOverRetries: 5}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := pgTestNames(t, pgrvSchema, name)
	p := newPGProxy(t)
	d := rspgDialect(t, cfg, p.dsn(t))
	m := engine.New(cfg, d, slog.New(slog.DiscardHandler), io.Discard)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	for {
		if ck := pgrvSavedCheckpoint(ctx, pool, name); ck != nil && ck.CopyDone {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the run ended early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Hold the applier on the transaction's last batch (the one with id
	// 10100: the transaction holds more changes than the queue).
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	lock, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, "SELECT 1 FROM "+pgrvSchema+"._ib_osc WHERE id = 10100 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	testdb.ExecPostgresIn(t, pool, pgrvSchema, "UPDATE ib SET v = 'new' WHERE id <= 10100")
	var afterT1 string
	if err := pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&afterT1); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		var applied int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+pgrvSchema+"._ib_osc WHERE v = 'new'").Scan(&applied); err != nil {
			t.Fatal(err)
		}
		// The first batches (Next returns part of the transaction, up to
		// the batch limit, once the queue is full) are applied; the one
		// holding id 10100 waits for the lock.
		if applied >= 50 && applied < 10100 {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("the first batches were not applied (%d rows)", applied)
		}
	}
	time.Sleep(3 * time.Second) // saves every 200 ms, status updates every second
	var confirmed string
	var past bool
	if err := pool.QueryRow(ctx, "SELECT confirmed_flush_lsn::text, confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1",
		n.Slot, afterT1).Scan(&confirmed, &past); err != nil {
		t.Fatal(err)
	}
	if past {
		t.Errorf("the slot is confirmed at %s, past the end of the transaction (WAL %s) whose last batch is not applied", confirmed, afterT1)
	}
	// Killed: its blocked apply never commits (the server ends the session
	// of the lost client, or the batch had not been sent yet).
	p.kill()
	// Only the killed run's apply, not whatever else waits on this
	// transaction (creating a replication slot waits for every running
	// transaction: another test's osc would be terminated).
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE $1::int = ANY (pg_blocking_pids(pid)) AND position($2 in query) > 0`, conn.Conn().PgConn().PID(), pgrvSchema); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("the killed run succeeded")
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	waitSlotIdle(t, pool, n.Slot)
	want := pgrvRows(t, pool, name, "id, v")
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	cfg.Resume = true
	d = rspgDialect(t, cfg, testdb.PostgresDSN())
	if err := engine.New(cfg, d, slog.New(slog.DiscardHandler), io.Discard).Run(ctx); err != nil {
		t.Fatalf("resume: %v", err)
	}
	got := pgrvRows(t, pool, name, "id, v")
	lost := 0
	for i := range want {
		if i < len(got) && got[i] != want[i] {
			lost++
		}
	}
	if lost > 0 || len(got) != len(want) {
		t.Errorf("after the resume %d rows differ from the original (e.g. %v, want %v)", lost, got[99], want[99])
	}
}

// pgrvKillAfter runs a migration of name through a proxy, postponed, until a
// checkpoint with the copy done is saved; then it blocks further saves (a
// lock on the checkpoint table), runs writes, waits until applied(pool)
// holds, and kills the run (every connection cut). The resumed run then
// re-applies every change since the last save, over a shadow that already
// holds their effects and later ones.
func pgrvKillAfter(t *testing.T, pool *pgxpool.Pool, cfg engine.Config, writes []string, applied string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := pgTestNames(t, pgrvSchema, cfg.Table)
	p := newPGProxy(t)
	d := rspgDialect(t, cfg, p.dsn(t))
	m := engine.New(cfg, d, slog.New(slog.DiscardHandler), io.Discard)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	for {
		if ck := pgrvSavedCheckpoint(ctx, pool, cfg.Table); ck != nil && ck.CopyDone {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the run ended early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+table.QuotePostgres(n.Schema, n.Checkpoint)+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * cfg.CheckpointInterval)
	testdb.ExecPostgresIn(t, pool, pgrvSchema, writes...)
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		var ok bool
		if err := pool.QueryRow(ctx, applied).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatal("the writes were not applied")
		}
	}
	time.Sleep(1500 * time.Millisecond) // a status update of the source
	p.kill()
	if err := <-done; err == nil {
		t.Fatal("the killed run succeeded")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	waitSlotIdle(t, pool, n.Slot)
}

// rvpgRows lists the rows of schema.name (id, rest as text), ordered.

// TestPostgresResumeUniqueReapply: a resumed run applies again every change from
// the checkpoint's position over a shadow that already holds later ones. A
// value of another UNIQUE index that moved from one row to another since the
// checkpoint (a row deleted and its email inserted again under a new id, as
// an application re-creating an account does) then clashes: re-applying the
// old row's upsert meets the new row, the resumed run fails with a unique
// violation and, failing, drops the shadow, the slot and the checkpoint,
// unless the applier deletes the newer row first, as REPLACE does
// (apply/postgres_clash.go).
func TestPostgresResumeUniqueReapply(t *testing.T) {
	const name = "uq"
	pool := pgrvDB(t, "CREATE TABLE uq (id int PRIMARY KEY, email text NOT NULL UNIQUE, v text)",
		"INSERT INTO uq SELECT i, 'e' || i, 'v' FROM generate_series(1, 50) i")
	flag := filepath.Join(t.TempDir(), "postpone")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{Schema: pgrvSchema, Table: name, Alter: "ADD COLUMN w int", Execute: true, Version: "test",
		CheckpointInterval: 200 * time.Millisecond, StatusInterval: time.Hour, PostponeCutOverFlagFile: flag, OkToDropTable: true,
		CutOverLockTimeout: time.Second, CutOverRetries: 5}
	pgrvKillAfter(t, pool, cfg, []string{
		"UPDATE uq SET email = 'x', v = 'old' WHERE id = 3",
		"DELETE FROM uq WHERE id = 3",
		"INSERT INTO uq VALUES (1000, 'x', 'new')",
	}, "SELECT EXISTS (SELECT 1 FROM "+pgrvSchema+"._uq_osc WHERE id = 1000)")
	want := pgrvRows(t, pool, name, "id, email, v")

	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	cfg.Resume = true
	d := rspgDialect(t, cfg, testdb.PostgresDSN())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := engine.New(cfg, d, slog.New(slog.DiscardHandler), io.Discard).Run(ctx); err != nil {
		t.Fatalf("the resumed run failed (an uninterrupted one succeeds): %v", err)
	}
	if got := pgrvRows(t, pool, name, "id, email, v"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after the resume:\n%v\nwant\n%v", got, want)
	}
}

// TestPostgresResumeRebuildAlters: Resume plans the shadow again and must find
// it the same for every --alter osc accepts (no spurious refusal).
func TestPostgresResumeRebuildAlters(t *testing.T) {
	for i, alter := range []string{
		"ADD COLUMN s serial",
		"ADD COLUMN g bigint GENERATED ALWAYS AS IDENTITY",
		"ALTER COLUMN v TYPE int USING length(v)",
		"ADD CONSTRAINT rb_v_check CHECK (length(v) < 100) NOT VALID",
		"ADD CONSTRAINT rb_pid_fk2 FOREIGN KEY (pid) REFERENCES pgrv_dialect.rb_p",
		"ALTER COLUMN v SET NOT NULL, REPLICA IDENTITY FULL",
		"ALTER COLUMN id SET GENERATED ALWAYS",
		"ADD COLUMN u uuid DEFAULT gen_random_uuid(), ALTER COLUMN pid TYPE bigint",
		"ALTER COLUMN id TYPE bigint",
		"ALTER COLUMN id RESTART WITH 1000",
		"ADD COLUMN t timestamptz DEFAULT now()",
		"DROP COLUMN v",
		"RENAME COLUMN v TO w",
		"ALTER COLUMN v SET STATISTICS 500, SET (fillfactor = 70)",
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			pool := pgrvDB(t, "CREATE TABLE rb_p (id int PRIMARY KEY)", "INSERT INTO rb_p VALUES (1)",
				"CREATE TABLE rb (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, pid int REFERENCES rb_p, v text)",
				"CREATE INDEX rb_v_idx ON rb (v)", "CREATE STATISTICS rb_st ON id, v FROM rb",
				"INSERT INTO rb (pid, v) SELECT 1, 'v' || i FROM generate_series(1, 20) i")
			cfg := engine.Config{Schema: pgrvSchema, Table: "rb", Alter: alter, Version: "test"}
			rspgKilled(t, pool, cfg, engine.Checkpoint{Version: "test", Alter: alter, After: []any{"5"}})
			cfg.Resume = true
			d := rspgDialect(t, cfg, testdb.PostgresDSN())
			defer d.Close()
			ctx := context.Background()
			if err := d.Inspect(ctx); err != nil {
				t.Fatal(err)
			}
			if _, _, err := d.Resume(ctx); err != nil {
				t.Errorf("--alter %q: %v", alter, err)
			}
		})
	}
}

// TestPostgresResumeStatisticsAdded: the descriptions saved with each
// checkpoint leave out extended statistics, so a statistics object created on
// the original between the kill and the resume passed them, and the resumed
// run swapped in a table without it (the existing shadow, made before, lacks
// it). The resume compares the original with its definition as the shadow was
// made from it, saved with the checkpoint, and refuses, changing nothing.
func TestPostgresResumeStatisticsAdded(t *testing.T) {
	pool := pgrvDB(t, "CREATE TABLE sa (id int PRIMARY KEY, a int, b int)", "INSERT INTO sa SELECT i, i, i FROM generate_series(1, 20) i")
	cfg := engine.Config{Schema: pgrvSchema, Table: "sa", Alter: "ADD COLUMN w int", Version: "test", Execute: true, OkToDropTable: true,
		CheckpointInterval: time.Second, StatusInterval: time.Hour}
	rspgKilled(t, pool, cfg, engine.Checkpoint{Version: "test", Alter: cfg.Alter})
	testdb.ExecPostgresIn(t, pool, pgrvSchema, "CREATE STATISTICS sa_st ON a, b FROM sa")
	cfg.Resume = true
	d := rspgDialect(t, cfg, testdb.PostgresDSN())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := engine.New(cfg, d, slog.New(slog.DiscardHandler), io.Discard).Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "changed since the killed run made the shadow from it") || !strings.Contains(err.Error(), "statistics") {
		t.Errorf("resume after a statistics object was added to the original: %v, want a refusal naming the statistics", err)
	}
	var shadow bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", pgrvSchema+"._sa_osc").Scan(&shadow); err != nil {
		t.Fatal(err)
	}
	if !shadow {
		t.Error("the refused resume removed the killed run's shadow")
	}
}

// TestPostgresResumePublicationReAdded: Resume checks that the publication
// publishes exactly the table now, not that it did all along. pgoutput
// decodes each transaction with the catalog as of its commit: a change
// committed while the table was out of the publication is never streamed,
// also not when the slot streams it again from the checkpoint. Dropping the
// table from osc's publication and adding it back (ALTER PUBLICATION … DROP
// TABLE / ADD TABLE) between the kill and the resume passes the check, and
// the changes in between are lost. (pg_publication_rel's oid changes when
// the table is added again: saving it with the checkpoint would tell.)
func TestPostgresResumePublicationReAdded(t *testing.T) {
	pool := pgrvDB(t, "CREATE TABLE pr (id int PRIMARY KEY, v text)", "INSERT INTO pr SELECT i, 'v' FROM generate_series(1, 20) i")
	cfg := engine.Config{Schema: pgrvSchema, Table: "pr", Alter: "ADD COLUMN w int", Version: "test", Execute: true, OkToDropTable: true,
		NoChecksum: true, CheckpointInterval: time.Second, StatusInterval: time.Hour}
	rspgKilled(t, pool, cfg, engine.Checkpoint{Version: "test", Alter: cfg.Alter, After: []any{"20"}, Copied: 20})
	// What the killed run's copy had written.
	testdb.ExecPostgresIn(t, pool, pgrvSchema, "INSERT INTO _pr_osc SELECT id, v FROM pr")
	pub := pgTestNames(t, pgrvSchema, "pr").Publication
	testdb.ExecPostgresIn(t, pool, pgrvSchema, "ALTER PUBLICATION "+pub+" DROP TABLE pr", "UPDATE pr SET v = 'changed' WHERE id = 5",
		"ALTER PUBLICATION "+pub+" ADD TABLE pr")
	cfg.Resume = true
	d := rspgDialect(t, cfg, testdb.PostgresDSN())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := engine.New(cfg, d, slog.New(slog.DiscardHandler), io.Discard).Run(ctx)
	if err != nil {
		if !strings.Contains(err.Error(), "is not the one the killed run's capture started with") {
			t.Errorf("resume: %v, want the refusal of a publication changed since the capture started", err)
		}
		if left := rspgLeftIn(t, pool, pgrvSchema, "pr"); len(left) != 4 {
			t.Errorf("the refused resume changed what the killed run left: %v", left)
		}
		return
	}
	var v string
	if err := pool.QueryRow(ctx, "SELECT v FROM "+pgrvSchema+".pr WHERE id = 5").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != "changed" {
		t.Errorf("the resumed run proceeded with a publication that had been changed and lost the update committed meanwhile: v = %q", v)
	}
}

// TestPostgresSlotAdvancesWhileThrottledAfterDelete: a DELETE applied while
// the copy is throttled is held by the replay window (only a chunk's replay
// forgot it), and the checkpoint position, bounded by the window's oldest
// change, and with it the permanent slot, stayed before it for the whole
// throttle. The engine now lets the window forget what the current snapshot
// sees while throttled.
func TestPostgresSlotAdvancesWhileThrottledAfterDelete(t *testing.T) {
	const name = "thd"
	pool := pgrvDB(t, "CREATE TABLE thd (id int PRIMARY KEY, v int)", "INSERT INTO thd SELECT i, i FROM generate_series(1, 200000) i")
	flag := filepath.Join(t.TempDir(), "throttle")
	// Small fixed chunks: the copy is throttled after its first chunks,
	// far from the DELETE's key (a copy throttled before any chunk holds
	// nothing in its window, and the test could not fail).
	cfg := engine.Config{Schema: pgrvSchema, Table: name, Alter: "ADD COLUMN w int", Execute: true, Version: "test", ChunkSize: 100,
		CheckpointInterval: 100 * time.Millisecond, StatusInterval: time.Hour, Control: engine.Control{ThrottleFlagFile: flag}}
	d := rspgDialect(t, cfg, testdb.PostgresDSN())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := engine.New(cfg, d, slog.New(slog.DiscardHandler), io.Discard)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		os.Remove(flag)
		cancel()
		_ = <-done // cancelled: the test has checked what it needs
	}()
	slot := pgTestNames(t, pgrvSchema, name).Slot
	var exists bool
	for start := time.Now(); !exists && time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
		if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", slot).Scan(&exists); err != nil {
			t.Fatal(err)
		}
	}
	if !exists {
		t.Fatal("no slot")
	}
	for start := time.Now(); m.Status().Copied == 0; time.Sleep(time.Millisecond) {
		if time.Since(start) > 20*time.Second {
			t.Fatal("the copy copied no chunk")
		}
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); !m.Status().Throttled; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 20*time.Second {
			t.Fatal("the copy was not throttled")
		}
	}
	if c := m.Status().Copied; c > 100000 {
		t.Fatalf("the copy had copied %d rows when throttled, past the DELETE's key", c)
	}
	testdb.ExecPostgresIn(t, pool, pgrvSchema, "DELETE FROM thd WHERE id = 150000")
	var afterDelete string
	if err := pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&afterDelete); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		testdb.ExecPostgresIn(t, pool, pgrvSchema, fmt.Sprintf("UPDATE thd SET v = v + 1 WHERE id = %d", i+1))
		time.Sleep(50 * time.Millisecond)
	}
	// The slot advances past the DELETE once the applier, a save and a
	// status update of the source have come after it: about 1.5 s on a
	// quiet machine, as long as a busy one takes. The defect held it before
	// the DELETE for as long as the throttle lasted.
	const advanceLimit = 20 * time.Second
	var confirmed string
	var past bool
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		if err := pool.QueryRow(ctx, "SELECT confirmed_flush_lsn::text, confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1",
			slot, afterDelete).Scan(&confirmed, &past); err != nil {
			t.Fatal(err)
		}
		if past || time.Since(start) > advanceLimit {
			break
		}
	}
	if !m.Status().Throttled {
		t.Fatal("the copy was not throttled")
	}
	if !past {
		t.Errorf("the throttled run applied the DELETE and 40 updates, yet %v later its slot stays confirmed at %s, before the DELETE's commit (WAL %s)",
			advanceLimit, confirmed, afterDelete)
	}
}

// TestPostgresResumeRebuildReplicaIdentity: the shadow has the original's
// replica identity (FULL, USING INDEX) before the --alter runs on it, which
// the --alter may change or leave without an index; a resumed run makes the
// shadow again the same way, and its description (replica identity
// included) equals the killed run's.
func TestPostgresResumeRebuildReplicaIdentity(t *testing.T) {
	for i, tc := range []struct{ ident, alter string }{
		{"FULL", "ALTER COLUMN v TYPE varchar(50)"},
		{"FULL", "REPLICA IDENTITY DEFAULT, ALTER COLUMN v TYPE varchar(50)"},
		{"USING INDEX rb_id_v", "ALTER COLUMN v TYPE varchar(50)"},
		{"USING INDEX rb_id_v", "DROP COLUMN v"},
		{"USING INDEX rb_id_v", "REPLICA IDENTITY FULL, ADD COLUMN n int"},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			pool := pgrvDB(t, "CREATE TABLE rb (id int PRIMARY KEY, v text NOT NULL)",
				"CREATE UNIQUE INDEX rb_id_v ON rb (id, v)", "ALTER TABLE rb REPLICA IDENTITY "+tc.ident,
				"INSERT INTO rb SELECT i, 'v' || i FROM generate_series(1, 20) i")
			cfg := engine.Config{Schema: pgrvSchema, Table: "rb", Alter: tc.alter, Version: "test"}
			rspgKilled(t, pool, cfg, engine.Checkpoint{Version: "test", Alter: tc.alter, After: []any{"5"}})
			cfg.Resume = true
			d := rspgDialect(t, cfg, testdb.PostgresDSN())
			defer d.Close()
			ctx := context.Background()
			if err := d.Inspect(ctx); err != nil {
				t.Fatal(err)
			}
			if _, _, err := d.Resume(ctx); err != nil {
				t.Errorf("replica identity %s, --alter %q: %v", tc.ident, tc.alter, err)
			}
		})
	}
}
