package table

import (
	"strconv"
	"strings"
)

// mysqlZerofillWidths are the display widths of the integer types when the
// column type names none (MySQL 8.0.19 and later leave a width out of
// COLUMN_TYPE unless it is given).
var mysqlZerofillWidths = map[string]int{"tinyint": 3, "smallint": 5, "mediumint": 8, "int": 10, "integer": 10, "bigint": 20}

// MySQLZerofillText returns the expression that turns expr, a value of the
// ZEROFILL numeric source column src (a column reference, or a parameter
// that the applier passes as the binlog's number or DECIMAL text; a FLOAT's
// or DOUBLE's as MySQLFloatConversion renders it), into the text the server's
// ALTER stores in a shadow column dst of a string type: zero-padded to the
// column's display width ('00042' for an INT(5) ZEROFILL, '0001.50' for a
// DECIMAL(6,2) ZEROFILL, whose width counts the point; a FLOAT(M,D)'s is M,
// a FLOAT's 12, a DOUBLE's 22), a longer value as it is. An INSERT … SELECT
// of the bare column stores its number's text ('42'). The expression pads
// what it reads as text, so a column reference, whose text is padded
// already, and a number come out alike. Other columns, and other shadow
// types, get expr as it is.
func MySQLZerofillText(expr string, src, dst Column) string {
	if !mysqlStringType(dst.DataType) {
		return expr
	}
	t, ok := parseMySQLColumnType(src.ColumnType)
	if !ok || !strings.Contains(strings.ToLower(src.ColumnType), "zerofill") {
		return expr
	}
	width := 0
	switch {
	case mysqlIntBits[t.base] > 0:
		width = t.arg(0, mysqlZerofillWidths[t.base])
	case t.base == "decimal" || t.base == "numeric":
		width = t.arg(0, 10)
		if t.arg(1, 0) > 0 {
			width++
		}
	case t.base == "float":
		width = t.arg(0, 12)
	case t.base == "double" || t.base == "real":
		width = t.arg(0, 22)
	default:
		return expr
	}
	return "CONCAT(REPEAT('0', " + strconv.Itoa(width) + " - CHAR_LENGTH(" + expr + ")), " + expr + ")"
}
