package table

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A fractional number into an ENUM or a SET. A plain ALTER converts a
// DECIMAL, FLOAT or DOUBLE column into an ENUM's index or a SET's bitmask by
// rounding it to the nearest integer (a DECIMAL half away from zero, a
// floating-point number half to even), where an INSERT … SELECT truncates the
// value (1.50 becomes 1, and 0.5 fails). ROUND rounds as the ALTER does, so
// the copy selects ROUND(column) and the applier writes ROUND(value), the
// value typed as the source column (see apply/mysql.go).

// MySQLEnumRounding returns the expression that turns expr, a value of the
// source column src, into what the server's ALTER stores in the shadow column
// dst when src is a fractional number and dst an ENUM or a SET; expr itself
// otherwise.
func MySQLEnumRounding(expr string, src, dst Column) string {
	if dst.DataType != "enum" && dst.DataType != "set" {
		return expr
	}
	switch src.DataType {
	case "decimal", "numeric", "float", "double", "real":
		return "ROUND(" + expr + ")"
	}
	return expr
}

// The members of a CHARACTER SET binary ENUM or SET. information_schema and
// SHOW CREATE TABLE render an ENUM's or SET's members as UTF-8, with a '?'
// for each byte that is not UTF-8: a binary column's members 0xFF and '?'
// both read '?', so the applier, which writes a binlog index or bitmask as
// its members' text, would write another member, or none. The copy, the
// plain ALTER and the checksum's conversions go column to column, by the
// members' bytes; the checksum, comparing a value with the shadow's
// members, names them. readMySQLMembers reads those bytes (Column.Members): it
// stores each index (each bit of a SET) in a temporary table that has the
// column's type, and reads it back. The applier writes them as they are,
// which a binary column takes as they are. A member of another character set
// that has no UTF-8 form (cp1250's 0x81, ascii's 0xFF) reads '?' as well;
// the applier's text, converted from the connection's utf8mb4, cannot name
// it, and osc refuses such a column.

// mysqlUTF8 are the character sets whose members information_schema shows
// as they are.
var mysqlUTF8 = map[string]bool{"utf8mb4": true, "utf8mb3": true, "utf8": true}

// mysqlNumberTypes are the types besides the integers into which an ENUM or
// SET goes by its number.
var mysqlNumberTypes = map[string]bool{"decimal": true, "numeric": true, "float": true, "double": true, "real": true, "bit": true, "year": true}

var mysqlCharsetName = regexp.MustCompile(`^[a-z0-9_]+$`)

// readMySQLMembers sets Members of the mapped columns, of the original and
// of the shadow, that are CHARACTER SET binary ENUMs or SETs, read from the
// tables that now hold them: src and shadow, each a schema and a name. It
// refuses a mapped ENUM or SET with a member of another character set that
// has no UTF-8 form, but where its number goes into a number.
func readMySQLMembers(ctx context.Context, db *sql.DB, p *Plan, src, shadow [2]string) error {
	for _, m := range p.Mapping {
		cols := []*Column{&p.Source.Columns[m.SourceIndex]}
		tables := [][2]string{src}
		byNumber := false
		if j := p.Shadow.ColumnIndex(m.Shadow); j >= 0 {
			cols = append(cols, &p.Shadow.Columns[j])
			tables = append(tables, shadow)
			t := p.Shadow.Columns[j].DataType
			byNumber = mysqlIntBits[t] > 0 || mysqlNumberTypes[t]
		}
		for i, c := range cols {
			cs := strings.ToLower(c.Charset)
			if (c.DataType != "enum" && c.DataType != "set") || mysqlUTF8[cs] || cs != "binary" && !strings.Contains(c.ColumnType, "?") {
				continue
			}
			members, lossy, err := readMySQLColumnMembers(ctx, db, tables[i][0], tables[i][1], *c)
			if err != nil {
				return fmt.Errorf("read the members of %s.%s: %w", QuoteMySQL(tables[i][1]), QuoteMySQL(c.Name), err)
			}
			if cs == "binary" {
				c.Members = members
				continue
			}
			if lossy != "" && !(i == 0 && byNumber) {
				return fmt.Errorf("column %s: its member 0x%X (CHARACTER SET %s) has no UTF-8 form, which information_schema shows "+
					"as '?': osc writes a captured change's member by its text, in utf8mb4, and cannot name it; change the column "+
					"to CHARACTER SET binary first, or run a plain ALTER TABLE", QuoteMySQL(c.Name), lossy, c.Charset)
			}
		}
	}
	return nil
}

// readMySQLColumnMembers returns the members of the ENUM or SET column c of
// the table, and the first of them that has no UTF-8 form ("": none).
func readMySQLColumnMembers(ctx context.Context, db *sql.DB, schema, name string, c Column) (members []string, lossy string, err error) {
	cs := strings.ToLower(c.Charset)
	if !mysqlCharsetName.MatchString(cs) {
		return nil, "", fmt.Errorf("unexpected character set %q", c.Charset)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, "", err
	}
	defer conn.Close()
	tmp := QuoteMySQL("_osc_members_" + strconv.FormatInt(time.Now().UnixNano(), 36))
	if _, err := conn.ExecContext(ctx, "CREATE TEMPORARY TABLE "+tmp+" SELECT "+QuoteMySQL(c.Name)+" AS m FROM "+
		QuoteMySQL(schema, name)+" LIMIT 0"); err != nil {
		return nil, "", err
	}
	defer func() {
		if _, derr := conn.ExecContext(context.WithoutCancel(ctx), "DROP TEMPORARY TABLE "+tmp); derr != nil && err == nil {
			err = derr
		}
	}()
	n := mysqlMembers(c.ColumnType)
	values := make([]string, n)
	for i := range values {
		v := uint64(i + 1)
		if c.DataType == "set" {
			v = 1 << i
		}
		values[i] = "(" + strconv.FormatUint(v, 10) + ")"
	}
	if n > 0 {
		if _, err := conn.ExecContext(ctx, "INSERT INTO "+tmp+" (m) VALUES "+strings.Join(values, ", ")); err != nil { //nolint:gosec // G202: a quoted name and numbers
			return nil, "", err
		}
	}
	//nolint:gosec // G202: a quoted name and a character set name checked above
	rows, err := conn.QueryContext(ctx, "SELECT CAST(m AS BINARY), CAST(CONVERT(CONVERT(m USING utf8mb4) USING "+cs+") AS BINARY) "+
		"<=> CAST(m AS BINARY) FROM "+tmp+" ORDER BY m+0")
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		var same bool
		if err := rows.Scan(&b, &same); err != nil {
			return nil, "", err
		}
		members = append(members, string(b))
		if !same && lossy == "" {
			lossy = string(b)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(members) != n {
		return nil, "", fmt.Errorf("read %d members, want %d", len(members), n)
	}
	return members, lossy, nil
}
