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
	warnings, err := mysqlReadWarnings(ctx, q)
	if err != nil {
		return fmt.Errorf("%s: read its warnings: %w", what, err)
	}
	var found []string
	for _, w := range warnings {
		if !mysqlHarmlessWarnings[w.code] {
			found = append(found, fmt.Sprintf("%s %d: %s", w.level, w.code, w.message))
		}
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("%s made the server warn (%s); a value may have changed on its way into the altered table, "+
		"and --panic-on-warnings aborts the migration", what, strings.Join(found, "; "))
}

// mysqlWarning is a row of SHOW WARNINGS.
type mysqlWarning struct {
	level   string
	code    int
	message string
}

// mysqlReadWarnings returns the warnings and notes the last statement on
// q's connection left.
func mysqlReadWarnings(ctx context.Context, q MySQLQuerier) ([]mysqlWarning, error) {
	rows, err := q.QueryContext(ctx, "SHOW WARNINGS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []mysqlWarning
	for rows.Next() {
		var w mysqlWarning
		if err := rows.Scan(&w.level, &w.code, &w.message); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// mysqlTruncatedColumn returns the column a 1265 warning or note names
// ("Data truncated for column 'c' at row 1").
func mysqlTruncatedColumn(w mysqlWarning) (string, bool) {
	const prefix = "Data truncated for column '"
	if w.code != 1265 || !strings.HasPrefix(w.message, prefix) {
		return "", false
	}
	rest := w.message[len(prefix):]
	end := strings.LastIndex(rest, "' at row ")
	if end < 0 {
		return "", false
	}
	return rest[:end], true
}
