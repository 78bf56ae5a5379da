package cdc

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestMySQLQueueBytes: the binlog reader stops queueing changes once those
// waiting for Next hold mysqlQueueBytes, goes on when Next takes them, and
// queues a change larger than that alone.
func TestMySQLQueueBytes(t *testing.T) {
	s := &MySQLSource{changes: make(chan Change, mysqlQueue), space: make(chan struct{}, 1), started: make(chan struct{}), done: make(chan struct{})}
	close(s.started)
	r := &myReader{s: s, file: "b.1", lastPos: 4}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	big := strings.Repeat("x", mysqlQueueBytes/4)
	sent := make(chan int, 16)
	go func() {
		for i := range 6 {
			row := Row{int64(i), big}
			if i == 5 {
				row = Row{int64(i), big + big + big + big + big} // larger than the bound
			}
			if err := r.send(ctx, Change{Op: Insert, After: row, Pos: MySQLPos{File: "b.1", Pos: 4}}); err != nil {
				t.Error(err)
				return
			}
			sent <- i
		}
	}()
	for i := range 3 {
		if got := <-sent; got != i {
			t.Fatalf("sent %d, want %d", got, i)
		}
	}
	select {
	case i := <-sent:
		t.Fatalf("change %d queued beyond %d bytes", i, mysqlQueueBytes)
	case <-time.After(200 * time.Millisecond):
	}
	got, err := s.Next(ctx, 1)
	if err != nil || len(got) != 1 || got[0].After[0] != int64(0) {
		t.Fatalf("Next: %v %v", got, err)
	}
	if i := <-sent; i != 3 {
		t.Fatalf("sent %d, want 3", i)
	}
	for want := 1; want < 6; {
		got, err := s.Next(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range got {
			if c.After[0] != int64(want) {
				t.Fatalf("got change %v, want %d", c.After[0], want)
			}
			want++
		}
	}
	if q := s.queued.Load(); q != 0 {
		t.Fatalf("%d bytes counted as queued with none", q)
	}
}
