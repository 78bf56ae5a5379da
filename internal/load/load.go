package load

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// workers is how many connections share the load.
const workers = 4

// Writers runs write transactions until Stop.
type Writers struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	samples  []sample
	errors   int64
	firstErr error
}

// sample is one write: when it started and how long it took.
type sample struct {
	start time.Time
	took  time.Duration
}

// Stats is what the writers saw.
type Stats struct {
	Count, Errors int64
	P99, Max      time.Duration // write latency
	FirstErr      error
	samples       []sample
}

// Start runs rate write transactions per second on db, spread over a few
// connections, until Stop or until ctx ends (which also aborts, as errors,
// the writes in flight). Each transaction is the one statement write
// returns; a writer that is held up (say, behind a lock) skips the ticks it
// missed rather than bursting afterwards.
func Start(ctx context.Context, db *sql.DB, write func(*rand.Rand) string, rate int) (*Writers, error) {
	if rate < 1 {
		return nil, errors.New("load: the rate must be at least 1 write per second")
	}
	w := &Writers{stop: make(chan struct{})}
	interval := time.Duration(float64(time.Second) * workers / float64(rate))
	for i := range workers {
		w.wg.Add(1)
		go func(seed uint64) {
			defer w.wg.Done()
			r := rand.New(rand.NewPCG(seed, 42)) //nolint:gosec // G404: test load, not security
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-w.stop:
					return
				case <-tick.C:
				}
				start := time.Now()
				_, err := db.ExecContext(ctx, write(r))
				w.record(sample{start, time.Since(start)}, err)
			}
		}(uint64(i))
	}
	return w, nil
}

func (w *Writers) record(s sample, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples = append(w.samples, s)
	if err != nil {
		w.errors++
		if w.firstErr == nil {
			w.firstErr = err
		}
	}
}

// Stop ends the load, lets the writes in flight finish and returns the
// stats. Stop must be called once.
func (w *Writers) Stop() Stats {
	close(w.stop)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	st := Stats{Count: int64(len(w.samples)), Errors: w.errors, FirstErr: w.firstErr, samples: w.samples}
	if len(w.samples) > 0 {
		took := make([]time.Duration, len(w.samples))
		for i, s := range w.samples {
			took[i] = s.took
		}
		slices.Sort(took)
		st.P99 = took[len(took)*99/100]
		st.Max = took[len(took)-1]
	}
	return st
}

// MaxDuring returns the longest write that was in flight at some moment
// between from and to: the longest a writer was held up in that window.
func (s Stats) MaxDuring(from, to time.Time) time.Duration {
	var longest time.Duration
	for _, w := range s.samples {
		if w.start.Before(to) && w.start.Add(w.took).After(from) {
			longest = max(longest, w.took)
		}
	}
	return longest
}

// P99During returns the 99th percentile latency of the writes that started
// between from and to (0 when none did).
func (s Stats) P99During(from, to time.Time) time.Duration {
	var took []time.Duration
	for _, w := range s.samples {
		if !w.start.Before(from) && w.start.Before(to) {
			took = append(took, w.took)
		}
	}
	if len(took) == 0 {
		return 0
	}
	slices.Sort(took)
	return took[len(took)*99/100]
}
