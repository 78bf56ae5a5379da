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
	warnings, _, err := mysqlReadWarnings(ctx, q)
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
// q's connection left, as SHOW WARNINGS lists them, and how many it left:
// more than it lists when they were more than max_error_count (64 by
// default), which the server keeps the first of.
func mysqlReadWarnings(ctx context.Context, q MySQLQuerier) ([]mysqlWarning, int, error) {
	// Diagnostic statements: they clear neither the list nor the count.
	count, err := mysqlWarningCount(ctx, q)
	if err != nil || count == 0 {
		return nil, 0, err
	}
	rows, err := q.QueryContext(ctx, "SHOW WARNINGS")
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []mysqlWarning
	for rows.Next() {
		var w mysqlWarning
		if err := rows.Scan(&w.level, &w.code, &w.message); err != nil {
			return nil, 0, err
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	return out, count, nil
}

// mysqlWarningCount is SHOW COUNT(*) WARNINGS.
func mysqlWarningCount(ctx context.Context, q MySQLQuerier) (int, error) {
	rows, err := q.QueryContext(ctx, "SHOW COUNT(*) WARNINGS")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, err
		}
	}
	return n, rows.Err()
}

// MySQLCutNoted is the applier's check of a statement that wrote captured
// changes into the shadow, when the plan shortens a VARCHAR in its own
// character set and collation (shortened, the new lengths by shadow column,
// MySQLShortenedVarchar): it fails when the statement, the last on q's
// connection, cut the trailing spaces off such a column's value (the server
// notes it, 1265), where a plain ALTER run after the change fails. It also
// fails when the statement left more notes than the server kept
// (max_error_count), since one of them may be such a cut.
func MySQLCutNoted(ctx context.Context, q MySQLQuerier, shortened map[string]int) error {
	warnings, count, err := mysqlReadWarnings(ctx, q)
	if err != nil {
		return fmt.Errorf("read the statement's warnings: %w", err)
	}
	for _, w := range warnings {
		name, ok := mysqlTruncatedColumn(w)
		if n, shortened := shortened[name]; ok && shortened {
			return fmt.Errorf("column %s: a change written while osc ran gives it a value longer than the new VARCHAR(%d), "+
				"whose trailing whitespace the shadow cuts off (%s %d: %s); %s",
				QuoteMySQL(name), n, w.level, w.code, w.message, mysqlCutAdvice)
		}
	}
	if count > len(warnings) {
		return fmt.Errorf("writing captured changes left %d warnings and notes, of which the server kept %d (max_error_count): "+
			"one may be a VARCHAR's trailing whitespace cut off, where a plain ALTER fails, so osc stops", count, len(warnings))
	}
	return nil
}

// mysqlCutAdvice ends the error of a value whose trailing whitespace a
// shortened VARCHAR would cut.
const mysqlCutAdvice = "a plain ALTER TABLE fails on such a value in strict mode (1265, Data truncated), so osc stops"

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
