package table

// MySQLTextNumber returns the expression that turns expr, a value of the
// string source column src (a column reference, or the applier's
// parameter), into what the server's ALTER stores in a numeric shadow
// column dst, or fails on as it does:
//
//   - into an integer, the ALTER takes only an integer's text (spaces
//     around it allowed) and fails on any other ("Truncated incorrect
//     INTEGER value: '12.5'"), where an INSERT rounds 12.5 to 13 and takes
//     1e3 as 1000: any other text is turned into one that no number
//     starts with, which the INSERT refuses too;
//   - a binary string (BINARY, VARBINARY, a BLOB) going into any number is
//     read as latin1 text (every byte a character): the ALTER takes its
//     trailing whitespace ('12 ', '12\n'), which an INSERT of the binary
//     string refuses ("Data truncated").
//
// Other columns, and other shadow columns, get expr as it is. The pattern
// holds no question mark: the applier counts them as its parameters.
func MySQLTextNumber(expr string, src, dst Column) string {
	integer := false
	switch dst.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		integer = true
	case "decimal", "numeric", "float", "double", "real":
	default:
		return expr
	}
	switch src.DataType {
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		expr = "CONVERT(" + expr + " USING latin1)"
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
	default:
		return expr
	}
	if !integer {
		return expr
	}
	return "IF(" + expr + " REGEXP '^[[:space:]]*[-+]{0,1}[0-9]+[[:space:]]*$', " + expr + ", CONCAT('not an integer: ', " + expr + "))"
}
