package table

import "strconv"

// MySQLTimeNumber returns the expression that turns expr, a value of the
// TIME, DATETIME or DATE source column src (a column reference, or a
// parameter that the applier passes as the binlog's text), into what the
// server's ALTER stores in a numeric shadow column dst: the time's number
// (12:00:00.5 is 120000.5, 2024-02-29 20240229). The text itself would not
// go into a number ("Data truncated"), so it is typed as the source column,
// which the server then converts as it converts the column. Other columns
// (a TIMESTAMP is typed by MySQLTimeConversion), and other shadow columns,
// get expr as it is.
func MySQLTimeNumber(expr string, src, dst Column) string {
	switch dst.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "float", "double", "real":
	default:
		return expr
	}
	n := strconv.Itoa(mysqlFraction(src.ColumnType))
	switch src.DataType {
	case "time":
		return "CAST(" + expr + " AS TIME(" + n + "))"
	case "datetime":
		return "CAST(" + expr + " AS DATETIME(" + n + "))"
	case "date":
		return "CAST(" + expr + " AS DATE)"
	}
	return expr
}
