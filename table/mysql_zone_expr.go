package table

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Expressions the server evaluates as osc writes a row of the shadow — a
// STORED generated column, a CHECK constraint, the DEFAULT expression of a
// column no original column fills — are evaluated in the session's time
// zone, and osc's sessions are in UTC (see mysql_time.go: the one zone in
// which the binlog's instants are written back exactly). Where such an
// expression reads a TIMESTAMP as a local time or the clock, and the ALTER's
// zone is not UTC, osc would store or check other values than a plain ALTER
// TABLE: it refuses, naming the expression. (A VIRTUAL column is computed
// when read, in the reader's zone, from either table alike.)

// mysqlZoneFunctions are the functions whose value depends on the session's
// time zone (the UTC_ ones do not).
var mysqlZoneFunctions = regexp.MustCompile("(?i)(^|[^a-z0-9_$`])(current_timestamp|now|curdate|curtime|current_date|current_time|localtime|localtimestamp|sysdate|unix_timestamp|from_unixtime)([^a-z0-9_$]|$)|@@(session\\.|global\\.)?time_zone")

// checkZoneExpressions refuses the shadow's expressions that depend on the
// session's time zone when zone is not UTC (see above).
func checkZoneExpressions(ctx context.Context, db *sql.DB, schema, shadow string, p *Plan, zone string) error {
	var utc bool
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(CONVERT_TZ('2024-01-15 12:00:00', ?, '+00:00') = '2024-01-15 12:00:00'
		AND CONVERT_TZ('2024-07-15 12:00:00', ?, '+00:00') = '2024-07-15 12:00:00', 0)`, zone, zone).Scan(&utc); err != nil {
		return fmt.Errorf("check time zone %s: %w", zone, err)
	}
	if utc {
		return nil
	}
	filled := map[string]bool{}
	for _, m := range p.Mapping {
		filled[foldName(m.Shadow)] = true
	}
	for _, f := range p.Fills {
		filled[foldName(f.Shadow)] = true
	}
	// The columns whose value depends on the session's zone: the
	// TIMESTAMPs (read as local times), and the generated columns whose
	// expression reads one of them or the clock, or makes a local time a
	// TIMESTAMP's instant.
	var zoneCols []string
	quote := func(n string) string { return "`" + strings.ReplaceAll(n, "`", "``") + "`" }
	for _, c := range p.Shadow.Columns {
		if c.DataType == "timestamp" {
			zoneCols = append(zoneCols, quote(c.Name))
		}
	}
	depends := func(expr string) bool {
		if mysqlZoneFunctions.MatchString(expr) {
			return true
		}
		for _, c := range zoneCols {
			if strings.Contains(strings.ToLower(expr), strings.ToLower(c)) {
				return true
			}
		}
		return false
	}
	refuse := func(what string) error {
		return fmt.Errorf("%s depends on the session's time zone, and the ALTER's is %s: osc writes rows in UTC sessions (the one zone in which "+
			"TIMESTAMP values from the binlog are written back exactly), so the server would compute other values than a plain ALTER TABLE; "+
			"osc cannot migrate this table exactly: use a plain ALTER TABLE, or run osc where the server's time_zone is UTC", what, zone)
	}
	type column struct {
		name, gen, def string
		stored, ts     bool
	}
	var cols []column
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME, EXTRA, COALESCE(GENERATION_EXPRESSION, ''), COALESCE(COLUMN_DEFAULT, ''), DATA_TYPE
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, schema, shadow)
	if err != nil {
		return fmt.Errorf("read the expressions of %s: %w", shadow, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c column
		var extra, dataType string
		if err := rows.Scan(&c.name, &extra, &c.gen, &c.def, &dataType); err != nil {
			return fmt.Errorf("read the expressions of %s: %w", shadow, err)
		}
		up := strings.ToUpper(extra)
		c.stored = strings.Contains(up, "STORED") || strings.Contains(up, "PERSISTENT")
		// A TIMESTAMP column stores an expression's local time as the
		// instant it is in the session's zone.
		c.ts = strings.EqualFold(dataType, "timestamp")
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the expressions of %s: %w", shadow, err)
	}
	// A VIRTUAL column is computed when read, in the reader's zone, from
	// either table alike; but an expression that reads it reads its
	// zone's value.
	for grew := true; grew; {
		grew = false
		for _, c := range cols {
			if c.gen != "" && !c.stored && !slices.Contains(zoneCols, quote(c.name)) && (c.ts || depends(c.gen)) {
				zoneCols = append(zoneCols, quote(c.name))
				grew = true
			}
		}
	}
	// An index on a VIRTUAL column stores its values as computed when the
	// row is written: in osc's UTC session, where every later session
	// computes them in its own zone (InnoDB then misses the entries it
	// updates, "Record in index … was not found on update", and index reads
	// return stale rows).
	indexed, err := queryStrings(ctx, db, `SELECT DISTINCT COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME IS NOT NULL`, schema, shadow)
	if err != nil {
		return fmt.Errorf("read the indexes of %s: %w", shadow, err)
	}
	for _, c := range cols {
		expr := c.gen == "" && !filled[foldName(c.name)] && c.def != "" && !strings.HasPrefix(c.def, "'") && !strings.EqualFold(c.def, "NULL") &&
			!mysqlTimestampClock(p.Shadow, c.name, c.def)
		switch {
		case c.gen != "" && c.stored && (c.ts || depends(c.gen)):
			return refuse(fmt.Sprintf("the STORED generated column %s AS (%s), recomputed for every row osc writes,", c.name, c.gen))
		case c.gen != "" && !c.stored && slices.Contains(zoneCols, quote(c.name)) && slices.ContainsFunc(indexed, func(n string) bool { return sameName(n, c.name) }):
			return refuse(fmt.Sprintf("the indexed VIRTUAL column %s AS (%s), whose index entries are computed for every row osc writes,", c.name, c.gen))
		case expr && depends(c.def):
			return refuse(fmt.Sprintf("the DEFAULT (%s) of column %s, evaluated for every row osc writes,", c.def, c.name))
		case expr && c.ts:
			return refuse(fmt.Sprintf("the DEFAULT (%s) of the TIMESTAMP column %s, a local time made an instant for every row osc writes,", c.def, c.name))
		}
	}
	checks, err := queryStrings(ctx, db, `SELECT CONCAT(CONSTRAINT_NAME, ' CHECK (', CHECK_CLAUSE, ')') FROM information_schema.CHECK_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? ORDER BY CONSTRAINT_NAME`, schema, shadow)
	if err != nil {
		return fmt.Errorf("read the CHECK constraints of %s: %w", shadow, err)
	}
	for _, c := range checks {
		if depends(c) {
			return refuse("the constraint " + c + ", checked on every row osc writes,")
		}
	}
	return nil
}

// mysqlTimestampClock reports whether def is a TIMESTAMP column's own
// DEFAULT CURRENT_TIMESTAMP: an instant, the same in every zone.
func mysqlTimestampClock(t *Table, column, def string) bool {
	i := columnIndexFold(t, column)
	d := strings.ToLower(strings.TrimSpace(def))
	return i >= 0 && t.Columns[i].DataType == "timestamp" && (strings.HasPrefix(d, "current_timestamp") || strings.HasPrefix(d, "now("))
}
