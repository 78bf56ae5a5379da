package engine

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFakePanicFlagFileDuringCount creates the panic flag file while the
// exact row count runs before the copy (--exact-rowcount
// --concurrent-rowcount=false), the moment a long count invites it: the
// migration must end with the panic, naming the file (exit 4), not with
// the count's "context canceled" (exit 1), and clean up.
func TestFakePanicFlagFileDuringCount(t *testing.T) {
	d := newFake(100)
	counting := make(chan struct{})
	d.counting = func(ctx context.Context) (int64, error) {
		close(counting)
		<-ctx.Done()
		return 0, ctx.Err()
	}
	cfg := fakeConfig()
	cfg.ExactRowCount = true
	cfg.Control.PanicFlagFile = filepath.Join(t.TempDir(), "panic")
	m := fakeMigration(cfg, d)
	done := startFake(context.Background(), m)
	select {
	case <-counting:
	case <-time.After(10 * time.Second):
		t.Fatalf("the count did not start; status: %s", m.Status())
	}
	touch(t, cfg.Control.PanicFlagFile)
	err := waitFake(t, m, done)
	if !errors.Is(err, ErrPanic) || !strings.Contains(err.Error(), cfg.Control.PanicFlagFile) {
		t.Fatalf("migration: %v, want the panic naming %s", err, cfg.Control.PanicFlagFile)
	}
	if !slices.Equal(d.cleanups, []bool{false}) || d.db.shadow != nil {
		t.Errorf("cleanups %v, shadow left %v", d.cleanups, d.db.shadow != nil)
	}
}

// TestFakeConcurrentCountStoppedBeforeLocks: a count alongside the copy
// (--concurrent-rowcount) that has not ended when the copy does is stopped
// and waited for before the checksum and the cut-over lock the table.
func TestFakeConcurrentCountStoppedBeforeLocks(t *testing.T) {
	d := newFake(100)
	d.counting = func(ctx context.Context) (int64, error) {
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // the server takes a moment to stop it
		d.call("CountRows ended")
		return 0, ctx.Err()
	}
	cfg := fakeConfig()
	cfg.ExactRowCount, cfg.ConcurrentRowCount = true, true
	if err := runFake(t, context.Background(), fakeMigration(cfg, d)); err != nil {
		t.Fatalf("migration: %v", err)
	}
	ended, checksum, cutOver := slices.Index(d.calls, "CountRows ended"), slices.Index(d.calls, "NewChecksum"), slices.Index(d.calls, "CutOver")
	if ended < 0 || checksum < ended || cutOver < ended {
		t.Errorf("calls %v: the count must end before the checksum and the cut-over", d.calls)
	}
}
