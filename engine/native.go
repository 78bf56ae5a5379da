package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"osc/hooks"
)

// Strategies (Config.Strategy): how the --alter is carried out.
const (
	// StrategyCopy copies the table into a shadow and swaps them, whatever
	// the --alter (the engine's zero value does too).
	StrategyCopy = "copy"
	// StrategyAuto runs the --alter natively when the database can do it
	// without copying the table (nativeDialect), and copies otherwise.
	StrategyAuto = "auto"
	// StrategyNative runs the --alter natively or refuses.
	StrategyNative = "native"
)

// NativeRejectedError is a RunNative error after which nothing changed: the
// server refused the statement on the table (not a lock wait), although it
// accepted it on the scratch table Native asked (a table's history: dropped
// columns still counted, a view that reads a column). Under StrategyAuto the
// migration copies instead.
type NativeRejectedError struct{ Err error }

func (e *NativeRejectedError) Error() string { return e.Err.Error() }
func (e *NativeRejectedError) Unwrap() error { return e.Err }

// nativeDialect is a Dialect that can carry out some --alters natively: the
// server's own ALTER TABLE, where it changes the table without copying it
// (MySQL ALGORITHM=INSTANT), under the cut-over's short lock waits. The
// result is by definition the plain ALTER's.
type nativeDialect interface {
	Dialect
	// Native reports whether the --alter can run natively: the statement it
	// would run, or "" and why not. It changes nothing that outlives it (it
	// may try the --alter on a scratch table, dropped before it returns).
	Native(ctx context.Context) (stmt, why string, err error)
	// RunNative runs the statement on the table. Each attempt waits for
	// the table's lock at most lockTimeout (a transaction that holds the
	// table makes writers queue behind the waiting ALTER no longer than
	// that); a lock wait that times out, or a deadlock, is retried, up to
	// retries times. When the server refuses the statement otherwise it
	// returns a *NativeRejectedError.
	RunNative(ctx context.Context, lockTimeout time.Duration, retries int) error
}

// waitOperatorThrottle waits while the operator throttles: the throttle
// command on the socket, or a throttle flag file. The native path runs no
// throttler (it measures nothing over time: no copy, no replica lag to let
// settle), so replica lag, load and the throttle query and URL do not hold
// it; the operator's own holds do, as they hold a cut-over.
func (m *Migration) waitOperatorThrottle(ctx context.Context) error {
	announced := false
	for {
		s := m.ctl.throttleSettings()
		var reasons []string
		if s.Manual {
			reasons = append(reasons, "commanded by user")
		}
		for _, f := range []string{s.FlagFile, s.AdditionalFlagFile} {
			if _, err := os.Stat(f); f != "" && err == nil {
				reasons = append(reasons, "flag-file "+f)
			}
		}
		if len(reasons) == 0 {
			if announced {
				m.log.Info("throttle released: the native ALTER proceeds")
			}
			return nil
		}
		if !announced {
			m.log.Info("the native ALTER waits while throttled", "reason", strings.Join(reasons, ", "))
			announced = true
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// native carries out the --alter natively when the strategy allows and the
// dialect can. done reports that it did (or, in a dry run, that it would):
// the migration is then over.
func (m *Migration) native(ctx context.Context) (done bool, err error) {
	s := m.cfg.Strategy
	if s != StrategyAuto && s != StrategyNative {
		return false, nil
	}
	nd, ok := m.d.(nativeDialect)
	if !ok {
		if s == StrategyNative {
			return false, refused(fmt.Errorf("--strategy native: osc cannot run an ALTER natively on %s; use --strategy auto or copy", m.d.Driver()))
		}
		return false, nil
	}
	stmt, why, err := nd.Native(ctx)
	if err != nil {
		return false, refused(err)
	}
	if stmt == "" {
		if s == StrategyNative {
			return false, refused(fmt.Errorf("--strategy native: the --alter needs a copy of the table (%s); use --strategy auto or copy", why))
		}
		m.log.Info("plan: the --alter needs a copy of the table", "why", why)
		return false, nil
	}
	m.log.Info("plan: native: the server alters the table in place, without copying it: " + stmt)
	m.log.Info(fmt.Sprintf("plan: native: each attempt waits at most %v for the table's lock (writers queue behind it no longer), %d attempts",
		m.cfg.CutOverLockTimeout, m.cfg.CutOverRetries))
	if !m.cfg.Execute {
		m.log.Info("dry run (--noop): the --alter can run natively; nothing was changed. Run with --execute to alter the table.")
		m.setState(StateDone)
		return true, nil
	}
	if err := m.waitPostponed(ctx); err != nil {
		return true, err
	}
	if err := m.waitOperatorThrottle(ctx); err != nil {
		return true, err
	}
	if err := m.hook(ctx, hooks.OnBeforeCutOver, hooks.Env{}); err != nil {
		return true, err
	}
	m.setState(StateCuttingOver)
	start := time.Now()
	if err := nd.RunNative(ctx, m.cfg.CutOverLockTimeout, m.cfg.CutOverRetries); err != nil {
		var rej *NativeRejectedError
		switch {
		case ctx.Err() != nil:
			return true, m.cause(ctx, err)
		case errors.As(err, &rej) && s == StrategyAuto:
			m.log.Info("the server refused the native ALTER on the table, which it is unchanged by; copying the table instead", "err", err)
			m.setState(StateInspecting)
			return false, nil
		case errors.As(err, &rej):
			return true, refused(fmt.Errorf("native ALTER: the server refused it on the table, which is unchanged: %w", err))
		}
		return true, fmt.Errorf("native ALTER: %w", err)
	}
	m.setState(StateDone)
	m.log.Info("migration complete: the table was altered natively", "table", m.cfg.Table,
		"elapsed", time.Since(start).Round(time.Millisecond).String())
	return true, nil
}
