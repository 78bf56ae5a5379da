package table

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// testSQLMode is a session sql_mode under which the server reads quotes as
// osc's tokenizer does by default.
const testSQLMode = "STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO"

func TestParseMySQLAlter(t *testing.T) {
	a, err := ParseMySQLAlter("t", "ADD COLUMN x INT, DROP COLUMN y, CHANGE COLUMN a b BIGINT NOT NULL, "+
		"RENAME COLUMN c TO d, CHANGE e e VARCHAR(10), MODIFY f INT, DROP COLUMN g, ADD COLUMN g TEXT, AUTO_INCREMENT = 5;", testSQLMode)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"a": "b", "c": "d"}; !reflect.DeepEqual(a.Renames, want) {
		t.Errorf("renames %v, want %v", a.Renames, want)
	}
	if want := map[string]bool{"y": true, "g": true}; !reflect.DeepEqual(a.Dropped, want) {
		t.Errorf("dropped %v, want %v", a.Dropped, want)
	}
	if a.unread != nil {
		t.Errorf("unread: %v", a.unread)
	}
	if want := "ADD COLUMN x INT, DROP COLUMN y, CHANGE COLUMN a b BIGINT NOT NULL, " +
		"RENAME COLUMN c TO d, CHANGE e e VARCHAR(10), MODIFY f INT, DROP COLUMN g, ADD COLUMN g TEXT, AUTO_INCREMENT = 5"; a.Text != want {
		t.Errorf("text %q, want %q", a.Text, want)
	}
	for col, want := range map[string]string{"A": "b", "c": "d", "y": "", "g": "", "e": "e", "z": "z"} {
		if got := a.ShadowName(col); got != want {
			t.Errorf("ShadowName(%s) = %q, want %q", col, got, want)
		}
	}
}

// TestParseMySQLAlterClauses: renames and drops are read from the clauses
// that make them, whatever the quoting, comments and MariaDB syntax around
// them; nothing else is read as one.
func TestParseMySQLAlterClauses(t *testing.T) {
	for _, tc := range []struct {
		alter   string
		renames map[string]string
		dropped []string
	}{
		// MariaDB syntax the TiDB parser refused.
		{"CONVERT TO CHARACTER SET latin2, MODIFY c VARCHAR(10) CHARACTER SET cp1250", nil, nil},
		{"ADD COLUMN x INT INVISIBLE, ADD INDEX i (c) IGNORED, ADD SPATIAL INDEX (g), ADD COLUMN b TEXT COMPRESSED", nil, nil},
		{"ADD COLUMN r VARCHAR(20) DEFAULT REPEAT('x', 5), ADD COLUMN s INT DEFAULT (1+1), ALGORITHM=NOCOPY", nil, nil},
		{"ADD COLUMN v INT AS (c+1) PERSISTENT, ADD COLUMN u UUID, ADD SYSTEM VERSIONING, DROP CONSTRAINT IF EXISTS ck", nil, nil},
		// Quoting: backticks with spaces and doubled backticks, a column
		// named change, double quotes, non-ASCII names.
		{"CHANGE `change` `my change` INT", map[string]string{"change": "my change"}, nil},
		{"CHANGE COLUMN `a``b` `c d` INT, RENAME COLUMN \"e f\" TO `g`", map[string]string{"a`b": "c d", "e f": "g"}, nil},
		{"RENAME COLUMN größe TO Größe2, DROP `drop`, DROP COLUMN `column`", map[string]string{"größe": "Größe2"}, []string{"drop", "column"}},
		{"CHANGE COLUMN IF EXISTS a b INT, RENAME COLUMN IF EXISTS c TO d, DROP COLUMN IF EXISTS e, DROP IF EXISTS f",
			map[string]string{"a": "b", "c": "d"}, []string{"e", "f"}},
		{"CHANGE Name NAME VARCHAR(10)", nil, nil}, // a change of case only is no rename
		// Commas, keywords and quotes inside strings, parentheses and
		// comments do not start clauses.
		{"ADD COLUMN x VARCHAR(10) DEFAULT 'a, DROP COLUMN y', MODIFY e ENUM('x,y', 'it''s', 'back\\', 'q\\'') NOT NULL", nil, nil},
		{"ADD COLUMN x INT /* , DROP COLUMN y */, ADD COLUMN z INT -- , DROP COLUMN w\n, ADD COLUMN v INT # , DROP u\n", nil, nil},
		{"ADD COLUMN x INT DEFAULT 1--1\n, DROP COLUMN y", nil, []string{"y"}}, // --1 is no comment
		{"ADD CONSTRAINT ck CHECK (a IN (1, 2)), ADD INDEX (a, b), DROP INDEX i, DROP KEY k, DROP PRIMARY KEY, " +
			"DROP FOREIGN KEY f, DROP CONSTRAINT c, DROP SYSTEM VERSIONING, DROP PERIOD FOR SYSTEM_TIME", nil, nil},
		{"RENAME INDEX a TO b, RENAME KEY c TO d, ALTER COLUMN e DROP DEFAULT, ALTER INDEX i NOT IGNORED", nil, nil},
		// The lock wait option before the first clause.
		{"WAIT 5 CHANGE a b INT", map[string]string{"a": "b"}, nil},
		{"WAIT 5.5 DROP a, WAIT .5", nil, []string{"a"}},
		{"WAIT 1e+1 CHANGE a b INT", map[string]string{"a": "b"}, nil},
		{"WAIT 0x10 DROP COLUMN `0x10`", nil, []string{"0x10"}},
		{"NOWAIT DROP COLUMN a", nil, []string{"a"}},
		{"drop column a, change column b c int, rename column d to e", map[string]string{"b": "c", "d": "e"}, []string{"a"}},
		{"DROP \u212Aey", nil, []string{"\u212Aey"}}, // a name with a Kelvin sign, not DROP KEY; not folded (the server folds it to k: osc refuses then, from the result)
	} {
		a, err := ParseMySQLAlter("t", tc.alter, testSQLMode)
		if err != nil {
			t.Errorf("%q: %v", tc.alter, err)
			continue
		}
		if a.unread != nil {
			t.Errorf("%q: unread: %v", tc.alter, a.unread)
		}
		want := map[string]bool{}
		for _, d := range tc.dropped {
			want[d] = true
		}
		if tc.renames == nil {
			tc.renames = map[string]string{}
		}
		if !reflect.DeepEqual(a.Renames, tc.renames) || !reflect.DeepEqual(a.Dropped, want) {
			t.Errorf("%q: renames %v dropped %v, want %v %v", tc.alter, a.Renames, a.Dropped, tc.renames, want)
		}
	}
}

// TestParseMySQLAlterSetsAutoIncrement: the table option AUTO_INCREMENT,
// not the column attribute, and its value (-1: none set).
func TestParseMySQLAlterSetsAutoIncrement(t *testing.T) {
	for alter, want := range map[string]int64{
		"AUTO_INCREMENT = 1000":                              1000,
		"ADD COLUMN n INT, auto_increment=5":                 5,
		"ENGINE=InnoDB AUTO_INCREMENT 7":                     7,
		"MODIFY id INT NOT NULL AUTO_INCREMENT":              -1,
		"MODIFY id INT AUTO_INCREMENT, ADD COLUMN n INT":     -1,
		"ADD COLUMN id2 INT AUTO_INCREMENT PRIMARY KEY":      -1,
		"ADD COLUMN n INT COMMENT 'AUTO_INCREMENT = 5'":      -1,
		"MODIFY id BIGINT AUTO_INCREMENT, AUTO_INCREMENT=10": 10,
		"AUTO_INCREMENT = 1":                                 1,
		"ADD COLUMN n INT, AUTO_INCREMENT = 0":               0,
		"MODIFY id INT AUTO_INCREMENT":                       -1,
	} {
		a, err := ParseMySQLAlter("t", alter, testSQLMode)
		if err != nil {
			t.Errorf("%s: %v", alter, err)
			continue
		}
		got := int64(-1)
		if a.SetsAutoIncrement {
			got = int64(a.AutoIncrement)
		}
		if got != want {
			t.Errorf("%s: AUTO_INCREMENT %d, want %d", alter, got, want)
		}
	}
}

// TestParseMySQLAlterUnread: a clause osc needs and cannot read is not an
// error yet (the server's error comes first), but is kept for after the
// server accepted the alter.
func TestParseMySQLAlterUnread(t *testing.T) {
	for _, tc := range []struct{ alter, want string }{
		{"CHANGE COLUMN a", "CHANGE [COLUMN] old_name new_name definition"},
		{"CHANGE a 'b' INT", "CHANGE [COLUMN] old_name new_name definition"},
		{"RENAME COLUMN a b", "RENAME COLUMN old_name TO new_name"},
		{"ADD COLUMN x INT, DROP COLUMN (a)", "osc cannot read the --alter clause \"DROP COLUMN (a)\""},
	} {
		a, err := ParseMySQLAlter("t", tc.alter, testSQLMode)
		if err != nil {
			t.Errorf("%q: %v", tc.alter, err)
			continue
		}
		if a.unread == nil || !strings.Contains(a.unread.Error(), tc.want) {
			t.Errorf("%q: unread %v, want one containing %q", tc.alter, a.unread, tc.want)
		}
	}
}

func TestParseMySQLAlterRefusals(t *testing.T) {
	for _, tc := range []struct{ alter, want string }{
		{"  ", "--alter is empty"},
		{" ; ", "--alter is empty"},
		{"-- nothing", "--alter is empty"},
		{"ALTER TABLE t ADD COLUMN x INT", "not a whole statement"},
		{"alter online ignore table t ADD COLUMN x INT", "not a whole statement"},
		{"ADD COLUMN x INT, RENAME TO u", "renames the table (RENAME TO u)"},
		{"RENAME AS u", "renames the table (RENAME AS u)"},
		{"RENAME u", "renames the table"},
		{"RENAME `column`", "renames the table"},
		{"ADD COLUMN x INT; DROP TABLE t", "holds a ';' before"},
		{"ADD COLUMN x INT /*!, DROP COLUMN y */", "executable comment"},
		{"ADD COLUMN x INT /*M!100000 , DROP COLUMN y */", "executable comment"},
		{"ADD COLUMN x INT /* , DROP COLUMN y", "syntax error: an unterminated comment"},
		{"ADD COLUMN x VARCHAR(3) DEFAULT 'abc", "syntax error: an unterminated ' quote"},
		{"CHANGE `a b INT", "syntax error: an unterminated ` quote"},
		{"ADD COLUMN x VARCHAR(3) DEFAULT 'ab\\'", "syntax error: an unterminated ' quote"},
		{"ADD COLUMN x INT)", "syntax error: an unbalanced ')'"},
		{"ADD COLUMN x DECIMAL(3", "syntax error: an unclosed '('"},
		{"DROP PARTITION p0", "drops, empties or exchanges partitions (DROP PARTITION p0)"},
		{"TRUNCATE PARTITION p0", "drops, empties or exchanges partitions"},
		{"EXCHANGE PARTITION p0 WITH TABLE u", "drops, empties or exchanges partitions"},
		{"CONVERT TABLE u TO PARTITION p2 VALUES LESS THAN (300)", "moves a partition to or from another table (CONVERT TABLE u"},
		{"ADD COLUMN x INT, convert partition p0 to table u", "moves a partition to or from another table"},
		{"DISCARD TABLESPACE", "discards or imports a tablespace"},
		{"IMPORT PARTITION p0 TABLESPACE", "discards or imports a tablespace"},
		{"DISCARD PARTITION ALL TABLESPACE", "discards or imports a tablespace"},
	} {
		_, err := ParseMySQLAlter("t", tc.alter, testSQLMode)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.alter, err, tc.want)
		}
	}
}

// TestParseMySQLAlterSQLMode: quotes are read as the session's sql_mode has
// the server read them, so the clauses split where the server's do.
func TestParseMySQLAlterSQLMode(t *testing.T) {
	const alter = `MODIFY x VARCHAR(9) DEFAULT 'a\', DROP COLUMN y, COMMENT 'b' -- '`
	for _, tc := range []struct {
		mode    string
		dropped map[string]bool
	}{
		{"STRICT_ALL_TABLES", map[string]bool{}}, // 'a\', DROP COLUMN y, COMMENT ' is one string
		{"STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES", map[string]bool{"y": true}},
	} {
		a, err := ParseMySQLAlter("t", alter, tc.mode)
		if err != nil {
			t.Errorf("%s: %v", tc.mode, err)
			continue
		}
		if !reflect.DeepEqual(a.Dropped, tc.dropped) {
			t.Errorf("%s: dropped %v, want %v", tc.mode, a.Dropped, tc.dropped)
		}
	}
	// ANSI_QUOTES: "…" is an identifier, where a backslash is itself.
	a, err := ParseMySQLAlter("t", `RENAME COLUMN "a\" TO b, DROP COLUMN "c"`, "ANSI_QUOTES")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Renames, map[string]string{`a\`: "b"}) || !reflect.DeepEqual(a.Dropped, map[string]bool{"c": true}) {
		t.Errorf("ANSI_QUOTES: renames %v dropped %v", a.Renames, a.Dropped)
	}
}

func TestTokenizeMySQL(t *testing.T) {
	toks, err := tokenizeMySQL("CHANGE `a``b` \"c\"\"d\" x'00' 'it''s\\'' -- c\n#d\n/* e */ 1.5e3--2 -- ", sqlLexMode{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range toks {
		got = append(got, fmt.Sprintf("%d:%s", tk.kind, tk.text))
	}
	want := []string{"0:CHANGE", "1:a`b", "1:c\"d", "0:x", "2:00", "2:it's\\'", "0:1", "3:.", "0:5e3", "3:-", "3:-", "0:2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tokens\n got %q\nwant %q", got, want)
	}
}

func testSource() (*Table, []MySQLIndex) {
	src := &Table{Schema: "db", Name: "t", Columns: []Column{
		{Name: "id", DataType: "int", ColumnType: "int(11)"},
		{Name: "email", DataType: "varchar", ColumnType: "varchar(100)"},
		{Name: "name", DataType: "varchar", ColumnType: "varchar(100)", Nullable: true},
		{Name: "note", DataType: "text", ColumnType: "text", Nullable: true},
	}}
	idx := []MySQLIndex{
		{Name: "PRIMARY", Primary: true, Unique: true, Columns: []string{"id"}, SubParts: []int{0}},
		{Name: "uk_email", Unique: true, Columns: []string{"email"}, SubParts: []int{0}},
		{Name: "uk_name", Unique: true, Columns: []string{"name"}, SubParts: []int{20}, Nullable: true},
		{Name: "k_note", Columns: []string{"note"}, SubParts: []int{10}, Nullable: true},
	}
	return src, idx
}

// TestImpliedUnique: a unique key of the shadow is accepted only when some
// unique key of the original implies it.
func TestImpliedUnique(t *testing.T) {
	src, idx := testSource()
	key := func(cols ...string) MySQLIndex {
		ix := MySQLIndex{Unique: true}
		for _, c := range cols {
			name, sub, _ := strings.Cut(c, ":")
			n := 0
			if sub != "" {
				n, _ = strconv.Atoi(sub)
			}
			ix.Columns = append(ix.Columns, name)
			ix.SubParts = append(ix.SubParts, n)
		}
		return ix
	}
	for _, tc := range []struct {
		alter string
		u     MySQLIndex
		ok    bool
	}{
		{"ADD UNIQUE KEY (note(10))", key("note:10"), false},          // not unique before
		{"ADD COLUMN x INT UNIQUE", key("x"), false},                  // a new column
		{"ADD UNIQUE KEY (id, note(10))", key("id", "note:10"), true}, // contains the PRIMARY KEY
		{"ADD UNIQUE KEY (note(5), email)", key("note:5", "email"), true},
		{"ADD UNIQUE KEY (name(10))", key("name:10"), false}, // shorter prefix than uk_name
		{"ADD UNIQUE KEY (name(30))", key("name:30"), true},  // longer prefix
		{"ADD UNIQUE KEY (name)", key("name"), true},         // whole value
		{"RENAME COLUMN email TO mail, ADD UNIQUE (mail)", key("mail"), true},
		{"DROP COLUMN email, ADD COLUMN email INT, ADD UNIQUE (email)", key("email"), false}, // a new column under the old name
		{"MODIFY email VARCHAR(200)", key(""), false},                                        // an expression part

	} {
		a, err := ParseMySQLAlter("t", tc.alter, testSQLMode)
		if err != nil {
			t.Fatalf("%q: %v", tc.alter, err)
		}
		if got := impliedUnique(tc.u, a.shadowToSource(src), idx, nil); got != tc.ok {
			t.Errorf("%q: implied %v, want %v", tc.alter, got, tc.ok)
		}
	}
}

func TestBuildMySQLPlan(t *testing.T) {
	src, idx := testSource()
	src.Columns = append(src.Columns, Column{Name: "g", DataType: "int", ColumnType: "int(11)", Generated: true})
	a, err := ParseMySQLAlter("t", "CHANGE name full_name VARCHAR(200), DROP COLUMN note, ADD COLUMN age INT", testSQLMode)
	if err != nil {
		t.Fatal(err)
	}
	shadow := &Table{Schema: "db", Name: "_t_gho", Columns: []Column{
		{Name: "id", DataType: "int", ColumnType: "int(11)"},
		{Name: "email", DataType: "varchar", ColumnType: "varchar(100)"},
		{Name: "full_name", DataType: "varchar", ColumnType: "varchar(200)", Nullable: true},
		{Name: "g", DataType: "int", ColumnType: "int(11)", Generated: true},
		{Name: "age", DataType: "int", ColumnType: "int(11)", Nullable: true},
	}}
	sidx := []MySQLIndex{
		{Name: "PRIMARY", Primary: true, Unique: true, Columns: []string{"id"}, SubParts: []int{0}},
		{Name: "uk_email", Unique: true, Columns: []string{"email"}, SubParts: []int{0}},
		{Name: "uk_name", Unique: true, Columns: []string{"full_name"}, SubParts: []int{20}, Nullable: true},
	}
	in := MySQLPlanInput{Source: src, Shadow: shadow, SourceIndexes: idx, ShadowIndexes: sidx, Alter: a,
		OldName: "_t_del", ChangelogName: "_t_ghc", EstimatedRows: 42,
		SourceCollations: map[string]string{"name": "utf8mb3_bin"}, ShadowCollations: map[string]string{"full_name": "utf8mb4_bin"}}
	p, err := BuildMySQLPlan(in)
	if err != nil {
		t.Fatal(err)
	}
	wantMap := []ColumnMap{
		{Source: "id", Shadow: "id", SourceIndex: 0},
		{Source: "email", Shadow: "email", SourceIndex: 1},
		{Source: "name", Shadow: "full_name", SourceIndex: 2},
	}
	if !reflect.DeepEqual(p.Mapping, wantMap) {
		t.Errorf("mapping %+v, want %+v", p.Mapping, wantMap)
	}
	if !reflect.DeepEqual(p.Key, []string{"id"}) || !reflect.DeepEqual(p.KeyIndex, []int{0}) {
		t.Errorf("key %v %v, want [id] [0]", p.Key, p.KeyIndex)
	}
	if p.OldName != "_t_del" || p.ChangelogName != "_t_ghc" || p.EstimatedRows != 42 || p.Source != src || p.Shadow != shadow {
		t.Errorf("plan fields %+v", p)
	}
	wantNotes := []string{
		"rename column name -> full_name",
		"change column full_name: varchar(100) -> varchar(200)",
		"drop column note (its data will be lost)",
		"add column age",
		"key: PRIMARY (id)",
		"rows: ~42",
	}
	if !reflect.DeepEqual(p.Notes, wantNotes) {
		t.Errorf("notes\n got %q\nwant %q", p.Notes, wantNotes)
	}

	// Without the PRIMARY KEY in the shadow, the NOT NULL unique key serves.
	in.ShadowIndexes = sidx[1:]
	p, err = BuildMySQLPlan(in)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Key, []string{"email"}) || !reflect.DeepEqual(p.KeyIndex, []int{1}) {
		t.Errorf("key %v %v, want [email] [1]", p.Key, p.KeyIndex)
	}

	// An ignored unique key is never the key, even before a usable one.
	in.SourceIndexes = []MySQLIndex{
		{Name: "a_email", Unique: true, Columns: []string{"email"}, SubParts: []int{0}, Ignored: true},
		{Name: "b_id", Unique: true, Columns: []string{"id"}, SubParts: []int{0}},
	}
	in.ShadowIndexes = []MySQLIndex{idx[1], {Name: "b_id", Unique: true, Columns: []string{"id"}, SubParts: []int{0}}}
	if p, err = BuildMySQLPlan(in); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Key, []string{"id"}) {
		t.Errorf("key %v, want [id] (a_email is ignored)", p.Key)
	}
	in.SourceIndexes = idx

	// Neither: refused.
	in.ShadowIndexes = sidx[2:]
	if _, err := BuildMySQLPlan(in); err == nil || !strings.Contains(err.Error(), "no key is usable in both tables") {
		t.Errorf("error %v, want no usable key", err)
	}

	// A shadow unique key the original does not guarantee: refused, however
	// the alter made it.
	in.ShadowIndexes = append(sidx[:1:1], MySQLIndex{Name: "uk_age", Unique: true, Columns: []string{"age"}, SubParts: []int{0}, Nullable: true})
	if _, err := BuildMySQLPlan(in); err == nil || !strings.Contains(err.Error(), "UNIQUE key uk_age (age)") {
		t.Errorf("error %v, want new unique key refused", err)
	}

	// A unique key over a column whose change may merge values: refused,
	// as a new unique key. The PRIMARY KEY over a narrowed column is
	// neither implied nor the key.
	in.ShadowIndexes = sidx
	in.ShadowCollations = map[string]string{"full_name": "utf8mb4_general_ci"}
	if _, err := BuildMySQLPlan(in); err == nil || !strings.Contains(err.Error(),
		"changes column full_name (varchar(100) -> varchar(200), collation utf8mb3_bin -> utf8mb4_general_ci) of the UNIQUE key uk_name (full_name(20))") {
		t.Errorf("error %v, want the collation change refused", err)
	}
	in.ShadowCollations = map[string]string{"full_name": "utf8mb4_bin"}
	shadow.Columns[0].ColumnType = "float"
	if _, err := BuildMySQLPlan(in); err == nil || !strings.Contains(err.Error(), "changes column id (int(11) -> float) of the PRIMARY KEY PRIMARY (id)") {
		t.Errorf("error %v, want the narrowed PRIMARY KEY refused", err)
	}
	in.ShadowIndexes = sidx[1:]
	if p, err := BuildMySQLPlan(in); err != nil || !reflect.DeepEqual(p.Key, []string{"email"}) {
		t.Errorf("key %v, error %v; want [email], the narrowed id not the key", p, err)
	}
	shadow.Columns[0].ColumnType = "bigint(20)"
	in.ShadowIndexes = sidx
	if p, err := BuildMySQLPlan(in); err != nil || !reflect.DeepEqual(p.Key, []string{"id"}) {
		t.Errorf("key %v, error %v; want [id]: a wider type keeps the key", p, err)
	}
	shadow.Columns[0].ColumnType = "int(11)"

	// An original column the altered table lacks under the name osc read
	// from the alter: refused, never guessed.
	in.ShadowIndexes = sidx
	for _, tc := range []struct{ alter, want string }{
		{"DROP COLUMN note, ADD COLUMN age INT", "the altered table has no column name, but osc read no clause of the --alter that drops or renames it"},
		{"CHANGE name nom VARCHAR(200), DROP COLUMN note", "osc read the --alter as renaming column name to nom, but the altered table has no column nom"},
		{"CHANGE name full_name VARCHAR(200), CHANGE note full_name TEXT", "giving two columns of the original the name full_name"},
	} {
		if in.Alter, err = ParseMySQLAlter("t", tc.alter, testSQLMode); err != nil {
			t.Fatal(err)
		}
		if _, err := BuildMySQLPlan(in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.alter, err, tc.want)
		}
	}
}

// TestMySQLEqualityKept: only the same type or a clearly widening change
// keeps distinct values distinct.
func TestMySQLEqualityKept(t *testing.T) {
	for _, tc := range []struct {
		from, to             string
		fromColl, toColl, tz string
		want                 bool
	}{
		{"int(11)", "int(11)", "", "", "Europe/Berlin", true},
		{"int(11)", "bigint(20)", "", "", "", true},
		{"int(10) unsigned", "bigint(20)", "", "", "", true},
		// Narrower integers and DECIMALs keep every value that fits, and
		// fail (strict) on one that does not.
		{"int(10) unsigned", "int(11)", "", "", "", true},
		{"int(11)", "int(10) unsigned", "", "", "", true},
		{"bigint(20)", "int(11)", "", "", "", true},
		{"int(11)", "smallint(6)", "", "", "", true},
		{"int(11)", "decimal(10,0)", "", "", "", true},
		{"int(11)", "decimal(12,3)", "", "", "", true},
		{"bigint(20)", "decimal(5,2) unsigned", "", "", "", true},
		{"int(11)", "double", "", "", "", false},
		{"bigint(20)", "float", "", "", "", false},
		{"decimal(10,2)", "decimal(10,1)", "", "", "", false},
		{"decimal(10,2)", "decimal(12,3)", "", "", "", true},
		{"decimal(10,2)", "decimal(9,2)", "", "", "", true},
		{"decimal(10,2)", "decimal(6,2) unsigned", "", "", "", true},
		{"decimal(10,2) unsigned", "decimal(6,1)", "", "", "", false},
		{"decimal(10,2)", "int(11)", "", "", "", false},
		{"float", "double", "", "", "", true},
		{"double", "float", "", "", "", false},
		{"datetime(6)", "datetime", "", "", "", false},
		{"datetime", "datetime(3)", "", "", "", true},
		{"date", "datetime", "", "", "", true},
		{"datetime", "date", "", "", "", false},
		{"timestamp", "datetime", "", "", "Europe/Berlin", false},
		{"timestamp", "datetime", "", "", "+02:00", true},
		{"datetime", "timestamp", "", "", "SYSTEM", false},
		{"time(3)", "time", "", "", "", false},
		{"enum('a','b','c')", "int(11)", "utf8mb4_general_ci", "", "", true},
		{"enum('a','b','c')", "smallint(5) unsigned", "utf8mb4_general_ci", "", "", true},
		{"enum('a','b','c')", "tinyint(4)", "utf8mb4_general_ci", "", "", false},
		{"set('x','y','z')", "tinyint(4)", "utf8mb4_general_ci", "", "", true},
		{"set('a','b','c','d','e','f','g','h')", "tinyint(4)", "utf8mb4_general_ci", "", "", false},
		{"set('a','b','c','d','e','f','g','h')", "tinyint(3) unsigned", "utf8mb4_general_ci", "", "", true},
		{"enum('a','b')", "varchar(10)", "utf8mb4_general_ci", "utf8mb4_general_ci", "", false},
		{"varchar(40)", "varchar(80)", "utf8mb4_bin", "utf8mb4_bin", "", true},
		{"varchar(40)", "varchar(20)", "utf8mb4_bin", "utf8mb4_bin", "", false},
		{"varchar(40)", "varchar(40)", "utf8mb4_bin", "utf8mb4_general_ci", "", false},
		{"varchar(40)", "varchar(40)", "utf8mb3_general_ci", "utf8mb4_general_ci", "", true},
		{"varchar(40)", "varchar(40)", "latin1_swedish_ci", "utf8mb4_general_ci", "", false},
		{"varchar(40)", "varchar(40)", "utf8mb4_general_ci", "utf8mb4_bin", "", true},
		{"varchar(40)", "varchar(40)", "utf8mb4_unicode_ci", "utf8mb4_nopad_bin", "", true},
		{"varchar(40)", "varchar(40)", "utf8mb4_bin", "utf8mb4_nopad_bin", "", true},
		{"varchar(40)", "varchar(40)", "utf8mb4_nopad_bin", "utf8mb4_bin", "", false},
		{"varchar(40)", "varchar(40)", "utf8mb4_general_nopad_ci", "utf8mb4_bin", "", false},
		{"varchar(40)", "varchar(40)", "utf8mb4_general_ci", "utf8mb4_general_nopad_ci", "", true},
		{"varchar(40)", "varchar(40)", "utf8mb4_general_nopad_ci", "utf8mb4_general_ci", "", false},
		{"varchar(40)", "varchar(40)", "utf8mb4_uca1400_ai_ci", "utf8mb4_uca1400_nopad_ai_ci", "", true},
		{"varchar(40)", "varchar(40)", "utf8mb4_unicode_ci", "utf8mb4_unicode_520_nopad_ci", "", false},
		{"varchar(40)", "varchar(40)", "utf8mb3_general_ci", "utf8mb4_bin", "", true},
		{"varchar(40)", "varchar(40)", "latin1_swedish_ci", "latin1_bin", "", true},
		{"varchar(40)", "varchar(40)", "latin1_swedish_ci", "utf8mb4_bin", "", false},
		{"varchar(40)", "varchar(40)", "utf16_general_ci", "utf16le_bin", "", false},
		{"varchar(40)", "varchar(40)", "utf8mb4_bin", "utf8mb4_general_ci", "", false},
		{"varchar(40)", "char(40)", "utf8mb4_nopad_bin", "utf8mb4_nopad_bin", "", false},
		{"varchar(40)", "char(40)", "utf8mb4_bin", "utf8mb4_bin", "", true},
		{"varchar(40)", "text", "utf8mb4_bin", "utf8mb4_bin", "", true},
		{"varchar(100)", "tinytext", "utf8mb4_bin", "utf8mb4_bin", "", false},
		{"text", "varchar(100)", "utf8mb4_bin", "utf8mb4_bin", "", false},
		{"binary(4)", "varbinary(4)", "", "", "", true},
		{"varbinary(4)", "binary(4)", "", "", "", false},
		{"enum('a','b')", "enum('a','b','c')", "utf8mb4_bin", "utf8mb4_bin", "", true},
		{"enum('a','b')", "enum('b','a')", "utf8mb4_bin", "utf8mb4_bin", "", false},
		// An integer's decimal digits, in any collation.
		{"int(11)", "varchar(20)", "", "utf8mb4_bin", "", true},
		{"bigint(20) unsigned", "char(5)", "", "utf8mb4_general_ci", "", true},
		{"int(5) unsigned zerofill", "text", "", "latin1_swedish_ci", "", true},
		{"smallint(6)", "binary(8)", "", "", "", true},
		{"decimal(10,2)", "varchar(20)", "", "utf8mb4_bin", "", false},
		{"varchar(20)", "int(11)", "utf8mb4_bin", "", "", false},
		// A text's bytes, in any collation; not padded with zero bytes.
		{"varchar(100)", "blob", "utf8mb4_general_ci", "", "", true},
		{"char(10)", "varbinary(40)", "latin1_swedish_ci", "", "", true},
		{"text", "tinyblob", "utf16_general_ci", "", "", true},
		{"varchar(10)", "varbinary(5)", "utf8mb4_general_nopad_ci", "", "", true},
		{"char(10)", "binary(40)", "utf8mb4_bin", "", "", false},
		{"enum('a')", "blob", "utf8mb4_bin", "", "", false},
	} {
		got := mysqlEqualityKept(Column{ColumnType: tc.from}, Column{ColumnType: tc.to}, tc.fromColl, tc.toColl, tc.tz)
		if got != tc.want {
			t.Errorf("%s (%s) -> %s (%s) in %q: %v, want %v", tc.from, tc.fromColl, tc.to, tc.toColl, tc.tz, got, tc.want)
		}
	}
}

func TestBuildMySQLPlanCompositeRenamedKey(t *testing.T) {
	src := &Table{Schema: "db", Name: "t", Columns: []Column{
		{Name: "a", ColumnType: "int"}, {Name: "b", ColumnType: "int"}, {Name: "v", ColumnType: "int"},
	}}
	idx := []MySQLIndex{{Name: "PRIMARY", Primary: true, Unique: true, Columns: []string{"a", "b"}, SubParts: []int{0, 0}}}
	a, err := ParseMySQLAlter("t", "RENAME COLUMN b TO bb", testSQLMode)
	if err != nil {
		t.Fatal(err)
	}
	shadow := &Table{Schema: "db", Name: "_t_gho", Columns: []Column{
		{Name: "a", ColumnType: "int"}, {Name: "bb", ColumnType: "int"}, {Name: "v", ColumnType: "int"},
	}}
	sidx := []MySQLIndex{{Name: "PRIMARY", Primary: true, Unique: true, Columns: []string{"a", "bb"}, SubParts: []int{0, 0}}}
	p, err := BuildMySQLPlan(MySQLPlanInput{Source: src, Shadow: shadow, SourceIndexes: idx, ShadowIndexes: sidx, Alter: a})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Key, []string{"a", "b"}) || !reflect.DeepEqual(p.KeyIndex, []int{0, 1}) {
		t.Errorf("key %v %v", p.Key, p.KeyIndex)
	}
}

func TestMySQLServerCheck(t *testing.T) {
	root := []string{"GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION", "GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION"}
	good := MySQLServer{Version: "10.11.6-MariaDB-log", LogBin: "1", BinlogFormat: "ROW", BinlogRowImage: "FULL", Grants: root}
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	if good.Flavor() != "mariadb" || (MySQLServer{Version: "8.0.36"}).Flavor() != "mysql" {
		t.Error("flavor")
	}
	for _, tc := range []struct {
		edit func(*MySQLServer)
		want string
	}{
		{func(s *MySQLServer) { s.LogBin = "0" }, "the binary log is off"},
		{func(s *MySQLServer) { s.BinlogFormat = "STATEMENT" }, "binlog_format is STATEMENT; osc needs ROW: SET GLOBAL binlog_format=ROW (and in my.cnf)"},
		{func(s *MySQLServer) { s.BinlogFormat = "MIXED" }, "binlog_format is MIXED"},
		{func(s *MySQLServer) { s.BinlogRowImage = "MINIMAL" }, "binlog_row_image is MINIMAL; osc needs FULL: SET GLOBAL binlog_row_image=FULL"},
		{func(s *MySQLServer) { s.Version, s.OrderCommits = "8.0.36", "0" }, "binlog_order_commits is OFF; osc needs transactions to commit in binary log order"},
		{func(s *MySQLServer) { s.MaxWriteLockCount = 1 }, "max_write_lock_count is 1; osc's cut-over needs its RENAME to go before the writers"},
		{func(s *MySQLServer) { s.Grants = []string{"GRANT SELECT, INSERT ON *.* TO `u`@`%`"} }, "lacks REPLICATION SLAVE and REPLICATION CLIENT"},
		{func(s *MySQLServer) {
			s.Grants = []string{"GRANT REPLICATION SLAVE ON *.* TO `u`@`%`", "GRANT ALL PRIVILEGES ON `osc_test`.* TO `u`@`%`"}
		}, "lacks REPLICATION CLIENT"},
	} {
		s := good
		tc.edit(&s)
		if err := s.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one containing %q", err, tc.want)
		}
	}
	for _, grants := range [][]string{
		{"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `u`@`%`"},
		{"GRANT SELECT,REPLICATION SLAVE,REPLICATION CLIENT ON *.* TO `u`@`%`"},
		{"GRANT USAGE ON *.* TO `u`@`%`", "GRANT `osc_role` TO `u`@`%`"}, // privileges through a role
	} {
		s := good
		s.Grants = grants
		if err := s.Check(); err != nil {
			t.Errorf("%q: %v", grants, err)
		}
	}
}

func TestMySQLLockName(t *testing.T) {
	if n := mysqlLockName("db", "t"); n != "osc:db.t" {
		t.Errorf("lock name %q", n)
	}
	long := mysqlLockName(strings.Repeat("d", 64), strings.Repeat("t", 59))
	if len(long) > 64 || !strings.HasPrefix(long, "osc:") || long == mysqlLockName(strings.Repeat("d", 64), strings.Repeat("u", 59)) {
		t.Errorf("long lock name %q", long)
	}
}

// TestMySQLAddressKept: a UUID, INET4 or INET6 into a binary string or a
// text, and a binary string into one of them, keep distinct values
// distinct; a text into one of them does not.
func TestMySQLAddressKept(t *testing.T) {
	col := func(dataType, columnType string) Column { return Column{DataType: dataType, ColumnType: columnType} }
	for _, tc := range []struct {
		from, to Column
		toColl   string
		want     bool
	}{
		{col("uuid", "uuid"), col("binary", "binary(16)"), "", true},
		{col("inet6", "inet6"), col("varchar", "varchar(39)"), "utf8mb4_general_ci", true},
		{col("inet4", "inet4"), col("blob", "blob"), "", true},
		{col("binary", "binary(16)"), col("uuid", "uuid"), "", true},
		{col("varbinary", "varbinary(4)"), col("inet4", "inet4"), "", true},
		{col("char", "char(36)"), col("uuid", "uuid"), "", false},
		{col("uuid", "uuid"), col("int", "int(11)"), "", false},
	} {
		if got := mysqlEqualityKept(tc.from, tc.to, "", tc.toColl, "Europe/Berlin"); got != tc.want {
			t.Errorf("%s -> %s: %v, want %v", tc.from.ColumnType, tc.to.ColumnType, got, tc.want)
		}
	}
}
