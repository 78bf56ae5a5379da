package table

import "errors"

// Column is one column as the catalog describes it.
type Column struct {
	Name       string
	DataType   string // base type, lower case: "int", "varchar", "json", "numeric", "text[]"...
	ColumnType string // full declared type: "int(10) unsigned", "character varying(20)"
	Nullable   bool
	Unsigned   bool   // MySQL integer UNSIGNED
	Charset    string // MySQL character set of a text column ("" otherwise)
	// Collation (MySQL) is a text column's collation ("" otherwise).
	Collation string
	Generated bool // computed by the database: never written by osc
	// Default (MySQL) is the column's DEFAULT as information_schema shows it;
	// NoDefault is set when it has none (nor AUTO_INCREMENT).
	Default   string
	NoDefault bool
	// AutoIncrement (MySQL): the column is AUTO_INCREMENT.
	AutoIncrement bool
	// Expression (MySQL) is a generated column's expression as
	// information_schema shows it.
	Expression string
	// Members (MySQL) are the exact bytes of a CHARACTER SET binary ENUM's
	// or SET's members, which information_schema shows lossily
	// (readMySQLMembers); nil otherwise.
	Members []string
}

// Table is a table and its columns in ordinal order.
type Table struct {
	Schema  string // MySQL database or PostgreSQL schema
	Name    string
	Columns []Column
	// HashColumns (MariaDB) counts the hidden columns that follow Columns
	// in the table's binlog row images: one hash (DB_ROW_HASH_n) for each
	// UNIQUE key the server keeps as a hash (a "long unique": over a
	// TEXT/BLOB column or declared USING HASH). The catalog does not list
	// them; nothing but the binlog shows them.
	HashColumns int
}

// ColumnIndex returns the position of the named column, or -1.
func (t *Table) ColumnIndex(name string) int {
	for i, c := range t.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// ColumnMap maps one original column to the shadow column that receives it.
type ColumnMap struct {
	Source      string // name in the original table
	Shadow      string // name in the shadow table (differs after a rename)
	SourceIndex int    // position in Plan.Source.Columns (and in row images)
	// Expr is the shadow column's value as SQL over a row of the original
	// (PostgreSQL: from an ALTER COLUMN … TYPE … USING), stored with the
	// assignment cast to the shadow column's type: the original's columns are
	// in scope under their own names, and the row's relation under the
	// original table's name, unqualified. "" means the column Source itself.
	Expr string
	// Reads holds the positions in Plan.Source.Columns of the columns Expr
	// reads (set with Expr).
	Reads []int
}

// Inputs returns the positions in Plan.Source.Columns of the columns the
// shadow column's value is computed from.
func (m ColumnMap) Inputs() []int {
	if m.Expr == "" {
		return []int{m.SourceIndex}
	}
	return m.Reads
}

// ColumnFill is a shadow column and the SQL expression (no placeholders)
// whose value the copy and the applier write into it.
type ColumnFill struct {
	Shadow string
	Expr   string
}

// Plan is what the migration will do, fixed once the shadow table exists.
type Plan struct {
	Source *Table // the original table
	Shadow *Table // the shadow table, with the --alter applied

	OldName       string // name the original gets at cut-over (_t_del / _t_old)
	ChangelogName string // MySQL changelog table (_t_ghc); "" when unused

	// Key is the chunking and apply key: a PRIMARY KEY or a non-null UNIQUE key
	// present in both tables, as column names of the original.
	Key []string
	// KeyIndex holds the positions of Key in Source.Columns (and row images).
	KeyIndex []int
	// RowKey, when set, is the key that identifies a row in the shadow,
	// as column names of the original, where Key is the original's only:
	// an --alter that widens the key leaves no key in both tables, and the
	// applier and the replay window then tell rows apart by a unique key of
	// the shadow whose columns contain Key's (see sharedKey). nil: Key.
	RowKey []string
	// RowKeyIndex holds the positions of RowKey in Source.Columns.
	RowKeyIndex []int
	// Renumbered (MySQL) is the original's column that becomes
	// AUTO_INCREMENT, when a plain ALTER would give some of its values new
	// numbers (see MySQLRenumbered); nil otherwise.
	Renumbered *MySQLRenumbered
	// KeyIndexName (MySQL) is the original's index on Key, which the copy
	// reads through (FORCE INDEX): the one the plan chose, never an IGNORED
	// index on the same columns.
	KeyIndexName string
	// NewUnique lists the shadow's unique keys that no unique key of the
	// original implies (see UniqueKey).
	NewUnique []UniqueKey
	// Mapping lists every column copied from the original to the shadow, in
	// original column order; generated columns on either side are excluded.
	Mapping []ColumnMap

	// Fills are the shadow columns no original column fills whose value osc
	// writes itself, as the ALTER would fill them (MySQL: see mysqlFill;
	// PostgreSQL: the value an added column's ADD COLUMN gives existing rows,
	// see pgMissingValue and postgres_added.go).
	Fills []ColumnFill

	// TimeZone (MySQL) is the server's global time_zone, in which values are
	// converted between TIMESTAMP and other types (see MySQLTimeConversion).
	TimeZone string
	// AlterTime (MySQL) is when the plain ALTER is taken to run, UTC,
	// 'YYYY-MM-DD HH:MM:SS.ffffff': a column it adds with DEFAULT
	// CURRENT_TIMESTAMP gets that one value in every row (see mysqlFill).
	AlterTime string
	// NullTimestampNow (MySQL) says that the server's ALTER stores a NULL
	// into a TIMESTAMP NOT NULL column as its clock's time, AlterTime
	// (MariaDB; MySQL only under explicit_defaults_for_timestamp=OFF):
	// see MySQLNullToTimestamp.
	NullTimestampNow bool
	// CarryAutoIncrement (MySQL): the new table takes the original's
	// AUTO_INCREMENT counter at the cut-over, as a plain ALTER TABLE keeps
	// it: the original has one and the --alter sets none.
	CarryAutoIncrement bool
	// SetsAutoIncrement (MySQL): the --alter sets AUTO_INCREMENT to
	// SetAutoIncrement (0 too). The cut-over sets it again on the drained
	// shadow: InnoDB then makes the counter the highest id + 1 where that is
	// more, as the plain ALTER does over its rows, and not past the ids of
	// rows the shadow held and the writers deleted since.
	SetsAutoIncrement bool
	SetAutoIncrement  uint64

	EstimatedRows int64
	// Notes are lines the dry run reports (added/dropped columns, renames,
	// locks to be taken, long transactions...).
	Notes []string
}

// Usable reports whether a plan has what copying and applying need: both
// tables, a key whose positions are known, and a column mapping.
func (p *Plan) Usable() error {
	if p == nil || p.Source == nil || p.Shadow == nil || len(p.Key) == 0 || len(p.Key) != len(p.KeyIndex) || len(p.Mapping) == 0 {
		return errors.New("the plan has no source, shadow, key or column mapping")
	}
	return p.identityUsable()
}

// NullTimestampTime is the time a NULL into a TIMESTAMP NOT NULL column
// becomes (MySQLNullToTimestamp): AlterTime where the server's ALTER gives
// such a NULL its clock's time, else "".
func (p *Plan) NullTimestampTime() string {
	if !p.NullTimestampNow {
		return ""
	}
	return p.AlterTime
}
