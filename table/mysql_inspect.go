package table

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MySQLInspection is what InspectMySQLTable found out about the original.
type MySQLInspection struct {
	Table         *Table
	Indexes       []MySQLIndex
	Collations    map[string]string // lower-case column name → collation
	EstimatedRows int64
	AutoIncrement int64 // next AUTO_INCREMENT value, 0 when none
	Alter         *MySQLAlter
	// TimeZone is the zone of conversions to and from TIMESTAMP (see
	// MySQLTimeConversion); CreateMySQLShadow reads the server's global
	// time_zone when it is "".
	TimeZone string
	// ForeignKeys says what the migration does with the table's own
	// foreign keys ("" when it has none), for the preflight report.
	ForeignKeys string
	// CarriedForeignKeys are the table's foreign keys the new table gets
	// at the cut-over (ShadowForeignKeys).
	CarriedForeignKeys []MySQLForeignKey
	// Triggers says what the migration does with the table's triggers ("":
	// it has none), for the preflight report; CarriedTriggers are those the
	// new table gets at the cut-over.
	Triggers        string
	CarriedTriggers []MySQLTrigger
	// Flavor is the server's, as MySQLServer.Flavor says: "mariadb" or
	// "mysql".
	Flavor string
	// CopyRefusal is why osc cannot copy the table (not InnoDB, no usable
	// key, foreign keys that reference it or that cascade, COMPRESSED
	// columns, a trigger it cannot carry...), nil
	// when it can: a refusal of the copy alone, since an --alter the server
	// does in place (the native path) is the plain ALTER, which none of
	// them concerns. CreateMySQLShadow returns it.
	CopyRefusal error
}

// MySQLInspectOptions are the choices that change what InspectMySQL accepts.
type MySQLInspectOptions struct {
	// Resume: the run resumes a killed one, and what earlier runs left is
	// Resume's to judge.
	Resume bool
	// DiscardForeignKeys accepts a table with foreign keys of its own
	// (--discard-foreign-keys): the new table has none.
	DiscardForeignKeys bool
	// Flavor is the server's (MySQLServer.Flavor), when the caller has read
	// it already; "": InspectMySQL reads the server's version.
	Flavor string
}

// InspectMySQLTable checks that schema.name can be migrated online with
// alter and reads it. Each refusal names the fix.
func InspectMySQLTable(ctx context.Context, db *sql.DB, schema, name, alter string) (*MySQLInspection, error) {
	return InspectMySQL(ctx, db, schema, name, alter, MySQLInspectOptions{})
}

// InspectMySQLTableToResume is InspectMySQLTable for a run that resumes a
// killed one: what earlier runs left is Resume's to judge.
func InspectMySQLTableToResume(ctx context.Context, db *sql.DB, schema, name, alter string) (*MySQLInspection, error) {
	return InspectMySQL(ctx, db, schema, name, alter, MySQLInspectOptions{Resume: true})
}

// InspectMySQL is InspectMySQLTable with options.
func InspectMySQL(ctx context.Context, db *sql.DB, schema, name, alter string, o MySQLInspectOptions) (*MySQLInspection, error) {
	if n := utf8.RuneCountInString(name) + len(mysqlShadowSuffix); n > mysqlMaxIdent {
		return nil, fmt.Errorf("table name %s is too long: osc's helper tables (%s%s) would exceed MySQL's %d-character limit; "+
			"rename the table to at most %d characters first", name, name, mysqlShadowSuffix, mysqlMaxIdent, mysqlMaxIdent-len(mysqlShadowSuffix))
	}
	info, err := readMySQLTableInfo(ctx, db, schema, name)
	if err != nil {
		return nil, err
	}
	if info == nil {
		return nil, fmt.Errorf("table %s.%s does not exist", schema, name)
	}
	if info.tableType != "BASE TABLE" {
		return nil, fmt.Errorf("%s.%s is a %s, not a base table; osc migrates base tables only", schema, name, info.tableType)
	}
	var copyRefusal error
	if !strings.EqualFold(info.engine, "InnoDB") {
		copyRefusal = fmt.Errorf("table %s.%s uses the %s engine; osc needs InnoDB (transactions and row locks): "+
			"ALTER TABLE %s ENGINE=InnoDB first", schema, name, info.engine, QuoteMySQL(name))
	}
	trg, err := checkMySQLTriggers(ctx, db, schema, name)
	if err != nil {
		return nil, err
	}
	if copyRefusal == nil {
		copyRefusal = trg.refusal
	}
	t, colls, err := readMySQLColumns(ctx, db, schema, name)
	if err != nil {
		return nil, err
	}
	if cols := compressedColumns(t); len(cols) > 0 && copyRefusal == nil {
		copyRefusal = fmt.Errorf("table %s.%s has COMPRESSED columns (%s); osc reads the table's changes from the binlog, "+
			"and its binlog reader cannot decode compressed columns: migrate it with a plain ALTER TABLE, "+
			"or MODIFY the columns without COMPRESSED first", schema, name, strings.Join(cols, ", "))
	}
	indexes, err := readMySQLIndexes(ctx, db, schema, name)
	if err != nil {
		return nil, err
	}
	t.HashColumns = mysqlHashColumns(indexes)
	usable := false
	for _, ix := range indexes {
		usable = usable || ix.keyUsable()
	}
	if !usable && copyRefusal == nil {
		copyRefusal = errNoKey(t)
	}
	if !o.Resume {
		if err := checkMySQLLeftovers(ctx, db, schema, name); err != nil {
			return nil, err
		}
	}
	// The alter runs on a connection of the same pool, with the same sql_mode.
	var sqlMode string
	if err := db.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode").Scan(&sqlMode); err != nil {
		return nil, fmt.Errorf("read sql_mode: %w", err)
	}
	a, err := ParseMySQLAlter(name, alter, sqlMode)
	if err != nil {
		return nil, err
	}
	fk, err := checkMySQLForeignKeys(ctx, db, schema, name, a.DroppedForeignKeys, o.DiscardForeignKeys)
	if err != nil {
		return nil, err
	}
	if copyRefusal == nil {
		copyRefusal = fk.refusal
	}
	flavor := o.Flavor
	if flavor == "" {
		var srv MySQLServer
		if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&srv.Version); err != nil {
			return nil, fmt.Errorf("read the server's version: %w", err)
		}
		flavor = srv.Flavor()
	}
	return &MySQLInspection{Flavor: flavor, Table: t, Indexes: indexes, Collations: colls,
		EstimatedRows: info.rows, AutoIncrement: info.autoIncrement, Alter: a, ForeignKeys: fk.report, CarriedForeignKeys: fk.carried,
		Triggers: trg.report, CarriedTriggers: trg.carried, CopyRefusal: copyRefusal}, nil
}

// compressedColumns names the columns with MariaDB's COMPRESSED attribute,
// which the catalog shows in the column type ("text /*M!100301 COMPRESSED*/").
func compressedColumns(t *Table) []string {
	var out []string
	for _, c := range t.Columns {
		if strings.Contains(strings.ToUpper(c.ColumnType), "COMPRESSED") {
			out = append(out, c.Name)
		}
	}
	return out
}

type mysqlTableInfo struct {
	tableType, engine string
	rows              int64
	autoIncrement     int64
}

// readMySQLTableInfo returns nil when the table does not exist.
func readMySQLTableInfo(ctx context.Context, db *sql.DB, schema, name string) (*mysqlTableInfo, error) {
	var info mysqlTableInfo
	var ai sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT TABLE_TYPE, COALESCE(ENGINE, ''), COALESCE(TABLE_ROWS, 0), AUTO_INCREMENT
		FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, schema, name).
		Scan(&info.tableType, &info.engine, &info.rows, &ai)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read table %s.%s: %w", schema, name, err)
	}
	info.autoIncrement = ai.Int64
	return &info, nil
}

func checkMySQLLeftovers(ctx context.Context, db *sql.DB, schema, name string) error {
	l, err := FindMySQLLeftovers(ctx, db, schema, name)
	if err != nil {
		return err
	}
	return l.Refusal(schema, name)
}
