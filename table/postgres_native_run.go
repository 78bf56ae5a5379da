package table

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgValidateClause finds a VALIDATE CONSTRAINT (or the words in a literal:
// then osc copies, needlessly but safely).
var pgValidateClause = regexp.MustCompile(`(?i)\bVALIDATE\s+CONSTRAINT\b`)

// PostgresNativeRun is how RunPostgresNative runs the plan.
type PostgresNativeRun struct {
	// LockTimeout bounds each attempt of a blocking step (lock_timeout,
	// and a deadline a quarter over it); Retries is how many attempts a
	// step gets. A step that does not block writers waits for a lock at
	// most LockTimeout × Retries, and gets at most 3 attempts.
	LockTimeout time.Duration
	Retries     int
	// BeforeAttempt, when set, runs before each attempt (cancelling an
	// autovacuum that would hold the lock up, say).
	BeforeAttempt func(context.Context) error
	// Step, when set, is told of each step (i of n) as it starts.
	Step func(i, n int, sql string)
}

// RunPostgresNative runs the plan's steps in order. When a step fails, the
// steps before are undone (the indexes and constraints they made dropped)
// and unchanged reports whether the table is as it was: it is not only when
// an undo failed too (the error then names what is left).
func RunPostgresNative(ctx context.Context, pool *pgxpool.Pool, plan *PostgresNative, o PostgresNativeRun) (unchanged bool, err error) {
	var undo []PostgresNativeStep
	for i, s := range plan.Steps {
		if o.Step != nil {
			o.Step(i+1, len(plan.Steps), s.SQL[0])
		}
		if err := runPostgresNativeStep(ctx, pool, s, o); err != nil {
			if len(plan.Steps) > 1 {
				err = fmt.Errorf("step %d of %d (%s): %w", i+1, len(plan.Steps), s.SQL[0], err)
			}
			if uerr := undoPostgresNative(ctx, pool, undo, o); uerr != nil {
				return false, errors.Join(err, uerr)
			}
			return true, err
		}
		if s.Undo != "" {
			undo = append(undo, PostgresNativeStep{SQL: []string{s.Undo}, Blocking: !s.Concurrent, Concurrent: s.Concurrent})
		}
	}
	return true, nil
}

// undoPostgresNative runs the undo statements, last first, even when ctx
// has ended.
func undoPostgresNative(ctx context.Context, pool *pgxpool.Pool, undo []PostgresNativeStep, o PostgresNativeRun) error {
	if len(undo) == 0 {
		return nil
	}
	deadline := time.Now().Add(max(time.Minute, 2*time.Duration(o.Retries)*o.LockTimeout))
	uctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	var errs []error
	for i := len(undo) - 1; i >= 0; i-- {
		run := func() error { return runPostgresNativeStep(uctx, pool, undo[i], o) }
		if undo[i].Concurrent {
			// A DROP INDEX CONCURRENTLY waits for the transactions using
			// the table, blocking no writer: as long as the undo may take.
			run = func() error { return runPostgresConcurrent(uctx, pool, undo[i], time.Until(deadline)) }
		}
		if err := run(); err != nil {
			errs = append(errs, fmt.Errorf("undo the earlier steps: %s failed, run it by hand: %w", undo[i].SQL[0], err))
		}
	}
	return errors.Join(errs...)
}

// nonBlockingAttempts bounds the attempts of a step that does not block
// writers: each may wait long, and a build starts over.
const nonBlockingAttempts = 3

func runPostgresNativeStep(ctx context.Context, pool *pgxpool.Pool, s PostgresNativeStep, o PostgresNativeRun) error {
	lockTimeout, retries := o.LockTimeout, o.Retries
	if !s.Blocking {
		lockTimeout, retries = o.LockTimeout*time.Duration(max(o.Retries, 1)), min(o.Retries, nonBlockingAttempts)
	}
	attempt := func() error {
		if o.BeforeAttempt != nil {
			if err := o.BeforeAttempt(ctx); err != nil {
				return err
			}
		}
		if s.Concurrent {
			return runPostgresConcurrent(ctx, pool, s, lockTimeout)
		}
		if !s.Blocking {
			return runPostgresNativeOnce(ctx, pool, s.SQL, lockTimeout)
		}
		// A quarter over the lock timeout: one lock wait ends by the
		// server's lock_timeout, which says what held the lock.
		actx, cancel := context.WithTimeoutCause(ctx, lockTimeout+lockTimeout/4, errNativeAttemptTimeout)
		defer cancel()
		err := runPostgresNativeOnce(actx, pool, s.SQL, lockTimeout)
		if ctx.Err() == nil && errors.Is(context.Cause(actx), errNativeAttemptTimeout) && err != nil {
			// Not the server's refusal (PostgresRefused): %v.
			err = fmt.Errorf("%w (%v)", errNativeAttemptTimeout, err)
		}
		return err
	}
	err := retryNative(ctx, retries, attempt, func(err error) bool {
		return PostgresTransient(err) || errors.Is(err, errNativeAttemptTimeout)
	})
	if pgErr := (*pgconn.PgError)(nil); s.Violated != "" && errors.As(err, &pgErr) && pgErr.Code == "23514" {
		err = fmt.Errorf("%s (%w)", s.Violated, err)
	}
	return err
}

// errNativeAttemptTimeout is the cause of an attempt that outlasted the lock
// timeout.
var errNativeAttemptTimeout = errors.New("the attempt outlasted the lock timeout")

func runPostgresNativeOnce(ctx context.Context, pool *pgxpool.Pool, stmts []string, lockTimeout time.Duration) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", max(lockTimeout.Milliseconds(), 1))); err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := tx.Conn().PgConn().ExecParams(ctx, s, nil, nil, nil, nil).Close(); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// runPostgresConcurrent runs a CREATE INDEX CONCURRENTLY (or a DROP INDEX
// CONCURRENTLY) on a connection of its own, outside any transaction. A build
// that fails leaves its index INVALID: it is dropped (concurrently, which
// waits for the transactions using the table but blocks no writer) before
// the error is returned, and again before a retry should that drop have
// failed.
func runPostgresConcurrent(ctx context.Context, pool *pgxpool.Pool, s PostgresNativeStep, lockTimeout time.Duration) error {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	exec := func(ctx context.Context, stmt string) error {
		_, err := c.Conn().PgConn().ExecParams(ctx, stmt, nil, nil, nil, nil).Close()
		return err
	}
	defer func() {
		if rerr := exec(context.WithoutCancel(ctx), "RESET lock_timeout"); rerr != nil {
			c.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	dropInvalid := func() error {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := exec(dctx, "SET lock_timeout = 0"); err != nil {
			return err
		}
		if err := exec(dctx, s.Undo); err != nil {
			return fmt.Errorf("drop the INVALID index %s a failed build left: %w", s.Index, err)
		}
		return nil
	}
	if s.Index != "" {
		var invalid bool
		if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
			WHERE x.relname = $1 AND NOT i.indisvalid AND i.indrelid = $2::regclass)`, s.Index, s.Table).Scan(&invalid); err != nil {
			return err
		}
		if invalid {
			if err := dropInvalid(); err != nil {
				return err
			}
		}
	}
	if err := exec(ctx, fmt.Sprintf("SET lock_timeout = %d", max(lockTimeout.Milliseconds(), 1))); err != nil {
		return err
	}
	err = exec(ctx, s.SQL[0])
	if err == nil || s.Index == "" {
		return err
	}
	if derr := dropInvalid(); derr != nil {
		return errors.Join(err, derr)
	}
	return err
}
