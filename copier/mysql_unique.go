package copier

import (
	"context"
	"database/sql"
)

// checkUnique runs, in the chunk's transaction after its insert, the check
// of the plan's new unique keys (table.MySQLUniqueCheck.ChunkCheck): a row of
// the chunk that holds a value a shadow row of another key holds under a new
// unique key was skipped by the insert (ON DUPLICATE KEY UPDATE k = k), or
// met a row the applier wrote; the original is asked whether the two rows
// hold the value now, and the chunk fails with a *table.DuplicateError if
// they do. Otherwise one of them is not the original's latest, and the
// change that made it so is still to be applied and writes the row whole
// (README, "Why nothing is lost", step 5).
func (c *MySQL) checkUnique(ctx context.Context, tx *sql.Tx, conds []string, args []any, after []any) error {
	if c.unique == nil {
		return nil
	}
	return c.unique.ChunkCheck(ctx, tx, c.sql.From, conds, args, chunkName(after))
}
