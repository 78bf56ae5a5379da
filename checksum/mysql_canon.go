package checksum

import (
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"

	"osc/table"
)

// The fingerprint of a MySQL row renders every column the copy writes as
// bytes, on each side: the shadow's stored value, and the original's value
// as the copy selects it (table.MySQLCopy), brought to the shadow column's
// type the way storing it there does. Where the two columns' types are
// identical (type, character set and collation) and the copy writes the
// column as it is, both sides render the column itself, with no cast. Each
// rendering then enters the row's by its encoding (mysqlEncoding), and the
// row's rendering is hashed.

// mysqlCanonical is a column's rendering on both sides. Exact is false when
// osc cannot reproduce the conversion of the original's value into the
// shadow's type (the column is then compared by whether it is NULL only).
// Encoding is how the rendering enters the row's (see mysqlEncoded).
type mysqlCanonical struct {
	Original, Shadow string
	Exact            bool
	Encoding         mysqlEncoding
}

// mysqlEncoding is how a column's rendering enters the row's (mysqlRowText):
// the row's rendering is the columns' encodings joined by zero bytes, in
// which no two rows of distinct values render alike.
type mysqlEncoding int

const (
	// mysqlBytes: the bytes' length, then the bytes (which may hold zero
	// bytes: the length says where they end).
	mysqlBytes mysqlEncoding = iota
	// mysqlUTF8: as mysqlBytes, for a utf8mb4 or utf8mb3 string or a
	// binary one, which CONCAT_WS takes as its bytes without the cast to
	// BINARY that mysqlBytes needs (CONCAT_WS converts a string of another
	// character set into the one of the row's other strings, which LENGTH
	// does not count: a latin1 'é' would render as two bytes after a
	// length of one). In a row whose other strings are utf8mb4, utf8mb3
	// (the same bytes as utf8mb4), binary or cast to BINARY, and numbers
	// (ASCII), nothing is converted; the cast cost an eighth of the
	// fingerprint's time on the benchmark's table.
	mysqlUTF8
	// mysqlPlain: the text of a number or a time, which holds no zero byte
	// (half the cost of a length: the fingerprint evaluates it for every
	// column of every row).
	mysqlPlain
	// mysqlDigest: the length and the CRC32 of the bytes, for TEXT and BLOB
	// columns, whose values concatenated could exceed max_allowed_packet
	// (CONCAT then returns NULL, and the row's content would count for
	// nothing). A change of the value is lost when its CRC32 stays: never
	// within 32 consecutive bits of a value of the same length, else with
	// probability 2^-32, as for the row's own CRC32 (doc.go). (MariaDB's
	// CRC32C would add 32 bits, but MySQL has none.)
	mysqlDigest
)

// mysqlEncodingOf is the encoding of a value of the column's type and
// character set, rendered as it is.
func mysqlEncodingOf(c table.Column) mysqlEncoding {
	switch {
	case mysqlPlainTypes[c.DataType]:
		return mysqlPlain
	case mysqlLargeTypes[c.DataType]:
		return mysqlDigest
	case mysqlBinaryTypes[c.DataType],
		(mysqlTextTypes[c.DataType] || c.DataType == "enum" || c.DataType == "set") && mysqlUTF8Charsets[c.Charset]:
		return mysqlUTF8
	}
	return mysqlBytes
}

// mysqlBinaryTypes are the types of binary strings of a row's size.
var mysqlBinaryTypes = map[string]bool{"binary": true, "varbinary": true, "tinyblob": true}

// mysqlUTF8Charsets are the character sets whose strings CONCAT_WS takes
// as their bytes in a utf8mb4 row (mysqlUTF8).
var mysqlUTF8Charsets = map[string]bool{"utf8mb4": true, "utf8mb3": true, "utf8": true}

// mysqlLargeTypes are the types whose values may be larger than a row.
var mysqlLargeTypes = map[string]bool{"text": true, "mediumtext": true, "longtext": true, "blob": true, "mediumblob": true,
	"longblob": true, "json": true}

// mysqlPlainTypes are the types whose values render as numbers or times.
var mysqlPlainTypes = map[string]bool{"tinyint": true, "smallint": true, "mediumint": true, "int": true, "integer": true, "bigint": true,
	"decimal": true, "numeric": true, "float": true, "double": true, "real": true,
	"date": true, "datetime": true, "timestamp": true, "time": true, "year": true}

var mysqlTypeArgs = regexp.MustCompile(`^[a-z]+\((\d+)(?:,(\d+))?\)`)

// mysqlArgs returns the numbers in a column type's parentheses.
func mysqlArgs(columnType string) []string {
	m := mysqlTypeArgs.FindStringSubmatch(strings.ToLower(columnType))
	if m == nil {
		return nil
	}
	if m[2] == "" {
		return m[1:2]
	}
	return m[1:3]
}

func mysqlFsp(columnType string) string {
	if a := mysqlArgs(columnType); len(a) > 0 {
		return a[0]
	}
	return "0"
}

// mysqlLonger reports whether a text column of the type may hold more
// characters than n: a CHAR or VARCHAR longer than n, or a TEXT.
func mysqlLonger(columnType, n string) bool {
	a := mysqlArgs(columnType)
	if len(a) != 1 {
		return true
	}
	m, err1 := strconv.Atoi(a[0])
	k, err2 := strconv.Atoi(n)
	return err1 != nil || err2 != nil || m > k
}

// mysqlTextLimit is the length in bytes of the TEXT types a value can
// outgrow.
var mysqlTextLimit = map[string]int{"tinytext": 255, "text": 65535, "mediumtext": 1<<24 - 1}

var mysqlIntTypes = map[string]bool{"tinyint": true, "smallint": true, "mediumint": true, "int": true, "integer": true, "bigint": true}

var mysqlTextTypes = map[string]bool{"char": true, "varchar": true, "tinytext": true, "text": true, "mediumtext": true, "longtext": true}

var mysqlBlobTypes = map[string]bool{"varbinary": true, "tinyblob": true, "blob": true, "mediumblob": true, "longblob": true}

// mysqlCut returns left, a LEFT of a string converted into charset, as a
// string of its own: MariaDB's LEFT (and SUBSTRING) returns a view into
// its argument's converted buffer, and CONCAT_WS, given it last, writes the
// row's rendering into that buffer and keeps the bytes past the cut
// (measured on 10.11: 'ab' and 280 spaces from a VARBINARY, cut to 255
// characters, renders all 282 in mysqlRowText), so the fingerprints differ
// where the rows are equal. CONVERT copies the value.
func mysqlCut(left, charset string) string {
	return "CONVERT(" + left + " USING " + charset + ")"
}

// mysqlCutSource reports whether a column of type srcType holds strings
// that a shorter VARCHAR or TEXT cuts the trailing whitespace of, with a
// note, as the plain ALTER does: text, and binary strings too (a BLOB or a
// VARBINARY of 'ab' and 290 spaces into a TINYTEXT leaves 255 bytes).
func mysqlCutSource(srcType string) bool {
	return mysqlTextTypes[srcType] || mysqlBlobTypes[srcType] || srcType == "binary"
}

// mysqlBlobStored are the string types that store a BIT's bytes.
var mysqlBlobStored = map[string]bool{"tinytext": true, "text": true, "mediumtext": true, "longtext": true,
	"tinyblob": true, "blob": true, "mediumblob": true, "longblob": true}

var mysqlSpatialTypes = map[string]bool{"geometry": true, "point": true, "linestring": true, "polygon": true,
	"multipoint": true, "multilinestring": true, "multipolygon": true, "geometrycollection": true}

var mysqlDigits = regexp.MustCompile(`^[0-9]+$`)

// mysqlCanonicalOf renders the copied column c, whose original column has
// collation srcColl and whose shadow column has dstColl ("" for non-text
// columns).
func mysqlCanonicalOf(c table.MySQLCopyColumn, srcColl, dstColl string) mysqlCanonical {
	dst := c.Shadow
	q := table.QuoteMySQL(dst.Name)
	x := c.Expr
	src := c.Source
	// The type compared as written: an ENUM whose members change case
	// stores the new spelling.
	if src != nil && x == table.QuoteMySQL(src.Name) && src.ColumnType == dst.ColumnType &&
		src.Charset == dst.Charset && srcColl == dstColl {
		return mysqlCanonical{Original: x, Shadow: q, Exact: true, Encoding: mysqlEncodingOf(dst)}
	}
	// What the original's value is: a column's type, or for a fill a
	// number or a string.
	srcType := "varchar"
	switch {
	case src != nil:
		srcType = src.DataType
	case mysqlDigits.MatchString(x):
		srcType = "bigint"
	case strings.Contains(strings.ToUpper(x), "CURRENT_TIMESTAMP"):
		// The clock when the copy wrote the row.
		return mysqlCanonical{Original: x + " IS NULL", Shadow: q + " IS NULL", Encoding: mysqlPlain}
	}
	numeric := mysqlIntTypes[srcType] || srcType == "bit" || srcType == "year"
	// An ENUM or a SET is its number where a number is wanted; a BIT goes
	// into a string as its number's text, but into a TEXT or a BLOB as its
	// bytes. (A YEAR's copy expression into a string is already its text,
	// zero-padded: see table.MySQLYearConversion.)
	xn := x
	if srcType == "enum" || srcType == "set" {
		xn = "(" + x + "+0)"
	}
	xs := x
	if srcType == "bit" && !mysqlBlobStored[dst.DataType] {
		xs = "(" + x + "+0)"
	}
	// A YEAR or a BIT goes into a date or a time as its number (2001 is
	// 00:20:01, b'11110001001000000' 12:34:56), where CAST reads a YEAR as
	// no time (00:00:00) and a BIT's bytes as a text (NULL).
	xt := x
	if srcType == "year" || srcType == "bit" {
		xt = "(" + x + "+0)"
	}
	// Types whose conversion into a string osc has not checked.
	unchecked := srcType == "uuid" || srcType == "inet4" || srcType == "inet6" || mysqlSpatialTypes[srcType]
	inexact := mysqlCanonical{Original: x + " IS NULL", Shadow: q + " IS NULL", Encoding: mysqlPlain}
	conv := func(o string) mysqlCanonical {
		return mysqlCanonical{Original: o, Shadow: q, Exact: true, Encoding: mysqlEncodingOf(dst)}
	}
	asNumber := func(o string) mysqlCanonical {
		return mysqlCanonical{Original: o, Shadow: q + "+0", Exact: true, Encoding: mysqlPlain}
	}
	// A number cast to the shadow's type. A ZEROFILL shadow column renders
	// its value zero-padded to its display width ('00042'), which the cast
	// leaves out: its value is cast alike.
	zerofill := strings.Contains(strings.ToLower(dst.ColumnType), "zerofill")
	cast := func(as string) mysqlCanonical {
		c := conv("CAST(" + x + " AS " + as + ")")
		if zerofill {
			c.Shadow = "CAST(" + q + " AS " + as + ")"
		}
		return c
	}
	t := dst.DataType
	switch {
	case mysqlIntTypes[t]:
		if dst.Unsigned {
			return cast("UNSIGNED")
		}
		return cast("SIGNED")
	case t == "decimal" || t == "numeric":
		a := mysqlArgs(dst.ColumnType)
		if len(a) == 0 {
			a = []string{"10"}
		}
		if len(a) == 1 {
			a = append(a, "0")
		}
		return cast("DECIMAL(" + a[0] + "," + a[1] + ")")
	case t == "double" || t == "real":
		if mysqlArgs(dst.ColumnType) != nil {
			return inexact // DOUBLE(M,D) rounds to D decimals
		}
		return cast("DOUBLE")
	case t == "float":
		if mysqlArgs(dst.ColumnType) != nil {
			return inexact
		}
		return cast("FLOAT")
	case t == "bit":
		if !numeric && srcType != "enum" && srcType != "set" {
			return inexact // a string goes into a BIT as its bytes
		}
		return asNumber("CAST(" + x + " AS UNSIGNED)")
	case t == "year":
		if !mysqlIntTypes[srcType] && srcType != "year" && srcType != "enum" {
			return inexact
		}
		// 1 to 69 are 2001 to 2069, 70 to 99 1970 to 1999.
		return asNumber("IF(" + xn + " BETWEEN 1 AND 69, " + xn + " + 2000, IF(" + xn + " BETWEEN 70 AND 99, " + xn + " + 1900, " + xn + "+0))")
	case t == "date":
		return conv("CAST(" + xt + " AS DATE)")
	case t == "timestamp":
		// A TIMESTAMP shows as a DATETIME in osc's UTC sessions; the copy's
		// expression already converted a value of another type to UTC, a
		// BIT's by its number (its text, read as a number, was the year).
		return conv("CAST(" + x + " AS DATETIME(" + mysqlFsp(dst.ColumnType) + "))")
	case t == "datetime":
		return conv("CAST(" + xt + " AS DATETIME(" + mysqlFsp(dst.ColumnType) + "))")
	case t == "time":
		return conv("CAST(" + xt + " AS TIME(" + mysqlFsp(dst.ColumnType) + "))")
	case mysqlTextTypes[t]:
		if dst.Charset == "" || unchecked {
			return inexact
		}
		o := "CONVERT(" + xs + " USING " + dst.Charset + ")"
		switch t {
		case "char":
			// A CHAR drops its trailing spaces (also those past its
			// length, which the copy cuts off with a note).
			o = "TRIM(TRAILING ' ' FROM " + o + ")"
		case "varchar":
			// A VARCHAR shorter than the original's text cuts off the
			// trailing spaces past its length, with a note (longer
			// values fail the copy in strict mode).
			if n := mysqlArgs(dst.ColumnType); len(n) == 1 && src != nil && mysqlCutSource(srcType) && mysqlLonger(src.ColumnType, n[0]) {
				o = mysqlCut("LEFT("+o+", "+n[0]+")", dst.Charset)
			}
		case "tinytext", "text", "mediumtext":
			// A TEXT cuts off, with a note, the trailing whitespace past
			// its length in bytes (longer values fail the copy in strict
			// mode, and so does a cut inside a character: UTF-16's spaces
			// are 2 bytes, the lengths odd): one character a byte.
			if src != nil && mysqlCutSource(srcType) {
				limit := strconv.Itoa(mysqlTextLimit[t])
				cut := mysqlCut("LEFT("+o+", CHAR_LENGTH("+o+") - (OCTET_LENGTH("+o+") - "+limit+"))", dst.Charset)
				o = "IF(OCTET_LENGTH(" + o + ") > " + limit + ", " + cut + ", " + o + ")"
			}
		}
		return conv(o)
	case t == "binary":
		if unchecked {
			return inexact
		}
		n := mysqlFsp(dst.ColumnType)
		if n == "0" {
			n = "1"
		}
		return conv("CAST(" + xs + " AS BINARY(" + n + "))")
	case mysqlBlobTypes[t]:
		if unchecked {
			return inexact
		}
		return conv("CAST(" + xs + " AS BINARY)")
	case t == "enum" || t == "set":
		members, ok := mysqlMembers(dst.ColumnType)
		if dst.Members != nil {
			// A CHARACTER SET binary column's members, exactly.
			members = make([]string, len(dst.Members))
			for i, m := range dst.Members {
				members[i] = "X'" + hex.EncodeToString([]byte(m)) + "'"
			}
		}
		labels := srcType == "enum" || srcType == "set" || mysqlTextTypes[srcType]
		switch {
		case numeric || srcType == "decimal" || srcType == "float" || srcType == "double":
			// The member's number, or the set's bits (the copy rounded a
			// fraction).
			return asNumber("CAST(" + x + " AS UNSIGNED)")
		case src == nil && x == "SPACE(0)":
			return asNumber("0")
		case !labels || !ok || dst.Charset == "" || dstColl == "":
			return inexact
		}
		// The members equal to the value's labels under the column's
		// collation; a text that names none and is a number is the
		// member's number or the set's bits. The collation is quoted:
		// binary is a keyword, which an expression's COLLATE refuses bare.
		v := "CONVERT(" + x + " USING " + dst.Charset + ") COLLATE " + table.QuoteMySQL(dstColl)
		var found string
		if t == "enum" {
			found = "FIELD(" + v + ", " + strings.Join(members, ", ") + ")"
		} else {
			// Under a PAD SPACE collation the server takes the text
			// without its trailing spaces ('a,b ' is a and b), which
			// FIND_IN_SET compares. (A space before a comma, 'a ,b',
			// fails the copy's INSERT as it fails the ALTER: no such row
			// is compared.)
			in := v
			if !strings.Contains(dstColl, "nopad") && dstColl != "binary" {
				in = "TRIM(TRAILING ' ' FROM REGEXP_REPLACE(" + v + ", ' +,', ','))"
			}
			bits := make([]string, len(members))
			for i, m := range members {
				bits[i] = "(FIND_IN_SET(" + m + ", " + in + ") > 0) << " + strconv.Itoa(i)
			}
			found = "(" + strings.Join(bits, " | ") + ")"
		}
		if srcType == "enum" && t == "enum" {
			// The error value (index 0, read as '') stays index 0,
			// also where the shadow has a member ''.
			return asNumber("IF(" + x + " IS NULL, NULL, IF(" + x + "+0 = 0, 0, IF(" + found + " > 0, " + found + ", CAST(" + x + " AS UNSIGNED))))")
		}
		return asNumber("IF(" + x + " IS NULL, NULL, IF(" + found + " > 0, " + found + ", CAST(" + x + " AS UNSIGNED)))")
	case t == "uuid" || t == "inet4" || t == "inet6":
		return conv("CAST(" + x + " AS " + strings.ToUpper(t) + ")")
	}
	return inexact
}

// mysqlMembers returns the members of an ENUM or SET column type as SQL
// literals, quoted as information_schema quotes them (a quote in a member
// doubled).
func mysqlMembers(columnType string) ([]string, bool) {
	open, end := strings.IndexByte(columnType, '('), strings.LastIndexByte(columnType, ')')
	if open < 0 || end < open {
		return nil, false
	}
	list := columnType[open+1 : end]
	var out []string
	for i := 0; i < len(list); {
		if list[i] != '\'' {
			return nil, false
		}
		j := i + 1
		for ; j < len(list); j++ {
			if list[j] == '\\' {
				j++
				continue
			}
			if list[j] == '\'' {
				if j+1 < len(list) && list[j+1] == '\'' {
					j++
					continue
				}
				break
			}
		}
		if j >= len(list) {
			return nil, false
		}
		out = append(out, list[i:j+1])
		i = j + 1
		if i < len(list) {
			if list[i] != ',' {
				return nil, false
			}
			i++
		}
	}
	return out, len(out) > 0
}

// mysqlRowText renders a row: when a column may be NULL (nullable[i]), one
// digit per such column, 1 when it is NULL; then each column's rendering
// vals[i] by its encoding encs[i]; all joined by zero bytes (CONCAT_WS,
// which skips a NULL). The last column of bytes (mysqlBytes or mysqlUTF8)
// comes last and without its length: it is the rest of the rendering. With
// the digits first, the fixed layout of the columns and the lengths of the
// other bytes, the rendering reads back as one row only, from the left (a
// NULL, the empty string and 'NULL' render apart; the last bytes' NULL
// renders no separator, their empty string one). A length costs as much as
// a column: a tenth of the benchmark's row.
func mysqlRowText(vals []string, encs []mysqlEncoding, nullable []bool) string {
	last := -1
	for i, e := range encs {
		if e == mysqlBytes || e == mysqlUTF8 {
			last = i
		}
	}
	var parts, nulls []string
	for i, v := range vals {
		if nullable[i] {
			nulls = append(nulls, "("+v+") IS NULL")
		}
		if i == last {
			continue
		}
		switch encs[i] {
		case mysqlPlain:
			parts = append(parts, v)
		case mysqlDigest:
			parts = append(parts, "LENGTH("+v+")", "CRC32("+v+")")
		case mysqlUTF8:
			parts = append(parts, "LENGTH("+v+")", v)
		default:
			// LENGTH counts v's bytes as they are, with no cast.
			parts = append(parts, "LENGTH("+v+")", "CAST("+v+" AS BINARY)")
		}
	}
	switch len(nulls) {
	case 0:
	case 1:
		parts = append([]string{nulls[0]}, parts...)
	default:
		parts = append([]string{"CONCAT(" + strings.Join(nulls, ", ") + ")"}, parts...)
	}
	switch {
	case last < 0:
	case encs[last] == mysqlUTF8:
		parts = append(parts, vals[last])
	default:
		parts = append(parts, "CAST("+vals[last]+" AS BINARY)")
	}
	return "CONCAT_WS(0x00, " + strings.Join(parts, ", ") + ")"
}

// mysqlOrderKept reports whether the shadow's column to, receiving the
// original's column from, orders the keys as from does, compared with the
// same bound values: the same type and collation, or a widening of the
// same kind of type.
func mysqlOrderKept(from, to table.Column, fromColl, toColl string) bool {
	if fromColl != toColl || from.Charset != to.Charset {
		return false
	}
	if strings.EqualFold(from.ColumnType, to.ColumnType) {
		return true
	}
	fa, ta := mysqlArgs(from.ColumnType), mysqlArgs(to.ColumnType)
	arg := func(a []string, i, def int) int {
		if i < len(a) {
			n, _ := strconv.Atoi(a[i])
			return n
		}
		return def
	}
	f, t := from.DataType, to.DataType
	switch {
	case mysqlIntTypes[f] && mysqlIntTypes[t]:
		bits := map[string]int{"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}
		if from.Unsigned {
			return to.Unsigned && bits[t] >= bits[f] || !to.Unsigned && bits[t] > bits[f]
		}
		return !to.Unsigned && bits[t] >= bits[f]
	case f == "decimal" && t == "decimal":
		return (from.Unsigned || !to.Unsigned) && arg(ta, 1, 0) >= arg(fa, 1, 0) &&
			arg(ta, 0, 10)-arg(ta, 1, 0) >= arg(fa, 0, 10)-arg(fa, 1, 0)
	case f == "varchar" && t == "varchar", f == "char" && t == "char", f == "varbinary" && t == "varbinary":
		return arg(ta, 0, 1) >= arg(fa, 0, 1)
	case f == t && (f == "datetime" || f == "timestamp" || f == "time"):
		return arg(ta, 0, 0) >= arg(fa, 0, 0)
	case f == "enum" && t == "enum":
		// Members added at the end keep every member's number.
		fl, tl := strings.ToLower(from.ColumnType), strings.ToLower(to.ColumnType)
		return strings.HasSuffix(fl, ")") && strings.HasPrefix(tl, strings.TrimSuffix(fl, ")")+",")
	}
	return false
}
