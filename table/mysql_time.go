package table

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
)

// Time zones and the copy. osc's sessions keep time_zone '+00:00': the binlog
// carries a TIMESTAMP as seconds since the epoch (go-mysql renders it in
// UTC), and only a UTC session writes every such instant back exactly,
// including the hour a zone with daylight saving time repeats, whose local
// times name two instants (a session in that zone would store the first for
// both). The server's own ALTER TABLE, though, converts between TIMESTAMP and
// any other type in the time zone of the session that runs it, which for a
// DBA is the server's global time_zone. So, for a source column s copied
// into a shadow column d:
//
//   - s TIMESTAMP, d TIMESTAMP: the instant, unconverted (exact in UTC);
//   - s TIMESTAMP, d anything else (DATETIME, DATE, TIME, strings, numbers):
//     the instant as a local time of the server's zone, CONVERT_TZ(v,
//     '+00:00', zone); every instant has one local time, so this is exact;
//   - s anything else, d TIMESTAMP: the value read as a local time of the
//     server's zone, CONVERT_TZ(v, zone, '+00:00');
//   - neither TIMESTAMP: no time zone is involved.
//
// A local time that the zone skips (spring forward), or whose instant is
// outside TIMESTAMP's range, fails as in a strict ALTER: osc writes a text
// that is no time instead. (Where sql_mode is not strict, that stores the
// zero date, as the ALTER does for a time out of range; a skipped time the
// ALTER moves past the gap instead.)
//
// CONVERT_TZ turns the zero date into NULL with a warning (an error in
// strict mode), so the zero date is passed on as it is, as the server's
// conversion keeps it; it is told by its text, which no other value of
// either type starts with.
//
// Both the copy and the applier use these expressions, so a row gets the same
// value whichever path wrote it.

// mysqlZoneName is what a time_zone value may look like: a named zone
// ("Europe/Berlin"), an offset ("+02:00") or "SYSTEM".
var mysqlZoneName = regexp.MustCompile(`^[A-Za-z0-9_+:/.-]+$`)

// ReadMySQLTimeZone returns the server's global time_zone, the zone in which
// its own ALTER TABLE would convert to and from TIMESTAMP.
func ReadMySQLTimeZone(ctx context.Context, db *sql.DB) (string, error) {
	var zone string
	if err := db.QueryRowContext(ctx, "SELECT @@global.time_zone").Scan(&zone); err != nil {
		return "", fmt.Errorf("read the server's time_zone: %w", err)
	}
	if !mysqlZoneName.MatchString(zone) {
		return "", fmt.Errorf("the server's time_zone %q is not a zone name or offset osc understands", zone)
	}
	return zone, nil
}

// CheckMySQLTimeZone refuses a zone the server does not know (a named zone
// needs the time zone tables, loaded with mariadb-tzinfo-to-sql).
func CheckMySQLTimeZone(ctx context.Context, db *sql.DB, zone string) error {
	if !mysqlZoneName.MatchString(zone) {
		return fmt.Errorf("time zone %q is not a zone name or offset", zone)
	}
	var v sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT CONVERT_TZ('2000-01-01 00:00:00', '+00:00', ?)", zone).Scan(&v); err != nil {
		return fmt.Errorf("check time zone %q: %w", zone, err)
	}
	if !v.Valid {
		return fmt.Errorf("the server does not know time zone %q (load its time zone tables with mariadb-tzinfo-to-sql, or give an offset such as +02:00)", zone)
	}
	return nil
}

// MySQLTimeConversion returns the expression that turns expr, a value of
// the source column src (a placeholder expression or a column reference,
// which may appear in it more than once), into the value the server's ALTER
// would store in the shadow column dst, converting in zone where one side is
// a TIMESTAMP.
func MySQLTimeConversion(expr string, src, dst Column, zone string) (string, error) {
	srcTS, dstTS := src.DataType == "timestamp", dst.DataType == "timestamp"
	if srcTS == dstTS {
		return expr, nil
	}
	if !mysqlZoneName.MatchString(zone) {
		return "", fmt.Errorf("column %s: time zone %q is not a zone name or offset", dst.Name, zone)
	}
	zero := expr + " LIKE '0000-00-00%'"
	if srcTS {
		// Typed with the source's precision: a parameter would otherwise
		// become a DATETIME(6), which a string column shows with six digits.
		v := "CAST(" + expr + " AS DATETIME(" + strconv.Itoa(mysqlFraction(src.ColumnType)) + "))"
		// CONVERT_TZ leaves a time before 1970-01-01 00:00:01 as it is
		// (out of TIMESTAMP's range as it checks it), where a TIMESTAMP
		// holds the epoch's first second (0 seconds and a fraction,
		// 1970-01-01 00:00:00.5 UTC), which the ALTER converts: that one
		// is converted a second later, and the second taken off again.
		conv := "IF(" + v + " < '1970-01-01 00:00:01', CONVERT_TZ(" + v + " + INTERVAL 1 SECOND, '+00:00', '" + zone +
			"') - INTERVAL 1 SECOND, CONVERT_TZ(" + v + ", '+00:00', '" + zone + "'))"
		local := "IF(" + zero + ", " + v + ", " + conv + ")"
		if dst.DataType == "bit" {
			// Into a BIT as its number, its fraction truncated, as the
			// ALTER stores it (see MySQLTimeNumber): the time itself
			// would go in as its text's bytes, too long for any BIT.
			return "TRUNCATE(" + local + " + 0, 0)", nil
		}
		return local, nil
	}
	// A BIT goes into a TIMESTAMP as its number, as the ALTER reads it
	// (20240506070809); CONVERT_TZ of the column would read its bytes, no
	// time, and the copy failed ("Incorrect datetime value").
	if src.DataType == "bit" {
		expr = "(" + expr + " + 0)"
	}
	// The zero date stays as it is. An integer's, a DECIMAL's or a BIT's 0
	// is the zero TIMESTAMP in the ALTER, where an INSERT refuses the
	// number ("Incorrect datetime value: '0.0'") and CONVERT_TZ gives NULL
	// (a DOUBLE's 0 fails the ALTER too).
	expr0 := expr
	switch src.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "bit":
		zero, expr0 = expr+" = 0", "'0000-00-00 00:00:00'"
	}
	// A local time the zone skips, or one whose instant is outside
	// TIMESTAMP's range, does not come back from UTC as it was (CONVERT_TZ
	// moves the first and leaves the second unconverted): storing it fails,
	// as the server's own conversion fails in strict mode.
	conv := "CONVERT_TZ(" + expr + ", '" + zone + "', '+00:00')"
	back := "CONVERT_TZ(" + conv + ", '+00:00', '" + zone + "') <=> CAST(" + expr + " AS DATETIME(6))"
	bad := "CONCAT(" + expr + ", ' is not a time in " + zone + "')"
	// The epoch's first second after 0 (1970-01-01 00:00:00.5 UTC), which
	// a TIMESTAMP holds and the ALTER stores, is out of CONVERT_TZ's range:
	// converted a second later, less the second, checked the same way.
	conv1 := "CONVERT_TZ(" + expr + " + INTERVAL 1 SECOND, '" + zone + "', '+00:00') - INTERVAL 1 SECOND"
	back1 := conv1 + " > '1970-01-01 00:00:00' AND " + conv1 + " < '1970-01-01 00:00:01' AND CONVERT_TZ(" + conv1 +
		" + INTERVAL 1 SECOND, '+00:00', '" + zone + "') - INTERVAL 1 SECOND <=> CAST(" + expr + " AS DATETIME(6))"
	converted := "IF(" + back + ", " + conv + ", IF(" + back1 + ", " + conv1 + ", " + bad + "))"
	if src.DataType == "datetime" || src.DataType == "date" {
		// A DATE or DATETIME whose day its month lacks (stored under
		// ALLOW_INVALID_DATES, '2023-04-31 10:00:00') becomes the zero
		// TIMESTAMP in the ALTER. Read from its text: DAY() of a text
		// gives NULL for it.
		invalid := "SUBSTRING(" + expr + ", 9, 2) > DAY(LAST_DAY(CONCAT(LEFT(" + expr + ", 8), '01')))"
		return "IF(" + zero + ", " + expr0 + ", IF(" + invalid + ", '0000-00-00 00:00:00', " + converted + "))", nil
	}
	return "IF(" + zero + ", " + expr0 + ", " + converted + ")", nil
}

// mysqlNullsToTime reports whether src's NULLs go into dst, a TIMESTAMP NOT
// NULL column, where an ALTER that gives them its time (MySQLNullToTimestamp)
// makes them one value.
func mysqlNullsToTime(src, dst Column) bool {
	return src.Nullable && !dst.Nullable && dst.DataType == "timestamp" && !dst.Generated
}

// MySQLNullToTimestamp returns the expression that turns expr, a value of
// the nullable source column src already converted to the shadow column
// dst's type, into what MariaDB's ALTER stores when dst is a TIMESTAMP NOT
// NULL: a NULL becomes the time of the ALTER (Field_timestamp::set_time,
// whatever the DEFAULT), one instant for every row, which osc takes to be
// now, Plan.AlterTime (UTC, as osc's sessions are), truncated to dst's
// precision. now is "" where the server's ALTER does not do so
// (Plan.NullTimestampNow false: MySQL under explicit_defaults_for_timestamp,
// whose ALTER fails, as osc's copy then does) or where no ALTER ran (osc
// verify pairs two tables).
func MySQLNullToTimestamp(expr string, src, dst Column, now string) (string, error) {
	if now == "" || !mysqlNullsToTime(src, dst) {
		return expr, nil
	}
	if !mysqlAlterTime.MatchString(now) {
		return "", fmt.Errorf("column %s: the ALTER's time %q is not YYYY-MM-DD HH:MM:SS.ffffff", dst.Name, now)
	}
	at := now[:len("2006-01-02 15:04:05")]
	if fsp := mysqlFraction(dst.ColumnType); fsp > 0 {
		at = now[:len("2006-01-02 15:04:05.")+fsp]
	}
	return "COALESCE(" + expr + ", '" + at + "')", nil
}

var mysqlFractionDigits = regexp.MustCompile(`\((\d)\)`)

// mysqlFraction is the fractional seconds precision of a temporal column
// type such as "timestamp(3)" (0 when none is given).
func mysqlFraction(columnType string) int {
	m := mysqlFractionDigits.FindStringSubmatch(columnType)
	if m == nil {
		return 0
	}
	return int(m[1][0] - '0')
}

// checkTimeToDate refuses a TIME column changed to a type with a date. The
// server's conversion takes the current date: the ALTER's statement date, in
// its session's time zone, one date for every row. osc's copy and applier
// write over hours, in UTC sessions, so rows written on either side of a
// midnight would get other dates.
func checkTimeToDate(src, dst Column) error {
	if src.DataType != "time" {
		return nil
	}
	switch dst.DataType {
	case "date", "datetime", "timestamp":
		return fmt.Errorf("the --alter changes column %s from %s to %s; the server completes a TIME with the current date, "+
			"one date for every row at the time of its ALTER, which osc, copying and applying over time, cannot reproduce: "+
			"run the change with a plain ALTER TABLE, or add a %s column and fill it yourself (e.g. with TIMESTAMP(CURRENT_DATE, %s))",
			dst.Name, src.ColumnType, dst.ColumnType, dst.ColumnType, QuoteMySQL(src.Name))
	}
	return nil
}
