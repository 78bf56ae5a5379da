package table

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// A column the --alter adds gets, from a plain ALTER, a value in every
// existing row; the copy and the applier list only the original's columns,
// so the server gives the others their DEFAULT. Two kinds of added column
// would then differ from the ALTER, and osc writes them itself (Plan.Fills):
//
//   - NOT NULL without a DEFAULT: the ALTER fills the type's implicit default
//     (0, '', the first ENUM member, the zero date...), where an INSERT that
//     omits the column fails in strict mode ("Field 'd' doesn't have a
//     default value"). osc writes that implicit default as a literal; the
//     server then refuses what its ALTER refuses too (a zero date under
//     NO_ZERO_DATE in strict mode). Two cases are refused where the ALTER
//     succeeds: a spatial column (no literal here; the ALTER stores an empty
//     value, which an INSERT refuses), and a column with a column-level CHECK,
//     such as MariaDB's JSON, a LONGTEXT with CHECK (json_valid(c)): an
//     instant ADD COLUMN stores the empty string unchecked, which the copy's INSERT
//     would have checked (checkFillChecks).
//   - a DEFAULT CURRENT_TIMESTAMP: the ALTER reads its clock once and gives
//     every row that value, where the DEFAULT left to the copy's INSERT would
//     give each chunk its own. osc writes one instant, Plan.AlterTime (kept in
//     the checkpoint table, so that a resumed run writes it too), truncated to
//     the DEFAULT's precision as CURRENT_TIMESTAMP(n) is. For a column that is
//     not a TIMESTAMP the ALTER's clock is in its session's time zone; osc's
//     sessions are in UTC (see MySQLTimeConversion), so the instant is
//     converted to the zone.

// mysqlImplicitDefaults is the value a plain ALTER TABLE gives existing rows
// in a NOT NULL column added without a DEFAULT, by DATA_TYPE (MariaDB 10.11).
// The empty string is SPACE(0): under EMPTY_STRING_IS_NULL an empty string
// literal would be NULL.
var mysqlImplicitDefaults = map[string]string{
	"tinyint": "0", "smallint": "0", "mediumint": "0", "int": "0", "integer": "0", "bigint": "0",
	"decimal": "0", "numeric": "0", "float": "0", "double": "0", "real": "0", "bit": "0",
	// YEAR from the number 0 is 0000 (from the string '0' it would be 2000).
	"year": "0",
	// MariaDB's JSON is a LONGTEXT (with a json_valid CHECK).
	"char": "SPACE(0)", "varchar": "SPACE(0)", "tinytext": "SPACE(0)", "text": "SPACE(0)", "mediumtext": "SPACE(0)", "longtext": "SPACE(0)",
	// BINARY pads the empty string with zero bytes, as the ALTER's value is.
	"binary": "SPACE(0)", "varbinary": "SPACE(0)", "tinyblob": "SPACE(0)", "blob": "SPACE(0)", "mediumblob": "SPACE(0)", "longblob": "SPACE(0)",
	// An ENUM's first member is number 1; a SET's implicit default is empty.
	"enum": "1", "set": "SPACE(0)",
	"date": "'0000-00-00'", "datetime": "'0000-00-00 00:00:00'", "timestamp": "'0000-00-00 00:00:00'",
	"time": "'00:00:00'",
	"uuid": "'00000000-0000-0000-0000-000000000000'", "inet6": "'::'", "inet4": "'0.0.0.0'",
}

// mysqlCurrentTimestamp matches a DEFAULT CURRENT_TIMESTAMP as
// information_schema shows it (MariaDB "current_timestamp(3)", MySQL
// "CURRENT_TIMESTAMP(3)").
var mysqlCurrentTimestamp = regexp.MustCompile(`(?i)^current_timestamp(?:\((\d?)\))?$`)

// mysqlAlterTime is the form of Plan.AlterTime.
var mysqlAlterTime = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$`)

// mysqlSequenceDefault matches a DEFAULT that reads a sequence, as
// information_schema shows it (MariaDB writes NEXT VALUE FOR s as
// nextval(`db`.`s`) and PREVIOUS VALUE FOR s as lastval(`db`.`s`)).
var mysqlSequenceDefault = regexp.MustCompile(`(?i)\b(nextval|lastval|setval)\(`)

// mysqlStatementClock matches, in a DEFAULT expression as information_schema
// shows it (string literals and quoted names taken out), a function whose
// value is the statement's time: one time for every row of a plain ALTER, the
// time of each chunk and each applied write for osc. (SYSDATE() is each
// row's own time in the ALTER too; UNIX_TIMESTAMP(x) reads x.)
var mysqlStatementClock = regexp.MustCompile(`(?i)(^|[^a-z0-9_$])((current_timestamp|now|curdate|curtime|current_date|current_time|localtime|localtimestamp|utc_timestamp|utc_date|utc_time)\s*\(|unix_timestamp\s*\(\s*\))`)

// mysqlSessionFunction matches, in a DEFAULT expression as mysqlStatementClock
// reads it, a function whose value is the writing session's: its user,
// role, connection or current database.
var mysqlSessionFunction = regexp.MustCompile(`(?i)(^|[^a-z0-9_$])(user|current_user|session_user|system_user|current_role|connection_id|database|schema)\s*\(`)

// mysqlQuoted matches a string literal or a quoted name.
var mysqlQuoted = regexp.MustCompile("'(?:[^'\\\\]|\\\\.|'')*'|\"(?:[^\"\\\\]|\\\\.|\"\")*\"|`(?:[^`]|``)*`")

// mysqlReadsClock reports whether the DEFAULT expression def reads the
// statement's time.
func mysqlReadsClock(def string) bool {
	return mysqlStatementClock.MatchString(mysqlQuoted.ReplaceAllString(def, "''"))
}

// mysqlFill is the expression osc writes into the added shadow column c, or
// "" when the server's own DEFAULT is what the ALTER gives; now is
// Plan.AlterTime.
func mysqlFill(c Column, zone, now string) (string, error) {
	if c.Generated {
		return "", nil
	}
	if mysqlSequenceDefault.MatchString(c.Default) {
		// The ALTER draws one value per existing row, in one pass; the
		// copy and the applier, which leave the column to its DEFAULT,
		// would draw one per row each time they write it. And MariaDB
		// 10.11 crashed (signal 11, Item_func_nextval::val_int) running
		// the copy's INSERT … SELECT into such a column.
		return "", fmt.Errorf("the --alter adds the column %s with DEFAULT %s, which reads a sequence: a plain ALTER TABLE draws one "+
			"value per existing row in one pass, where osc's copy and applier would draw one each time they write a row (and MariaDB "+
			"has crashed evaluating that DEFAULT in the copy's INSERT … SELECT): add the column without that DEFAULT, then set it "+
			"with ALTER TABLE … ALTER COLUMN %s SET DEFAULT … (no copy) and fill the existing rows with batched UPDATEs", c.Name, c.Default, c.Name)
	}
	if c.NoDefault && !c.Nullable {
		v, ok := mysqlImplicitDefaults[c.DataType]
		if !ok {
			// Spatial types: the ALTER stores an empty value, which no
			// INSERT can write.
			return "", fmt.Errorf("the --alter adds the column %s %s NOT NULL without a DEFAULT; a plain ALTER TABLE fills the "+
				"existing rows with the type's implicit default, which osc cannot write for this type: "+
				"add the column NULL, or with a DEFAULT", c.Name, c.ColumnType)
		}
		return v, nil
	}
	if m := mysqlCurrentTimestamp.FindStringSubmatch(c.Default); m != nil {
		fsp := 0
		if m[1] != "" {
			fsp, _ = strconv.Atoi(m[1])
		}
		if !mysqlAlterTime.MatchString(now) {
			return "", fmt.Errorf("column %s: the ALTER's time %q is not YYYY-MM-DD HH:MM:SS.ffffff", c.Name, now)
		}
		// CURRENT_TIMESTAMP(n) truncates to n digits.
		at := "'" + now[:len("2006-01-02 15:04:05")] + "'"
		if fsp > 0 {
			at = "'" + now[:len("2006-01-02 15:04:05.")+fsp] + "'"
		}
		if c.DataType == "timestamp" {
			return at, nil
		}
		if !mysqlZoneName.MatchString(zone) {
			return "", fmt.Errorf("column %s: time zone %q is not a zone name or offset", c.Name, zone)
		}
		return fmt.Sprintf("CONVERT_TZ(%s, '+00:00', '%s')", at, zone), nil
	}
	if mysqlReadsClock(c.Default) {
		return "", fmt.Errorf("the --alter adds the column %s with DEFAULT %s, which reads the clock: a plain ALTER TABLE evaluates it "+
			"at one statement time, the same for every existing row, where osc's copy and applier would evaluate it at each chunk and "+
			"each write they apply (only a bare DEFAULT CURRENT_TIMESTAMP is written as one time): add the column without that DEFAULT "+
			"(or with DEFAULT CURRENT_TIMESTAMP), then set it with ALTER TABLE … ALTER COLUMN %s SET DEFAULT … (no copy) and fill the "+
			"existing rows with batched UPDATEs", c.Name, c.Default, c.Name)
	}
	if mysqlSessionFunction.MatchString(mysqlQuoted.ReplaceAllString(c.Default, "''")) {
		return "", fmt.Errorf("the --alter adds the column %s with DEFAULT %s, which reads the writing session (its user, role, "+
			"connection or database): a plain ALTER TABLE gives every existing row the value of the session that runs it, where osc's "+
			"copy and applier would give the values of their own sessions: add the column without that DEFAULT, then set it with "+
			"ALTER TABLE … ALTER COLUMN %s SET DEFAULT … (no copy) and fill the existing rows with batched UPDATEs", c.Name, c.Default, c.Name)
	}
	return "", nil
}

// checkFillChecks refuses an implicit default fill of a shadow column with a
// column-level CHECK constraint (MariaDB names it after the column): an
// instant ADD COLUMN stores the implicit default without checking it, where
// osc's copy writes it through the CHECK, which may refuse it (JSON's
// json_valid refuses the empty string).
func checkFillChecks(ctx context.Context, db *sql.DB, schema, shadow string, p *Plan) error {
	for _, f := range p.Fills {
		j := columnIndexFold(p.Shadow, f.Shadow)
		if j < 0 || !p.Shadow.Columns[j].NoDefault {
			continue
		}
		var clause string
		err := db.QueryRowContext(ctx, `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
			WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = ?`, schema, shadow, f.Shadow).Scan(&clause)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read the CHECK constraints of the shadow table: %w", err)
		}
		c := p.Shadow.Columns[j]
		return fmt.Errorf("the --alter adds the column %s %s NOT NULL without a DEFAULT and with a CHECK (%s); a plain ALTER TABLE "+
			"fills the existing rows with the type's implicit default (%s) without checking it, which osc's copy cannot do: "+
			"give the column a DEFAULT, or add it NULL", c.Name, c.ColumnType, clause, f.Expr)
	}
	return nil
}
