package cutover

import (
	"context"
	"database/sql"
	"fmt"

	"osc/table"
)

// createMySQLTriggers makes the carried triggers (MySQLOptions.Triggers) on
// the shadow once the drain has applied every change and while writes to
// the table are blocked: no change is applied to the shadow after that, so
// a trigger fires only for the application's writes, on the table before the
// swap and on the new table after it, never for the applier's. A trigger a
// failed earlier attempt left is dropped first (dropMySQLTriggers).
func createMySQLTriggers(ctx context.Context, db *sql.DB, o MySQLOptions, secs int) (bool, error) {
	if len(o.Triggers) == 0 {
		return false, nil
	}
	if err := dropMySQLTriggers(ctx, db, o, secs); err != nil {
		return false, err
	}
	c, err := db.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("carry triggers: %w", err)
	}
	defer discard(c)
	if _, err := c.ExecContext(ctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d", secs)); err != nil {
		return false, fmt.Errorf("carry triggers: %w", err)
	}
	if err := table.CreateMySQLTriggers(ctx, c, o.Schema, o.Shadow, o.Triggers); err != nil {
		return true, retryable(fmt.Errorf("carry triggers: %w", err))
	}
	return true, nil
}

// dropMySQLTriggers drops the shadow's triggers: after a failed attempt,
// before writes resume, or the applier's writes to the shadow would fire
// them. Each statement waits at most secs for the shadow's lock, as the
// attempt's others do: writers wait until it is done. The shadow is flushed
// from the server's table cache first: an attempt whose session or
// statement was killed while it made a trigger may have left there a copy
// of the shadow with its triggers half parsed (see mysqlOwnNamesAttempt), on
// which writes fail and a DROP TRIGGER may keep the trigger. The flush
// waits, at most secs, for the transactions using the shadow (the
// applier's, which a DROP TRIGGER waits for too). Without the RELOAD
// privilege it is skipped.
func dropMySQLTriggers(ctx context.Context, db *sql.DB, o MySQLOptions, secs int) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("drop the triggers made on the shadow: %w", err)
	}
	defer discard(c)
	if _, err := c.ExecContext(ctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d", secs)); err != nil {
		return fmt.Errorf("drop the triggers made on the shadow: %w", err)
	}
	if _, err := c.ExecContext(ctx, "FLUSH LOCAL TABLES "+table.QuoteMySQL(o.Schema, o.Shadow)); err != nil && !mysqlNoReload(err) {
		return retryable(fmt.Errorf("drop the triggers made on the shadow: flush it from the table cache: %w", err))
	}
	if _, err := table.DropMySQLTriggers(ctx, c, o.Schema, o.Shadow); err != nil {
		return fmt.Errorf("drop the triggers made on the shadow: %w", err)
	}
	return nil
}
