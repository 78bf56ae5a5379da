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
