package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
)

// errFakeStartOver is a failure the fake's startOverFake says a new start
// would not meet.
var errFakeStartOver = errors.New("fake: capture bug")

// startOverFake is the fake dialect whose errFakeStartOver failures start
// the migration over (startOverDialect).
type startOverFake struct{ *fakeDialect }

func (d startOverFake) StartOver(err error) bool { return errors.Is(err, errFakeStartOver) }

// TestFakeStartOver: a failure the dialect says a new start would not meet
// drops what the migration made and starts it over from a new shadow, at
// most maxStartOvers times; the run that then completes holds the
// original's rows, and counts only its own copy.
func TestFakeStartOver(t *testing.T) {
	for _, c := range []struct {
		name  string
		fails int // how many starts fail on their first chunk
		err   error
	}{
		{name: "twice", fails: 2},
		{name: "always", fails: maxStartOvers + 1, err: errFakeStartOver},
		{name: "other error", fails: 1, err: errors.New("fake: disk full")},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newFake(500)
			fault := errFakeStartOver
			if c.err != nil {
				fault = c.err
			}
			var mu sync.Mutex
			failed := 0 // the starts that failed
			d.copyFault = func(int) error {
				// A chunk of each of the first starts fails.
				mu.Lock()
				defer mu.Unlock()
				if n := len(slices.DeleteFunc(d.called(), func(s string) bool { return s != "CreateShadow" })); n <= c.fails && n > failed {
					failed = n
					return fault
				}
				return nil
			}
			m := New(fakeConfig(), startOverFake{d}, slog.New(slog.DiscardHandler), io.Discard)
			err := runFake(t, context.Background(), m)
			shadows := len(slices.DeleteFunc(d.called(), func(s string) bool { return s != "CreateShadow" }))
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("migration: %v, want %v", err, c.err)
				}
				if gaveUp := strings.Contains(err.Error(), fmt.Sprintf("started over %d times", maxStartOvers)); gaveUp != errors.Is(c.err, errFakeStartOver) {
					t.Errorf("migration: %v (says it gave up starting over: %v)", err, gaveUp)
				}
				want := 1
				if errors.Is(c.err, errFakeStartOver) {
					want = 1 + maxStartOvers
				}
				if shadows != want || len(d.cleanups) != want || d.db.shadow != nil || d.db.swapped {
					t.Errorf("%d shadows made, cleanups %v, shadow left %v, swapped %v; want %d starts", shadows, d.cleanups, d.db.shadow != nil, d.db.swapped, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("migration: %v", err)
			}
			if shadows != c.fails+1 || !slices.Equal(d.cleanups, []bool{false, false, true}) || !d.db.swapped {
				t.Errorf("%d shadows made, cleanups %v, swapped %v", shadows, d.cleanups, d.db.swapped)
			}
			sameRows(t, d.db.newAtSwap, d.db.oldAtSwap)
			if st := m.Status(); st.Copied != int64(len(d.db.oldAtSwap)) || st.CutOverAttempts != 1 {
				t.Errorf("status: copied %d (want %d), cut-over attempts %d", st.Copied, len(d.db.oldAtSwap), st.CutOverAttempts)
			}
		})
	}
}

// TestFakeStartOverCancelled: a failure that would start the migration over,
// met as the operator cancels (Ctrl-C), ends the run instead: one shadow
// made, dropped, and the tables not swapped.
func TestFakeStartOverCancelled(t *testing.T) {
	d := newFake(500)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	d.copyFault = func(int) error {
		fault := error(nil)
		once.Do(func() {
			cancel()
			fault = errFakeStartOver
		})
		return fault
	}
	m := New(fakeConfig(), startOverFake{d}, slog.New(slog.DiscardHandler), io.Discard)
	if err := runFake(t, ctx, m); err == nil {
		t.Fatal("the cancelled migration succeeded")
	}
	shadows := len(slices.DeleteFunc(d.called(), func(s string) bool { return s != "CreateShadow" }))
	if shadows != 1 || !slices.Equal(d.cleanups, []bool{false}) || d.db.shadow != nil || d.db.swapped {
		t.Errorf("%d shadows made, cleanups %v, shadow left %v, swapped %v; want one start, dropped", shadows, d.cleanups, d.db.shadow != nil, d.db.swapped)
	}
}
