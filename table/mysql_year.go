package table

import "strings"

// A YEAR into a string or a number. A plain ALTER stores a YEAR's text in a
// string, zero-padded to its display width ("0000", and a YEAR(2)'s "00" to
// "99"); an INSERT … SELECT of the column into a CHAR, VARCHAR, BINARY or
// VARBINARY stores its number ("0" for 0000), and the binlog carries the
// number too (0 for 0000), and for a YEAR(2) the full year (2028 for 28),
// where the ALTER writes a YEAR(2)'s two digits into a number. The copy and
// the applier write the same expression over either: into a string the
// padded text, LPAD(y, 4, '0') (a YEAR(2): LPAD(MOD(y, 100), 2, '0')); into
// a number a YEAR(2)'s MOD(y, 100). Into an ENUM or a SET the ALTER converts
// a YEAR by its number, as the INSERT does. Into a DATE or a DATETIME the
// ALTER takes the padded text too, which is no date, and fails on every
// YEAR ("Incorrect date value: '0000'"), where an INSERT of the number 0
// stores the zero date: both write the text, and fail as the ALTER does.

// MySQLYearConversion returns the expression that turns expr, a value of
// the YEAR source column src (a column reference, or a parameter that the
// applier passes as the binlog's number), into what the server's ALTER
// stores in a shadow column dst of a string type, a DATE or a DATETIME, or
// for a YEAR(2) of a numeric type; expr itself otherwise.
func MySQLYearConversion(expr string, src, dst Column) string {
	if src.DataType != "year" {
		return expr
	}
	two := strings.EqualFold(src.ColumnType, "year(2)")
	text := mysqlStringType(dst.DataType) || dst.DataType == "date" || dst.DataType == "datetime"
	switch {
	case text && two:
		return "LPAD(MOD(" + expr + ", 100), 2, '0')"
	case text:
		return "LPAD(" + expr + ", 4, '0')"
	case two && mysqlNumberType(dst.DataType):
		return "MOD(" + expr + ", 100)"
	}
	return expr
}

// mysqlNumberType reports whether a column of the type holds a number: the
// integer, fixed- and floating-point types, BIT, and ENUM and SET, which a
// number goes into as the member's index or the members' bitmask.
func mysqlNumberType(dataType string) bool {
	switch dataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric",
		"float", "double", "real", "bit", "enum", "set":
		return true
	}
	return false
}
