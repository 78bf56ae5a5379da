package checksum

import (
	"log/slog"
	"testing"
)

func TestReaders(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct{ n, pool, want int }{{3, 10, 3}, {8, 10, 8}, {9, 10, 8}, {65, 10, 8}, {3, 4, 2}} {
		if got, err := readers(tc.n, tc.pool, log); err != nil || got != tc.want {
			t.Errorf("readers(%d, pool %d) = %d, %v; want %d", tc.n, tc.pool, got, err, tc.want)
		}
	}
	if _, err := readers(3, 3, log); err == nil {
		t.Error("a pool of 3 holds two readers besides the lock and the applier")
	}
}
