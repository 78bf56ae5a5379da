package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// lagInterval is how often the heartbeat is written and read back.
const lagInterval = 100 * time.Millisecond

// lagSampler measures the replica's (standby's) lag during a run with a
// heartbeat: the primary writes the time into osc_bench_hb every
// lagInterval, and the replica's copy of it tells how far behind it is. Both
// servers run on this machine, so one clock serves both ends.
type lagSampler struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	longest time.Duration
	err     error
}

// startLag starts the heartbeat on db and its reading on replica; stop
// returns the largest lag seen. It is nil-safe: with no replica it measures
// nothing.
func (b bench) startLag(ctx context.Context, db, replica *sql.DB) *lagSampler {
	if replica == nil {
		return nil
	}
	l := &lagSampler{stop: make(chan struct{})}
	// A heartbeat written before this run (or none yet, 0) says nothing of
	// the lag now.
	from := time.Now().UnixNano()
	tick := func(f func() error) {
		defer l.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-l.stop:
				return
			case <-time.After(lagInterval):
			}
			if err := f(); err != nil {
				l.mu.Lock()
				l.err = errors.Join(l.err, err)
				l.mu.Unlock()
				return
			}
		}
	}
	l.wg.Add(2)
	go tick(func() error {
		_, err := db.ExecContext(ctx, b.heartbeat, time.Now().UnixNano())
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("write the heartbeat: %w", err)
		}
		return nil
	})
	go tick(func() error {
		var at sql.NullInt64
		err := replica.QueryRowContext(ctx, "SELECT v FROM osc_bench_hb").Scan(&at)
		if ctx.Err() != nil {
			return nil //nolint:nilerr // the run is over; a read it cut short is no error
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read the heartbeat on the replica: %w", err)
		}
		if errors.Is(err, sql.ErrNoRows) || at.Int64 < from {
			return nil // not replicated yet
		}
		lag := max(time.Since(time.Unix(0, at.Int64))-lagInterval, 0)
		l.mu.Lock()
		l.longest = max(l.longest, lag)
		l.mu.Unlock()
		return nil
	})
	return l
}

// done stops the sampler and returns the largest lag seen, less the
// heartbeat's own interval.
func (l *lagSampler) done() (time.Duration, error) {
	if l == nil {
		return 0, nil
	}
	close(l.stop)
	l.wg.Wait()
	return l.longest, l.err
}
