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
//     Into a BIGINT UNSIGNED MariaDB 10.11's ALTER reads the text as a
//     signed BIGINT likewise, and fails on one beyond it ("Truncated
//     incorrect INTEGER value: '18446744073709551615'"), which an INSERT
//     stores;
//   - into a BIT, the ALTER takes the text as a BIGINT likewise (an
//     integer's text in BIGINT's range, else "Truncated incorrect INTEGER
//     value") and stores its 64 bits ('-1' is all ones), where an INSERT
//     stores the text's bytes ('2024' is 0x32303234, too long for a
//     BIT(16)): the number's two's complement, or a sum that overflows
//     and so fails the statement (each branch an integer: a text branch
//     would make the number a text, stored as its bytes again);
//   - a binary string (BINARY, VARBINARY, a BLOB) going into any number is
//     read as ascii text: the ALTER takes its ASCII whitespace ('12 ',
//     '12\n'), which an INSERT of the binary string refuses ("Data
//     truncated"), and no other byte; read as latin1 text, 0xA0 (its
//     no-break space) was taken too, where the ALTER fails ("Truncated
//     incorrect INTEGER value: '12\xA0'"). Bytes from 0x80 become '?',
//     which no number takes.
//
// Other columns, and other shadow columns, get expr as it is. The pattern
// holds no question mark: the applier counts them as its parameters.
func MySQLTextNumber(expr string, src, dst Column) string {
	integer, bit := false, false
	switch dst.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		integer = true
	case "bit":
		bit = true
	case "decimal", "numeric", "float", "double", "real":
	default:
		return expr
	}
	switch src.DataType {
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		expr = "CONVERT(" + expr + " USING ascii)"
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
	default:
		return expr
	}
	isInteger := expr + " REGEXP '^[[:space:]]*[-+]{0,1}[0-9]+[[:space:]]*$'"
	inRange := "CAST(" + expr + " AS DECIMAL(65,0)) BETWEEN -9223372036854775808 AND 9223372036854775807"
	switch {
	case integer && dst.DataType == "bigint" && dst.Unsigned:
		return "IF(" + isInteger + " AND " + inRange + ", " + expr + ", CONCAT('not a BIGINT: ', " + expr + "))"
	case integer:
		return "IF(" + isInteger + ", " + expr + ", CONCAT('not an integer: ', " + expr + "))"
	case bit:
		return "IF(" + isInteger + " AND " + inRange + ", CAST(CAST(" + expr + " AS SIGNED) AS UNSIGNED), CAST(" + expr +
			" AS UNSIGNED) + 18446744073709551615 + 1)"
	}
	return expr
}
