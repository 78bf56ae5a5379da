package table

import (
	"fmt"
	"regexp"
	"strings"
)

var mysqlKeyCharset = regexp.MustCompile(`^[a-z0-9_]+$`)

var mysqlBinaryLength = regexp.MustCompile(`^binary\((\d+)\)`)

// MySQLIntegerKeyText returns what a key column dst of the shadow, of a
// string type, is compared with when it holds the text of an integer: expr,
// the integer (a parameter of the applier, a column of the original in the
// copy; a ZEROFILL number's text, padded), converted to the text the column
// holds. The server compares a string with a number as numbers, which no
// index of the text serves: every lookup by such a key read the whole
// shadow, and a BINARY's zero bytes made the value an incorrect number
// (an error in a strict INSERT … SELECT). A CHAR, VARCHAR or TEXT takes the
// text in its character set under its collation; a BINARY(n) holds it
// padded with zero bytes (never cut to n: a longer text, a key the column
// cannot hold, would be another key's); a VARBINARY holds its bytes. ok is
// false when src is no integer or dst no such string (expr is compared as
// it is then).
func MySQLIntegerKeyText(expr string, src, dst Column) (cmp string, ok bool, err error) {
	if mysqlIntBits[strings.ToLower(src.DataType)] == 0 {
		return expr, false, nil
	}
	switch dst.DataType {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
		cs := strings.ToLower(dst.Charset)
		if cs == "" || cs == "binary" || dst.Collation == "" {
			return expr, false, nil
		}
		if !mysqlKeyCharset.MatchString(cs) || !mysqlKeyCharset.MatchString(dst.Collation) {
			return "", false, fmt.Errorf("column %s: unexpected character set %q or collation %q", dst.Name, cs, dst.Collation)
		}
		return "CONVERT(" + expr + " USING " + cs + ") COLLATE " + dst.Collation, true, nil
	case "binary":
		m := mysqlBinaryLength.FindStringSubmatch(strings.ToLower(dst.ColumnType))
		if m == nil {
			return "", false, fmt.Errorf("column %s: cannot read the length of %q", dst.Name, dst.ColumnType)
		}
		b := "CAST(" + expr + " AS BINARY)"
		return "CONCAT(" + b + ", REPEAT(0x00, " + m[1] + " - LENGTH(" + b + ")))", true, nil
	case "varbinary":
		return "CAST(" + expr + " AS BINARY)", true, nil
	}
	return expr, false, nil
}
