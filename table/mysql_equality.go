package table

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// A unique index over a column whose type the --alter changes is implied by
// the original's unique index only if the change keeps distinct values
// distinct. A narrowing change (DATETIME(6) to DATETIME, DECIMAL(10,2) to
// DECIMAL(10,1), TIMESTAMP to DATETIME in a zone with daylight saving time,
// a collation that folds more) may make two values equal: the plain ALTER
// then fails with a duplicate key error, where osc's copy (ON DUPLICATE KEY
// UPDATE) and applier (REPLACE) would drop one of the two rows silently. So
// osc treats such an index as a new unique key and refuses it.
// mysqlEqualityKept decides, conservatively: the same type and collation
// (or one that tells more apart, collationKept), a change that clearly
// widens the type, or one of an exact number whose values stay exact or fail
// out of range; anything else may merge values.

// mysqlColumnType is a column type as mysqlEqualityKept reads it from
// information_schema's COLUMN_TYPE.
type mysqlColumnType struct {
	base     string // "int", "varchar", "decimal", ...
	args     []int  // the numbers in parentheses: (10,2) -> [10 2]
	unsigned bool
}

var mysqlTypeArgs = regexp.MustCompile(`^([a-z]+)(?:\(([0-9, ]+)\))?`)

func parseMySQLColumnType(columnType string) (mysqlColumnType, bool) {
	s := strings.ToLower(strings.TrimSpace(columnType))
	m := mysqlTypeArgs.FindStringSubmatch(s)
	if m == nil {
		return mysqlColumnType{}, false
	}
	t := mysqlColumnType{base: m[1], unsigned: strings.Contains(s[len(m[0]):], "unsigned")}
	if m[2] != "" {
		for _, a := range strings.Split(m[2], ",") {
			n, err := strconv.Atoi(strings.TrimSpace(a))
			if err != nil {
				return mysqlColumnType{}, false
			}
			t.args = append(t.args, n)
		}
	}
	return t, true
}

func (t mysqlColumnType) arg(i, def int) int {
	if i < len(t.args) {
		return t.args[i]
	}
	return def
}

// mysqlIntBits is the storage width of each integer type.
var mysqlIntBits = map[string]uint{"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}

// mysqlTextBytes is the byte capacity of the TEXT and BLOB types.
var mysqlTextBytes = map[string]int64{
	"tinytext": 255, "text": 65535, "mediumtext": 1<<24 - 1, "longtext": 1<<32 - 1,
	"tinyblob": 255, "blob": 65535, "mediumblob": 1<<24 - 1, "longblob": 1<<32 - 1,
}

// mysqlFixedZone reports whether a time_zone value has no daylight saving
// time: an offset, or UTC.
var mysqlFixedZone = regexp.MustCompile(`^(?i:[+-]\d{1,2}:\d\d|utc|etc/utc|gmt|etc/gmt)$`)

// mysqlEqualityKept reports whether the server's conversion of a column of
// type from (with collation fromColl, "" for a non-text column) to type to
// (toColl) keeps any two distinct values distinct, in time zone zone.
func mysqlEqualityKept(from, to Column, fromColl, toColl, zone string) bool {
	if kept, ok := mysqlEnumNumberKept(from, to); ok {
		return kept
	}
	if mysqlIntegerToString(from, to) || mysqlAddressKept(from, to) || mysqlTextToBytes(from, to) {
		return true
	}
	if !collationKept(fromColl, toColl) {
		return false
	}
	if strings.EqualFold(from.ColumnType, to.ColumnType) {
		return true
	}
	f, ok1 := parseMySQLColumnType(from.ColumnType)
	t, ok2 := parseMySQLColumnType(to.ColumnType)
	if !ok1 || !ok2 {
		return false
	}
	fb, tb := mysqlIntBits[f.base], mysqlIntBits[t.base]
	switch {
	case fb > 0 && tb > 0, fb > 0 && (t.base == "decimal" || t.base == "numeric"):
		// An integer is kept exactly by any integer or DECIMAL type whose
		// range holds it; one out of range (a negative into UNSIGNED, 70000
		// into SMALLINT) is an error in osc's sessions, which are strict
		// (mysqlSessionSQLMode), in the copy and the applier alike, as in a
		// strict ALTER: never clamped onto another row's value.
		return true
	case (f.base == "decimal" || f.base == "numeric") && (t.base == "decimal" || t.base == "numeric"):
		// Fewer fractional digits round (1.25 and 1.3 become 1.3); fewer
		// integer digits or UNSIGNED fail on a value out of range, as above.
		return t.arg(1, 0) >= f.arg(1, 0)
	case f.base == "float" && len(f.args) == 0 && t.base == "double" && len(t.args) == 0:
		return f.unsigned || !t.unsigned
	case f.base == "bit" && t.base == "bit":
		return t.arg(0, 1) >= f.arg(0, 1)
	case (f.base == "char" || f.base == "varchar") && (t.base == "char" || t.base == "varchar"):
		// CHAR drops trailing spaces, which a PAD SPACE collation ignores
		// anyway; under a NO PAD one 'a' and 'a ' differ.
		return t.arg(0, 1) >= f.arg(0, 1) && (t.base == "varchar" || !strings.Contains(toColl, "nopad"))
	case (f.base == "char" || f.base == "varchar") && mysqlTextBytes[t.base] > 0 && strings.HasSuffix(t.base, "text"):
		return int64(f.arg(0, 1))*4 <= mysqlTextBytes[t.base]
	case strings.HasSuffix(f.base, "text") && strings.HasSuffix(t.base, "text"):
		return mysqlTextBytes[f.base] > 0 && mysqlTextBytes[t.base] >= mysqlTextBytes[f.base]
	case (f.base == "binary" || f.base == "varbinary") && (t.base == "binary" || t.base == "varbinary"):
		// BINARY pads with zero bytes, which stay part of the value; a
		// VARBINARY padded to a BINARY would equal one that had them.
		return t.arg(0, 1) >= f.arg(0, 1) && (f.base == "binary" || t.base == "varbinary")
	case (f.base == "binary" || f.base == "varbinary") && strings.HasSuffix(t.base, "blob"):
		return int64(f.arg(0, 1)) <= mysqlTextBytes[t.base]
	case strings.HasSuffix(f.base, "blob") && strings.HasSuffix(t.base, "blob"):
		return mysqlTextBytes[f.base] > 0 && mysqlTextBytes[t.base] >= mysqlTextBytes[f.base]
	case f.base == "enum" && t.base == "enum" || f.base == "set" && t.base == "set":
		// Members added at the end: every value keeps its member.
		fl, tl := strings.ToLower(from.ColumnType), strings.ToLower(to.ColumnType)
		return strings.HasSuffix(fl, ")") && strings.HasPrefix(tl, strings.TrimSuffix(fl, ")")+",")
	case f.base == "date" && (t.base == "datetime" || t.base == "timestamp" && mysqlFixedZone.MatchString(zone)):
		return true
	case (f.base == "datetime" || f.base == "timestamp") && (t.base == "datetime" || t.base == "timestamp"):
		// Fewer fractional digits round; between TIMESTAMP and DATETIME, a
		// zone with daylight saving time repeats an hour of local times.
		return t.arg(0, 0) >= f.arg(0, 0) && (f.base == t.base || mysqlFixedZone.MatchString(zone))
	case f.base == "time" && t.base == "time":
		return t.arg(0, 0) >= f.arg(0, 0)
	}
	return false
}

// collationKept reports whether values equal under collation to were equal
// under from too: the same collation; the same one for utf8mb4 instead of
// utf8mb3 (which holds a subset of its characters, with the same weights);
// or, in the same character set, one that tells more apart: the binary
// collation (`_nopad_bin` equals only the same characters; `_bin` also
// ignores trailing spaces, as every PAD SPACE collation does, so not from a
// NO PAD one) or from's own NO PAD variant (its weights, trailing spaces
// counted: `utf8mb4_general_ci` to `utf8mb4_general_nopad_ci`).
func collationKept(from, to string) bool {
	from, to = strings.ToLower(from), strings.ToLower(to)
	if strings.HasPrefix(to, "utf8mb4_") {
		for _, p := range []string{"utf8mb3_", "utf8_"} {
			if suffix, ok := strings.CutPrefix(from, p); ok {
				from = "utf8mb4_" + suffix
			}
		}
	}
	if from == to {
		return true
	}
	charset, _, ok := strings.Cut(from, "_")
	if !ok || charset == "" || !strings.HasPrefix(to, charset+"_") {
		return false
	}
	switch to {
	case charset + "_nopad_bin":
		return true
	case charset + "_bin":
		return !strings.Contains(from, "_nopad_")
	}
	return strings.Replace(to, "_nopad_", "_", 1) == from
}

// errEqualityLost refuses a unique index over a column whose type change
// may make distinct values equal.
func errEqualityLost(u MySQLIndex, col string, from, to Column, fromColl, toColl string) error {
	kind := "UNIQUE key " + u.describe()
	if u.Primary {
		kind = "PRIMARY KEY " + u.describe()
	}
	change := fmt.Sprintf("%s -> %s", from.ColumnType, to.ColumnType)
	if !strings.EqualFold(fromColl, toColl) {
		change += fmt.Sprintf(", collation %s -> %s", fromColl, toColl)
	}
	if from.Generated || to.Generated {
		change += fmt.Sprintf(", generated as %q -> %q, or a column it may read changes", from.Expression, to.Expression)
	}
	if mysqlNullsToTime(from, to) {
		change += ", NULL -> NOT NULL: the ALTER may give every NULL its time, one value"
	}
	return fmt.Errorf("the --alter changes column %s (%s) of the %s in a way that may make distinct values equal; "+
		"a plain ALTER TABLE fails on the duplicates, but osc's copy would lose the rows that duplicate others silently, "+
		"so osc treats the key as a new unique key and refuses it: check for duplicates under the new type and run the change "+
		"with a plain ALTER TABLE, or keep the column's type (or widen it)", col, change, kind)
}

// mysqlStringTypes are the types an integer becomes the text of its decimal
// digits in.
var mysqlStringTypes = map[string]bool{
	"char": true, "varchar": true, "tinytext": true, "text": true, "mediumtext": true, "longtext": true,
	"binary": true, "varbinary": true, "tinyblob": true, "blob": true, "mediumblob": true, "longblob": true,
}

// mysqlIntegerToString reports whether an integer column becomes a string:
// distinct integers have distinct decimal spellings (ZEROFILL's too), told
// apart by every collation (digits and '-' never fold together, and carry no
// trailing spaces; BINARY pads them with zero bytes alike); one too long for
// the column fails, osc's sessions being strict, as the strict ALTER fails.
func mysqlIntegerToString(from, to Column) bool {
	f, ok1 := parseMySQLColumnType(from.ColumnType)
	t, ok2 := parseMySQLColumnType(to.ColumnType)
	return ok1 && ok2 && mysqlIntBits[f.base] > 0 && mysqlStringTypes[t.base]
}

// mysqlTextToBytes reports whether a text column becomes a VARBINARY or a
// BLOB: the ALTER keeps each value's bytes, which differ for any two values
// its collation tells apart (equal bytes are an equal text), whatever that
// collation; a value too long fails osc's strict sessions as the strict
// ALTER. Not a BINARY, whose zero bytes of padding would make 'a' and 'a\0'
// (distinct in a PAD SPACE collation, '\0' sorting before the space) equal.
func mysqlTextToBytes(from, to Column) bool {
	f, ok1 := parseMySQLColumnType(from.ColumnType)
	t, ok2 := parseMySQLColumnType(to.ColumnType)
	if !ok1 || !ok2 {
		return false
	}
	switch f.base {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
		return t.base == "varbinary" || strings.HasSuffix(t.base, "blob")
	}
	return false
}

// mysqlEnumNumberKept judges an ENUM or SET going into an integer column
// (ok false otherwise): the ALTER stores an ENUM's member number (1 to at
// most 65535) and a SET's bitmask (one bit per member), distinct for distinct
// values whatever the collation, so equality is kept when the integer type
// holds every number the column can have.
func mysqlEnumNumberKept(from, to Column) (kept, ok bool) {
	f, ok1 := parseMySQLColumnType(from.ColumnType)
	t, ok2 := parseMySQLColumnType(to.ColumnType)
	if !ok1 || !ok2 || f.base != "enum" && f.base != "set" || mysqlIntBits[t.base] == 0 {
		return false, false
	}
	bits := mysqlIntBits[t.base]
	if !t.unsigned {
		bits--
	}
	if f.base == "enum" {
		return bits >= 16, true
	}
	return int(bits) >= mysqlMembers(from.ColumnType), true
}

// mysqlMembers counts the quoted members of an ENUM or SET column type.
func mysqlMembers(columnType string) int {
	n := 0
	for i := 0; i < len(columnType); i++ {
		if columnType[i] != '\'' {
			continue
		}
		n++
		for i++; i < len(columnType); i++ {
			if columnType[i] == '\\' {
				i++
				continue
			}
			if columnType[i] == '\'' {
				if i+1 < len(columnType) && columnType[i+1] == '\'' {
					i++
					continue
				}
				break
			}
		}
	}
	return n
}

// mysqlAddressTypes are MariaDB's UUID, INET4 and INET6.
var mysqlAddressTypes = map[string]bool{"uuid": true, "inet4": true, "inet6": true}

// mysqlAddressKept reports whether from and to are a UUID, INET4 or INET6
// and a string, either way, whose conversion keeps distinct values
// distinct: into a binary string a value goes as its binary form, into a
// text as its one canonical text (lower-case hexadecimal digits, which no
// collation equates), and a binary string comes out of one of these types'
// binary form, which holds one value each (another length fails). A text
// going into one of them is not: 'A' and 'a', or a UUID with and without
// its dashes, are one value.
func mysqlAddressKept(from, to Column) bool {
	f, t := strings.ToLower(from.DataType), strings.ToLower(to.DataType)
	switch {
	case mysqlAddressTypes[f]:
		return mysqlBinaryOrText[t]
	case mysqlAddressTypes[t]:
		return mysqlBinaryTypes[f]
	}
	return false
}

// mysqlBinaryTypes are the binary string types; mysqlBinaryOrText those and
// the text types.
var (
	mysqlBinaryTypes  = map[string]bool{"binary": true, "varbinary": true, "tinyblob": true, "blob": true, "mediumblob": true, "longblob": true}
	mysqlBinaryOrText = map[string]bool{"binary": true, "varbinary": true, "tinyblob": true, "blob": true, "mediumblob": true, "longblob": true,
		"char": true, "varchar": true, "tinytext": true, "text": true, "mediumtext": true, "longtext": true}
)
