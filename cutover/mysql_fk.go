package cutover

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"osc/table"
)

// addMySQLForeignKeys adds the carried foreign keys (MySQLOptions.ForeignKeys)
// to the shadow, once the drain has made it equal to the table and while
// writes to the table are blocked: from then on the parent's deletes and
// updates are checked against the shadow's rows too, which are the table's.
// foreign_key_checks = 0 adds them without reading the rows (the table holds
// to them), in place; the statement waits at most secs for a metadata lock. A
// key a failed earlier attempt left on the shadow is not added twice.
func addMySQLForeignKeys(ctx context.Context, db *sql.DB, o MySQLOptions, secs int) (added bool, err error) {
	if len(o.ForeignKeys) == 0 {
		return false, nil
	}
	c, err := db.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("carry foreign keys: %w", err)
	}
	defer discard(c)
	if _, err := c.ExecContext(ctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d, foreign_key_checks = 0", secs)); err != nil {
		return false, fmt.Errorf("carry foreign keys: %w", err)
	}
	have, err := mysqlForeignKeyNames(ctx, c, o.Schema, o.Shadow)
	if err != nil {
		return false, err
	}
	var add []string
	for i, n := range o.ForeignKeyNames {
		if !have[n] {
			add = append(add, o.ForeignKeys[i])
		}
	}
	if len(add) == 0 {
		return true, nil
	}
	if _, err := c.ExecContext(ctx, "ALTER TABLE "+table.QuoteMySQL(o.Schema, o.Shadow)+" "+strings.Join(add, ", ")); err != nil {
		return false, retryable(fmt.Errorf("add the foreign keys %s to %s: %w", strings.Join(o.ForeignKeyNames, ", "), o.Shadow, err))
	}
	return true, nil
}

// dropMySQLForeignKeys takes the carried foreign keys off the shadow again
// after a failed attempt, before writes resume: while the applier is behind,
// the shadow may still hold a row the table no longer has, and its foreign
// key would refuse the parent's delete.
func dropMySQLForeignKeys(ctx context.Context, db *sql.DB, o MySQLOptions, secs int) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("drop the shadow's foreign keys: %w", err)
	}
	defer discard(c)
	if _, err := c.ExecContext(ctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d", secs)); err != nil {
		return fmt.Errorf("drop the shadow's foreign keys: %w", err)
	}
	have, err := mysqlForeignKeyNames(ctx, c, o.Schema, o.Shadow)
	if err != nil {
		return err
	}
	var drops []string
	for _, n := range o.ForeignKeyNames {
		if have[n] {
			drops = append(drops, "DROP FOREIGN KEY "+table.QuoteMySQL(n))
		}
	}
	if len(drops) == 0 {
		return nil
	}
	if _, err := c.ExecContext(ctx, "ALTER TABLE "+table.QuoteMySQL(o.Schema, o.Shadow)+" "+strings.Join(drops, ", ")); err != nil {
		return fmt.Errorf("drop the shadow's foreign keys: %w", err)
	}
	return nil
}

// mysqlForeignKeyNames returns the names of the table's foreign keys.
func mysqlForeignKeyNames(ctx context.Context, c *sql.Conn, schema, name string) (map[string]bool, error) {
	rows, err := c.QueryContext(ctx, `SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, schema, name)
	if err != nil {
		return nil, fmt.Errorf("read the foreign keys of %s: %w", name, err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("read the foreign keys of %s: %w", name, err)
		}
		have[n] = true
	}
	return have, rows.Err()
}

// mysqlParents returns the tables the foreign keys of schema.name reference,
// quoted, each once: the cut-over's lock holds them READ (see mysqlAttempt).
func mysqlParents(ctx context.Context, c *sql.Conn, schema, name string) ([]string, error) {
	rows, err := c.QueryContext(ctx, `SELECT DISTINCT UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME
		FROM information_schema.REFERENTIAL_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? ORDER BY 1, 2`, schema, name)
	if err != nil {
		return nil, fmt.Errorf("read the parent tables of %s: %w", name, err)
	}
	defer rows.Close()
	var parents []string
	for rows.Next() {
		var ps, pn string
		if err := rows.Scan(&ps, &pn); err != nil {
			return nil, fmt.Errorf("read the parent tables of %s: %w", name, err)
		}
		if ps == schema && pn == name {
			continue // a foreign key to its own table is refused before
		}
		parents = append(parents, table.QuoteMySQL(ps, pn))
	}
	return parents, rows.Err()
}
