package engine

import (
	"testing"
	"time"
)

func TestBatchLimit(t *testing.T) {
	var b batchLimit
	fast, slow := time.Millisecond, 2*maxBatchTime
	steps := []struct {
		set, got int
		took     time.Duration
		want     int
	}{
		{100, 3, fast, 100},      // caught up: the set size
		{100, 100, fast, 200},    // full: grows
		{100, 200, fast, 400},    // full again
		{100, 400, slow, 200},    // full but slow: halves
		{100, 200, fast, 400},    // grows again
		{100, 150, fast, 400},    // fewer ready than asked: stays (only a cap)
		{100, 400, fast, 800},    //
		{100, 3, slow, 400},      // slow: halves, even when not full
		{100, 3, slow, 200},      //
		{100, 3, slow, 100},      // never below the set size
		{100, 100, slow, 100},    //
		{10, 10, fast, 100},      // the set size lowered (osc ctl): within 64 times it
		{1000, 20, fast, 1000},   // raised above the limit in force: at once
		{1000, 1000, fast, 2000}, //
		{5, 2000, fast, 320},     // lowered: at once to at most maxBatchGrowth times it
	}
	for i, s := range steps {
		if got := b.next(s.set, s.got, s.took); got != s.want {
			t.Fatalf("step %d: next(%d, %d, %s) = %d, want %d", i, s.set, s.got, s.took, got, s.want)
		}
	}
	b = batchLimit{}
	n := 100
	for range 20 {
		n = b.next(100, n, fast)
	}
	if n != 100*maxBatchGrowth {
		t.Fatalf("a long backlog grows batches to %d, want %d", n, 100*maxBatchGrowth)
	}
}
