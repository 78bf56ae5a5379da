package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestChecksumStatusAndThrottle: while the checksum runs, the status (the
// status line, the socket's, --output json) shows its state, the rows
// compared, their rate and the ETA; a throttle holds it, the chunks already
// being compared aside, until it is lifted.
func TestChecksumStatusAndThrottle(t *testing.T) {
	d := newFake(20000)
	var sums atomic.Int64
	third := make(chan struct{})
	d.summing = func() {
		if sums.Add(1) == 3 {
			close(third)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cfg := fakeConfig()
	flag := filepath.Join(t.TempDir(), "throttle")
	cfg.Control.ThrottleFlagFile = flag
	m := fakeMigration(cfg, d)
	done := startFake(context.Background(), m)
	select {
	case <-third:
	case err := <-done:
		t.Fatalf("the migration ended before its checksum compared a third chunk: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("the checksum did not compare a third chunk; status: %s", m.Status())
	}
	// A worker compares its next chunk once its last one is counted.
	st := m.Status()
	if st.State != StateChecksumming || st.Checksummed <= 0 || st.Checksummed >= st.Estimated ||
		st.ChecksumRate <= 0 || !st.ETAKnown || st.ETA <= 0 {
		t.Errorf("status during the checksum: state %s, %d/%d rows compared at %.0f rows/s, ETA %v (known %t)",
			st.State, st.Checksummed, st.Estimated, st.ChecksumRate, st.ETA, st.ETAKnown)
	}
	line := st.String()
	for _, want := range []string{"State: checksumming", fmt.Sprintf("Checksum: %d/%d ", st.Checksummed, st.Estimated), "rows/s"} {
		if !strings.Contains(line, want) {
			t.Errorf("status line lacks %q: %s", want, line)
		}
	}
	var j map[string]any
	if err := json.Unmarshal([]byte(st.JSON()), &j); err != nil {
		t.Fatal(err)
	}
	if j["state"] != "checksumming" || j["rows_checksummed"] != float64(st.Checksummed) || j["checksum_rows_per_second"] != st.ChecksumRate {
		t.Errorf("JSON status during the checksum: %s", st.JSON())
	}

	touch(t, flag)
	deadline := time.Now().Add(10 * time.Second)
	for !m.Status().Throttled {
		if time.Now().After(deadline) {
			t.Fatalf("not throttled: %s", m.Status())
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the chunks begun before end
	n := sums.Load()
	time.Sleep(300 * time.Millisecond)
	if got := sums.Load(); got != n {
		t.Errorf("%d chunks compared while throttled", got-n)
	}
	if st := m.Status(); st.State != StateChecksumming {
		t.Errorf("state %s while the checksum is throttled, want checksumming", st.State)
	}
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	if err := waitFake(t, m, done); err != nil {
		t.Fatalf("migration: %v", err)
	}
	if !d.db.swapped {
		t.Fatal("no swap")
	}
}

// TestFakeDryRunReportsChecksum: a dry run's plan says how the shadow will be
// compared with the table before the cut-over, or that it will not be.
func TestFakeDryRunReportsChecksum(t *testing.T) {
	for _, off := range []bool{false, true} {
		var log bytes.Buffer
		cfg := fakeConfig()
		cfg.Execute, cfg.NoChecksum = false, off
		cfg.ChecksumThreads, cfg.ChecksumMaxRepairs = 2, 3
		m := New(cfg, newFake(10), slog.New(slog.NewTextHandler(&log, nil)), io.Discard)
		if err := runFake(t, context.Background(), m); err != nil {
			t.Fatalf("dry run: %v", err)
		}
		want := "plan: before the cut-over, compare the shadow with the table in chunks of 500 rows, 2 at a time; recopy chunks that differ up to 3 time(s), then abort"
		if off {
			want = "plan: no checksum before the cut-over (--checksum=false)"
		}
		if !strings.Contains(log.String(), want) {
			t.Errorf("checksum off: %t: the dry run's log lacks %q:\n%s", off, want, log.String())
		}
	}
}
