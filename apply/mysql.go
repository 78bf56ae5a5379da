package apply

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"osc/cdc"
	"osc/table"
)

const (
	// mysqlMaxRows bounds the rows of one statement; statements have 1, 2,
	// 4, ... rows so that few shapes are prepared.
	mysqlMaxRows = 256
	// mysqlMaxParams is the protocol's limit of placeholders per statement.
	mysqlMaxParams = 65535
	// mysqlMaxBytes bounds the values of one statement (a statement with one
	// row may exceed it), well under max_allowed_packet.
	mysqlMaxBytes = 4 << 20
)

// MySQL applies binlog changes to the shadow table: inserts and updates
// become multi-row REPLACE of the mapped columns, deletes and the old key of
// a key-changing update become DELETE by key. Values are the binlog row
// image's (go-mysql's decoding), converted per source column so that every
// type is written back exactly.
type MySQL struct {
	db  *sql.DB
	err error // the plan cannot be applied
	// PanicOnWarnings fails a batch whose statements made the server warn
	// (--panic-on-warnings, table.MySQLWarnings).
	PanicOnWarnings bool

	replaceHead string // REPLACE INTO shadow (cols) VALUES
	upsertTail  string // after the rows ("": none; see NewMySQLRevert)
	deleteHead  string // DELETE FROM shadow WHERE
	cols        []mysqlColumn
	keys        []mysqlColumn // key columns, named as in the shadow
	fills       []string      // expressions of Plan.Fills, after cols in each row
	// renumbered is the position in cols of renumber's column, whose values
	// a plain ALTER would renumber (Plan.Renumbered; -1: none).
	renumbered int
	renumber   *table.MySQLRenumbered
	// shortened holds the new lengths of the VARCHAR columns the ALTER
	// shortens in their own character set and collation, by shadow name
	// (table.MySQLShortenedVarchar): a statement that cuts such a value's
	// trailing whitespace fails (table.MySQLCutNoted).
	shortened map[string]int

	// keepsInvalidDates: dates their months lack are written with
	// ALLOW_INVALID_DATES (table.MySQLKeepsInvalidDates); otherwise they
	// fail the batch.
	keepsInvalidDates bool

	// moves: a key-changing update also moves the row (NewMySQLRevert).
	moves bool
	// guard is the column the upsert sets to NULL when it meets another
	// key's row (NewMySQLRevert; "": none).
	guard string
	// aside keeps the rows that the plan's new unique keys turn away (nil:
	// the plan adds none).
	aside *myAside

	// schema and name are the table written, to look up its indexes.
	schema, name string

	mu    sync.Mutex
	stmts map[string]*sql.Stmt
	// level is the isolation level of a batch's transaction, once known
	// (isolation; 0: not yet).
	level sql.IsolationLevel
}

// mysqlColumn is how one source column is written.
type mysqlColumn struct {
	index int                    // position in row images
	name  string                 // quoted shadow column name
	param string                 // placeholder expression (each "?" takes the value)
	conv  func(any) (any, error) // binlog value -> driver argument (never nil value)
	// cmp, for a key column, is the expression its condition compares
	// the column with: param, converted to the column's character set
	// under its collation where param's own would clash with it (a text
	// written through CONVERT … USING another character set carries that
	// set's default collation); each of its "?" takes the key's value, as
	// param's do.
	cmp string
	// exact, for a text key column compared under a collation, is the
	// condition that the column holds exactly the parameter's bytes (as the
	// copy would have written them); "" otherwise.
	exact string
	// errorValue, when the source and shadow columns are ENUMs, is the
	// shadow column's name: its error value (index 0) is written as 0 in
	// a statement run without strict mode (table.MySQLStatementMode).
	errorValue string
	// dates: the source column is a DATE or DATETIME, whose value may be
	// a date its month lacks (table.MySQLInvalidDate).
	dates bool
}

// NewMySQL returns the applier of changes into the plan's shadow table. A plan
// it cannot apply makes every Apply fail.
func NewMySQL(db *sql.DB, plan *table.Plan) *MySQL {
	a := &MySQL{db: db, stmts: map[string]*sql.Stmt{}, renumbered: -1}
	a.err = a.init(plan)
	return a
}

func (a *MySQL) init(plan *table.Plan) error {
	if err := plan.Usable(); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	a.schema, a.name = plan.Shadow.Schema, plan.Shadow.Name
	if a.schema == "" {
		a.schema = plan.Source.Schema
	}
	shadow := table.QuoteMySQL(a.schema, a.name)
	names := make([]string, 0, len(plan.Mapping))
	a.keepsInvalidDates = table.MySQLKeepsInvalidDates(plan)
	for _, m := range plan.Mapping {
		if m.SourceIndex < 0 || m.SourceIndex >= len(plan.Source.Columns) {
			return fmt.Errorf("apply: column %s has no source position", m.Source)
		}
		var dst *table.Column
		j := plan.Shadow.ColumnIndex(m.Shadow)
		if j >= 0 {
			dst = &plan.Shadow.Columns[j]
		}
		c, err := newMySQLColumn(plan.Source.Columns[m.SourceIndex], dst, m)
		if err != nil {
			return err
		}
		if j >= 0 {
			// A FLOAT into a string rendered as the copy renders it.
			c.param = table.MySQLFloatConversion(c.param, plan.Source.Columns[m.SourceIndex], plan.Shadow.Columns[j])
			// A text into a number as the copy converts it.
			c.param = table.MySQLTextNumber(c.param, plan.Source.Columns[m.SourceIndex], plan.Shadow.Columns[j])
			// A ZEROFILL number into a string zero-padded, as the copy
			// pads it.
			c.param = table.MySQLZerofillText(c.param, plan.Source.Columns[m.SourceIndex], plan.Shadow.Columns[j])
			c.param = table.MySQLTimeText(c.param, plan.Source.Columns[m.SourceIndex], plan.Shadow.Columns[j])
			// A YEAR into a string or a number as the copy converts it.
			c.param = table.MySQLYearConversion(c.param, plan.Source.Columns[m.SourceIndex], plan.Shadow.Columns[j])
			// A time's text typed as its column, which goes into a number.
			c.param = table.MySQLTimeNumber(c.param, plan.Source.Columns[m.SourceIndex], plan.Shadow.Columns[j])
			// Converted to or from TIMESTAMP in the server's time zone, as
			// the copy converts.
			if c.param, err = table.MySQLTimeConversion(c.param, plan.Source.Columns[m.SourceIndex], plan.Shadow.Columns[j], plan.TimeZone); err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			// A NULL into a TIMESTAMP NOT NULL as the ALTER's time, as the
			// copy writes it.
			if c.param, err = table.MySQLNullToTimestamp(c.param, plan.Source.Columns[m.SourceIndex], plan.Shadow.Columns[j], plan.NullTimestampTime()); err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			// Rounded into an ENUM or a SET, as the copy rounds.
			c.param = table.MySQLEnumRounding(c.param, plan.Source.Columns[m.SourceIndex], plan.Shadow.Columns[j])
			if n, ok := table.MySQLShortenedVarchar(plan.Source.Columns[m.SourceIndex], plan.Shadow.Columns[j]); ok {
				if a.shortened == nil {
					a.shortened = map[string]int{}
				}
				a.shortened[m.Shadow] = n
			}
		}
		if plan.Renumbered != nil && plan.Renumbered.Column == m.Source {
			a.renumbered, a.renumber = len(a.cols), plan.Renumbered
		}
		a.cols = append(a.cols, c)
		names = append(names, c.name)
	}
	for _, f := range plan.Fills {
		// Added columns the ALTER fills otherwise than their DEFAULT, as
		// the copy fills them.
		names = append(names, table.QuoteMySQL(f.Shadow))
		a.fills = append(a.fills, f.Expr)
	}
	// Rows of the shadow are told apart by its key (Plan.Identity): a
	// change of its values is a key-changing update.
	keyNames, keyIndex := plan.Identity()
	for i, k := range keyNames {
		found := false
		for j, c := range a.cols {
			if c.index == keyIndex[i] {
				exact, err := myExactCondition(c, plan.Source.Columns[c.index], plan.Shadow, plan.Mapping[j].Shadow)
				if err != nil {
					return err
				}
				c.exact = exact
				if c.cmp, err = myKeyCompare(c, plan.Source.Columns[c.index], plan.Shadow, plan.Mapping[j].Shadow); err != nil {
					return err
				}
				a.keys = append(a.keys, c)
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("apply: key column %s is not copied to the shadow table", k)
		}
	}
	asd, err := newMyAside(plan, a.cols)
	if err != nil {
		return err
	}
	a.aside = asd
	a.replaceHead = "REPLACE INTO " + shadow + " (" + strings.Join(names, ", ") + ") VALUES "
	a.deleteHead = "DELETE FROM " + shadow + " WHERE "
	return nil
}

var myCharsetName = regexp.MustCompile(`^[a-z0-9_]+$`)

var myDecimalType = regexp.MustCompile(`^decimal\((\d+)(?:,(\d+))?\)`)

// myDecimalTyped are the types into which a DECIMAL, text in the binlog,
// goes typed as its column (newMySQLColumn), as the ALTER and the copy's
// INSERT … SELECT convert it.
var myDecimalTyped = map[string]bool{"enum": true, "set": true, "bit": true,
	"date": true, "datetime": true, "timestamp": true, "time": true}

// myNumericTypes are the types into which the server converts an ENUM or a
// SET by its number (the member's index, the members' bitmask), in an ALTER
// as in the copy's INSERT … SELECT; into any other type (strings, another
// ENUM or SET, temporal types) it converts by its text.
var myNumericTypes = map[string]bool{
	"tinyint": true, "smallint": true, "mediumint": true, "int": true, "integer": true, "bigint": true,
	"decimal": true, "numeric": true, "float": true, "double": true, "real": true, "bit": true, "year": true,
}

// myBlobStored are the string types into which the server converts a BIT
// column by its bytes, where the other string types take its number's text.
var myBlobStored = map[string]bool{"tinytext": true, "text": true, "mediumtext": true, "longtext": true,
	"tinyblob": true, "blob": true, "mediumblob": true, "longblob": true}

var myBitType = regexp.MustCompile(`^bit(?:\((\d+)\))?`)

// myBitBytes is the number of bytes of a BIT column type's values: its bits
// (1 when not given), rounded up to bytes.
func myBitBytes(columnType string) (int, error) {
	m := myBitType.FindStringSubmatch(strings.ToLower(columnType))
	if m == nil {
		return 0, fmt.Errorf("cannot read the length of %q", columnType)
	}
	bits := 1
	if m[1] != "" {
		bits, _ = strconv.Atoi(m[1])
	}
	return (bits + 7) / 8, nil
}

// newMySQLColumn returns how the source column col is written into the
// shadow column dst (nil when the plan's shadow lacks it).
func newMySQLColumn(col table.Column, dst *table.Column, m table.ColumnMap) (mysqlColumn, error) {
	c := mysqlColumn{index: m.SourceIndex, name: table.QuoteMySQL(m.Shadow), param: "?"}
	switch col.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		size := map[string]uint{"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}[col.DataType]
		c.conv = func(v any) (any, error) { return myIntegerValue(v, size, col.Unsigned) }
	case "float", "double", "real":
		c.conv = myFloatValue
	case "decimal", "numeric":
		c.conv = myTextual
		if dst != nil && myDecimalTyped[dst.DataType] {
			// A number, not a text, for MySQLEnumRounding: ROUND of a
			// text rounds a double, half to even. A BIT takes a text as
			// its bytes, and a DECIMAL rounded half away from zero. A
			// date or a time reads a number as its digits (20240506.5
			// is 2024-05-06), where the text with a fraction is no date
			// ("Incorrect date value").
			m := myDecimalType.FindStringSubmatch(strings.ToLower(col.ColumnType))
			if m == nil {
				return c, fmt.Errorf("apply: column %s: cannot read the precision of %q", col.Name, col.ColumnType)
			}
			scale := m[2]
			if scale == "" {
				scale = "0"
			}
			c.param = "CAST(? AS DECIMAL(" + m[1] + "," + scale + "))"
		}
	case "bit":
		// BIT arrives as int64; write it as the unsigned integer of its bits.
		c.conv = func(v any) (any, error) { return myIntegerValue(v, 64, true) }
		if dst != nil && myBlobStored[dst.DataType] {
			// A TEXT or BLOB column stores a BIT's bytes (b'1000001' is
			// 'A'), in the ALTER as in the copy; other strings its number.
			n, err := myBitBytes(col.ColumnType)
			if err != nil {
				return c, fmt.Errorf("apply: column %s: %w", col.Name, err)
			}
			c.param = "UNHEX(LPAD(HEX(?), " + strconv.Itoa(2*n) + ", '0'))"
		}
	case "year":
		c.conv = func(v any) (any, error) { return myIntegerValue(v, 64, false) }
	case "date", "datetime":
		c.conv = myTextual
		c.dates = true
	case "enum", "set":
		// Binlog gives the ENUM index / SET bitmask. A numeric shadow
		// column takes that number, as the copy stores it; any other gets
		// the labels, which stay right when the ALTER reorders or extends
		// the list.
		if dst != nil && myNumericTypes[dst.DataType] {
			// The server reads a SET's bitmask as a signed BIGINT: a
			// 64-member SET's last member is its sign bit, and the
			// ALTER stores -2^62 where 2^64-2^62 would be out of a
			// BIGINT's range (into a DECIMAL, another number). A BIT
			// takes the bits either way.
			unsigned := col.DataType == "enum" || dst.DataType == "bit"
			c.conv = func(v any) (any, error) { return myIntegerValue(v, 64, unsigned) }
			break
		}
		labels, err := myParseLabels(col.ColumnType)
		if err != nil {
			return c, fmt.Errorf("apply: column %s: %w", col.Name, err)
		}
		if col.Members != nil {
			// A CHARACTER SET binary column's members, read exactly
			// (table.Column.Members): their bytes, not the connection's
			// text; a text of another character set takes them as its
			// own, as the ALTER does (0xE9 is latin1's é).
			labels = col.Members
			c.param = myIntoText(c.param, dst)
		} else if cs := strings.ToLower(col.Charset); myIntoBytes(dst) && cs != "" && !strings.HasPrefix(cs, "utf8") {
			// A binary string (or a CHARACTER SET binary ENUM or SET)
			// takes the member's bytes in the column's character set
			// (latin1's ü is 0xFC, utf16's a 0x0061), where the label is
			// the connection's utf8mb4 text.
			if !myCharsetName.MatchString(cs) {
				return c, fmt.Errorf("apply: column %s: unexpected character set %q", col.Name, col.Charset)
			}
			c.param = "CONVERT(? USING " + cs + ")"
		}
		if col.DataType == "enum" {
			c.conv = func(v any) (any, error) { return myEnumValue(v, labels) }
			if dst != nil && dst.DataType == "enum" {
				c.errorValue = m.Shadow
			}
		} else {
			c.conv = func(v any) (any, error) { return mySetValue(v, labels) }
		}
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
		c.conv = myTextual
		// Binlog text is in the column's character set; the connection's is
		// utf8mb4. Other character sets get their bytes relabelled by the
		// server rather than converted from utf8mb4.
		if cs := strings.ToLower(col.Charset); cs != "" && cs != "utf8mb4" && cs != "binary" {
			if !myCharsetName.MatchString(cs) {
				return c, fmt.Errorf("apply: column %s: unexpected character set %q", col.Name, col.Charset)
			}
			c.param = "CONVERT(CONVERT(? USING binary) USING " + cs + ")"
			c.conv = myBinaryValue
		}
	case "uuid", "inet4", "inet6":
		// MariaDB's binlog gives these types' binary form (a UUID's bytes
		// in its text's order, an address in network order), without its
		// trailing zero bytes, as BINARY's. A parameter is read in the
		// connection's character set, as the text form, which these bytes
		// are not: pad them, and cast them back to the type, whose value
		// the server then converts to the shadow column's type as the
		// copy's INSERT … SELECT does.
		n := map[string]int{"uuid": 16, "inet4": 4, "inet6": 16}[col.DataType]
		c.conv = func(v any) (any, error) { return myPadBinary(v, n) }
		c.param = "CAST(CONVERT(? USING binary) AS " + strings.ToUpper(col.DataType) + ")"
		if dst != nil && myBinaryStrings[dst.DataType] {
			// A binary string takes the binary form, in the ALTER as in
			// the copy, where the type cast would give its text.
			c.param = "?"
		}
	case "binary":
		// The binlog drops BINARY's trailing zero bytes; put them back so
		// that a shadow column changed to VARBINARY gets what the copy gives.
		n, err := myBinaryLength(col.ColumnType)
		if err != nil {
			return c, fmt.Errorf("apply: column %s: %w", col.Name, err)
		}
		c.conv = func(v any) (any, error) { return myPadBinary(v, n) }
		c.param = myIntoText(myIntoAddressType(c.param, dst), dst)
	case "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		c.conv = myTextual
		c.param = myIntoText(myIntoAddressType(c.param, dst), dst)
	default:
		// Temporal types (strings), binary strings and BLOBs ([]byte or
		// string of raw bytes), JSON (text) and spatial types (internal
		// format bytes) are written as they come.
		c.conv = myTextual
	}
	return c, nil
}

// myBinaryStrings are the binary string types, into which the server
// converts a UUID, INET4 or INET6 by its binary form.
var myBinaryStrings = map[string]bool{"binary": true, "varbinary": true,
	"tinyblob": true, "blob": true, "mediumblob": true, "longblob": true}

// myIntoBytes reports whether dst takes a text's bytes: a binary string, or
// an ENUM or SET of CHARACTER SET binary, whose members are bytes.
func myIntoBytes(dst *table.Column) bool {
	if dst == nil {
		return false
	}
	switch dst.DataType {
	case "enum", "set":
		return strings.EqualFold(dst.Charset, "binary")
	}
	return myBinaryStrings[dst.DataType]
}

// myIntoAddressType is the parameter param of a binary string going into
// dst: into a UUID, INET4 or INET6 as that type's binary form (the ALTER
// and the copy read it so), which the parameter, read as text, is not.
func myIntoAddressType(param string, dst *table.Column) string {
	if dst == nil {
		return param
	}
	switch dst.DataType {
	case "uuid", "inet4", "inet6":
		return "CAST(CONVERT(" + param + " USING binary) AS " + strings.ToUpper(dst.DataType) + ")"
	}
	return param
}

// myIntoText is the parameter param of a binary string going into dst: into
// a text of a character set other than the connection's utf8mb4 as its
// bytes, which the ALTER and the copy take as that set's (0xFF is latin1's
// ÿ, 0x6162 one UTF-16 character), where the parameter would be read as
// utf8mb4 text and converted (and fail where its bytes are no UTF-8).
func myIntoText(param string, dst *table.Column) string {
	if dst == nil {
		return param
	}
	switch cs := strings.ToLower(dst.Charset); cs {
	case "", "utf8mb4", "binary":
		return param
	}
	return "CONVERT(" + param + " USING binary)"
}

// myKeyCompare is what the key column c, of source column src, is compared
// with (mysqlColumn.cmp): its parameter, or, for a text column in another
// character set than the connection's or an integer made a string, the
// parameter converted to it (under the column's collation): CONVERT(… USING
// latin1) carries latin1_swedish_ci, which the server refuses to compare
// with a latin1_general_cs column. A DECIMAL's parameter (its text, as the
// binlog gives it) is cast to the source column's DECIMAL(p,s): compared
// with a DECIMAL column as a string, the server compares them as doubles
// wherever it reads the rows by a scan rather than the key's ranges (a
// delete of four keys or more in a small table, k IN (?, ?, ?, ?)), and
// 12345678901234567.1 equals .2 there: the delete took the neighbours of
// its keys out of the shadow.
func myKeyCompare(c mysqlColumn, src table.Column, shadow *table.Table, shadowName string) (string, error) {
	param := c.param
	if (src.DataType == "decimal" || src.DataType == "numeric") && param == "?" {
		m := myDecimalType.FindStringSubmatch(strings.ToLower(src.ColumnType))
		if m == nil {
			return "", fmt.Errorf("apply: column %s: cannot read the precision of %q", src.Name, src.ColumnType)
		}
		scale := m[2]
		if scale == "" {
			scale = "0"
		}
		param = "CAST(? AS DECIMAL(" + m[1] + "," + scale + "))"
	}
	i := shadow.ColumnIndex(shadowName)
	if i < 0 {
		return param, nil
	}
	col := shadow.Columns[i]
	// An integer made a string is compared as the text the shadow holds
	// (table.MySQLIntegerKeyText; a ZEROFILL number's text is padded in
	// param already).
	if cmp, ok, err := table.MySQLIntegerKeyText(param, src, col); err != nil {
		return "", fmt.Errorf("apply: %w", err)
	} else if ok {
		return cmp, nil
	}
	cs := strings.ToLower(col.Charset)
	switch col.DataType {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
	default:
		return param, nil
	}
	if cs == "" || cs == "utf8mb4" || cs == "binary" || col.Collation == "" {
		return param, nil
	}
	if !myCharsetName.MatchString(cs) || !myCharsetName.MatchString(col.Collation) {
		return "", fmt.Errorf("apply: column %s: unexpected character set %q or collation %q", shadowName, cs, col.Collation)
	}
	return "CONVERT(" + param + " USING " + cs + ") COLLATE " + col.Collation, nil
}

// myExactCondition is the byte-exact condition of a key column whose source
// values are text in a character set and whose shadow column compares them
// under a collation, which may equate different bytes ('a' = 'A', 'a' =
// 'a '); "" for other columns. The parameter's bytes are converted to the
// shadow column's character set, as the copy converts them, then both sides
// are compared as binary strings, which have no pad attribute. (CHAR values
// come back without their trailing spaces, as the binlog sends them.)
func myExactCondition(c mysqlColumn, src table.Column, shadow *table.Table, shadowName string) (string, error) {
	switch src.DataType {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
	default:
		// ENUM and SET members are distinct under their collation; numbers,
		// temporal and binary values have no collation.
		return "", nil
	}
	cs := strings.ToLower(src.Charset)
	if cs == "" || cs == "binary" {
		return "", nil
	}
	if i := shadow.ColumnIndex(shadowName); i >= 0 {
		cs = strings.ToLower(shadow.Columns[i].Charset)
	}
	if cs == "" || cs == "binary" {
		return "", nil
	}
	if !myCharsetName.MatchString(cs) {
		return "", fmt.Errorf("apply: column %s: unexpected character set %q", shadowName, cs)
	}
	value := c.param
	if cs != strings.ToLower(src.Charset) {
		value = "CONVERT(" + value + " USING " + cs + ")"
	}
	return "CONVERT(" + c.name + " USING binary) = CONVERT(" + value + " USING binary)", nil
}

// myIntegerValue converts a binlog integer to int64, or uint64 for an unsigned
// column: without signedness metadata go-mysql decodes unsigned columns as
// signed values of the column's size.
func myIntegerValue(v any, size uint, unsigned bool) (any, error) {
	var i int64
	var u uint64
	isUnsigned := false
	switch x := v.(type) {
	case int8:
		i = int64(x)
	case int16:
		i = int64(x)
	case int32:
		i = int64(x)
	case int64:
		i = x
	case int:
		i = int64(x)
	case uint8:
		u, isUnsigned = uint64(x), true
	case uint16:
		u, isUnsigned = uint64(x), true
	case uint32:
		u, isUnsigned = uint64(x), true
	case uint64:
		u, isUnsigned = x, true
	case uint:
		u, isUnsigned = uint64(x), true
	default:
		return nil, fmt.Errorf("unexpected %T for an integer", v)
	}
	switch {
	case unsigned && isUnsigned:
		return u, nil
	case unsigned:
		u = uint64(i)
		if size < 64 {
			u &= 1<<size - 1
		}
		return u, nil
	case isUnsigned:
		return int64(u), nil
	}
	return i, nil
}

// myIsZero reports whether a converted value is the number 0 (a string:
// as the server reads it as a number, which an AUTO_INCREMENT column does).
func myIsZero(x any) bool {
	switch y := x.(type) {
	case int64:
		return y == 0
	case uint64:
		return y == 0
	case float64:
		return y == 0
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(y), 64)
		return err == nil && f == 0
	case []byte:
		f, err := strconv.ParseFloat(strings.TrimSpace(string(y)), 64)
		return err == nil && f == 0
	}
	return false
}

// myFloatValue passes FLOAT (float32) as the float64 of the same value, which
// the server rounds back to the same float32; DOUBLE as it is.
func myFloatValue(v any) (any, error) {
	switch x := v.(type) {
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	}
	return nil, fmt.Errorf("unexpected %T for a floating-point number", v)
}

func myTextual(v any) (any, error) {
	switch v.(type) {
	case string, []byte:
		return v, nil
	}
	return nil, fmt.Errorf("unexpected %T for a string", v)
}

func myBinaryValue(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return []byte(x), nil
	case []byte:
		return x, nil
	}
	return nil, fmt.Errorf("unexpected %T for a string", v)
}

var myBinaryType = regexp.MustCompile(`^binary\((\d+)\)`)

func myBinaryLength(columnType string) (int, error) {
	m := myBinaryType.FindStringSubmatch(strings.ToLower(columnType))
	if m == nil {
		return 0, fmt.Errorf("cannot read the length of %q", columnType)
	}
	return strconv.Atoi(m[1])
}

func myPadBinary(v any, n int) (any, error) {
	b, ok := myAsBytes(v)
	if !ok {
		return nil, fmt.Errorf("unexpected %T for a binary string", v)
	}
	if len(b) >= n {
		return b, nil
	}
	return append(append(make([]byte, 0, n), b...), make([]byte, n-len(b))...), nil
}

func myEnumValue(v any, labels []string) (any, error) {
	n, err := myIntegerValue(v, 64, true)
	if err != nil {
		return nil, err
	}
	i := n.(uint64)
	if i == 0 {
		// The error value, which a non-strict session stores for a text
		// that is no member: the server reads it as ''.
		return "", nil
	}
	if i > uint64(len(labels)) {
		return nil, fmt.Errorf("ENUM index %d outside 0..%d", i, len(labels))
	}
	return labels[i-1], nil
}

func mySetValue(v any, labels []string) (any, error) {
	n, err := myIntegerValue(v, 64, true)
	if err != nil {
		return nil, err
	}
	mask := n.(uint64)
	if bits.Len64(mask) > len(labels) {
		return nil, fmt.Errorf("SET bitmask %#x has bits beyond its %d members", mask, len(labels))
	}
	var b strings.Builder
	for i, l := range labels {
		if mask&(1<<uint(i)) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(l)
		}
	}
	return b.String(), nil
}

// myParseLabels reads the members of "enum('a','b')" or "set('a','b')" as
// information_schema.COLUMNS.COLUMN_TYPE renders them.
func myParseLabels(columnType string) ([]string, error) {
	open, end := strings.IndexByte(columnType, '('), strings.LastIndexByte(columnType, ')')
	if open < 0 || end < open {
		return nil, fmt.Errorf("cannot read the members of %q", columnType)
	}
	body := columnType[open+1 : end]
	var labels []string
	for i := 0; i < len(body); {
		if body[i] != '\'' {
			return nil, fmt.Errorf("cannot read the members of %q", columnType)
		}
		var b strings.Builder
		j := i + 1
		for ; j < len(body); j++ {
			ch := body[j]
			if ch == '\'' {
				if j+1 < len(body) && body[j+1] == '\'' {
					b.WriteByte('\'')
					j++
					continue
				}
				break
			}
			if ch == '\\' && j+1 < len(body) {
				j++
				ch = myUnescape(body[j])
			}
			b.WriteByte(ch)
		}
		if j >= len(body) {
			return nil, fmt.Errorf("cannot read the members of %q", columnType)
		}
		labels = append(labels, b.String())
		i = j + 1
		if i < len(body) {
			if body[i] != ',' {
				return nil, fmt.Errorf("cannot read the members of %q", columnType)
			}
			i++
		}
	}
	return labels, nil
}

// myUnescape is the byte a backslash escape in a string literal stands for.
func myUnescape(c byte) byte {
	switch c {
	case '0':
		return 0
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'Z':
		return 0x1a
	}
	return c
}

// myOp is one statement row: a row to replace or a key to delete.
type myOp struct {
	del   bool
	exact bool // del: only a row with exactly the key's bytes (cdc.Change.Replay)
	row   cdc.Row
	// before, when set, makes the op a move: the row under before's key
	// gets row's key and values (NewMySQLRevert).
	before cdc.Row
}

// myBatch is one statement to run.
type myBatch struct {
	query string
	args  []any
	rows  int // rows or keys it writes or names
	// errorValues are the warnings of the ENUM error values it writes
	// (table.MySQLErrorValueWarning): it runs without strict mode.
	errorValues []string
	// invalidDates: it writes a date its month lacks, with
	// ALLOW_INVALID_DATES.
	invalidDates bool
}

// Apply writes, in one transaction, what the changes leave (myCollapse; in
// order for the reverse applier). Markers are skipped.
func (a *MySQL) Apply(ctx context.Context, changes []cdc.Change) error {
	if a.err != nil {
		return a.err
	}
	ops := make([]myOp, 0, len(changes))
	for i := range changes {
		c := &changes[i]
		if c.Partial() {
			return fmt.Errorf("apply: %s at %v carries a partial row", c.Op, c.Pos)
		}
		switch c.Op {
		case cdc.Marker:
		case cdc.Insert:
			ops = append(ops, myOp{row: c.After})
		case cdc.Update:
			if c.Before != nil && !a.sameKey(c.Before, c.After) {
				if a.moves {
					ops = append(ops, myOp{row: c.After, before: c.Before})
				} else {
					ops = append(ops, myOp{del: true, exact: c.Replay, row: c.Before})
				}
			}
			ops = append(ops, myOp{row: c.After})
		case cdc.Delete:
			ops = append(ops, myOp{del: true, exact: c.Replay, row: c.Before})
		default:
			return fmt.Errorf("apply: unexpected change %s", c.Op)
		}
	}
	if !a.moves {
		ops = myCollapse(ops, a.keyOf)
	}
	var batches []myBatch
	for i := 0; i < len(ops); {
		j := i + 1
		for j < len(ops) && ops[j].del == ops[i].del && ops[j].exact == ops[i].exact && ops[i].before == nil && ops[j].before == nil {
			j++
		}
		b, err := a.batches(ops[i:j])
		if err != nil {
			return err
		}
		batches = append(batches, b...)
		i = j
	}
	if len(batches) == 0 {
		return nil
	}
	// Prepare before the transaction holds a connection.
	stmts := make([]*sql.Stmt, len(batches))
	for i, b := range batches {
		st, err := a.stmt(ctx, b.query)
		if err != nil {
			return err
		}
		stmts[i] = st
	}
	level, err := a.isolation(ctx)
	if err != nil {
		return err
	}
	tx, err := a.db.BeginTx(ctx, &sql.TxOptions{Isolation: level})
	if err != nil {
		return fmt.Errorf("apply: begin: %w", err)
	}
	defer tx.Rollback()    // after Commit it is a no-op
	var put, removed int64 // rows put aside and removed from it (asideBefore)
	held := false          // rows may have been aside before the batch
	if a.aside != nil {
		held = a.aside.t.MayHoldRows()
		if put, removed, err = a.asideBefore(ctx, tx, ops); err != nil {
			return err
		}
	}
	for i, b := range batches {
		if err := a.exec(ctx, tx, stmts[i], b); err != nil {
			return err
		}
	}
	holds := false
	if a.aside != nil {
		if holds, err = a.asideAfter(ctx, tx, ops, held, put, removed); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("apply: commit: %w", err)
	}
	if a.aside != nil {
		a.aside.t.Holds(holds)
	}
	return nil
}

// isolation is the isolation level of a batch's transaction, looked up
// once: READ COMMITTED, unless the applier REPLACEs rows of a table with a
// long unique key (MariaDB keeps a UNIQUE key over a BLOB or TEXT column,
// or one declared USING HASH, as a hash of its values: INDEX_TYPE HASH on
// InnoDB, which has no hash indexes). Under READ COMMITTED such a REPLACE
// fails with a duplicate-key error on the hash key where the row it writes
// meets one row in another unique key (its own old version by the primary
// key, say) and another row in the hash key (MariaDB 10.11): a row taking
// a value another row gave up, written before that row's own change
// (myCollapse writes each key's last row in the order of those last
// writes), or a change behind a newer row the copy read. Under REPEATABLE
// READ it deletes both, as REPLACE does. The isolation level decides no
// value a statement writes or deletes (the applier's writes and the aside
// table's INSERT … SELECT read the latest committed rows, and the batch's
// own, at either level, and the plain reads of asideAfter come after the
// batch's writes, only with a new unique key, whose chunks never copy
// meanwhile: copier.MySQLHolding); it adds gap locks (a delete of a key the
// shadow lacks), whose waits and deadlocks with a chunk's insert roll one
// of the two back, to run again (engine's retry). The reverse applier's
// upsert (NewMySQLRevert) is no REPLACE and keeps READ COMMITTED.
func (a *MySQL) isolation(ctx context.Context) (sql.IsolationLevel, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.level != 0 {
		return a.level, nil
	}
	if a.moves {
		a.level = sql.LevelReadCommitted
		return a.level, nil
	}
	var hashed bool
	if err := a.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 AND INDEX_TYPE = 'HASH')`, a.schema, a.name).Scan(&hashed); err != nil {
		return 0, fmt.Errorf("apply: look for long unique keys of %s: %w", table.QuoteMySQL(a.schema, a.name), err)
	}
	a.level = sql.LevelReadCommitted
	if hashed {
		a.level = sql.LevelRepeatableRead
	}
	return a.level, nil
}

// exec runs one statement of a batch in tx and checks its notes (noted).
func (a *MySQL) exec(ctx context.Context, tx *sql.Tx, st *sql.Stmt, b myBatch) error {
	what := "writing captured changes into the shadow (" + strings.Fields(b.query)[0] + ")"
	var noted error
	if _, err := a.run(ctx, tx, st, b, func() error {
		noted = a.noted(ctx, tx, what, len(b.errorValues) > 0)
		return nil
	}); err != nil {
		return fmt.Errorf("apply: %.60s...: %w", b.query, a.clash(err))
	}
	return noted
}

// run runs the statement st of b in tx; one that writes ENUM error values
// without strict mode, its warnings checked (table.MySQLErrorValuesWarned),
// one that writes dates their months lack with ALLOW_INVALID_DATES, and
// the session's sql_mode then set back. then, which reads the statement's
// warnings, runs after it succeeded, before the sql_mode is set back (a
// SET clears them).
func (a *MySQL) run(ctx context.Context, tx *sql.Tx, st *sql.Stmt, b myBatch, then func() error) (res sql.Result, err error) {
	if len(b.errorValues) == 0 && !b.invalidDates {
		if res, err = tx.StmtContext(ctx, st).ExecContext(ctx, b.args...); err != nil {
			return nil, err
		}
		return res, then()
	}
	var mode string
	if err := tx.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("read the session's sql_mode: %w", err)
	}
	stmtMode, err := table.MySQLStatementMode(mode, len(b.errorValues) > 0, b.invalidDates)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, "SET SESSION sql_mode = "+stmtMode); err != nil {
		return nil, fmt.Errorf("set the sql_mode of a statement that writes the ENUM error value or an invalid date: %w", err)
	}
	defer func() {
		// Set back also when the statement failed: the connection goes
		// back to the pool.
		// mode is MySQLStatementMode's, which checked its characters.
		if _, rerr := tx.ExecContext(context.WithoutCancel(ctx), "SET SESSION sql_mode = '"+mode+"'"); rerr != nil && err == nil {
			res, err = nil, fmt.Errorf("set the session's sql_mode back: %w", rerr)
		}
	}()
	if res, err = tx.StmtContext(ctx, st).ExecContext(ctx, b.args...); err != nil {
		return nil, err
	}
	if len(b.errorValues) > 0 {
		if err := table.MySQLErrorValuesWarned(ctx, tx, b.errorValues, a.PanicOnWarnings); err != nil {
			return nil, err
		}
	}
	return res, then()
}

// noted fails on what the statement tx ran last (what it is) left in SHOW
// WARNINGS that osc must not let pass: the trailing whitespace of a
// shortened VARCHAR cut off (table.MySQLCutNoted), and, first, with
// --panic-on-warnings any warning or note, unless checked (run checked
// them already: the statement wrote ENUM error values).
func (a *MySQL) noted(ctx context.Context, tx *sql.Tx, what string, checked bool) error {
	if a.PanicOnWarnings && !checked {
		if err := table.MySQLWarnings(ctx, tx, what); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
	}
	if len(a.shortened) > 0 {
		if err := table.MySQLCutNoted(ctx, tx, a.shortened); err != nil {
			return fmt.Errorf("apply: %s: %w", what, err)
		}
	}
	return nil
}

// stmt returns the prepared statement of query, preparing it once.
func (a *MySQL) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if st, ok := a.stmts[query]; ok {
		return st, nil
	}
	st, err := a.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("apply: prepare %.60s...: %w", query, err)
	}
	a.stmts[query] = st
	return st, nil
}

// batches turns a run of ops of one kind into statements of 1, 2, 4...
// rows, each under mysqlMaxBytes of values unless it has one row.
func (a *MySQL) batches(ops []myOp) ([]myBatch, error) {
	if ops[0].before != nil {
		return a.move(ops[0])
	}
	return a.batchesWith(ops, a.query)
}

// batchesWith is batches with the statement of n rows or keys made by
// query (del, exact, n), for the shadow or for another table of its form.
func (a *MySQL) batchesWith(ops []myOp, query func(del, exact bool, n int) string) ([]myBatch, error) {
	cols := a.cols
	if ops[0].del {
		cols = a.keys
	}
	exact := ops[0].del && ops[0].exact && a.hasExact()
	rows := make([][]any, len(ops))
	size := make([]int, len(ops)+1)           // size[i]: bytes of rows[:i]
	errorValues := make([][]string, len(ops)) // the ENUM error values' columns, by row
	invalidDates := make([]bool, len(ops))    // the row has a date its month lacks
	for i, o := range ops {
		vals := make([]any, len(cols))
		n := 0
		for j, c := range cols {
			if c.index >= len(o.row) {
				return nil, fmt.Errorf("apply: row image has %d columns, want column %d", len(o.row), c.index+1)
			}
			v := o.row[c.index]
			renumbered := !ops[0].del && j == a.renumbered
			if v == nil {
				if renumbered && a.renumber.Null {
					return nil, fmt.Errorf("apply: %w", a.renumber.Refusal("NULL"))
				}
				n += 8
				continue
			}
			x, err := c.conv(v)
			if err != nil {
				return nil, fmt.Errorf("apply: column %s: %w", c.name, err)
			}
			if renumbered && a.renumber.Zero && myIsZero(x) {
				return nil, fmt.Errorf("apply: %w", a.renumber.Refusal("0"))
			}
			if c.errorValue != "" && myIsZero(v) {
				// The error value as 0: written without strict mode,
				// and, in a key's condition, compared by number, which
				// '' is not where the ENUM has a member ''.
				x = int64(0)
				if !ops[0].del {
					errorValues[i] = append(errorValues[i], c.errorValue)
				}
			}
			if c.dates {
				if t, ok := x.(string); ok && table.MySQLInvalidDate(t) {
					if !a.keepsInvalidDates {
						return nil, fmt.Errorf("apply: column %s: %w", c.name, table.ErrMySQLInvalidDates)
					}
					invalidDates[i] = true
				}
			}
			vals[j] = x
			switch y := x.(type) {
			case string:
				n += len(y)
			case []byte:
				n += len(y)
			default:
				n += 8
			}
		}
		// Each column's value once per placeholder of its expression (a
		// key's comparison, cmp, for deletes), then, for exact deletes,
		// those of the byte-exact conditions.
		args := make([]any, 0, len(cols))
		for j, c := range cols {
			expr := c.param
			if ops[0].del {
				expr = c.cmp
			}
			for range strings.Count(expr, "?") {
				args = append(args, vals[j])
			}
		}
		if exact {
			for j, c := range cols {
				for range strings.Count(c.exact, "?") {
					args = append(args, vals[j])
				}
			}
		}
		rows[i] = args
		size[i+1] = size[i] + n
	}
	limit := min(mysqlMaxRows, mysqlMaxParams/len(rows[0]))
	var out []myBatch
	for start := 0; start < len(rows); {
		n := 1 << (bits.Len(uint(min(len(rows)-start, limit))) - 1)
		for n > 1 && size[start+n]-size[start] > mysqlMaxBytes {
			n /= 2
		}
		args := make([]any, 0, n*len(rows[0]))
		var warned []string
		invalid := false
		for i, r := range rows[start : start+n] {
			args = append(args, r...)
			for _, name := range errorValues[start+i] {
				warned = append(warned, table.MySQLErrorValueWarning(name, i+1))
			}
			invalid = invalid || invalidDates[start+i]
		}
		out = append(out, myBatch{query: query(ops[0].del, exact, n), args: args, rows: n, errorValues: warned, invalidDates: invalid})
		start += n
	}
	return out, nil
}

// hasExact reports whether some key column has a byte-exact condition.
func (a *MySQL) hasExact() bool {
	for _, k := range a.keys {
		if k.exact != "" {
			return true
		}
	}
	return false
}

// query is the statement for n rows to replace or n keys to delete; exact
// deletes also require the byte-exact condition of every key column that has
// one.
func (a *MySQL) query(del, exact bool, n int) string {
	if del {
		return a.deleteHead + a.keyCond(exact, n)
	}
	return a.rows(a.replaceHead, n) + a.upsertTail
}

// rows is head followed by n rows of values.
func (a *MySQL) rows(head string, n int) string {
	var b strings.Builder
	b.WriteString(head)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j, c := range a.cols {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(c.param)
		}
		for _, f := range a.fills {
			b.WriteString(", " + f)
		}
		b.WriteByte(')')
	}
	return b.String()
}

// keyCond is the condition that a row has one of n keys (exact: also the
// bytes of each key column that has a byte-exact condition).
func (a *MySQL) keyCond(exact bool, n int) string {
	var b strings.Builder
	if len(a.keys) == 1 && !exact {
		b.WriteString(a.keys[0].name + " IN (")
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(a.keys[0].cmp)
		}
		b.WriteByte(')')
		return b.String()
	}
	for i := range n {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteByte('(')
		for j, k := range a.keys {
			if j > 0 {
				b.WriteString(" AND ")
			}
			b.WriteString(k.name + " = " + k.cmp)
		}
		if exact {
			for _, k := range a.keys {
				if k.exact != "" {
					b.WriteString(" AND " + k.exact)
				}
			}
		}
		b.WriteByte(')')
	}
	return b.String()
}

// sameKey reports whether two row images have the same key values.
func (a *MySQL) sameKey(before, after cdc.Row) bool {
	for _, k := range a.keys {
		if k.index >= len(before) || k.index >= len(after) || !mySameValue(before[k.index], after[k.index]) {
			return false
		}
	}
	return true
}

func mySameValue(x, y any) bool {
	xb, xText := myAsBytes(x)
	yb, yText := myAsBytes(y)
	if xText || yText {
		return xText && yText && bytes.Equal(xb, yb)
	}
	return reflect.DeepEqual(x, y)
}

func myAsBytes(v any) ([]byte, bool) {
	switch x := v.(type) {
	case string:
		return []byte(x), true
	case []byte:
		return x, true
	}
	return nil, false
}
