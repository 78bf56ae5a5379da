package localtests

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

func (mysqlDialect) casesFile() string { return "mysql.cases" }

// plainAlter: MySQL's --alter is one statement's clauses.
func (mysqlDialect) plainAlter(alter string) []string { return []string{"ALTER TABLE t " + alter} }

func (mysqlDialect) sessionInfo(ctx context.Context, db *sql.DB) (string, error) {
	var tz, sysTZ, mode string
	if err := db.QueryRowContext(ctx, "SELECT @@time_zone, @@system_time_zone, @@sql_mode").Scan(&tz, &sysTZ, &mode); err != nil {
		return "", fmt.Errorf("session settings: %w", err)
	}
	return fmt.Sprintf("the server's defaults: time_zone %s (system %s), sql_mode %s", tz, sysTZ, mode), nil
}

func (d mysqlDialect) oscSessionArgs(ns string) ([]string, error) {
	return d.oscArgs(ns, "t"), nil
}

// mysqlCatalog is what information_schema says of the database's tables
// besides SHOW CREATE TABLE: the same facts in another form, and a few that
// SHOW CREATE TABLE leaves out (a column's generation expression as stored,
// an index's IGNORED flag, check constraints' levels), and the privileges
// granted on the tables and their columns, which a DBA's ALTER keeps (they
// go by name: a table renamed in their place has them). Statistics that
// change with the data (TABLE_ROWS, DATA_LENGTH, CARDINALITY, times) are
// left out. ? is the database.
var mysqlCatalog = []struct{ name, query string }{
	{"tables", `SELECT TABLE_NAME, TABLE_TYPE, ENGINE, ROW_FORMAT, TABLE_COLLATION, CREATE_OPTIONS, TABLE_COMMENT,
			AUTO_INCREMENT
		FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME`},
	{"columns", `SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT, IS_NULLABLE, COLUMN_TYPE,
			CHARACTER_SET_NAME, COLLATION_NAME, COLUMN_KEY, EXTRA, COLUMN_COMMENT, IS_GENERATED, GENERATION_EXPRESSION
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION`},
	{"indexes", `SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, COLLATION, SUB_PART, NULLABLE,
			INDEX_TYPE, COMMENT, INDEX_COMMENT, IGNORED
		FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`},
	{"constraints", `SELECT tc.TABLE_NAME, tc.CONSTRAINT_NAME, tc.CONSTRAINT_TYPE, cc.LEVEL, cc.CHECK_CLAUSE,
			rc.REFERENCED_TABLE_NAME, rc.UNIQUE_CONSTRAINT_NAME, rc.UPDATE_RULE, rc.DELETE_RULE
		FROM information_schema.TABLE_CONSTRAINTS tc
		LEFT JOIN information_schema.CHECK_CONSTRAINTS cc ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA
			AND cc.TABLE_NAME = tc.TABLE_NAME AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME
		LEFT JOIN information_schema.REFERENTIAL_CONSTRAINTS rc ON rc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA
			AND rc.TABLE_NAME = tc.TABLE_NAME AND rc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME
		WHERE tc.CONSTRAINT_SCHEMA = ? ORDER BY tc.TABLE_NAME, tc.CONSTRAINT_NAME, tc.CONSTRAINT_TYPE`},
	{"table privileges", `SELECT TABLE_NAME, GRANTEE, PRIVILEGE_TYPE, IS_GRANTABLE
		FROM information_schema.TABLE_PRIVILEGES WHERE TABLE_SCHEMA = ? ORDER BY 1, 2, 3`},
	{"column privileges", `SELECT TABLE_NAME, COLUMN_NAME, GRANTEE, PRIVILEGE_TYPE, IS_GRANTABLE
		FROM information_schema.COLUMN_PRIVILEGES WHERE TABLE_SCHEMA = ? ORDER BY 1, 2, 3, 4`},
	{"triggers", `SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER, ACTION_STATEMENT,
			DEFINER, SQL_MODE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION
		FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY 1`},
}

// state: SHOW CREATE TABLE (or VIEW) of every table of the database, the
// information_schema queries above, and every row of every base table, each
// value as the server sends it in the text protocol (INVISIBLE columns
// included: they are named).
func (d mysqlDialect) state(ctx context.Context, db *sql.DB, ns string) ([]section, error) {
	var sections []section
	rows, err := db.QueryContext(ctx, `SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME`, ns)
	if err != nil {
		return nil, fmt.Errorf("tables of %s: %w", ns, err)
	}
	type table struct{ name, typ string }
	var tables []table
	for rows.Next() {
		var tb table
		if err := rows.Scan(&tb.name, &tb.typ); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, tb)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, tb := range tables {
		what := "SHOW CREATE TABLE "
		if tb.typ == "VIEW" {
			what = "SHOW CREATE VIEW "
		}
		create, err := showCreate(ctx, db, what+d.quote(ns)+"."+d.quote(tb.name))
		if err != nil {
			return nil, err
		}
		sections = append(sections, section{what + tb.name, create})
	}
	for _, q := range mysqlCatalog {
		ls, err := queryLines(ctx, db, q.query, ns)
		if err != nil {
			return nil, fmt.Errorf("%s of %s: %w", q.name, ns, err)
		}
		sections = append(sections, section{q.name, ls})
	}
	for _, tb := range tables {
		if tb.typ != "BASE TABLE" {
			continue
		}
		cols, err := queryStrings(ctx, db, `SELECT COLUMN_NAME FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, ns, tb.name)
		if err != nil {
			return nil, err
		}
		quoted := make([]string, len(cols))
		for i, c := range cols {
			quoted[i] = d.quote(c)
		}
		// Sorted here, by bytes: the server's ORDER BY would leave rows that
		// collate equal ('a', 'A') in storage order, which may differ.
		ls, err := queryLines(ctx, db, fmt.Sprintf("SELECT %s FROM %s.%s", strings.Join(quoted, ", "), d.quote(ns), d.quote(tb.name)))
		if err != nil {
			return nil, err
		}
		slices.Sort(ls)
		sections = append(sections, section{"rows of " + tb.name, ls})
	}
	return sections, nil
}

// showCreate returns the statement SHOW CREATE TABLE (or VIEW) q returns,
// one line of it a line, and the view's character set settings.
func showCreate(ctx context.Context, db *sql.DB, q string) ([]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []string
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, strings.Split(vals[1].String, "\n")...)
		for i := 2; i < len(cols); i++ {
			out = append(out, cols[i]+"="+vals[i].String)
		}
	}
	return out, rows.Err()
}
