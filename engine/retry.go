package engine

import (
	"context"
	"time"
)

// retryAttempts is the default of Config.Retries: how often in all a chunk
// copy or an apply batch runs after a transient failure (deadlock, lock wait
// timeout). The copy and the applier write the same shadow rows
// concurrently, so InnoDB and PostgreSQL may pick one as a deadlock victim;
// the statement rolled back whole and is simply run again, as gh-ost does.
const retryAttempts = 20

// retry runs fn until it succeeds, fails in a way the dialect does not call
// transient, or the attempts run out.
func (m *Migration) retry(ctx context.Context, what string, fn func() error) error {
	attempts := m.cfg.Retries
	if attempts <= 0 {
		attempts = retryAttempts
	}
	backoff := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt >= attempts || !m.d.Retryable(err) || ctx.Err() != nil {
			return err
		}
		m.retries.Add(1)
		m.log.Debug("transient failure, retrying", "what", what, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// chunkClashDrains bounds how often a chunk's stale rows whose refresh met a
// clash the applier cannot resolve (change.ErrChunkClash) are read again
// after a drain: a clash that a drained applier does not settle is a real
// duplicate (or writers that move values between rows faster than the drain
// and the read: see the README, step 5).
const chunkClashDrains = 10
