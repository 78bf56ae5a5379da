package localtests

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
)

// dialect is what differs between the MySQL and the PostgreSQL cases. A case
// lives in a namespace of its own: a MySQL database or a PostgreSQL schema,
// named osct_<case>.
type dialect interface {
	// dir is the directory of the dialect's cases.
	dir() string
	// connectAdmin connects to the server, skipping the test when it is down.
	connectAdmin(t *testing.T) *sql.DB
	// resetNamespace drops ns with everything in it and creates it empty.
	resetNamespace(ctx context.Context, admin *sql.DB, ns string) error
	dropNamespace(ctx context.Context, admin *sql.DB, ns string) error
	// open connects with ns as the default database (MySQL) or search_path.
	open(ns string) (*sql.DB, error)
	// oscArgs are the osc flags that select the server and the table.
	oscArgs(ns, table string) []string

	quote(ident string) string
	// textExpr is how the comparer reads a (quoted) column: a rendering that
	// is equal for equal values, whatever the column's type.
	textExpr(quoted string) string
	// describe returns the table's columns and key, or nil if it does not exist.
	describe(ctx context.Context, db *sql.DB, ns, table string) (*tableInfo, error)

	// updateFromRow is an UPDATE template that sets column col of row {id}
	// to the value it has in another row {id}, in SQL; no row changes when
	// either row is missing.
	updateFromRow(table, key, col string) string
	// duplicateKey reports whether err is a duplicate-key error, which the
	// writers count as a no-op.
	duplicateKey(err error) bool
	// writerInit is run once on each writer connection ("" for none).
	writerInit() string

	// helperTables are the names osc gives the tables it creates for table:
	// those that must be gone after any run, and the old table that the
	// cut-over leaves.
	helperTables(table string) (temporary []string, old string)
	// replicationLeftovers lists replication objects (publications, slots)
	// osc may have left behind for ns.table.
	replicationLeftovers(ctx context.Context, db *sql.DB, ns, table string) ([]string, error)
}

func dialects() []dialect {
	return []dialect{mysqlDialect{}, pgDialect{dsn: pgDSN()}}
}

// tableInfo is what the harness needs to know about a table.
type tableInfo struct {
	name    string
	columns []column // in ordinal order
	key     []string // PRIMARY KEY, else the first UNIQUE key on NOT NULL columns; nil if none
}

type column struct {
	name, typ      string // typ: the declared type, for messages and comparisons
	integer        bool   // an integer type (the generic writers' keys)
	generated      bool   // computed by the database: never written
	identityAlways bool   // PostgreSQL GENERATED ALWAYS AS IDENTITY
}

func (ti *tableInfo) column(name string) *column {
	for i := range ti.columns {
		if ti.columns[i].name == name {
			return &ti.columns[i]
		}
	}
	return nil
}

// queryKey runs a catalog query that returns the table's unique indexes as
// (index name, column, column is NOT NULL) rows, grouped by index, primary key
// first, columns in index order. It returns the columns of the first index
// on NOT NULL columns only, or nil.
func queryKey(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read unique keys: %w", err)
	}
	defer rows.Close()
	var (
		key    []string // the columns of the index being read
		index  string
		usable bool // so far, all of its columns are NOT NULL
	)
	for rows.Next() {
		var ix, col string
		var notNull bool
		if err := rows.Scan(&ix, &col, &notNull); err != nil {
			return nil, fmt.Errorf("read unique keys: %w", err)
		}
		if ix != index {
			if usable {
				return key, nil
			}
			key, index, usable = nil, ix, true
		}
		key = append(key, col)
		usable = usable && notNull
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read unique keys: %w", err)
	}
	if usable {
		return key, nil
	}
	return nil, nil
}

// leftovers lists what osc created for table in ns and should have removed:
// its temporary tables, the old table too when withOld, and replication
// objects.
func leftovers(ctx context.Context, d dialect, db *sql.DB, ns, table string, withOld bool) ([]string, error) {
	names, old := d.helperTables(table)
	if withOld {
		names = append(names, old)
	}
	var found []string
	for _, name := range names {
		info, err := d.describe(ctx, db, ns, name)
		if err != nil {
			return nil, err
		}
		if info != nil {
			found = append(found, "table "+name)
		}
	}
	more, err := d.replicationLeftovers(ctx, db, ns, table)
	if err != nil {
		return nil, err
	}
	return append(found, more...), nil
}
