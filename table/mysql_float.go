package table

import (
	"regexp"
	"strconv"
	"strings"
)

var mysqlFloatDecimals = regexp.MustCompile(`^(?:float|double|real)\(\d+,(\d+)\)`)

// MySQLFloatConversion returns the expression that turns expr, a value of
// the FLOAT or DOUBLE source column src (a column reference, or a parameter
// that the applier passes as a float64), into the text the server's ALTER
// stores in a shadow column dst of a string type. The ALTER renders the
// column's value from its type: a FLOAT with its own precision (1.42857),
// a FLOAT(M,D) or DOUBLE(M,D) with D decimals; an INSERT renders any of them
// as a double (1.4285714626312256, 1.4290000200271606). Other columns, and
// numeric shadow columns, get expr as it is.
func MySQLFloatConversion(expr string, src, dst Column) string {
	if !mysqlStringType(dst.DataType) {
		return expr
	}
	if m := mysqlFloatDecimals.FindStringSubmatch(strings.ToLower(src.ColumnType)); m != nil {
		return "CONCAT(CAST(" + expr + " AS DECIMAL(65," + m[1] + ")))"
	}
	if src.DataType == "float" {
		return "CONCAT(CAST(" + expr + " AS FLOAT))"
	}
	return expr
}

// MySQLTimeText returns the expression that turns expr, a value of the TIME
// source column src, into the text the ALTER stores in a shadow column dst of
// a string type: with all of the column's fractional digits ("02:14:04.000"),
// which the binlog's text of a TIME(3) lacks when they are zeros.
func MySQLTimeText(expr string, src, dst Column) string {
	if src.DataType != "time" || !mysqlStringType(dst.DataType) {
		return expr
	}
	if n := mysqlFraction(src.ColumnType); n > 0 {
		return "CAST(" + expr + " AS TIME(" + strconv.Itoa(n) + "))"
	}
	return expr
}

func mysqlStringType(dataType string) bool {
	switch dataType {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext",
		"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return true
	}
	return false
}
