package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"osc/change"
)

// The revert window (--revert-window): after the cut-over osc keeps the old
// table current by running the migration backwards — the altered table, now
// under the table's name, is the reverse migration's original, and the old
// table its shadow, equal to it at the swap, so there is nothing to copy: the
// reverse capture starts exactly at the swap and the reverse applier writes
// every change since, mapped back to the old table's columns. The operator's
// revert command swaps the tables back with the dialect's cut-over, drain
// included; finish, or the window's end, ends it as a migration without a
// window ends.

// reverter is a Dialect that can run a revert window.
type reverter interface {
	Dialect
	// PlanRevert, called once the shadow exists (before the copy), plans
	// the reverse migration, and refuses, naming why, a migration whose old
	// table could not be kept exactly current.
	PlanRevert(ctx context.Context) error
	// Reverse, called after a successful CutOver, returns the reverse
	// migration, whose Source starts exactly at the swap.
	Reverse(ctx context.Context) (Reverse, error)
}

// Reverse is the migration backwards during a revert window: from the
// altered table, now the table, into the old table.
type Reverse interface {
	// Source captures the table's changes from the swap on; it is started
	// by the engine.
	Source() Source
	// Applier writes changes into the old table: the columns the old table
	// shares with the altered one (renamed back), leaving the others as the
	// old table holds them.
	Applier() Applier
	// Key returns where the key is in the Source's row images, and its
	// columns' names, for the refusals.
	Key() (index []int, names []string)
	// Unfit reports whether err, from applying one change, says that the
	// change does not fit the old table (a value that does not convert
	// back, a NULL into a NOT NULL column, a duplicate in a unique index
	// only the old table has): the old table cannot hold that row.
	Unfit(err error) bool
	// CutOver swaps the tables back, as Dialect.CutOver swapped them.
	CutOver(ctx context.Context, ready, drain func(context.Context) error) error
	// Cleanup ends the window: reverted says the tables were swapped back
	// (the altered table then has the shadow's name). It drops what the
	// migration and the window made, and the table swapped out when the
	// user asked for it (--ok-to-drop-table). It runs on a fresh context.
	Cleanup(ctx context.Context, reverted bool) error
}

// StateRevertWindow: the tables are swapped and osc keeps the old table
// current until revert, finish or the window's end; StateReverting: the
// revert's cut-over runs.
const (
	StateRevertWindow State = StateFailed + 1 + iota
	StateReverting
)

// stateReverted is the on-success hook's OSC_STATE after a revert: the
// run succeeded, and the table is the original again.
const stateReverted = "reverted"

// RevertRefusedError is a revert refused because a change since the cut-over
// does not fit the old table: the window stays open, nothing is lost.
type RevertRefusedError struct {
	Keys []string // "key (id=5): why", sorted, at most revertRefusalShown of them
	N    int      // how many keys in all
}

func (e *RevertRefusedError) Error() string {
	more := ""
	if e.N > len(e.Keys) {
		more = fmt.Sprintf("; and %d more", e.N-len(e.Keys))
	}
	return fmt.Sprintf("cannot revert exactly: %d row(s) changed since the cut-over do not fit the old table: %s%s; "+
		"the revert window stays open (a later write of such a row that fits, or its deletion, lifts its refusal)",
		e.N, strings.Join(e.Keys, "; "), more)
}

// revertRefusalShown bounds the keys a refusal names.
const revertRefusalShown = 5

// revertState is the window's: the keys whose last change the old table could
// not take, and the operator's requests.
type revertState struct {
	deadline time.Time
	applied0 int64 // m.applied when the window opened

	mu      sync.Mutex
	refused map[string]string // key → "key (…): why"
	// moved maps the new key of a refused move to the row image the old
	// table still holds under the old key (revertApplier).
	moved map[string]change.Row

	requests chan revertRequest
	open     atomic.Bool
}

type revertRequest struct {
	revert bool // false: finish
	reply  chan revertReply
}

type revertReply struct {
	text string
	err  error
}

// refusal returns the refusal of a revert now, nil when it can be exact.
func (s *revertState) refusal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.refused) == 0 {
		return nil
	}
	all := make([]string, 0, len(s.refused))
	for _, why := range s.refused {
		all = append(all, why)
	}
	sort.Strings(all)
	return &RevertRefusedError{Keys: all[:min(len(all), revertRefusalShown)], N: len(all)}
}

func (s *revertState) refusedKeys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.refused)
}

// revertApplier is the reverse Applier as the engine uses it: a batch the
// old table refuses is applied change by change, and each change that does
// not fit is skipped and its key remembered (revertState.refused) until a
// later change of the key is applied. The old table then differs from the
// table in those rows only, and a revert is refused while there is one.
//
// A refused change that moves a row to another key leaves the row under its
// old key in the old table, with the values of the columns only the old table
// has, which belong to the row under its new key: the next change of the new
// key is applied as a move from the old one (a delete, as a delete of the old
// one). Should a change write the old key meanwhile, that row's values are
// lost to the old table, and the refusal stays for the rest of the window.
//
// The changes of such a batch are each applied in a transaction of their
// own, each retried on a transient failure (retry: Migration.retry) and
// never applied again once applied: a move applied a second time could take
// a row a later change of the batch wrote under its old key. An error that
// outlasts the retries ends the window, and is returned so that the engine's
// retry, which would apply the whole batch again, does not take it.
type revertApplier struct {
	ap       Applier
	unfit    func(error) bool
	retry    func(ctx context.Context, what string, fn func() error) error
	keyIndex []int
	keyNames []string
	state    *revertState
}

func (r *revertApplier) Apply(ctx context.Context, changes []change.Change) error {
	err := r.ap.Apply(ctx, r.rewrite(changes))
	if err == nil {
		r.applied(changes)
		return nil
	}
	if !r.unfit(err) {
		return err
	}
	for i := range changes {
		c := changes[i]
		if c.Op == change.Marker {
			continue
		}
		one := r.rewrite([]change.Change{c})
		err := r.retry(ctx, "apply a change to the old table", func() error { return r.ap.Apply(ctx, one) })
		if err == nil {
			r.applied([]change.Change{c})
			continue
		}
		if !r.unfit(err) {
			return fmt.Errorf("apply a change to the old table, after the changes before it in its batch: %v", err)
		}
		row := c.After
		if c.Op == change.Delete {
			row = c.Before
		}
		why := r.describe(row) + ": " + err.Error()
		r.state.mu.Lock()
		if c.Op == change.Update && c.Before != nil && r.key(c.Before) != r.key(c.After) {
			before := c.Before
			if b, ok := r.state.moved[r.key(c.Before)]; ok {
				before = b
			}
			delete(r.state.moved, r.key(c.Before))
			delete(r.state.refused, r.key(c.Before))
			r.state.moved[r.key(c.After)] = before
		}
		r.state.refused[r.key(row)] = why
		r.state.mu.Unlock()
	}
	return nil
}

// rewrite returns the changes as the old table must take them: a change of a
// key whose row a refused move left under another key (revertState.moved)
// takes that row from there.
func (r *revertApplier) rewrite(changes []change.Change) []change.Change {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	if len(r.state.moved) == 0 {
		return changes
	}
	out := make([]change.Change, len(changes))
	copy(out, changes)
	olds := map[string]string{} // the old keys of the moves, to the refusal
	for k, b := range r.state.moved {
		olds[r.key(b)] = k
	}
	for i := range out {
		c := &out[i]
		if c.Op == change.Marker {
			continue
		}
		for _, row := range []change.Row{c.Before, c.After} {
			if row == nil {
				continue
			}
			if nk, ok := olds[r.key(row)]; ok && (c.Before == nil || r.key(c.Before) != nk) {
				// The old key is written while the moved row is still
				// under it: the moved row's values are lost to the old
				// table, and the row there is the old key's from now on.
				r.state.refused["!"+nk] = r.describe(r.state.moved[nk]) + ": its row moved to another key with values the old table " +
					"refused, and the key was written again before the move could be applied; the old table cannot be made exact"
				delete(r.state.moved, nk)
				delete(olds, r.key(row))
			}
		}
		if c.Before != nil {
			if b, ok := r.state.moved[r.key(c.Before)]; ok {
				c.Before = b
			}
		} else if c.Op == change.Update || c.Op == change.Insert {
			if b, ok := r.state.moved[r.key(c.After)]; ok {
				c.Op, c.Before = change.Update, b
			}
		}
	}
	return out
}

// applied forgets the refusals and moves of the keys the changes wrote whole
// or deleted: the old table holds those rows as the table does again. A
// partial change (PostgreSQL: unchanged TOAST values, not sent) writes some
// columns only, and keeps them: the value refused may be among the others,
// or the refused row absent from the old table (its UPDATE then updates
// nothing).
func (r *revertApplier) applied(changes []change.Change) {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	if len(r.state.refused) == 0 && len(r.state.moved) == 0 {
		return
	}
	for _, c := range changes {
		if c.Partial() {
			continue
		}
		for _, row := range []change.Row{c.Before, c.After} {
			if row != nil {
				delete(r.state.refused, r.key(row))
				delete(r.state.moved, r.key(row))
			}
		}
	}
}

func (r *revertApplier) key(row change.Row) string {
	var b strings.Builder
	for _, i := range r.keyIndex {
		if i < len(row) {
			v := fmt.Sprintf("%T:%v", row[i], row[i])
			fmt.Fprintf(&b, "%d:%s", len(v), v)
		}
	}
	return b.String()
}

// describe shows a row's key as "key (a=1, b=x)".
func (r *revertApplier) describe(row change.Row) string {
	parts := make([]string, 0, len(r.keyIndex))
	for j, i := range r.keyIndex {
		name := fmt.Sprintf("#%d", i+1)
		if j < len(r.keyNames) {
			name = r.keyNames[j]
		}
		var v any
		if i < len(row) {
			v = row[i]
		}
		if b, ok := v.([]byte); ok {
			v = string(b)
		}
		parts = append(parts, fmt.Sprintf("%s=%v", name, v))
	}
	return "key (" + strings.Join(parts, ", ") + ")"
}

// revertNeedsCopy reports whether a revert window rules the native path out:
// an ALTER the server runs in place leaves no old table to swap back.
func (m *Migration) revertNeedsCopy() bool {
	if m.cfg.RevertWindow <= 0 {
		return false
	}
	if m.cfg.Strategy == StrategyAuto {
		m.log.Info("plan: --revert-window: the table is copied, even if the server could alter it in place (that leaves no old table to swap back)")
	}
	return true
}

// planRevert plans the reverse migration when a revert window is asked for.
func (m *Migration) planRevert(ctx context.Context) error {
	if m.cfg.RevertWindow <= 0 {
		return nil
	}
	r, ok := m.d.(reverter)
	if !ok {
		return fmt.Errorf("--revert-window is not supported on %s yet", m.d.Driver())
	}
	if err := r.PlanRevert(ctx); err != nil {
		return err
	}
	m.log.Info("plan: after the cut-over, keep the old table current for " + m.cfg.RevertWindow.String() +
		" (revert window): send revert to swap the tables back, finish to end it")
	return nil
}

// revertWindow runs the window after a successful cut-over, until revert,
// finish, the window's end or the parent's end (Ctrl-C: as finish). It
// returns the reverse migration (nil when it could not start) and whether
// the tables were swapped back. An error means the window failed: the table
// stays migrated, and the caller cleans up as after finish.
func (m *Migration) revertWindow(parent context.Context) (rev Reverse, reverted bool, err error) {
	rev, err = m.d.(reverter).Reverse(parent)
	if err != nil {
		return nil, false, fmt.Errorf("start the revert window: %w", err)
	}
	if m.src != nil {
		cctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		cerr := m.src.Close(cctx)
		cancel()
		if cerr != nil {
			m.log.Warn("stop the forward change capture", "err", cerr)
		}
	}
	keyIndex, keyNames := rev.Key()
	st := &revertState{
		deadline: time.Now().Add(m.cfg.RevertWindow),
		applied0: m.applied.Load(),
		refused:  map[string]string{},
		moved:    map[string]change.Row{},
		requests: make(chan revertRequest),
	}
	m.src = rev.Source()
	m.ap = &revertApplier{ap: rev.Applier(), unfit: rev.Unfit, retry: m.retry, keyIndex: keyIndex, keyNames: keyNames, state: st}
	m.ctl.setSource(m.src)
	m.ctl.backlog.Store(0)
	if err := m.src.Start(parent); err != nil {
		return rev, false, fmt.Errorf("start the reverse change capture: %w", err)
	}
	m.ctl.mu.Lock()
	m.rev = st
	m.ctl.mu.Unlock()
	defer func() {
		st.open.Store(false)
		m.ctl.mu.Lock()
		m.rev = nil
		m.ctl.mu.Unlock()
	}()

	// The window's apply goes on after an interruption (Ctrl-C, panic)
	// until finish's drain is done.
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(parent))
	defer cancel(nil)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel(nil)
	wg.Go(func() {
		if err := m.applyLoop(ctx); err != nil {
			cancel(err)
		}
	})
	wg.Go(func() { m.statusLoop(ctx) })
	wg.Go(func() { m.backlogLoop(ctx) })

	m.setState(StateRevertWindow)
	st.open.Store(true)
	m.log.Info("revert window open: the old table is kept current; send revert to swap the tables back, finish to end the window",
		"table", m.plan.Table, "old table", m.plan.Old, "until", st.deadline.UTC().Format(time.RFC3339))
	timer := time.NewTimer(m.cfg.RevertWindow)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return rev, false, fmt.Errorf("revert window: %w", context.Cause(ctx))
		case <-parent.Done():
			m.log.Warn("interrupted during the revert window: ending it as finish does; the table stays migrated")
			m.finishDrain(ctx)
			return rev, false, nil
		case <-timer.C:
			m.log.Info("the revert window elapsed: ending it as finish does; the table stays migrated")
			m.finishDrain(ctx)
			return rev, false, nil
		case req := <-st.requests:
			if !req.revert {
				m.log.Info("finish commanded: the revert window ends; the table stays migrated")
				m.finishDrain(ctx)
				req.reply <- revertReply{text: "Finishing: the revert window ends; the table stays migrated"}
				return rev, false, nil
			}
			rctx, rcancel := context.WithCancel(ctx)
			stop := context.AfterFunc(parent, rcancel)
			err := m.revertNow(rctx, rev, st)
			stop()
			rcancel()
			if err == nil {
				req.reply <- revertReply{text: "Reverted: " + m.plan.Table + " is the original table again"}
				return rev, true, nil
			}
			req.reply <- revertReply{err: err}
			if errors.Is(err, errRevertWindowElapsed) {
				m.log.Info("the revert window elapsed while the revert waited to lock: ending it as finish does; the table stays migrated")
				m.finishDrain(ctx)
				return rev, false, nil
			}
			if ctx.Err() != nil || parent.Err() != nil {
				continue // the loop's cases say why
			}
			m.log.Warn("revert refused; the revert window stays open", "err", err)
		}
	}
}

// finishDrain applies to the old table, which finish keeps unless told
// otherwise, every change committed before the window ends (at most for the
// cut-over's lock timeout: the old table is a courtesy copy then, not a
// swap's input).
func (m *Migration) finishDrain(ctx context.Context) {
	dctx, cancel := context.WithTimeout(ctx, max(m.cfg.CutOverLockTimeout, 10*time.Second))
	defer cancel()
	if err := m.drain(dctx); err != nil {
		m.log.Warn("the old table may lack the last changes before the window ended", "err", err)
	}
}

// revertNow swaps the tables back, unless a change does not fit the old
// table; the check is made again under the cut-over's lock, after its drain,
// so the refusal holds up to the swap.
func (m *Migration) revertNow(ctx context.Context, rev Reverse, st *revertState) error {
	if err := st.refusal(); err != nil {
		return err
	}
	m.setState(StateReverting)
	err := rev.CutOver(ctx, windowReady(st.deadline, m.readyToLock()), func(ctx context.Context) error {
		if err := m.drain(ctx); err != nil {
			return err
		}
		return st.refusal()
	})
	if err != nil {
		m.setState(StateRevertWindow)
		var refusal *RevertRefusedError
		if errors.As(err, &refusal) {
			return refusal
		}
		return fmt.Errorf("revert: %w; the tables were not swapped back", err)
	}
	m.log.Info("reverted: the tables are swapped back", "table", m.plan.Table, "migrated table", m.plan.Shadow)
	return nil
}

// errRevertWindowElapsed is a revert stopped by the window's end before
// an attempt at its lock.
var errRevertWindowElapsed = errors.New("the revert window elapsed before the revert could lock; the window ends as finish ends it, and the table stays migrated")

// windowReady returns the revert's ready callback: ready, which waits to
// lock, stopped by the window's end (errRevertWindowElapsed) while it
// waits and before each attempt at the lock. An attempt under way when the
// window ends runs to its end: it holds the writers no longer than the lock
// timeout, and its swap, if it swaps, is the revert the operator asked for
// in time.
func windowReady(deadline time.Time, ready func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		wctx, cancel := context.WithDeadlineCause(ctx, deadline, errRevertWindowElapsed)
		defer cancel()
		err := ready(wctx)
		if cause := context.Cause(wctx); errors.Is(cause, errRevertWindowElapsed) {
			return cause
		}
		return err
	}
}

// revertCommand runs the revert or finish command: it asks the window and
// waits for its answer, at most wait (the revert's cut-over may take longer:
// the reply then says so and the log tells the outcome).
func (m *Migration) revertCommand(revert bool, arg string, wait time.Duration) (string, error) {
	name := "finish"
	if revert {
		name = "revert"
	}
	switch {
	case revert && arg == "" && m.cfg.Control.ForceNamedCutOver:
		// The revert is a cut-over.
		return "", fmt.Errorf("--force-named-cut-over is set: name the table, revert=%s", m.cfg.Table)
	case arg != "" && !m.tableMatches(arg):
		return "", fmt.Errorf("this osc migrates %s, not %s; nothing done", m.cfg.Table, arg)
	}
	m.ctl.mu.Lock()
	st := m.rev
	m.ctl.mu.Unlock()
	if st == nil || !st.open.Load() {
		if m.cfg.RevertWindow <= 0 {
			return "", fmt.Errorf("cannot %s: osc runs without --revert-window", name)
		}
		return "", fmt.Errorf("cannot %s: no revert window is open (the migration is %s)", name, m.State())
	}
	req := revertRequest{revert: revert, reply: make(chan revertReply, 1)}
	select {
	case st.requests <- req:
	case <-time.After(wait):
		return "", fmt.Errorf("cannot %s now: the revert window is busy (a revert in progress?)", name)
	}
	select {
	case r := <-req.reply:
		return r.text, r.err
	case <-time.After(wait):
		return "Reverting: the cut-over is still running; the log and the status tell its outcome", nil
	}
}

// revertStatus fills the window's part of the status.
func (m *Migration) revertStatus(s *Status) {
	m.ctl.mu.Lock()
	st := m.rev
	m.ctl.mu.Unlock()
	if st == nil {
		return
	}
	s.RevertWindow = true
	s.CheckpointKnown = false // the migration is done: no more checkpoints
	s.RevertLeft = max(time.Until(st.deadline), 0)
	s.RevertRefused = st.refusedKeys()
	s.RevertApplied = m.applied.Load() - st.applied0
}

// revertText is the status line's part for the window.
func (s Status) revertText() string {
	if !s.RevertWindow {
		return ""
	}
	return fmt.Sprintf("; Revert window: %s left; Reverse applied: %d; Reverse backlog: %s; Unrevertable rows: %d",
		s.RevertLeft.Round(time.Second), s.RevertApplied, s.Backlog.Round(time.Millisecond), s.RevertRefused)
}

// endRevertWindow runs the window after the cut-over and cleans up after it.
// The migration succeeded whatever happens in the window: a window that
// fails is logged, and ends as finish does.
func (m *Migration) endRevertWindow(ctx context.Context) error {
	rev, reverted, err := m.revertWindow(ctx)
	if err != nil {
		m.log.Error("the revert window failed: it ends as finish does, and the table stays migrated", "err", err)
	}
	cctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	var errs []error
	if m.src != nil {
		if err := m.src.Close(cctx); err != nil {
			errs = append(errs, fmt.Errorf("stop change capture: %w", err))
		}
		m.src = nil
		m.ctl.setSource(nil)
	}
	if rev != nil {
		errs = append(errs, rev.Cleanup(cctx, reverted))
	} else {
		errs = append(errs, m.d.Cleanup(cctx, true))
	}
	if err := errors.Join(errs...); err != nil {
		m.log.Warn("cleaning up after the revert window failed; drop what is listed by hand", "err", err)
	}
	m.setState(StateDone)
	if reverted {
		m.reverted.Store(true)
		m.log.Info("migration reverted", "table", m.plan.Table, "migrated table", m.plan.Shadow,
			"elapsed", time.Since(m.started).Round(time.Millisecond).String())
		return nil
	}
	m.log.Info("migration complete", "table", m.plan.Table, "old table", m.plan.Old,
		"rows copied", m.copied.Load(), "changes applied", m.applied.Load(),
		"elapsed", time.Since(m.started).Round(time.Millisecond).String())
	return nil
}
