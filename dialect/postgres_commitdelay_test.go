package dialect

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/engine"
	"osc/internal/testdb"
	"osc/table"
)

// commitDelayProxy forwards TCP connections to the sandbox's quiet
// PostgreSQL (a pgProxy) and holds back, by delay, the server's answer to
// the COMMIT of a transaction whose statements held marker: the server has
// committed, the client does not know yet. committing is closed when that
// COMMIT is sent on.
type commitDelayProxy struct {
	*pgProxy
	marker     []byte
	delay      time.Duration
	committing chan struct{}
	once       sync.Once
}

func newCommitDelayProxy(t *testing.T, marker string, delay time.Duration) *commitDelayProxy {
	t.Helper()
	p := &commitDelayProxy{marker: []byte(marker), delay: delay, committing: make(chan struct{})}
	p.pgProxy = newPGProxyPiped(t, testdb.PostgresQuietDSN(), func(c, s net.Conn) {
		var hold atomic.Bool
		go func() { p.fromClient(c, s, &hold); s.Close() }()
		go func() { p.fromServer(s, c, &hold); c.Close() }()
	})
	return p
}

// fromClient forwards the client's messages, parsing them: the startup
// message (after any SSL or GSS request), then typed messages.
func (p *commitDelayProxy) fromClient(c, s net.Conn, hold *atomic.Bool) {
	for {
		var n uint32
		head := make([]byte, 8)
		if _, err := io.ReadFull(c, head); err != nil {
			return
		}
		n = binary.BigEndian.Uint32(head)
		body := make([]byte, int(n)-8)
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		if _, err := s.Write(append(head, body...)); err != nil {
			return
		}
		if code := binary.BigEndian.Uint32(head[4:]); code != 80877103 && code != 80877104 {
			break // the startup message
		}
	}
	marked := false
	for {
		head := make([]byte, 5)
		if _, err := io.ReadFull(c, head); err != nil {
			return
		}
		body := make([]byte, int(binary.BigEndian.Uint32(head[1:]))-4)
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		if bytes.Contains(body, p.marker) {
			marked = true
		}
		if marked && head[0] == 'Q' && strings.EqualFold(strings.TrimRight(string(body), "\x00"), "commit") {
			marked = false
			hold.Store(true)
			p.once.Do(func() { close(p.committing) })
		}
		if _, err := s.Write(append(head, body...)); err != nil {
			return
		}
	}
}

// fromServer forwards the server's bytes, holding them back by delay once
// hold is set.
func (p *commitDelayProxy) fromServer(s, c net.Conn, hold *atomic.Bool) {
	buf := make([]byte, 64<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if hold.CompareAndSwap(true, false) {
				time.Sleep(p.delay)
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestPostgresDecodingBugDuringSwapCommit: the decoding bug strikes while
// the cut-over's COMMIT, which swaps the tables, is on its way back (the
// server committed; a proxy holds its answer back). The capture's failure
// cancels the cut-over's context, and the driver gives up on the COMMIT:
// osc must not take the tables for unswapped and start the migration over
// on the migrated table; the swap committed, after the drain, so the
// migration is done.
func TestPostgresDecodingBugDuringSwapCommit(t *testing.T) {
	pool := pgQuietSchemaDB(t, pgStartOverReviewSchema)
	var prov pgProvocation
	prov.provoke(t, "the capture never met PostgreSQL's decoding bug during the swap's commit", func(attempt int) bool { return pgDecodingBugDuringSwapCommit(t, pool, &prov, attempt) })
}

// pgDecodingBugDuringSwapCommit runs one attempt of
// TestPostgresDecodingBugDuringSwapCommit on a table of its own; it reports
// whether the capture met the bug while the swap's COMMIT was held back.
func pgDecodingBugDuringSwapCommit(t *testing.T, pool *pgxpool.Pool, prov *pgProvocation, attempt int) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := fmt.Sprintf("sd%d", attempt)
	q := func(n string) string { return pgStartOverReviewSchema + "." + n }
	for _, stmt := range []string{
		"CREATE TABLE " + q(name) + " (id bigserial PRIMARY KEY, owner int NOT NULL, v int NOT NULL DEFAULT 1, s text)",
		"INSERT INTO " + q(name) + " (owner, v, s) SELECT i % 3, i, 's' || i FROM generate_series(1, 2000) i",
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	names := pgTestNames(t, pgStartOverReviewSchema, name)
	proxy := newCommitDelayProxy(t, "RENAME TO "+table.QuotePostgres(names.Old), 3*time.Second)
	flag := filepath.Join(t.TempDir(), "postpone")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{Schema: pgStartOverReviewSchema, Table: name, Alter: "ADD COLUMN c int NOT NULL DEFAULT 7",
		Execute: true, Version: "test", StatusInterval: time.Hour, PostponeCutOverFlagFile: flag, NoChecksum: true,
		CutOverLockTimeout: 10 * time.Second, CutOverRetries: 1000}
	var logs testdb.Logs
	log := slog.New(slog.NewTextHandler(&logs, nil))
	d, err := NewPostgres(cfg, PostgresOptions{DSN: proxy.dsn(t)}, log)
	if err != nil {
		t.Fatal(err)
	}
	writers := startPGWriters(t, ctx, pool, q(name), uint64(attempt))
	a := pgBegin(t, ctx, pool, "SELECT pg_current_xact_id()")
	m := engine.New(cfg, d, log, io.Discard)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	dtx := pgProvokeDecodeBug(t, ctx, pool, prov, pgStartOverReviewSchema, fmt.Sprintf("sd%d_x", attempt), names.Slot, a, done)
	waitPostponed(t, ctx, m, done)
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	select {
	case <-proxy.committing:
	case err := <-done:
		t.Fatalf("the run ended (%v) before the swap's commit\n%s", err, logs.String())
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if err := dtx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// The walsender lets go of the slot when decoding fails; the run
	// closes its capture (dropping the slot) only once the COMMIT's
	// answer came, held back for longer, or gave up on it.
	met := false
	for start := time.Now(); !met && time.Since(start) < 2*time.Second; time.Sleep(10 * time.Millisecond) {
		if err := pool.QueryRow(ctx, "SELECT coalesce((SELECT NOT active FROM pg_replication_slots WHERE slot_name = $1), true)", names.Slot).Scan(&met); err != nil {
			t.Fatal(err)
		}
	}
	runErr := <-done
	time.Sleep(100 * time.Millisecond) // writes to the new table
	want := writers.wait(t)
	var added bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'c' AND NOT attisdropped)`,
		q(name)).Scan(&added); err != nil {
		t.Fatal(err)
	}
	if !added {
		t.Fatalf("the swap did not commit (%v)\n%s", runErr, logs.String())
	}
	if strings.Contains(logs.String(), "starting the migration over") {
		t.Errorf("started the migration over after the swap committed:\n%s", logs.String())
	}
	if runErr != nil {
		t.Errorf("migration: %v", runErr)
	} else {
		checkPGRows(t, ctx, pool, "SELECT id, v, s FROM "+q(name), want)
	}
	if left := rspgLeftIn(t, pool, pgStartOverReviewSchema, name); len(left) != 1 || left[0] != "table "+names.Old {
		t.Errorf("left behind: %v, want only the old table", left)
	}
	if t.Failed() {
		t.FailNow()
	}
	return met
}
