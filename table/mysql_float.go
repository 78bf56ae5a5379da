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
	if src.DataType == "float" && dst.DataType == "bigint" {
		return mysqlFloatBigint(expr, dst.Unsigned)
	}
	if src.DataType == "double" && dst.DataType == "bigint" && dst.Unsigned {
		return mysqlDoubleUnsigned(expr)
	}
	if (src.DataType == "float" || src.DataType == "double") && dst.DataType == "bit" {
		return mysqlFloatBit(expr, src.DataType == "float")
	}
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

// mysqlFloatBigint is a FLOAT's value expr as the ALTER stores it in a
// BIGINT: rounded half to even, and, out of BIGINT's range, the nearest of
// its bounds, where an INSERT fails ("Out of range value"). A BIGINT
// UNSIGNED gets the signed upper bound too (MariaDB 10.11's ALTER stores
// 1e19 as 9223372036854775807) and fails on a negative value, as the ALTER
// does. Each branch is an integer, so that no bound goes through a double.
func mysqlFloatBigint(expr string, unsigned bool) string {
	v := "CAST(ROUND(" + expr + ") AS SIGNED)"
	if !unsigned {
		v = "IF(" + expr + " < -9223372036854775808, -9223372036854775808, " + v + ")"
	}
	return "IF(" + expr + " >= 9223372036854775807, 9223372036854775807, " + v + ")"
}

// mysqlDoubleUnsigned is a DOUBLE's value expr as MariaDB 10.11's ALTER
// stores it in a BIGINT UNSIGNED: converted as a signed BIGINT, so that 2^63
// (which 9223372036854775807 is as a double) is 9223372036854775807, and a
// value beyond it fails ("Got overflow when converting '9.3e18' to INT"),
// where an INSERT stores 9223372036854775808 and 9300000000000000000: the
// unsigned sum overflows then, which fails the statement. A negative value
// that does not round to 0 fails in both, "Out of range value".
func mysqlDoubleUnsigned(expr string) string {
	return "IF(" + expr + " >= 9223372036854775807, 9223372036854775807, CAST(ROUND(" + expr + ") AS SIGNED)) + IF(" + expr +
		" > 9223372036854775807, 18446744073709551615, 0)"
}

// mysqlFloatBit is a FLOAT's or DOUBLE's value expr as the ALTER stores it
// in a BIT: its BIGINT (rounded half to even, clamped to BIGINT's bounds,
// see mysqlFloatBigint) as the 64 bits of its two's complement (-1.5 is
// FFFFFFFFFFFFFFFE), where an INSERT … SELECT of the column truncates
// (123456.7 is 123456, -1.5 all ones). A DOUBLE beyond BIGINT's range fails
// the ALTER ("Got overflow"): the unsigned sum overflows then, which fails
// the statement. Its bounds themselves (2^63, which 9223372036854775807 is
// as a double, and -2^63) are no overflow: the ALTER stores 2^63 as
// 7FFFFFFFFFFFFFFF.
func mysqlFloatBit(expr string, float bool) string {
	clamped := "CAST(" + mysqlFloatBigint(expr, false) + " AS UNSIGNED)"
	if float {
		return clamped
	}
	return clamped + " + IF(" + expr + " > 9223372036854775807 OR " + expr + " < -9223372036854775808, 18446744073709551615, 0)"
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
