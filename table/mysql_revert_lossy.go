package table

import (
	"fmt"
	"strings"
)

// A revert window writes a row's values back into the old table whenever
// the row is written: all the mapped columns, converted back from the
// altered types, not only the ones the write changed. A conversion that the
// server carries out silently but not exactly (DECIMAL(10,2) to
// DECIMAL(10,1) rounds 1.25 to 1.3; DATETIME(6) to DATETIME drops the
// fraction; '007' into an INT is 7) leaves in the altered table a value
// that converts back to another one: the old table's row would then hold
// the rounded value in a column the write did not touch, where the table
// never migrated keeps its own. Strict mode refuses a value that does not
// fit at all; these it takes. So PlanMySQLRevert refuses such a change.

// mysqlConversionRounds returns why the server's conversion of column from's
// values to column to's type (in time zone zone) may change a value without
// an error, so that converting it back does not give it again, or "".
// Conversions it does not know are taken as exact.
func mysqlConversionRounds(from, to Column, zone string) string {
	if strings.EqualFold(from.ColumnType, to.ColumnType) {
		return ""
	}
	f, ok1 := parseMySQLColumnType(from.ColumnType)
	t, ok2 := parseMySQLColumnType(to.ColumnType)
	if !ok1 || !ok2 {
		return ""
	}
	fixed := func(b string) bool { return b == "decimal" || b == "numeric" }
	approx := func(b string) bool { return b == "float" || b == "double" || b == "real" }
	text := func(b string) bool { return b == "char" || b == "varchar" || strings.HasSuffix(b, "text") }
	clock := func(b string) bool { return b == "datetime" || b == "timestamp" || b == "time" }
	switch {
	case fixed(f.base) && fixed(t.base) && t.arg(1, 0) < f.arg(1, 0):
		return "rounds to fewer decimal places"
	case (fixed(f.base) || approx(f.base)) && mysqlIntBits[t.base] > 0:
		return "rounds to an integer"
	case fixed(f.base) && approx(t.base), approx(f.base) && fixed(t.base):
		return "rounds between exact and floating-point numbers"
	case approx(f.base) && approx(t.base):
		if t.base == "float" && f.base != "float" || len(t.args) > 0 {
			return "rounds to a less precise floating-point number"
		}
	case mysqlIntBits[f.base] > 0 && approx(t.base):
		if t.base == "float" || mysqlIntBits[f.base] > 32 || len(t.args) > 0 {
			return "rounds large integers to a floating-point number"
		}
	case clock(f.base) && clock(t.base) && f.base != "time" && t.base != "time":
		if t.arg(0, 0) < f.arg(0, 0) {
			return "drops fractional seconds"
		}
		if f.base != t.base && !mysqlFixedZone.MatchString(zone) {
			return "converts between TIMESTAMP and DATETIME in a time zone with daylight saving time"
		}
	case f.base == "time" && t.base == "time" && t.arg(0, 0) < f.arg(0, 0):
		return "drops fractional seconds"
	case (f.base == "datetime" || f.base == "timestamp") && (t.base == "date" || t.base == "time"):
		return "drops part of the date and time"
	case text(f.base) && !text(t.base) && t.base != "varbinary" && !strings.HasSuffix(t.base, "blob") && t.base != "binary":
		return "reads the text as a value of another type"
	case f.base != "char" && text(f.base) && t.base == "char":
		return "drops trailing spaces"
	case t.base == "binary" && (f.base != "binary" || t.arg(0, 1) > f.arg(0, 1)):
		// The zero bytes stay part of the value: it no longer fits back.
		return "pads with zero bytes"
	}
	return ""
}

// revertRoundingRefusal refuses a forward plan with a column conversion that
// may round (mysqlConversionRounds).
func revertRoundingRefusal(fwd *Plan) error {
	for _, m := range fwd.Mapping {
		if m.SourceIndex < 0 || m.SourceIndex >= len(fwd.Source.Columns) {
			continue
		}
		j := columnIndexFold(fwd.Shadow, m.Shadow)
		if j < 0 {
			continue
		}
		from, to := fwd.Source.Columns[m.SourceIndex], fwd.Shadow.Columns[j]
		if from.Generated || to.Generated {
			continue
		}
		if why := mysqlConversionRounds(from, to, fwd.TimeZone); why != "" {
			return fmt.Errorf("the --alter changes column %s from %s to %s, which %s: a row written during the window would go "+
				"back into the old table with the converted value also where the write left the column alone, and a revert "+
				"would not give the table back as it was; change that column without --revert-window",
				from.Name, from.ColumnType, to.ColumnType, why)
		}
	}
	return nil
}
