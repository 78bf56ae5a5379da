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
	samples  []Sample
	errors   int64
	firstErr error
}

// Sample is one write: when it was due and how long after that it ended.
type Sample struct {
	Start time.Time     // when the write was due (its scheduled start)
	Took  time.Duration // from Start to the write's end
}

// Stats is what the writers saw.
type Stats struct {
	Count, Errors int64
	P50, P99, Max time.Duration // write latency, from each write's scheduled start
	FirstErr      error
	Samples       []Sample // in the order the writes ended
}

// Start runs rate write transactions per second on db, spread over a few
// connections, until Stop or until ctx ends (which also aborts, as errors,
// the writes in flight). Each transaction is the one statement write
// returns. The load is open-loop: each write is due at a fixed time, and its
// latency counts from then, so a writer held up (say, behind a lock) sees the
// stall in full on every write that fell due meanwhile, as an application's
// requests would, and then catches up.
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
			// The workers' writes are due interval/workers apart.
			due := time.Now().Add(time.Duration(seed) * interval / workers)
			for {
				select {
				case <-ctx.Done():
					return
				case <-w.stop:
					return
				case <-time.After(time.Until(due)):
				}
				_, err := db.ExecContext(ctx, write(r))
				w.record(Sample{due, time.Since(due)}, err)
				due = due.Add(interval)
			}
		}(uint64(i))
	}
	return w, nil
}

func (w *Writers) record(s Sample, err error) {
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
	st := Stats{Count: int64(len(w.samples)), Errors: w.errors, FirstErr: w.firstErr, Samples: w.samples}
	if len(w.samples) > 0 {
		took := make([]time.Duration, len(w.samples))
		for i, s := range w.samples {
			took[i] = s.Took
		}
		slices.Sort(took)
		st.P50 = took[len(took)/2]
		st.P99 = took[len(took)*99/100]
		st.Max = took[len(took)-1]
	}
	return st
}

// MaxDuring returns the longest write that was in flight at some moment
// between from and to: the longest a writer was held up in that window.
func (s Stats) MaxDuring(from, to time.Time) time.Duration {
	var longest time.Duration
	for _, w := range s.Samples {
		if w.Start.Before(to) && w.Start.Add(w.Took).After(from) {
			longest = max(longest, w.Took)
		}
	}
	return longest
}

// P99During returns the 99th percentile latency of the writes that started
// between from and to (0 when none did).
func (s Stats) P99During(from, to time.Time) time.Duration {
	var took []time.Duration
	for _, w := range s.Samples {
		if !w.Start.Before(from) && w.Start.Before(to) {
			took = append(took, w.Took)
		}
	}
	if len(took) == 0 {
		return 0
	}
	slices.Sort(took)
	return took[len(took)*99/100]
}
