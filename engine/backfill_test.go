package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"osc/throttle"
)

// errFakeLockWait is the fake's lock wait timeout: transient.
var errFakeLockWait = errors.New("lock wait timeout")

// fakeBackfill is a table of keys 1..rows in memory: each UpdateChunk
// counts its updates per key, as "n = n + 1" would.
type fakeBackfill struct {
	rows int64

	mu        sync.Mutex
	updates   map[int64]int
	sizes     []int
	lockWaits int   // UpdateChunk fails with errFakeLockWait this many times first
	failAt    int64 // a non-transient error on the chunk after this key (0: none)
	began     bool
	resume    []any // Begin's answer for a resume
	cleaned   bool
	fails     map[int64]bool // keys failing --verify
	counts    []int          // CountChunk's sizes
}

func (f *fakeBackfill) Inspect(context.Context) (*BackfillPlan, error) {
	return &BackfillPlan{Schema: "s", Table: "t", Key: []string{"id"}, EstimatedRows: f.rows, Bookkeeping: "t_osc_bf"}, nil
}

func (f *fakeBackfill) Estimate(context.Context, int) (*BackfillEstimate, error) {
	return &BackfillEstimate{SampleRows: 10, SampleTook: time.Millisecond}, nil
}

func (f *fakeBackfill) Begin(_ context.Context, resume bool) ([]any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.began = true
	if resume {
		return f.resume, nil
	}
	return nil, nil
}

func (f *fakeBackfill) UpdateChunk(_ context.Context, after []any, size int) (BackfillChunk, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var from int64
	if after != nil {
		from = after[0].(int64)
	}
	if f.lockWaits > 0 {
		f.lockWaits--
		return BackfillChunk{}, errFakeLockWait
	}
	if f.failAt != 0 && from >= f.failAt {
		return BackfillChunk{}, errors.New("broken")
	}
	f.sizes = append(f.sizes, size)
	last := min(from+int64(size), f.rows)
	for k := from + 1; k <= last; k++ {
		f.updates[k]++
	}
	time.Sleep(time.Millisecond)
	return BackfillChunk{Last: []any{last}, Scanned: last - from, Updated: last - from, Done: last == f.rows}, nil
}

// Behind: keys 1..rows, so the rows up to key k are k.
func (f *fakeBackfill) Behind(_ context.Context, after []any) (int64, error) {
	return after[0].(int64), nil
}

// CountChunk: every row matches the --where; the keys of fails fail
// --verify.
func (f *fakeBackfill) CountChunk(_ context.Context, after []any, size int, failing bool, most int) (BackfillCount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts = append(f.counts, size)
	var from int64
	if after != nil {
		from = after[0].(int64)
	}
	last := min(from+int64(size), f.rows)
	c := BackfillCount{Last: []any{last}, Scanned: last - from, Done: last == f.rows}
	time.Sleep(time.Millisecond)
	for k := from + 1; k <= last; k++ {
		switch {
		case !failing:
			c.Counted++
		case f.fails[k]:
			c.Counted++
			if len(c.Keys) < most {
				c.Keys = append(c.Keys, fmt.Sprintf("(id=%d)", k))
			}
		}
	}
	return c, nil
}

func (f *fakeBackfill) Cleanup(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleaned = true
	return nil
}

func (f *fakeBackfill) Throttle() (throttle.Probe, error)           { return fakeProbe{}, nil }
func (f *fakeBackfill) Retryable(err error) bool                    { return errors.Is(err, errFakeLockWait) }
func (f *fakeBackfill) Driver() string                              { return "fake" }
func (f *fakeBackfill) ParseReplicas(list string) ([]string, error) { return nil, nil }
func (f *fakeBackfill) DisplayReplica(entry string) string          { return entry }
func (f *fakeBackfill) Close() error                                { return nil }

func newFakeBackfill(rows int64) *fakeBackfill {
	return &fakeBackfill{rows: rows, updates: map[int64]int{}, fails: map[int64]bool{7: true}}
}

func backfillConfig() BackfillConfig {
	return BackfillConfig{Schema: "s", Table: "t", Set: "n = n + 1", Execute: true, ChunkSize: 100, Retries: 5}
}

// TestBackfillRun: every key is updated once, a lock wait timeout is
// retried, the bookkeeping is cleaned up, and a resume starts after the
// checkpoint.
func TestBackfillRun(t *testing.T) {
	f := newFakeBackfill(1050)
	f.lockWaits = 2
	var out bytes.Buffer
	b := NewBackfill(backfillConfig(), f, slog.New(slog.DiscardHandler), &out)
	if err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for k := int64(1); k <= f.rows; k++ {
		if f.updates[k] != 1 {
			t.Fatalf("key %d updated %d times", k, f.updates[k])
		}
	}
	if !f.cleaned || b.State() != BackfillDone {
		t.Errorf("cleaned %v, state %s", f.cleaned, b.State())
	}
	s := b.Status()
	if s.Scanned != 1050 || s.Updated != 1050 || s.Chunks != 11 || s.Retries != 2 {
		t.Errorf("status %+v", s)
	}
	if !strings.Contains(out.String(), "Backfill: 1050/1050 100.0%; Updated: 1050;") {
		t.Errorf("no final status line: %q", out.String())
	}

	r := newFakeBackfill(1050)
	r.resume = []any{int64(700)}
	cfg := backfillConfig()
	cfg.Resume = true
	out.Reset()
	if err := NewBackfill(cfg, r, slog.New(slog.DiscardHandler), &out).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.updates[700] != 0 || r.updates[701] != 1 || len(r.updates) != 350 {
		t.Errorf("a resume after key 700 updated %d keys (700: %d, 701: %d)", len(r.updates), r.updates[700], r.updates[701])
	}
	// The status of the resumed run counts the killed run's 700 rows.
	if !strings.Contains(out.String(), "Backfill: 1050/1050 100.0%; Updated: 350;") {
		t.Errorf("the resumed run's final status does not count the killed run's rows: %q", out.String())
	}
}

// TestBackfillFailureCleansUp: a chunk's failure fails the run, which still
// drops its bookkeeping; a lock wait timeout that lasts fails it too, and
// the error does not send the user to a --resume that its dropped
// checkpoint makes impossible.
func TestBackfillFailureCleansUp(t *testing.T) {
	f := newFakeBackfill(500)
	f.failAt = 200
	err := NewBackfill(backfillConfig(), f, slog.New(slog.DiscardHandler), nil).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "broken") || !f.cleaned {
		t.Fatalf("err %v, cleaned %v", err, f.cleaned)
	}
	g := newFakeBackfill(500)
	g.lockWaits = 100
	err = NewBackfill(backfillConfig(), g, slog.New(slog.DiscardHandler), nil).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "after 5 attempts") || strings.Contains(err.Error(), "--resume") || !g.cleaned {
		t.Fatalf("err %v, cleaned %v", err, g.cleaned)
	}
}

// TestBackfillDynamicChunks: with a target chunk time the size follows the
// chunks' rate, as the copy's does.
func TestBackfillDynamicChunks(t *testing.T) {
	f := newFakeBackfill(20000)
	cfg := backfillConfig()
	cfg.ChunkTarget = 20 * time.Millisecond
	if err := NewBackfill(cfg, f, slog.New(slog.DiscardHandler), nil).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.sizes[0] != 100 || f.sizes[1] <= 100 {
		t.Errorf("chunk sizes %v: want them to grow from 100", f.sizes[:min(len(f.sizes), 5)])
	}
}

// TestBackfillDryRunAndVerify: the dry run updates nothing and begins
// nothing; a failing --verify returns ErrVerify after printing the keys.
func TestBackfillDryRunAndVerify(t *testing.T) {
	f := newFakeBackfill(100)
	cfg := backfillConfig()
	cfg.Execute = false
	var out bytes.Buffer
	if err := NewBackfill(cfg, f, slog.New(slog.DiscardHandler), &out).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.began || len(f.updates) != 0 || !strings.Contains(out.String(), "rows:     100 match now") {
		t.Fatalf("dry run: began %v, %d updates, output %q", f.began, len(f.updates), out.String())
	}
	cfg = backfillConfig()
	cfg.Set, cfg.Verify = "", "n = 1"
	out.Reset()
	err := NewBackfill(cfg, newFakeBackfill(100), slog.New(slog.DiscardHandler), &out).Run(context.Background())
	if !errors.Is(err, ErrVerify) || !strings.Contains(out.String(), "key (id=7)") {
		t.Fatalf("verify: %v, output %q", err, out.String())
	}
}

// startThrottledBackfill runs the backfill held by a throttle flag file
// (flag) and returns once it is throttled; Run's error arrives on done.
func startThrottledBackfill(t *testing.T, cfg BackfillConfig, f *fakeBackfill, out io.Writer) (b *Backfill, flag string, done <-chan error) {
	t.Helper()
	flag = filepath.Join(t.TempDir(), "flag")
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Control.ThrottleFlagFile = flag
	b = NewBackfill(cfg, f, slog.New(slog.DiscardHandler), out)
	ch := make(chan error, 1)
	go func() { ch <- b.Run(context.Background()) }()
	deadline := time.Now().Add(10 * time.Second)
	for !b.Status().Throttled {
		if time.Now().After(deadline) {
			t.Fatal("never throttled by the flag file")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return b, flag, ch
}

// TestBackfillCommands: the socket's commands, the shared ones included,
// and a throttle flag file holding the chunks.
func TestBackfillCommands(t *testing.T) {
	f := newFakeBackfill(1000)
	b, flag, done := startThrottledBackfill(t, backfillConfig(), f, nil)
	for _, c := range []struct{ cmd, want string }{
		{"chunk-size=250", "chunk-size set to 250"},
		{"chunk-size=?", "250"},
		{"nice-ratio=0.5", "nice-ratio set to 0.5"},
		{"sup", "Throttled: flag-file " + flag},
		{"status", "# set: n = n + 1"},
		{"help", "panic"},
		{"throttle", "the backfill pauses"},
	} {
		reply, err := b.command(c.cmd)
		if err != nil || !strings.Contains(reply, c.want) {
			t.Errorf("%s: %q, %v; want %q", c.cmd, reply, err, c.want)
		}
	}
	if _, err := b.command("postpone"); err == nil {
		t.Error("postpone accepted by a backfill")
	}
	f.mu.Lock()
	updated := len(f.updates)
	f.mu.Unlock()
	if updated != 0 {
		t.Fatalf("%d keys updated while throttled", updated)
	}
	if _, err := b.command("panic"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrPanic) || !f.cleaned {
		t.Fatalf("after panic: %v, cleaned %v", err, f.cleaned)
	}
}

// vanishingFailures is a table whose failing rows are fixed between
// --verify's count and its read of their keys.
type vanishingFailures struct{ *fakeBackfill }

func (vanishingFailures) CountChunk(context.Context, []any, int, bool, int) (BackfillCount, error) {
	return BackfillCount{Scanned: 10, Counted: 3, Done: true}, nil
}

// TestBackfillVerifyRowsFixedMeanwhile: rows counted as failing that a
// writer fixes before their keys are read fail the run, listing no key,
// without a panic.
func TestBackfillVerifyRowsFixedMeanwhile(t *testing.T) {
	cfg := backfillConfig()
	cfg.Set, cfg.Verify = "", "n = 1"
	var out bytes.Buffer
	err := NewBackfill(cfg, vanishingFailures{newFakeBackfill(10)}, slog.New(slog.DiscardHandler), &out).Run(context.Background())
	if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "3 rows") {
		t.Fatalf("verify: %v, output %q", err, out.String())
	}
}

// TestBackfillVerifyInChunks: --verify counts in chunks, as the update
// runs (sized to the target time, held by a throttle), and lists the first
// failing keys across chunks.
func TestBackfillVerifyInChunks(t *testing.T) {
	f := newFakeBackfill(1050)
	f.fails = map[int64]bool{7: true, 500: true, 1049: true}
	cfg := backfillConfig()
	cfg.Set, cfg.Verify, cfg.VerifyMaxKeys, cfg.ChunkTarget = "", "n = 1", 2, time.Second
	var out bytes.Buffer
	b, flag, done := startThrottledBackfill(t, cfg, f, &out)
	f.mu.Lock()
	counted := len(f.counts)
	f.mu.Unlock()
	if counted != 0 {
		t.Fatalf("%d chunks counted while throttled", counted)
	}
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	err := <-done
	if !errors.Is(err, ErrVerify) || !strings.Contains(out.String(), "3 rows do not satisfy") ||
		!strings.Contains(out.String(), "key (id=7)\n  key (id=500)\n") || strings.Contains(out.String(), "1049") {
		t.Fatalf("verify: %v, output %q", err, out.String())
	}
	if len(f.counts) < 2 || f.counts[0] != 100 || f.counts[1] <= 100 {
		t.Errorf("chunk sizes %v: want chunks growing from 100", f.counts)
	}
	if s := b.Status(); s.Counted != 1050 {
		t.Errorf("status: %d rows counted, want 1050", s.Counted)
	}
}
