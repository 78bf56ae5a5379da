package table

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// MySQLCopy is the SQL of copying rows of the original into the shadow, as
// the copier writes every chunk: the shadow columns written, the expression
// over a row of the original that each one gets, and the key's range
// conditions. The copier and the checksum (its Recopy, and the original's
// side of its fingerprints) build their statements from it, so that a
// recopied or compared row is converted exactly as a copied one.
type MySQLCopy struct {
	// Shadow is the quoted shadow table, schema-qualified.
	Shadow string
	// Columns are the shadow columns written, in order: the mapped columns
	// (Plan.Mapping order), then the plan's Fills.
	Columns []MySQLCopyColumn
	// From is "FROM <original> FORCE INDEX (<key index>)".
	From string
	// Key ranges over the original's key columns; ShadowKey over the
	// shadow's columns that receive them, with the same parameters.
	Key, ShadowKey MySQLKeyRange
	// OnDuplicate is " ON DUPLICATE KEY UPDATE k = k": the copy never
	// overwrites a row already in the shadow.
	OnDuplicate string
	// renumbered selects, from the rows that match conditions appended to
	// it, one that a plain ALTER would renumber (Plan.Renumbered); "" when
	// there are none to find.
	renumbered string
	renumber   *MySQLRenumbered
	// shortened holds the VARCHAR columns the ALTER shortens without a
	// new character set or collation, by shadow name (see
	// RefuseCutSpaces).
	shortened map[string]mysqlShortened
	// invalidDates: the statements run with ALLOW_INVALID_DATES
	// (mysqlCopiesInvalidDates); datesChecked: they cannot, though a DATE
	// becomes a DATETIME or back (ErrMySQLInvalidDates).
	invalidDates, datesChecked bool
}

// mysqlShortened is a VARCHAR column the ALTER shortens: the original's
// column, quoted, and the shadow's length in characters.
type mysqlShortened struct {
	source string
	length int
}

// MySQLCopyColumn is one shadow column the copy writes.
type MySQLCopyColumn struct {
	Shadow Column // the shadow's column
	// Source is the original's column it is copied from; nil for a Fill.
	Source *Column
	// Expr is the value the copy selects: SQL over a row of the original.
	Expr string
}

// Insert is "INSERT INTO shadow (cols) SELECT exprs ": followed by From,
// the conditions and OnDuplicate it is the copy of a chunk.
func (c *MySQLCopy) Insert() string { return c.InsertInto(c.Shadow) }

// InsertInto is Insert into another table of the shadow's form, quoted
// (MySQLAside).
func (c *MySQLCopy) InsertInto(target string) string {
	dst := make([]string, len(c.Columns))
	src := make([]string, len(c.Columns))
	for i, col := range c.Columns {
		dst[i] = QuoteMySQL(col.Shadow.Name)
		src[i] = col.Expr
	}
	return "INSERT INTO " + target + " (" + strings.Join(dst, ", ") + ") SELECT " + strings.Join(src, ", ") + " "
}

var mysqlDecimalType = regexp.MustCompile(`^decimal\((\d+)(?:,(\d+))?\)`)

// NewMySQLCopy builds the copy's SQL for the plan.
func NewMySQLCopy(p *Plan) (*MySQLCopy, error) {
	if err := p.Usable(); err != nil {
		return nil, err
	}
	if p.KeyIndexName == "" {
		return nil, fmt.Errorf("the plan names no index of %s.%s on (%s)", p.Source.Schema, p.Source.Name, strings.Join(p.Key, ", "))
	}
	shadowSchema := p.Shadow.Schema
	if shadowSchema == "" {
		shadowSchema = p.Source.Schema
	}
	c := &MySQLCopy{Shadow: QuoteMySQL(shadowSchema, p.Shadow.Name), invalidDates: mysqlCopiesInvalidDates(p),
		datesChecked: mysqlDateChanges(p) && !MySQLKeepsInvalidDates(p)}
	shadowKey := ""
	shadowOf := map[string]string{}
	for _, m := range p.Mapping {
		expr := QuoteMySQL(m.Source)
		col := MySQLCopyColumn{Shadow: Column{Name: m.Shadow}}
		if j := p.Shadow.ColumnIndex(m.Shadow); j >= 0 && m.SourceIndex >= 0 && m.SourceIndex < len(p.Source.Columns) {
			src, dst := p.Source.Columns[m.SourceIndex], p.Shadow.Columns[j]
			col.Shadow, col.Source = dst, &src
			// A FLOAT into a string rendered as the ALTER renders it.
			expr = MySQLFloatConversion(expr, src, dst)
			// A text into a number: an integer's text only, a binary
			// string read as ascii.
			expr = MySQLTextNumber(expr, src, dst)
			// A ZEROFILL number into a string as its zero-padded text.
			expr = MySQLZerofillText(expr, src, dst)
			expr = MySQLTimeText(expr, src, dst)
			// A YEAR into a string as its zero-padded text ("0000"), a
			// YEAR(2) into a number as its two digits.
			expr = MySQLYearConversion(expr, src, dst)
			// A TIME, DATETIME or DATE into a number or a BIT as its number.
			expr = MySQLTimeNumber(expr, src, dst)
			// Converted to or from TIMESTAMP in the server's time zone,
			// as the applier converts binlog values.
			var err error
			if expr, err = MySQLTimeConversion(expr, src, dst, p.TimeZone); err != nil {
				return nil, err
			}
			// A NULL into a TIMESTAMP NOT NULL as the ALTER's time.
			if expr, err = MySQLNullToTimestamp(expr, src, dst, p.NullTimestampTime()); err != nil {
				return nil, err
			}
			// Rounded into an ENUM or a SET, as the ALTER converts.
			expr = MySQLEnumRounding(expr, src, dst)
			expr = mysqlBlobCopy(expr, src, dst)
			if n, ok := MySQLShortenedVarchar(src, dst); ok {
				if c.shortened == nil {
					c.shortened = map[string]mysqlShortened{}
				}
				c.shortened[dst.Name] = mysqlShortened{source: expr, length: n}
			}
		}
		col.Expr = expr
		c.Columns = append(c.Columns, col)
		shadowOf[m.Source] = m.Shadow
		if m.Source == p.Key[0] {
			shadowKey = c.Shadow + "." + QuoteMySQL(m.Shadow)
		}
	}
	for _, f := range p.Fills {
		// Added columns the ALTER fills otherwise than their DEFAULT.
		col := MySQLCopyColumn{Shadow: Column{Name: f.Shadow}, Expr: f.Expr}
		if j := p.Shadow.ColumnIndex(f.Shadow); j >= 0 {
			col.Shadow = p.Shadow.Columns[j]
		}
		c.Columns = append(c.Columns, col)
	}
	if shadowKey == "" {
		return nil, fmt.Errorf("key column %s is not copied to the shadow table", p.Key[0])
	}
	for i, name := range p.Key {
		if p.KeyIndex[i] < 0 || p.KeyIndex[i] >= len(p.Source.Columns) {
			return nil, fmt.Errorf("key column %s has no source position", name)
		}
		col := p.Source.Columns[p.KeyIndex[i]]
		k := mysqlKeyColumn{name: QuoteMySQL(name), param: "?"}
		k.expr = k.name
		switch col.DataType {
		case "enum", "set", "bit":
			// Ordered by number: bound and compare by number.
			k.expr = k.name + "+0"
		case "decimal":
			// A string compared with a DECIMAL is compared as a double.
			m := mysqlDecimalType.FindStringSubmatch(strings.ToLower(col.ColumnType))
			if m == nil {
				return nil, fmt.Errorf("key column %s: cannot read the precision of %q", name, col.ColumnType)
			}
			scale := m[2]
			if scale == "" {
				scale = "0"
			}
			k.param = "CAST(? AS DECIMAL(" + m[1] + "," + scale + "))"
		}
		c.Key.cols = append(c.Key.cols, k)
		sk := k
		sk.name = QuoteMySQL(shadowOf[name])
		sk.expr = strings.Replace(k.expr, k.name, sk.name, 1)
		c.ShadowKey.cols = append(c.ShadowKey.cols, sk)
	}
	c.From = "FROM " + QuoteMySQL(p.Source.Schema, p.Source.Name) + " FORCE INDEX (" + QuoteMySQL(p.KeyIndexName) + ")"
	c.OnDuplicate = " ON DUPLICATE KEY UPDATE " + shadowKey + " = " + shadowKey
	if r := p.Renumbered; r != nil {
		c.renumbered = "SELECT " + QuoteMySQL(r.Column) + " IS NULL " + c.From + " WHERE " + r.Cond() + " AND "
		c.renumber = r
	}
	return c, nil
}

// RefuseRenumbered fails when one of the original's rows that match conds
// (all of them when there are none) holds a value that a plain ALTER would
// renumber (see MySQLRenumbered). It reads in tx, the copy's transaction.
func (c *MySQLCopy) RefuseRenumbered(ctx context.Context, tx *sql.Tx, conds []string, args []any) error {
	if c.renumbered == "" {
		return nil
	}
	where := "TRUE"
	if len(conds) > 0 {
		where = strings.Join(conds, " AND ")
	}
	var null bool
	switch err := tx.QueryRowContext(ctx, c.renumbered+where+" LIMIT 1", args...).Scan(&null); {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("look for values the ALTER renumbers: %w", err)
	case null:
		return c.renumber.Refusal("NULL")
	}
	return c.renumber.Refusal("0")
}

// mysqlBlobTargets are the TEXT and BLOB types a string can outgrow, and
// mysqlStringSources the types of the columns that may hold such a string.
var (
	mysqlBlobTargets   = map[string]bool{"tinytext": true, "text": true, "mediumtext": true, "tinyblob": true, "blob": true, "mediumblob": true}
	mysqlStringSources = map[string]bool{"char": true, "varchar": true, "binary": true, "varbinary": true, "tinytext": true, "text": true,
		"mediumtext": true, "longtext": true, "tinyblob": true, "blob": true, "mediumblob": true, "longblob": true}
)

// mysqlBlobCopy reads a string column copied into a TEXT or BLOB of another
// type through CONCAT: MariaDB's INSERT … SELECT of the bare column into a
// TEXT or BLOB its value outgrows stores the value's length modulo the
// length's bytes (300 bytes into a TINYTEXT: 44), without an error or a
// note (measured on 10.11), where the ALTER fails on the value (or, for
// trailing whitespace, cuts it to the type's length with a note), and so
// does the insert of an expression's value.
func mysqlBlobCopy(expr string, src, dst Column) string {
	if expr != QuoteMySQL(src.Name) || !mysqlBlobTargets[dst.DataType] || !mysqlStringSources[src.DataType] || src.ColumnType == dst.ColumnType {
		return expr
	}
	return "CONCAT(" + expr + ")"
}

var mysqlVarcharType = regexp.MustCompile(`^varchar\((\d+)\)`)

// MySQLShortenedVarchar returns the shadow column's length when the ALTER
// turns a VARCHAR into a shorter VARCHAR of the same character set and
// collation: the one conversion in which MariaDB's ALTER fails, in strict
// mode, on a value whose trailing whitespace (spaces, tabs, newlines) does
// not fit (error 1265, "Data truncated"), where an INSERT, and the ALTER of
// any other type or character set or collation into the shorter column,
// cuts it off with a note.
func MySQLShortenedVarchar(src, dst Column) (int, bool) {
	if src.DataType != "varchar" || dst.DataType != "varchar" || src.Charset != dst.Charset || src.Collation != dst.Collation {
		return 0, false
	}
	from := mysqlVarcharType.FindStringSubmatch(strings.ToLower(src.ColumnType))
	to := mysqlVarcharType.FindStringSubmatch(strings.ToLower(dst.ColumnType))
	if from == nil || to == nil {
		return 0, false
	}
	m, err1 := strconv.Atoi(from[1])
	n, err2 := strconv.Atoi(to[1])
	if err1 != nil || err2 != nil || n >= m {
		return 0, false
	}
	return n, true
}

// RefuseCutSpaces fails when the copy of the original's rows that match
// conds (all of them when there are none), the statement tx ran last, cut
// the trailing whitespace off a value of a VARCHAR the ALTER shortens: the
// server only notes it (1265, "Data truncated for column 'c' at row n"),
// and a plain ALTER would fail on the value (MySQLShortenedVarchar). When
// the statement left more notes than the server kept (max_error_count), it
// looks for such a value among the rows. The error names the first such
// row's key. It reads nothing when the plan shortens no VARCHAR.
func (c *MySQLCopy) RefuseCutSpaces(ctx context.Context, tx *sql.Tx, conds []string, args []any) error {
	if len(c.shortened) == 0 {
		return nil
	}
	warnings, count, err := mysqlReadWarnings(ctx, tx)
	if err != nil {
		return fmt.Errorf("read the copy's warnings: %w", err)
	}
	noted := ""
	for _, w := range warnings {
		if name, ok := mysqlTruncatedColumn(w); ok {
			if _, shortened := c.shortened[name]; shortened {
				noted = name
				break
			}
		}
	}
	if noted == "" && count <= len(warnings) {
		return nil
	}
	// The noted column first, then the others (in a fixed order), when
	// notes were dropped.
	names := make([]string, 0, len(c.shortened))
	for name := range c.shortened {
		if name != noted {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if noted != "" {
		names = append([]string{noted}, names...)
	}
	for _, name := range names {
		col := c.shortened[name]
		where := "CHAR_LENGTH(" + col.source + ") > " + strconv.Itoa(col.length)
		if len(conds) > 0 {
			where = strings.Join(conds, " AND ") + " AND " + where
		}
		q := "SELECT " + strings.Join(c.Key.Select(), ", ") + " " + c.From + " WHERE " + where + " ORDER BY " + c.Key.OrderBy("") + " LIMIT 1"
		key, err := c.Key.QueryKey(ctx, tx, q, args...)
		if err != nil {
			return fmt.Errorf("look for the value the copy cut: %w", err)
		}
		if key == nil && name != noted {
			continue
		}
		row := "a row"
		if key != nil {
			row = "the row " + c.Key.text(key)
		}
		return fmt.Errorf("column %s: %s holds a value longer than the new VARCHAR(%d), whose trailing whitespace the copy would cut off; "+
			"%s: shorten the values (UPDATE … SET %s = REGEXP_REPLACE(%s, '[[:space:]]+$', '') WHERE CHAR_LENGTH(%s) > %d) or keep a longer column",
			QuoteMySQL(name), row, col.length, mysqlCutAdvice, col.source, col.source, col.source, col.length)
	}
	return nil
}

// MySQLKeyRange compares a key's columns with key values, as the copy
// passes them from one chunk to the next.
type MySQLKeyRange struct {
	cols []mysqlKeyColumn
}

// MySQLPreparer prepares statements: a *sql.DB, *sql.Conn or *sql.Tx.
type MySQLPreparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// QueryKey runs q, which selects the key's columns (Select), and returns
// its row's values, or nil when it returns none. It runs q as a prepared
// statement, whose binary results keep each key value's type (int64,
// float64...) for the next queries' arguments.
func (k MySQLKeyRange) QueryKey(ctx context.Context, p MySQLPreparer, q string, args ...any) ([]any, error) {
	st, err := p.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	vals := make([]any, k.Len())
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	switch err := st.QueryRowContext(ctx, args...).Scan(ptrs...); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return vals, nil
}

// mysqlKeyColumn is one column of the chunking key.
type mysqlKeyColumn struct {
	name  string // quoted column
	expr  string // what a bound query selects
	param string // placeholder expression comparing with the column
}

// Len is the number of the key's columns.
func (k MySQLKeyRange) Len() int { return len(k.cols) }

// text renders key values of the key's columns for a message:
// "(`a`, `b`) = (1, "x")".
func (k MySQLKeyRange) text(vals []any) string {
	names := make([]string, len(k.cols))
	for i, c := range k.cols {
		names[i] = c.name
	}
	shown := make([]string, len(vals))
	for i, v := range vals {
		if b, ok := v.([]byte); ok {
			v = string(b)
		}
		if s, ok := v.(string); ok {
			shown[i] = strconv.Quote(s)
		} else {
			shown[i] = fmt.Sprint(v)
		}
	}
	return "(" + strings.Join(names, ", ") + ") = (" + strings.Join(shown, ", ") + ")"
}

// Select is what a query reading key values selects: the key's columns,
// ENUM, SET and BIT ones as numbers.
func (k MySQLKeyRange) Select() []string {
	out := make([]string, len(k.cols))
	for i, c := range k.cols {
		out[i] = c.expr
	}
	return out
}

// OrderBy is the key's columns, each followed by suffix (" DESC", or "").
func (k MySQLKeyRange) OrderBy(suffix string) string {
	out := make([]string, len(k.cols))
	for i, c := range k.cols {
		out[i] = c.name + suffix
	}
	return strings.Join(out, ", ")
}

// Cond is the condition key > vals (op ">") or key <= vals (op "<",
// inclusive), expanded column by column so that MariaDB range-optimises it.
func (k MySQLKeyRange) Cond(vals []any, op string, inclusive bool) (string, []any) {
	var args []any
	terms := make([]string, len(k.cols))
	for i, c := range k.cols {
		var t []string
		for j := range i {
			t = append(t, k.cols[j].name+" = "+k.cols[j].param)
			args = append(args, vals[j])
		}
		last := op
		if inclusive && i == len(k.cols)-1 {
			last += "="
		}
		t = append(t, c.name+" "+last+" "+c.param)
		args = append(args, vals[i])
		terms[i] = strings.Join(t, " AND ")
	}
	if len(k.cols) == 1 {
		return terms[0], args
	}
	// A leading bound on the first column gives the optimiser a range.
	first := k.cols[0].name + " " + op + "= " + k.cols[0].param
	return first + " AND (" + strings.Join(terms, " OR ") + ")", append([]any{vals[0]}, args...)
}

// Exec runs q, a statement of the copy (a chunk's INSERT … SELECT), with
// args in tx, and then then, which reads its warnings; with
// ALLOW_INVALID_DATES in the session's sql_mode when the plan changes a DATE
// to a DATETIME or back (mysqlCopiesInvalidDates), set back after then (a
// SET clears the warnings).
func (c *MySQLCopy) Exec(ctx context.Context, tx *sql.Tx, q string, args []any, then func() error) (res sql.Result, err error) {
	if c.invalidDates {
		var mode string
		if err := tx.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode").Scan(&mode); err != nil {
			return nil, fmt.Errorf("read the session's sql_mode: %w", err)
		}
		stmtMode, err := MySQLStatementMode(mode, false, true)
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, "SET SESSION sql_mode = "+stmtMode); err != nil {
			return nil, fmt.Errorf("allow the invalid dates the ALTER keeps: %w", err)
		}
		defer func() {
			// mode is MySQLStatementMode's, which checked its characters.
			if _, rerr := tx.ExecContext(context.WithoutCancel(ctx), "SET SESSION sql_mode = '"+mode+"'"); rerr != nil && err == nil {
				res, err = nil, fmt.Errorf("set the session's sql_mode back: %w", rerr)
			}
		}()
	}
	if res, err = tx.ExecContext(ctx, q, args...); err != nil {
		var me *mysql.MySQLError
		if c.datesChecked && errors.As(err, &me) && me.Number == 1292 {
			return nil, fmt.Errorf("%w (%w)", ErrMySQLInvalidDates, err)
		}
		return nil, err
	}
	return res, then()
}
