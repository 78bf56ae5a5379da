package localtests

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// TestMySQL runs every case under mysql/ against the sandbox's MariaDB.
func TestMySQL(t *testing.T) {
	runCases(t, mysqlDialect{})
}

type mysqlDialect struct{}

func (mysqlDialect) dir() string { return "mysql" }

func (mysqlDialect) connectAdmin(t *testing.T) *sql.DB {
	cfg := mysqlConfig("")
	return connect(t, "MySQL at "+cfg.Addr, "mysql", cfg.FormatDSN())
}

func (d mysqlDialect) resetNamespace(ctx context.Context, admin *sql.DB, ns string) error {
	if err := d.dropNamespace(ctx, admin, ns); err != nil {
		return err
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+d.quote(ns)+" CHARACTER SET utf8mb4"); err != nil {
		return fmt.Errorf("create database %s: %w", ns, err)
	}
	return nil
}

func (d mysqlDialect) dropNamespace(ctx context.Context, admin *sql.DB, ns string) error {
	if err := d.revokeNamespace(ctx, admin, ns); err != nil {
		return err
	}
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+d.quote(ns)); err != nil {
		return fmt.Errorf("drop database %s: %w", ns, err)
	}
	return nil
}

// revokeNamespace revokes the table and column privileges granted on ns's
// tables (differential cases grant some): DROP DATABASE leaves them in the
// grant tables, and a database created again under the name would have them.
func (d mysqlDialect) revokeNamespace(ctx context.Context, admin *sql.DB, ns string) error {
	// The column privileges first: revoking a table privilege revokes the
	// column privileges of its type too.
	rows, err := admin.QueryContext(ctx, `SELECT PRIVILEGE_TYPE, TABLE_NAME, COLUMN_NAME, GRANTEE
		FROM information_schema.COLUMN_PRIVILEGES WHERE TABLE_SCHEMA = ?
		UNION ALL SELECT PRIVILEGE_TYPE, TABLE_NAME, NULL, GRANTEE
		FROM information_schema.TABLE_PRIVILEGES WHERE TABLE_SCHEMA = ?`, ns, ns)
	if err != nil {
		return fmt.Errorf("privileges on %s: %w", ns, err)
	}
	var revokes []string
	for rows.Next() {
		var priv, table, grantee string
		var column sql.NullString
		if err := rows.Scan(&priv, &table, &column, &grantee); err != nil {
			rows.Close()
			return err
		}
		if column.Valid {
			priv += " (" + d.quote(column.String) + ")"
		}
		// GRANTEE is quoted already: 'user'@'host'.
		revokes = append(revokes, fmt.Sprintf("REVOKE %s ON %s.%s FROM %s", priv, d.quote(ns), d.quote(table), grantee))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("privileges on %s: %w", ns, err)
	}
	for _, r := range revokes {
		if _, err := admin.ExecContext(ctx, r); err != nil {
			return fmt.Errorf("%s: %w", r, err)
		}
	}
	return nil
}

func (mysqlDialect) open(ns string) (*sql.DB, error) {
	return sql.Open("mysql", mysqlConfig(ns).FormatDSN())
}

func (mysqlDialect) oscArgs(ns, table string) []string {
	return []string{
		"--host", env("OSC_MYSQL_HOST", "127.0.0.1"), "--port", env("OSC_MYSQL_PORT", "13306"),
		"--user", env("OSC_MYSQL_USER", "root"), "--database", ns, "--table", table,
	}
}

func (mysqlDialect) quote(ident string) string {
	return "`" + strings.ReplaceAll(ident, "`", "``") + "`"
}

// textExpr reads the value as the server sends it in the text protocol: the
// exact bytes of strings and binary strings, the server's rendering of
// numbers and times.
func (mysqlDialect) textExpr(quoted string) string { return quoted }

func (mysqlDialect) describe(ctx context.Context, db *sql.DB, ns, table string) (*tableInfo, error) {
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, EXTRA
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, ns, table)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", table, err)
	}
	info := &tableInfo{name: table}
	for rows.Next() {
		var c column
		var dataType, extra string
		if err := rows.Scan(&c.name, &c.typ, &dataType, &extra); err != nil {
			rows.Close()
			return nil, fmt.Errorf("describe %s: %w", table, err)
		}
		switch dataType {
		case "tinyint", "smallint", "mediumint", "int", "bigint":
			c.integer = true
		}
		c.generated = extra == "VIRTUAL GENERATED" || extra == "STORED GENERATED"
		info.columns = append(info.columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("describe %s: %w", table, err)
	}
	if len(info.columns) == 0 {
		return nil, nil
	}

	if info.key, err = queryKey(ctx, db, `SELECT s.INDEX_NAME, s.COLUMN_NAME, c.IS_NULLABLE = 'NO'
		FROM information_schema.STATISTICS s
		JOIN information_schema.COLUMNS c
		  ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME
		WHERE s.TABLE_SCHEMA = ? AND s.TABLE_NAME = ? AND s.NON_UNIQUE = 0
		ORDER BY s.INDEX_NAME <> 'PRIMARY', s.INDEX_NAME, s.SEQ_IN_INDEX`, ns, table); err != nil {
		return nil, fmt.Errorf("describe %s: %w", table, err)
	}
	return info, nil
}

// updateFromRow joins the table to itself: MySQL cannot read the table being
// updated in a subquery.
func (d mysqlDialect) updateFromRow(table, key, col string) string {
	t, k, c := d.quote(table), d.quote(key), d.quote(col)
	return fmt.Sprintf("UPDATE %s AS dst JOIN %s AS src ON src.%s = {id} SET dst.%s = src.%s WHERE dst.%s = {id}", t, t, k, c, c, k)
}

func (mysqlDialect) duplicateKey(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062 // ER_DUP_ENTRY
}

// writerInit: under READ COMMITTED an INSERT … SELECT reads its source row
// without a shared lock, so the writers lock each other less; a lock error a
// writer meets is then more likely to be osc's doing, and is reported.
func (mysqlDialect) writerInit() string {
	return "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"
}

func (mysqlDialect) helperTables(table string) ([]string, string) {
	return []string{table + "_osc_new", table + "_osc_log", table + "_osc_ckp"}, table + "_osc_old"
}

// replicationLeftovers: osc reads the binlog as a replica; it leaves nothing
// on the server.
func (mysqlDialect) replicationLeftovers(context.Context, *sql.DB, string, string) ([]string, error) {
	return nil, nil
}
