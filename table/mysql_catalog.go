package table

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

func queryStrings(ctx context.Context, db *sql.DB, query string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// readMySQLColumns reads the table's columns in ordinal order and the
// collation of each text column.
func readMySQLColumns(ctx context.Context, db *sql.DB, schema, name string) (*Table, map[string]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE,
			COALESCE(CHARACTER_SET_NAME, ''), COALESCE(COLLATION_NAME, ''), EXTRA, COALESCE(GENERATION_EXPRESSION, ''), COLUMN_DEFAULT
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, schema, name)
	if err != nil {
		return nil, nil, fmt.Errorf("read columns of %s.%s: %w", schema, name, err)
	}
	defer rows.Close()
	t := &Table{Schema: schema, Name: name}
	colls := map[string]string{}
	for rows.Next() {
		var c Column
		var nullable, collation, extra, genExpr string
		var def sql.NullString
		if err := rows.Scan(&c.Name, &c.DataType, &c.ColumnType, &nullable, &c.Charset, &collation, &extra, &genExpr, &def); err != nil {
			return nil, nil, fmt.Errorf("read columns of %s.%s: %w", schema, name, err)
		}
		c.DataType = strings.ToLower(c.DataType)
		c.Nullable = nullable == "YES"
		c.Unsigned = strings.Contains(strings.ToLower(c.ColumnType), "unsigned")
		// EXTRA is "VIRTUAL GENERATED", "STORED GENERATED" (MySQL, MariaDB) or
		// "PERSISTENT GENERATED" (old MariaDB); MySQL's "DEFAULT_GENERATED" is
		// only a default expression.
		up := strings.ToUpper(extra)
		c.AutoIncrement = strings.Contains(up, "AUTO_INCREMENT")
		c.Generated = genExpr != "" || strings.Contains(up, "VIRTUAL") || strings.Contains(up, "STORED") || strings.Contains(up, "PERSISTENT")
		c.Expression = genExpr
		c.AutoIncrement = strings.Contains(up, "AUTO_INCREMENT")
		if !c.Generated {
			c.Default = def.String
			c.NoDefault = !def.Valid && !c.AutoIncrement
		}
		if collation != "" {
			colls[foldName(c.Name)] = collation
		}
		c.Collation = collation
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read columns of %s.%s: %w", schema, name, err)
	}
	if len(t.Columns) == 0 {
		return nil, nil, fmt.Errorf("table %s.%s does not exist", schema, name)
	}
	return t, colls, nil
}

// readMySQLIndexes reads the table's indexes, the PRIMARY KEY first. Whether
// an index is ignored comes from MariaDB's IGNORED column (10.6+) or MySQL's
// IS_VISIBLE, whichever the server has: all columns are read by name.
func readMySQLIndexes(ctx context.Context, db *sql.DB, schema, name string) ([]MySQLIndex, error) {
	rows, err := db.QueryContext(ctx, `SELECT * FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
		ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX`, schema, name)
	if err != nil {
		return nil, fmt.Errorf("read indexes of %s.%s: %w", schema, name, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("read indexes of %s.%s: %w", schema, name, err)
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	get := func(col string) string {
		for i, c := range cols {
			if sameName(c, col) {
				return vals[i].String
			}
		}
		return ""
	}
	var out []MySQLIndex
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("read indexes of %s.%s: %w", schema, name, err)
		}
		ixName := get("INDEX_NAME")
		if len(out) == 0 || out[len(out)-1].Name != ixName {
			out = append(out, MySQLIndex{Name: ixName, Primary: ixName == "PRIMARY", Unique: get("NON_UNIQUE") == "0",
				Ignored: get("IGNORED") == "YES" || get("IS_VISIBLE") == "NO", Hash: get("INDEX_TYPE") == "HASH"})
		}
		sub := 0
		if s := get("SUB_PART"); s != "" {
			if sub, err = strconv.Atoi(s); err != nil {
				return nil, fmt.Errorf("read indexes of %s.%s: SUB_PART %q: %w", schema, name, s, err)
			}
		}
		ix := &out[len(out)-1]
		ix.Columns = append(ix.Columns, get("COLUMN_NAME"))
		ix.SubParts = append(ix.SubParts, sub)
		ix.Nullable = ix.Nullable || get("NULLABLE") == "YES"
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read indexes of %s.%s: %w", schema, name, err)
	}
	return out, nil
}

// MySQLIndex is one index of a MySQL table as the catalog describes it.
type MySQLIndex struct {
	Name     string
	Primary  bool
	Unique   bool     // true for the PRIMARY KEY too
	Columns  []string // column names; "" for an expression part
	SubParts []int    // prefix length of each column, 0 for the whole value
	Nullable bool     // some column of the index allows NULL
	// Ignored: the optimizer may not use the index (MariaDB's IGNORED,
	// MySQL's INVISIBLE), nor may FORCE INDEX name it.
	Ignored bool
	// Hash: the index's type is HASH. On InnoDB, which has no hash
	// indexes, that is MariaDB's long unique: a UNIQUE key kept as a hash
	// of its values in a hidden column of the table (see Table.HashColumns).
	Hash bool
}

// mysqlHashColumns counts the hidden hash columns that the UNIQUE keys
// among indexes (an InnoDB table's) add to the table's binlog row images.
func mysqlHashColumns(indexes []MySQLIndex) int {
	n := 0
	for _, ix := range indexes {
		if ix.Unique && ix.Hash {
			n++
		}
	}
	return n
}

// keyUsable reports whether the index identifies rows: a PRIMARY KEY or a
// UNIQUE key over NOT NULL columns, without expression parts.
func (ix MySQLIndex) keyUsable() bool {
	if !ix.Primary && (!ix.Unique || ix.Nullable) {
		return false
	}
	for _, c := range ix.Columns {
		if c == "" {
			return false
		}
	}
	return len(ix.Columns) > 0
}

func (ix MySQLIndex) describe() string {
	name := ix.Name
	if ix.Primary {
		name = "PRIMARY"
	}
	parts := make([]string, len(ix.Columns))
	for i, c := range ix.Columns {
		switch {
		case c == "":
			parts[i] = "<expression>"
		case ix.SubParts[i] > 0:
			parts[i] = fmt.Sprintf("%s(%d)", c, ix.SubParts[i])
		default:
			parts[i] = c
		}
	}
	if name == "" {
		return "(" + strings.Join(parts, ", ") + ")"
	}
	return name + " (" + strings.Join(parts, ", ") + ")"
}
