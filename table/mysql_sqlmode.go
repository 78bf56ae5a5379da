package table

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Three sql_mode flags would make osc's copy and applier disagree with each
// other or with the ALTER; each is handled where the session mode is set
// (mysqlSessionSQLMode), the fills are written (mysql_fill.go) or the plan is
// checked (padCharRefusal):
//
//   - without STRICT_TRANS_TABLES or STRICT_ALL_TABLES, a value the target
//     column cannot hold is converted with a warning by a statement that
//     writes several rows but fails one that writes a single row (NULL into
//     NOT NULL: error 1048), so the applier's outcome would depend on its
//     batch size. osc's sessions are strict: such a value fails the
//     migration, where the non-strict ALTER would have converted it.
//   - PAD_CHAR_TO_FULL_LENGTH pads CHAR values read with spaces, where the
//     binlog carries them unpadded. osc's sessions drop the flag, so both
//     paths read CHAR values alike; an --alter that changes a CHAR column to
//     another type, which the ALTER would fill padded, is refused.
//   - EMPTY_STRING_IS_NULL turns the literal '' into NULL: the fills write
//     the empty string as SPACE(0), which is not a literal.

// padCharRefusal refuses a CHAR column changed to another type under a
// global sql_mode with PAD_CHAR_TO_FULL_LENGTH.
func padCharRefusal(globalMode string, p *Plan) error {
	if !strings.Contains(","+strings.ToUpper(globalMode)+",", ",PAD_CHAR_TO_FULL_LENGTH,") {
		return nil
	}
	for _, m := range p.Mapping {
		src := p.Source.Columns[m.SourceIndex]
		j := columnIndexFold(p.Shadow, m.Shadow)
		if src.DataType != "char" || j < 0 || p.Shadow.Columns[j].DataType == "char" {
			continue
		}
		return fmt.Errorf("the server's sql_mode has PAD_CHAR_TO_FULL_LENGTH, under which the ALTER pads the values of the CHAR "+
			"column %s with spaces as it changes it to %s; the binlog carries them unpadded, so osc cannot write what the ALTER "+
			"would: remove PAD_CHAR_TO_FULL_LENGTH from the global sql_mode (it is deprecated), or run a plain ALTER TABLE",
			src.Name, p.Shadow.Columns[j].ColumnType)
	}
	return nil
}

// The ENUM error value. A non-strict session stores, for a text that is no
// member of an ENUM, the error value: index 0, read as ''. A plain ALTER
// that keeps the column an ENUM keeps index 0 (the server copies an ENUM
// field's index 0 as index 0), and so does the copy's INSERT … SELECT; but
// a value written by the applier, '' or 0, is no member, and a strict
// session refuses it (1265, Data truncated), where a non-strict one stores
// index 0 with that warning. The applier writes such a row's error value
// as 0 in a statement run without strict mode (MySQLStatementMode), and then
// requires the statement's warnings to be exactly one 1265 per error value
// written (MySQLErrorValuesWarned): any other is a value the strict session
// would have refused, and fails the migration as it would have.

var mysqlModeList = regexp.MustCompile(`^[A-Za-z0-9_,]*$`)

// MySQLStatementMode returns, as a quoted SQL string, the sql_mode mode
// without STRICT_TRANS_TABLES and STRICT_ALL_TABLES when notStrict (a
// statement that writes ENUM error values), and with ALLOW_INVALID_DATES
// when invalidDates (one that writes dates such as 2024-02-30).
func MySQLStatementMode(mode string, notStrict, invalidDates bool) (string, error) {
	if !mysqlModeList.MatchString(mode) {
		return "", fmt.Errorf("unexpected sql_mode %q", mode)
	}
	var kept []string
	for _, m := range strings.Split(mode, ",") {
		switch strings.ToUpper(m) {
		case "", "ALLOW_INVALID_DATES":
			continue
		case "STRICT_TRANS_TABLES", "STRICT_ALL_TABLES":
			if notStrict {
				continue
			}
		}
		kept = append(kept, m)
	}
	if invalidDates || strings.Contains(","+strings.ToUpper(mode)+",", ",ALLOW_INVALID_DATES,") {
		kept = append(kept, "ALLOW_INVALID_DATES")
	}
	return "'" + strings.Join(kept, ",") + "'", nil
}

// MySQLErrorValueWarning is the warning of the ENUM error value written as
// 0 into the column in the row'th row (from 1) of a statement run without
// strict mode.
func MySQLErrorValueWarning(column string, row int) string {
	return fmt.Sprintf("Data truncated for column '%s' at row %d", column, row)
}

// MySQLErrorValuesWarned checks the last statement on q's connection, run
// without strict mode to write ENUM error values: its warnings must be
// exactly want (MySQLErrorValueWarning, code 1265), each once; notes pass
// unless anyNote (--panic-on-warnings). Any other warning is a value the
// strict session would have refused, and fails as the strict statement
// would have.
func MySQLErrorValuesWarned(ctx context.Context, q MySQLQuerier, want []string, anyNote bool) error {
	warnings, count, err := mysqlReadWarnings(ctx, q)
	if err != nil {
		return fmt.Errorf("read the warnings of a statement that wrote the ENUM error value: %w", err)
	}
	if count > len(warnings) {
		return fmt.Errorf("a statement that wrote the ENUM error value left %d warnings, of which the server kept %d (max_error_count)",
			count, len(warnings))
	}
	left := map[string]int{}
	for _, w := range want {
		left[w]++
	}
	var other []string
	var first *mysql.MySQLError
	for _, w := range warnings {
		switch {
		case w.code == 1265 && left[w.message] > 0:
			left[w.message]--
		case mysqlHarmlessWarnings[w.code], strings.EqualFold(w.level, "Note") && !anyNote:
		default:
			other = append(other, fmt.Sprintf("%s %d: %s", w.level, w.code, w.message))
			if first == nil {
				first = &mysql.MySQLError{Number: uint16(w.code), Message: w.message}
			}
		}
	}
	if len(other) > 0 {
		// The first as the server's error, as the strict statement would
		// have failed (MySQLUnfit).
		return fmt.Errorf("a statement that wrote the ENUM error value (written without strict mode) made the server warn of "+
			"another value, which a strict session refuses (%s): %w", strings.Join(other, "; "), first)
	}
	for w, n := range left {
		if n > 0 {
			return fmt.Errorf("a statement that wrote the ENUM error value did not warn %q: the server stored another value", w)
		}
	}
	return nil
}

// Dates that are no calendar's. A session with ALLOW_INVALID_DATES stores a
// DATE or DATETIME whose day its month lacks ('2024-02-30'), checking only
// that the month is 1 to 12 and the day 1 to 31. A plain ALTER keeps it (a
// temporal column copied to a temporal or text column is not checked
// again), and so does the copy's INSERT … SELECT; but the applier writes the
// binlog's text, which osc's session, without that mode, refuses (1292).
// The applier runs a statement that writes such a date with
// ALLOW_INVALID_DATES (MySQLStatementMode, MySQLInvalidDate). A DATE
// changed to a DATETIME (or back) the ALTER keeps too, where the copy's
// INSERT … SELECT checks it: the copy's statements then run with that mode
// (MySQLCopy.Exec). Neither does so when another column becomes a DATE or
// DATETIME (MySQLKeepsInvalidDates): then such a date fails osc, saying
// why (ErrMySQLInvalidDates).

// MySQLInvalidDate reports whether v, a DATE's or DATETIME's text
// ("2024-02-30", "2023-04-31 10:00:00"), has a day its month lacks.
func MySQLInvalidDate(v string) bool {
	if len(v) < 10 || v[4] != '-' || v[7] != '-' {
		return false
	}
	y, err1 := strconv.Atoi(v[:4])
	m, err2 := strconv.Atoi(v[5:7])
	d, err3 := strconv.Atoi(v[8:10])
	if err1 != nil || err2 != nil || err3 != nil || m < 1 || m > 12 || d < 1 {
		return false
	}
	return d > time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// mysqlDateTypes are the types that hold a date its month lacks under
// ALLOW_INVALID_DATES.
var mysqlDateTypes = map[string]bool{"date": true, "datetime": true}

// MySQLKeepsInvalidDates reports whether osc may write, with
// ALLOW_INVALID_DATES, the dates their months lack that the plan's DATE and
// DATETIME columns hold: unless a column of another type becomes a DATE or
// DATETIME, whose text or number the ALTER checks (in strict mode it
// fails on '2024-02-30'), and which a statement with that mode would let
// pass.
func MySQLKeepsInvalidDates(p *Plan) bool {
	for _, m := range p.Mapping {
		j := p.Shadow.ColumnIndex(m.Shadow)
		if j < 0 || m.SourceIndex < 0 || m.SourceIndex >= len(p.Source.Columns) {
			continue
		}
		if mysqlDateTypes[p.Shadow.Columns[j].DataType] && !mysqlDateTypes[p.Source.Columns[m.SourceIndex].DataType] {
			return false
		}
	}
	return true
}

// ErrMySQLInvalidDates is osc's refusal of a date its month lacks that the
// ALTER keeps, when MySQLKeepsInvalidDates is false.
var ErrMySQLInvalidDates = errors.New("a DATE or DATETIME column holds a date its month lacks (stored under ALLOW_INVALID_DATES, " +
	"such as 2024-02-30), which the ALTER keeps; osc cannot write it while another column of the --alter becomes a DATE or " +
	"DATETIME, whose dates the ALTER checks: run that change as a migration of its own, or run a plain ALTER TABLE")

// mysqlDateChanges reports whether the plan changes a DATE to a DATETIME or
// back.
func mysqlDateChanges(p *Plan) bool {
	for _, m := range p.Mapping {
		j := p.Shadow.ColumnIndex(m.Shadow)
		if j < 0 || m.SourceIndex < 0 || m.SourceIndex >= len(p.Source.Columns) {
			continue
		}
		src, dst := p.Source.Columns[m.SourceIndex].DataType, p.Shadow.Columns[j].DataType
		if mysqlDateTypes[src] && mysqlDateTypes[dst] && src != dst {
			return true
		}
	}
	return false
}

// mysqlCopiesInvalidDates reports whether the copy's INSERT … SELECT needs
// ALLOW_INVALID_DATES to keep such dates as the ALTER does: it checks the
// date of a DATE changed to a DATETIME or the other way round (a column
// copied to its own type, or to text, it does not).
func mysqlCopiesInvalidDates(p *Plan) bool {
	return MySQLKeepsInvalidDates(p) && mysqlDateChanges(p)
}
