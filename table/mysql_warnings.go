package table

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// MySQLQuerier runs a query: a *sql.Tx or *sql.Conn, whose connection ran
// the statement whose warnings are read.
type MySQLQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// mysqlHarmlessWarnings are the codes of warnings that say nothing about the
// values written: deprecated syntax (MySQL 8 warns about VALUES() in ON
// DUPLICATE KEY UPDATE) and a statement unsafe for statement-based logging
// (the binlog osc needs is row-based).
var mysqlHarmlessWarnings = map[int]bool{1287: true, 1592: true}

// MySQLWarnings is --panic-on-warnings' check: it reads SHOW WARNINGS, the
// warnings and notes the last statement on q's connection left, and returns
// an error naming them when any may mean a value was changed on its way into
// the shadow (a string or number truncated or rounded, a value out of range,
// a date adjusted), what is the statement osc ran (the copy of a chunk, an
// applied change). In strict mode, which osc's sessions always have, most of
// these are errors already; what is left are notes (MariaDB and MySQL note
// 1265 "Data truncated" for a DECIMAL rounded to a smaller scale, and for a
// VARCHAR's trailing spaces cut off, where a plain ALTER fails).
func MySQLWarnings(ctx context.Context, q MySQLQuerier, what string) error {
	rows, err := q.QueryContext(ctx, "SHOW WARNINGS")
	if err != nil {
		return fmt.Errorf("%s: read its warnings: %w", what, err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var level, msg string
		var code int
		if err := rows.Scan(&level, &code, &msg); err != nil {
			return fmt.Errorf("%s: read its warnings: %w", what, err)
		}
		if !mysqlHarmlessWarnings[code] {
			found = append(found, fmt.Sprintf("%s %d: %s", level, code, msg))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: read its warnings: %w", what, err)
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("%s made the server warn (%s); a value may have changed on its way into the altered table, "+
		"and --panic-on-warnings aborts the migration", what, strings.Join(found, "; "))
}
