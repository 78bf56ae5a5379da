package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"osc/hooks"
	"osc/throttle"
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
	// Native reports whether the --alter can run natively, and how, or why
	// not. It changes nothing that outlives it (it may try the --alter on a
	// scratch table, dropped before it returns).
	Native(ctx context.Context) (*NativePlan, error)
	// RunNative runs the statement on the table (see NativeRun). When the
	// server refuses the statement otherwise than for a lock, leaving the
	// table as it was, it returns a *NativeRejectedError.
	RunNative(ctx context.Context, o NativeRun) error
	// NativeThrottle is the probe the throttler measures the server and
	// its replicas with on the native path, where there is no copy's
	// bookkeeping (MySQL's changelog table) to write heartbeats to.
	NativeThrottle() (throttle.Probe, error)
}

// NativeRun is how RunNative runs the --alter.
type NativeRun struct {
	// LockTimeout bounds each attempt's wait for a lock writers queue
	// behind (a transaction that holds the table makes writers queue
	// behind the waiting ALTER no longer than that); a lock wait that times
	// out, or a deadlock, is retried, up to Retries attempts.
	LockTimeout time.Duration
	Retries     int
	// BeforeAttempt runs before each attempt: it waits while the throttle
	// holds the migration.
	BeforeAttempt func(context.Context) error
	// Step, when set, is told as each step (i of n) starts.
	Step func(i, n int, sql string)
}

// nativeProgress is where the native path is, for the status line.
type nativeProgress struct {
	step  string // "step i of n: statement"
	start time.Time
}

// nativeStep records the step the native path starts and prints a status
// line.
func (m *Migration) nativeStep(start time.Time) func(i, n int, sql string) {
	return func(i, n int, sql string) {
		m.nativeAt.Store(&nativeProgress{step: fmt.Sprintf("step %d of %d: %s", i, n, sql), start: start})
		m.printStatus()
	}
}

// NativePlan is how the --alter runs natively (Steps), or why it needs a
// copy (Why, Steps nil); Clauses says it clause by clause, where the dialect
// can tell.
type NativePlan struct {
	Steps   []NativeStep
	Why     string
	Clauses []ClausePlan
}

// Native reports whether the --alter runs natively.
func (p *NativePlan) Native() bool { return p != nil && len(p.Steps) > 0 }

// NativeStep is one statement (or transaction) of the native path.
type NativeStep struct {
	SQL  string
	Lock string // the locks it takes, as the server names them
	// BlocksWriters: writers queue behind its lock while it waits (each
	// attempt at most the lock timeout) and while it holds it (an instant:
	// it changes the catalog only).
	BlocksWriters bool
	// Reads: it reads the whole table (an index build, a validation),
	// writers going on.
	Reads bool
}

// Paths of a clause (ClausePlan.Path).
const (
	PathMetadata = "metadata-only"
	PathOnline   = "online native"
	PathCopy     = "copy"
)

// ClausePlan is how one clause of the --alter runs.
type ClausePlan struct {
	Clause string
	Path   string
	Detail string // how (PathOnline), or why (PathCopy)
}

// waitNativeThrottle waits while the throttler holds the migration (replica
// lag, load, the throttle query or URL, a flag file, the operator's
// command): a native ALTER adds to a lagging replica's backlog too (an
// index build or a validation reads the whole table, and the replicas
// replay what it writes).
func (m *Migration) waitNativeThrottle(ctx context.Context) error {
	th, _ := m.ctl.currentThrottler()
	if th == nil {
		return nil
	}
	// Wait also waits for the throttler's first decision: a hold is
	// announced once it lasts.
	done := make(chan error, 1)
	go func() { done <- th.Wait(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Second):
	}
	m.log.Info("the native ALTER waits while throttled", "reason", th.Status().Reason())
	if err := <-done; err != nil {
		return err
	}
	m.log.Info("throttle released: the native ALTER proceeds")
	return nil
}

// planNative asks the dialect how the --alter would run natively. The plan
// says why a copy it needs where the strategy or the dialect allow no native
// path; it is nil when resuming a copy.
func (m *Migration) planNative(ctx context.Context) (*NativePlan, error) {
	if m.cfg.Resume {
		return nil, nil
	}
	if m.revertNeedsCopy() {
		return &NativePlan{Why: "--revert-window keeps the old table to swap back"}, nil
	}
	s := m.cfg.Strategy
	if s != StrategyAuto && s != StrategyNative {
		return &NativePlan{Why: "--strategy copy"}, nil
	}
	nd, ok := m.d.(nativeDialect)
	if !ok {
		return &NativePlan{Why: "osc cannot run an ALTER natively on " + m.d.Driver()}, nil
	}
	np, err := nd.Native(ctx)
	if err != nil {
		return nil, refused(err)
	}
	return np, nil
}

// native carries out the --alter natively when the plan (planNative) says
// it can. done reports that it did (or, in a dry run, that it would): the
// migration is then over.
func (m *Migration) native(ctx context.Context, np *NativePlan) (done bool, err error) {
	s := m.cfg.Strategy
	if np == nil {
		return false, nil
	}
	if !np.Native() {
		if s == StrategyNative {
			return false, refused(fmt.Errorf("--strategy native: the --alter needs a copy of the table (%s); use --strategy auto or copy", np.Why))
		}
		if s == StrategyAuto {
			m.log.Info("plan: the --alter needs a copy of the table", "why", np.Why)
		}
		return false, nil
	}
	nd := m.d.(nativeDialect)
	var stmts []string
	for _, st := range np.Steps {
		stmts = append(stmts, st.SQL)
	}
	m.log.Info("plan: native: the server alters the table in place, without copying it: " + strings.Join(stmts, "; then "))
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
	probe, err := nd.NativeThrottle()
	if err != nil {
		return true, fmt.Errorf("throttle: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopThrottle, err := m.ctl.startThrottler(ctx, probe, m.log, cancel)
	if err != nil {
		return true, err
	}
	defer stopThrottle()
	if err := m.waitNativeThrottle(ctx); err != nil {
		return true, m.cause(ctx, err)
	}
	if err := m.hook(ctx, hooks.OnBeforeCutOver, hooks.Env{}); err != nil {
		return true, err
	}
	m.setState(StateCuttingOver)
	start := time.Now()
	sctx, stopStatus := context.WithCancel(ctx)
	defer stopStatus()
	go m.statusLoop(sctx)
	if err := nd.RunNative(ctx, NativeRun{LockTimeout: m.cfg.CutOverLockTimeout, Retries: m.cfg.CutOverRetries,
		BeforeAttempt: m.waitNativeThrottle, Step: m.nativeStep(start)}); err != nil {
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
