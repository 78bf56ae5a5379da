package engine

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestNextChunkSize(t *testing.T) {
	const target = 500 * time.Millisecond
	for _, c := range []struct {
		name       string
		size, rows int
		took       time.Duration
		want       int
	}{
		{"fast chunk doubles at most", 1000, 1000, 10 * time.Millisecond, 2000},
		{"a bit fast grows to the target", 1000, 1000, 400 * time.Millisecond, 1250},
		{"on target stays", 1000, 1000, 500 * time.Millisecond, 1000},
		{"slow shrinks to the target", 1000, 1000, 800 * time.Millisecond, 625},
		{"very slow halves at most", 1000, 1000, 10 * time.Second, 500},
		{"short last chunk judged by its rate", 1000, 100, 5 * time.Millisecond, 2000},
		{"nothing copied keeps", 1000, 0, 50 * time.Millisecond, 1000},
		{"too fast to time keeps", 1000, 1000, 500 * time.Microsecond, 1000},
		{"upper bound", 80_000, 80_000, 100 * time.Millisecond, maxChunkSize},
		{"lower bound", 12, 12, 10 * time.Second, minChunkSize},
	} {
		if got := nextChunkSize(c.size, c.rows, c.took, target, maxChunkSize); got != c.want {
			t.Errorf("%s: nextChunkSize(%d, %d, %s) = %d, want %d", c.name, c.size, c.rows, c.took, got, c.want)
		}
	}
	if got := nextChunkSize(1000, 1000, 10*time.Millisecond, 0, maxChunkSize); got != 1000 {
		t.Errorf("no target: %d, want the size kept", got)
	}
}

// TestFakeChunkTarget: with a target, the copy's chunks grow while they are
// fast and shrink when they get slow.
func TestFakeChunkTarget(t *testing.T) {
	d := newFake(5000)
	// A chunk takes 200 µs a row; the 7th and 8th, 2 ms a row.
	d.copyFault = func(n int) error {
		d.mu.Lock()
		size := d.copySizes[n-1]
		d.mu.Unlock()
		perRow := 200 * time.Microsecond
		if n == 7 || n == 8 {
			perRow *= 10
		}
		time.Sleep(time.Duration(size) * perRow)
		return nil
	}
	cfg := fakeConfig()
	cfg.ChunkTarget = 200 * time.Millisecond
	m := fakeMigration(cfg, d)
	if err := runFake(t, context.Background(), m); err != nil {
		t.Fatal(err)
	}
	sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
	d.mu.Lock()
	sizes := slices.Clone(d.copySizes)
	d.mu.Unlock()
	if len(sizes) < 9 || sizes[0] != cfg.ChunkSize || sizes[1] != 2*sizes[0] || sizes[6] <= 4*sizes[1] || sizes[7] >= sizes[6] || sizes[8] >= sizes[7] {
		t.Errorf("chunk sizes %v: want them to start at %d, grow while chunks are fast, then shrink", sizes, cfg.ChunkSize)
	}
}
