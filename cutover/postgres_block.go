package cutover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/table"
)

// BlockPostgresWrites locks the original IN SHARE MODE (writers wait,
// readers do not) in a transaction of its own, calls hold with a context
// that ends after lockTimeout, and commits. Like a cut-over attempt, an
// attempt whose lock wait or hold ran out of time, or that a deadlock
// rolled back, is tried again, with a lock wait doubling from
// pgFirstLockTimeout, up to retries attempts in all: writers wait at most
// about twice lockTimeout per attempt.
//
// The applier needs it when it must read the source for changes that keep
// coming (a key change of a row with an unchanged TOAST value): those reads
// are blocked by the cut-over's ACCESS EXCLUSIVE lock, and while writes go
// on each drain brings more of them. With writes blocked and reads not, it
// settles; the cut-over's own lock follows at once.
func BlockPostgresWrites(ctx context.Context, pool *pgxpool.Pool, plan *table.Plan, lockTimeout time.Duration, retries int, log *slog.Logger, hold func(context.Context) error) error {
	wait := min(pgFirstLockTimeout, lockTimeout)
	for attempt := 1; ; attempt++ {
		if err := CancelPostgresAutovacuum(ctx, pool, plan, log); err != nil {
			return fmt.Errorf("block writes, attempt %d: %w", attempt, pgCause(ctx, err))
		}
		err := pgBlockAttempt(ctx, pool, plan, wait, lockTimeout, hold)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("block writes, attempt %d: %w", attempt, context.Cause(ctx))
		}
		if !pgRetryable(err) {
			return fmt.Errorf("block writes, attempt %d: %w", attempt, err)
		}
		if attempt >= max(retries, 1) {
			return fmt.Errorf("block writes: gave up after %d attempts: %w", attempt, err)
		}
		log.Warn("attempt at blocking writes rolled back; retrying", "attempt", attempt, "lock_timeout", wait.String(), "err", err)
		wait = min(2*wait, lockTimeout)
	}
}

// pgBlockAttempt is one attempt of BlockPostgresWrites.
func pgBlockAttempt(ctx context.Context, pool *pgxpool.Pool, plan *table.Plan, wait, lockTimeout time.Duration, hold func(context.Context) error) error {
	tx, release, err := LockPostgresShare(ctx, pool, table.QuotePostgres(plan.Source.Schema, plan.Source.Name), wait)
	if err != nil {
		return err
	}
	defer release()
	hctx, cancel := context.WithTimeout(ctx, lockTimeout)
	err = hold(hctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", errDrainTimeout, err)
		}
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("release the lock: %w", err)
	}
	return nil
}

// LockPostgresShare begins a transaction on a connection of its own and
// locks the table (quoted) IN SHARE MODE in it, waiting at most wait:
// writers then wait, readers do not. Commit releases the lock; release
// rolls back what was not committed and returns the connection to the pool,
// or closes it when the rollback failed (its state is then unknown).
func LockPostgresShare(ctx context.Context, pool *pgxpool.Pool, quoted string, wait time.Duration) (pgx.Tx, func(), error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("acquire a connection: %w", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Release()
		return nil, nil, fmt.Errorf("begin: %w", err)
	}
	release := func() {
		if err := tx.Rollback(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
		conn.Release()
	}
	for _, q := range []string{
		fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", max(wait.Milliseconds(), 1)),
		"LOCK TABLE " + quoted + " IN SHARE MODE",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			release()
			return nil, nil, err
		}
	}
	return tx, release, nil
}
