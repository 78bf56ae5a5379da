package cdc

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"osc/internal/testdb"
)

// TestPostgresSlotWaitReported: a transaction that holds a transaction id
// holds up the slot's creation; osc names it in the log, and starts once it
// ends.
func TestPostgresSlotWaitReported(t *testing.T) {
	pool := pgTestPool(t)
	const name = "slotwait"
	testdb.ExecPostgresIn(t, pool, pgTestSchema, "CREATE TABLE "+name+" (id int PRIMARY KEY, v int)")
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var pid int
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid() FROM pg_catalog.pg_current_xact_id()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	var logs testdb.Logs
	id := pgTestName(t)
	src, err := NewPostgres(PostgresConfig{DSN: testdb.PostgresDSN(), Slot: id, Publication: id,
		Log: slog.New(slog.NewTextHandler(&logs, nil))}, pool, pgTestPlan(t, pool, name))
	if err != nil {
		t.Fatal(err)
	}
	// The transaction ends once osc has named it (after slotWaitReport of
	// waiting), however late a busy machine starts the slot's creation; or
	// after a minute, for the check below to fail.
	go func() {
		for start := time.Now(); !strings.Contains(logs.String(), "creating the replication slot is taking long") &&
			time.Since(start) < time.Minute; time.Sleep(50 * time.Millisecond) {
		}
		tx.Rollback(ctx)
	}()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = src.Start(sctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := src.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := logs.String(); !strings.Contains(got, "creating the replication slot is taking long") || !strings.Contains(got, fmt.Sprintf("pid %d ", pid)) {
		t.Errorf("the log does not name the transaction (pid %d) the slot waited for:\n%s", pid, got)
	}
}
