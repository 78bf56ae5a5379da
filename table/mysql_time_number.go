package table

import "strconv"

// MySQLTimeNumber returns the expression that turns expr, a value of the
// TIME, DATETIME or DATE source column src (a column reference, or a
// parameter that the applier passes as the binlog's text), into what the
// server's ALTER stores in a numeric or BIT shadow column dst: the time's
// number (12:00:00.5 is 120000.5, 2024-02-29 20240229), into a BIT with its
// fraction truncated. The binlog's text would not go into a number ("Data
// truncated"), so it is typed as the source column, which the server then
// converts as it converts the column; into a BIT a time goes as its text's
// bytes, in an INSERT … SELECT of the column too (which fails: "Data too
// long"), so both take its number. A DATE or DATETIME going into a TIME is
// typed too: the ALTER takes the time of day (00:00:00 for a DATE, the zero
// date included), where the text of a DATE, '2024-05-06' or '0000-00-00', is
// no time ("Incorrect time value"). Other columns (a TIMESTAMP is typed by
// MySQLTimeConversion), and other shadow columns, get expr as it is.
func MySQLTimeNumber(expr string, src, dst Column) string {
	n := strconv.Itoa(mysqlFraction(src.ColumnType))
	var typed string
	switch src.DataType {
	case "time":
		typed = "CAST(" + expr + " AS TIME(" + n + "))"
	case "datetime":
		typed = "CAST(" + expr + " AS DATETIME(" + n + "))"
	case "date":
		typed = "CAST(" + expr + " AS DATE)"
	default:
		return expr
	}
	switch dst.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "float", "double", "real":
		return typed
	case "bit":
		if src.DataType == "time" {
			// A negative TIME goes into a BIT(64) as its number's two's
			// complement in the ALTER (-00:00:01 is all ones), where the
			// number itself is out of the BIT's range.
			return "CAST(CAST(TRUNCATE(" + typed + " + 0, 0) AS SIGNED) AS UNSIGNED)"
		}
		return "TRUNCATE(" + typed + " + 0, 0)"
	case "time":
		if src.DataType != "time" {
			return typed
		}
	}
	return expr
}
