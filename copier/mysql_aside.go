package copier

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"osc/table"
)

// putAside puts into the aside table, in the chunk's transaction after its
// insert, the rows of the chunk's range (the original's rows matching conds,
// with args) whose key neither the shadow nor the aside table holds: the
// rows the insert skipped because a unique index of the shadow refused
// them (a shadow row of another key holds one of their values). Under the
// original's own unique keys that shadow row is older than the original's
// (README, "Why nothing is lost", step 5); under a new one both may be the
// original's, and the row waits aside until it fits (Restore). Each row is
// selected as the insert selects it, so the aside table holds what the
// shadow would have. The read is later than the insert's, in the same
// transaction, before the chunk's replay: a change it sees that the insert
// did not came after the chunk's marker and is applied after the chunk (the
// applier is held off meanwhile, MySQLHolding), removing the key from the
// aside table or writing it whole; a delete it does not see is replayed
// after the chunk as the insert's would be (step 3).
func (c *MySQL) putAside(ctx context.Context, tx *sql.Tx, conds []string, args []any) error {
	if c.aside == nil {
		return nil
	}
	q := c.sql.InsertInto(c.aside.Table) + c.sql.From + " WHERE " + strings.Join(append(conds[:len(conds):len(conds)], c.aside.SourceAbsent(true)), " AND ")
	res, err := c.sql.Exec(ctx, tx, q, args, func() error { return nil })
	if err != nil {
		return fmt.Errorf("put aside the rows the shadow refuses: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("put aside the rows the shadow refuses: %w", err)
	}
	if n > 0 {
		// Set before the commit, whose outcome an error leaves unknown.
		c.aside.Holds(true)
	}
	return nil
}

// UseAside makes the copy share t, the aside table of its plan, with the
// applier, so that both know when no row is aside.
func (c *MySQL) UseAside(t *table.MySQLAside) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.aside = t
}

// MySQLHolding is the copy of a plan that adds a unique key: the engine
// holds the applier off while it copies a chunk (it is an
// applierHoldingCopier), so that a chunk and a batch of the applier never
// interleave their reads and writes of the shadow and the aside table (a
// chunk's consistent read could otherwise miss a row the applier is putting
// aside, and insert its key into the shadow too).
type MySQLHolding struct{ *MySQL }

// HoldsApplier marks the copy as one whose chunks hold the applier off.
func (MySQLHolding) HoldsApplier() {}
