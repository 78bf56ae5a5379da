package checksum

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"osc/internal/testdb"
	"osc/table"
)

func myCol(name, dataType, columnType, charset string) table.Column {
	return table.Column{Name: name, DataType: dataType, ColumnType: columnType, Charset: charset,
		Unsigned: len(columnType) > 9 && columnType[len(columnType)-9:] == " unsigned"}
}

func TestMySQLOrderKept(t *testing.T) {
	for _, c := range []struct {
		from, to         table.Column
		fromColl, toColl string
		want             bool
	}{
		{myCol("k", "int", "int(11)", ""), myCol("k", "int", "int(11)", ""), "", "", true},
		{myCol("k", "int", "int(11)", ""), myCol("k", "bigint", "bigint(20)", ""), "", "", true},
		{myCol("k", "bigint", "bigint(20)", ""), myCol("k", "int", "int(11)", ""), "", "", false},
		{myCol("k", "int", "int(10) unsigned", ""), myCol("k", "int", "int(11)", ""), "", "", false},
		{myCol("k", "int", "int(10) unsigned", ""), myCol("k", "bigint", "bigint(20)", ""), "", "", true},
		{myCol("k", "int", "int(11)", ""), myCol("k", "decimal", "decimal(20,0)", ""), "", "", false},
		{myCol("k", "decimal", "decimal(10,2)", ""), myCol("k", "decimal", "decimal(12,2)", ""), "", "", true},
		{myCol("k", "decimal", "decimal(10,2)", ""), myCol("k", "decimal", "decimal(10,1)", ""), "", "", false},
		{myCol("k", "varchar", "varchar(10)", "utf8mb4"), myCol("k", "varchar", "varchar(20)", "utf8mb4"), "utf8mb4_general_ci", "utf8mb4_general_ci", true},
		{myCol("k", "varchar", "varchar(10)", "utf8mb4"), myCol("k", "varchar", "varchar(10)", "utf8mb4"), "utf8mb4_general_ci", "utf8mb4_bin", false},
		{myCol("k", "varchar", "varchar(10)", "utf8mb3"), myCol("k", "varchar", "varchar(10)", "utf8mb4"), "utf8mb3_general_ci", "utf8mb4_general_ci", false},
		{myCol("k", "varchar", "varchar(10)", "utf8mb4"), myCol("k", "char", "char(10)", "utf8mb4"), "utf8mb4_general_ci", "utf8mb4_general_ci", false},
		{myCol("k", "enum", "enum('b','a')", "utf8mb4"), myCol("k", "enum", "enum('b','a','c')", "utf8mb4"), "utf8mb4_general_ci", "utf8mb4_general_ci", true},
		{myCol("k", "enum", "enum('b','a')", "utf8mb4"), myCol("k", "enum", "enum('a','b')", "utf8mb4"), "utf8mb4_general_ci", "utf8mb4_general_ci", false},
		{myCol("k", "datetime", "datetime", ""), myCol("k", "datetime", "datetime(3)", ""), "", "", true},
		{myCol("k", "datetime", "datetime(3)", ""), myCol("k", "datetime", "datetime", ""), "", "", false},
		{myCol("k", "date", "date", ""), myCol("k", "datetime", "datetime", ""), "", "", false},
	} {
		if got := mysqlOrderKept(c.from, c.to, c.fromColl, c.toColl); got != c.want {
			t.Errorf("%s %s -> %s %s: %v, want %v", c.from.ColumnType, c.fromColl, c.to.ColumnType, c.toColl, got, c.want)
		}
	}
}

func TestMySQLCanonical(t *testing.T) {
	src := func(c table.Column) *table.Column { return &c }
	unsigned := func(c table.Column) table.Column { c.Unsigned = true; return c }
	for _, c := range []struct {
		name             string
		col              table.MySQLCopyColumn
		srcColl, dstColl string
		want             mysqlCanonical
	}{
		{"identical: no cast", table.MySQLCopyColumn{Shadow: myCol("c", "varchar", "varchar(5)", "latin1"),
			Source: src(myCol("c", "varchar", "varchar(5)", "latin1")), Expr: "`c`"}, "latin1_swedish_ci", "latin1_swedish_ci",
			mysqlCanonical{"`c`", "`c`", true, mysqlBytes}},
		{"renamed", table.MySQLCopyColumn{Shadow: myCol("d", "int", "int(11)", ""), Source: src(myCol("c", "int", "int(11)", "")), Expr: "`c`"}, "", "",
			mysqlCanonical{"`c`", "`d`", true, mysqlPlain}},
		{"charset", table.MySQLCopyColumn{Shadow: myCol("c", "varchar", "varchar(5)", "utf8mb4"),
			Source: src(myCol("c", "varchar", "varchar(5)", "latin1")), Expr: "`c`"}, "latin1_swedish_ci", "utf8mb4_general_ci",
			mysqlCanonical{"CONVERT(`c` USING utf8mb4)", "`c`", true, mysqlUTF8}},
		{"shortened: spaces past the length cut off", table.MySQLCopyColumn{Shadow: myCol("c", "varchar", "varchar(3)", "utf8mb4"),
			Source: src(myCol("c", "varchar", "varchar(5)", "utf8mb4")), Expr: "`c`"}, "utf8mb4_general_ci", "utf8mb4_bin",
			mysqlCanonical{"CONVERT(LEFT(CONVERT(`c` USING utf8mb4), 3) USING utf8mb4)", "`c`", true, mysqlUTF8}},
		{"into a TINYTEXT: spaces past its bytes cut off", table.MySQLCopyColumn{Shadow: myCol("c", "tinytext", "tinytext", "utf8mb4"),
			Source: src(myCol("c", "varchar", "varchar(300)", "utf8mb4")), Expr: "`c`"}, "utf8mb4_general_ci", "utf8mb4_general_ci",
			mysqlCanonical{"IF(OCTET_LENGTH(CONVERT(`c` USING utf8mb4)) > 255, CONVERT(LEFT(CONVERT(`c` USING utf8mb4), CHAR_LENGTH(CONVERT(`c` USING utf8mb4)) - " +
				"(OCTET_LENGTH(CONVERT(`c` USING utf8mb4)) - 255)) USING utf8mb4), CONVERT(`c` USING utf8mb4))", "`c`", true, mysqlUTF8}},
		{"from a BLOB", table.MySQLCopyColumn{Shadow: myCol("c", "varchar", "varchar(3)", "utf8mb4"),
			Source: src(myCol("c", "blob", "blob", "")), Expr: "`c`"}, "", "utf8mb4_general_ci",
			mysqlCanonical{"CONVERT(LEFT(CONVERT(`c` USING utf8mb4), 3) USING utf8mb4)", "`c`", true, mysqlUTF8}},
		{"from a TEXT", table.MySQLCopyColumn{Shadow: myCol("c", "varchar", "varchar(3)", "utf8mb4"),
			Source: src(myCol("c", "text", "text", "utf8mb4")), Expr: "`c`"}, "utf8mb4_general_ci", "utf8mb4_general_ci",
			mysqlCanonical{"CONVERT(LEFT(CONVERT(`c` USING utf8mb4), 3) USING utf8mb4)", "`c`", true, mysqlUTF8}},
		{"identical utf8mb4: as its bytes", table.MySQLCopyColumn{Shadow: myCol("c", "varchar", "varchar(5)", "utf8mb4"),
			Source: src(myCol("c", "varchar", "varchar(5)", "utf8mb4")), Expr: "`c`"}, "utf8mb4_bin", "utf8mb4_bin",
			mysqlCanonical{"`c`", "`c`", true, mysqlUTF8}},
		{"identical enum in utf8mb3: as its bytes", table.MySQLCopyColumn{Shadow: myCol("c", "enum", "enum('a')", "utf8mb3"),
			Source: src(myCol("c", "enum", "enum('a')", "utf8mb3")), Expr: "`c`"}, "utf8mb3_general_ci", "utf8mb3_general_ci",
			mysqlCanonical{"`c`", "`c`", true, mysqlUTF8}},
		{"into varbinary: as its bytes", table.MySQLCopyColumn{Shadow: myCol("c", "varbinary", "varbinary(5)", ""),
			Source: src(myCol("c", "varchar", "varchar(5)", "latin1")), Expr: "`c`"}, "latin1_swedish_ci", "",
			mysqlCanonical{"CAST(`c` AS BINARY)", "`c`", true, mysqlUTF8}},
		{"identical bit: cast", table.MySQLCopyColumn{Shadow: myCol("c", "bit", "bit(5)", ""),
			Source: src(myCol("c", "bit", "bit(5)", "")), Expr: "`c`"}, "", "",
			mysqlCanonical{"`c`", "`c`", true, mysqlBytes}},
		{"into char", table.MySQLCopyColumn{Shadow: myCol("c", "char", "char(5)", "utf8mb4"),
			Source: src(myCol("c", "varchar", "varchar(5)", "utf8mb4")), Expr: "`c`"}, "utf8mb4_general_ci", "utf8mb4_general_ci",
			mysqlCanonical{"TRIM(TRAILING ' ' FROM CONVERT(`c` USING utf8mb4))", "`c`", true, mysqlUTF8}},
		{"narrowed decimal", table.MySQLCopyColumn{Shadow: myCol("c", "decimal", "decimal(10,1)", ""), Source: src(myCol("c", "decimal", "decimal(10,2)", "")), Expr: "`c`"}, "", "",
			mysqlCanonical{"CAST(`c` AS DECIMAL(10,1))", "`c`", true, mysqlPlain}},
		{"into a ZEROFILL integer: its padded text cast too", table.MySQLCopyColumn{Shadow: unsigned(myCol("c", "bigint", "bigint(12) unsigned zerofill", "")),
			Source: src(unsigned(myCol("c", "int", "int(5) unsigned zerofill", ""))), Expr: "`c`"}, "", "",
			mysqlCanonical{"CAST(`c` AS UNSIGNED)", "CAST(`c` AS UNSIGNED)", true, mysqlPlain}},
		{"into a ZEROFILL decimal", table.MySQLCopyColumn{Shadow: unsigned(myCol("c", "decimal", "decimal(40,12) unsigned zerofill", "")),
			Source: src(myCol("c", "int", "int(11)", "")), Expr: "`c`"}, "", "",
			mysqlCanonical{"CAST(`c` AS DECIMAL(40,12))", "CAST(`c` AS DECIMAL(40,12))", true, mysqlPlain}},
		{"into a ZEROFILL double", table.MySQLCopyColumn{Shadow: unsigned(myCol("c", "double", "double unsigned zerofill", "")),
			Source: src(myCol("c", "float", "float", "")), Expr: "`c`"}, "", "",
			mysqlCanonical{"CAST(`c` AS DOUBLE)", "CAST(`c` AS DOUBLE)", true, mysqlPlain}},
		{"into enum by label", table.MySQLCopyColumn{Shadow: myCol("c", "enum", "enum('a','b')", "utf8mb4"), Source: src(myCol("c", "varchar", "varchar(5)", "utf8mb4")), Expr: "`c`"},
			"utf8mb4_general_ci", "utf8mb4_general_ci",
			mysqlCanonical{"IF(`c` IS NULL, NULL, IF(FIELD(CONVERT(`c` USING utf8mb4) COLLATE `utf8mb4_general_ci`, 'a', 'b') > 0, " +
				"FIELD(CONVERT(`c` USING utf8mb4) COLLATE `utf8mb4_general_ci`, 'a', 'b'), CAST(`c` AS UNSIGNED)))", "`c`+0", true, mysqlPlain}},
		{"into set by labels, without their trailing spaces", table.MySQLCopyColumn{Shadow: myCol("c", "set", "set('a','b')", "utf8mb4"), Source: src(myCol("c", "varchar", "varchar(5)", "utf8mb4")), Expr: "`c`"},
			"utf8mb4_general_ci", "utf8mb4_general_ci",
			mysqlCanonical{"IF(`c` IS NULL, NULL, IF(((FIND_IN_SET('a', TRIM(TRAILING ' ' FROM REGEXP_REPLACE(CONVERT(`c` USING utf8mb4) COLLATE `utf8mb4_general_ci`, ' +,', ','))) > 0) << 0 | " +
				"(FIND_IN_SET('b', TRIM(TRAILING ' ' FROM REGEXP_REPLACE(CONVERT(`c` USING utf8mb4) COLLATE `utf8mb4_general_ci`, ' +,', ','))) > 0) << 1) > 0, " +
				"((FIND_IN_SET('a', TRIM(TRAILING ' ' FROM REGEXP_REPLACE(CONVERT(`c` USING utf8mb4) COLLATE `utf8mb4_general_ci`, ' +,', ','))) > 0) << 0 | " +
				"(FIND_IN_SET('b', TRIM(TRAILING ' ' FROM REGEXP_REPLACE(CONVERT(`c` USING utf8mb4) COLLATE `utf8mb4_general_ci`, ' +,', ','))) > 0) << 1), CAST(`c` AS UNSIGNED)))", "`c`+0", true, mysqlPlain}},
		{"enum into enum: its error value stays 0", table.MySQLCopyColumn{Shadow: myCol("c", "enum", "enum('','a')", "utf8mb4"),
			Source: src(myCol("c", "enum", "enum('a')", "utf8mb4")), Expr: "`c`"}, "utf8mb4_general_ci", "utf8mb4_general_ci",
			mysqlCanonical{"IF(`c` IS NULL, NULL, IF(`c`+0 = 0, 0, IF(FIELD(CONVERT(`c` USING utf8mb4) COLLATE `utf8mb4_general_ci`, '', 'a') > 0, " +
				"FIELD(CONVERT(`c` USING utf8mb4) COLLATE `utf8mb4_general_ci`, '', 'a'), CAST(`c` AS UNSIGNED))))", "`c`+0", true, mysqlPlain}},
		{"into a binary enum: its members' bytes", table.MySQLCopyColumn{Shadow: table.Column{Name: "c", DataType: "enum", ColumnType: "enum('?','?')",
			Charset: "binary", Members: []string{"\xff", "?"}}, Source: src(myCol("c", "varchar", "varchar(5)", "utf8mb4")), Expr: "`c`"}, "utf8mb4_general_ci", "binary",
			mysqlCanonical{"IF(`c` IS NULL, NULL, IF(FIELD(CONVERT(`c` USING binary) COLLATE `binary`, X'ff', X'3f') > 0, " +
				"FIELD(CONVERT(`c` USING binary) COLLATE `binary`, X'ff', X'3f'), CAST(`c` AS UNSIGNED)))", "`c`+0", true, mysqlPlain}},
		{"a YEAR into a TIME: its number", table.MySQLCopyColumn{Shadow: myCol("c", "time", "time", ""), Source: src(myCol("c", "year", "year(4)", "")), Expr: "`c`"}, "", "",
			mysqlCanonical{"CAST((`c`+0) AS TIME(0))", "`c`", true, mysqlPlain}},
		{"a BIT into a DATE: its number", table.MySQLCopyColumn{Shadow: myCol("c", "date", "date", ""), Source: src(myCol("c", "bit", "bit(32)", "")), Expr: "`c`"}, "", "",
			mysqlCanonical{"CAST((`c`+0) AS DATE)", "`c`", true, mysqlPlain}},
		{"a BIT into a TIMESTAMP: the copy's UTC instant", table.MySQLCopyColumn{Shadow: myCol("c", "timestamp", "timestamp", ""), Source: src(myCol("c", "bit", "bit(64)", "")),
			Expr: "IF((`c` + 0) = 0, '0000-00-00 00:00:00', CONVERT_TZ((`c` + 0), 'Europe/Berlin', '+00:00'))"}, "", "",
			mysqlCanonical{"CAST(IF((`c` + 0) = 0, '0000-00-00 00:00:00', CONVERT_TZ((`c` + 0), 'Europe/Berlin', '+00:00')) AS DATETIME(0))", "`c`", true, mysqlPlain}},
		{"fill of a number", table.MySQLCopyColumn{Shadow: myCol("z", "int", "int(11)", ""), Expr: "0"}, "", "",
			mysqlCanonical{"CAST(0 AS SIGNED)", "`z`", true, mysqlPlain}},
		{"fill of the clock", table.MySQLCopyColumn{Shadow: myCol("z", "datetime", "datetime", ""),
			Expr: "CONVERT_TZ(CURRENT_TIMESTAMP(0), '+00:00', 'Europe/Berlin')"}, "", "",
			mysqlCanonical{"CONVERT_TZ(CURRENT_TIMESTAMP(0), '+00:00', 'Europe/Berlin') IS NULL", "`z` IS NULL", false, mysqlPlain}},
		{"into FLOAT(M,D)", table.MySQLCopyColumn{Shadow: myCol("c", "float", "float(7,2)", ""), Source: src(myCol("c", "double", "double", "")), Expr: "`c`"}, "", "",
			mysqlCanonical{"`c` IS NULL", "`c` IS NULL", false, mysqlPlain}},
	} {
		if got := mysqlCanonicalOf(c.col, c.srcColl, c.dstColl); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestMySQLMembers(t *testing.T) {
	for _, c := range []struct {
		columnType string
		want       []string
	}{
		{"enum('a','b')", []string{"'a'", "'b'"}},
		{"set('a,','b''c','d\\'e',' ')", []string{"'a,'", "'b''c'", "'d\\'e'", "' '"}},
		{"enum('')", []string{"''"}},
		{"enum('a'", nil},
		{"enum(a)", nil},
	} {
		got, ok := mysqlMembers(c.columnType)
		if ok != (c.want != nil) || strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s: %q %v, want %q", c.columnType, got, ok, c.want)
		}
	}
}

// TestMySQLEncoding: NULL, the empty string and 'NULL' render apart, and so
// do values that concatenate alike.
func TestMySQLEncoding(t *testing.T) {
	cfg := testdb.MySQL(t).Config(t, "osc_test")
	db := testdb.OpenMySQL(t, cfg)
	// Values of numbers and times are plain, quoted ones bytes, those
	// marked T digests, those marked U bytes taken as they are. Columns that hold no NULL are rendered without a
	// NULL mark too. A rendering reads back within one layout (the columns'
	// encodings and marks), which it is returned with.
	row := func(marked bool, vals ...string) string {
		var encs []mysqlEncoding
		var nullable []bool
		for i, v := range vals {
			e := mysqlPlain
			switch {
			case strings.HasPrefix(v, "'"):
				e = mysqlBytes
			case strings.HasPrefix(v, "T"): // a TEXT
				e, vals[i] = mysqlDigest, v[1:]
			case strings.HasPrefix(v, "U"): // utf8mb4 or binary
				e, vals[i] = mysqlUTF8, v[1:]
			}
			encs = append(encs, e)
			nullable = append(nullable, marked)
		}
		q := "SELECT HEX(" + mysqlRowText(vals, encs, nullable) + ")"
		var out string
		if err := db.QueryRow(q).Scan(&out); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return fmt.Sprint(encs, nullable, " ", out)
	}
	seen := map[string][]string{}
	for _, vals := range [][]string{
		{"NULL"}, {"''"}, {"'NULL'"}, {"'N'"},
		{"'ab'", "'c'"}, {"'a'", "'bc'"}, {"'abc'", "''"}, {"'abc'", "NULL"}, {"NULL", "'abc'"}, {"'1:a'", "NULL"}, {"'1'", "'a'"},
		{"12", "3"}, {"1", "23"}, {"123", "NULL"}, {"NULL", "123"}, {"12", "'3'"}, {"1", "'23'"}, {"'1'", "23"}, {"-1.5e30", "0"}, {"CAST('2020-01-01' AS DATE)", "NULL"},
		{"0", "NULL"}, {"NULL", "0"}, {"NULL", "NULL"}, {"0", "0"},
		{"T'ab'", "T'c'"}, {"T'a'", "T'bc'"}, {"T''", "TNULL"}, {"TNULL", "T''"}, {"T'NULL'", "TNULL"}, {"T'x'", "1"}, {"T'x'", "NULL"},
		{"U'ab'", "U'c'"}, {"U'a'", "U'bc'"}, {"U''", "UNULL"}, {"UNULL", "U''"}, {"U'NULL'", "UNULL"}, {"U'1'", "2"}, {"U'1'", "U'2'"},
		{"U0x610062", "U''"}, {"U0x61", "U0x0062"}, {"U0x6100", "U0x62"}, {"U'é'", "U0x00"},
		// The last bytes, without their length, after the other columns.
		{"U'x'", "1"}, {"U'1'", "NULL"}, {"UNULL", "1"}, {"U0x0031", "NULL"}, {"U''", "1"}, {"UNULL", "NULL"}, {"U''", "NULL"},
		{"U0x00", "NULL"}, {"U'1'", "0"}, {"U'0'", "1"}, {"'a'", "U'b'", "1"}, {"'a'", "U0x620031", "NULL"}, {"'a'", "UNULL", "1"},
		{"NULL", "U'1'", "1"}, {"'ab'", "U''", "1"}, {"'a'", "U'b'", "NULL"},
	} {
		r := row(true, slices.Clone(vals)...)
		if other, ok := seen[r]; ok {
			t.Errorf("%v and %v render alike: %s", vals, other, r)
		}
		if !slices.ContainsFunc(vals, func(v string) bool { return strings.HasSuffix(v, "NULL") }) {
			u := row(false, slices.Clone(vals)...)
			if other, ok := seen[u]; ok {
				t.Errorf("%v (no NULL mark) and %v render alike: %s", vals, other, u)
			}
			seen[u] = vals
		}
		seen[r] = vals
	}
	// A string of another character set, cast to BINARY, keeps its bytes
	// beside a utf8mb4 one, which keeps its own: each as long as its
	// length says, the last one the rest.
	var got string
	q := "SELECT HEX(" + mysqlRowText([]string{"CONVERT('é' USING latin1)", "'é'", "0x00e9"},
		[]mysqlEncoding{mysqlBytes, mysqlUTF8, mysqlUTF8}, []bool{false, false, false}) + ")"
	if err := db.QueryRow(q).Scan(&got); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if want := "31" + "00" + "E9" + "00" + "32" + "00" + "C3A9" + "00" + "00E9"; got != want {
		t.Errorf("%s: %s, want %s", q, got, want)
	}
}

func TestMySQLDiffRows(t *testing.T) {
	m := &MySQL{plan: &table.Plan{Key: []string{"id"}}, keyAt: []int{0}, columns: []string{"id", "v"}}
	row := func(id, v string) mysqlRow {
		if v == "NULL" {
			return mysqlRow{[]byte(id), nil}
		}
		return mysqlRow{[]byte(id), []byte(v)}
	}
	rows := func(r ...mysqlRow) []mysqlRow { return r }
	for _, c := range []struct {
		orig, shadow []mysqlRow
		want         string
	}{
		{rows(row("1", "a"), row("2", "b")), rows(row("1", "a"), row("2", "b")), ""},
		{rows(row("1", "a"), row("2", "b")), rows(row("1", "a"), row("2", "NULL")), `key (id=2): column "v" differs: original "b", shadow NULL`},
		{rows(row("1", "a"), row("2", "b"), row("3", "c")), rows(row("1", "a"), row("3", "x")), `key (id=2) is missing from the shadow`},
		{rows(row("1", "a"), row("3", "c")), rows(row("1", "a"), row("2", "b"), row("3", "x")), `key (id=2) is in the shadow but not in the original`},
		{rows(row("1", "a")), rows(row("1", "a"), row("9", "z")), `key (id=9) is in the shadow but not in the original`},
		{rows(row("1", "a"), row("9", "z")), rows(row("1", "a")), `key (id=9) is missing from the shadow`},
		{rows(row("1", "a"), row("2", "b")), rows(row("2", "b"), row("1", "x")), `key (id=1): column "v" differs: original "a", shadow "x"`},
		{rows(row("1", "a"), row("2", "b")), rows(row("2", "b"), row("1", "a")), ``},
		{rows(row("1", string(make([]byte, 50)))), rows(row("1", "")),
			`key (id=1): column "v" differs: original "` + `\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00…", shadow ""`},
	} {
		if got := strings.Join(m.diffRows(c.orig, c.shadow, 1), "\n"); got != c.want {
			t.Errorf("diff %q / %q:\n got %s\nwant %s", c.orig, c.shadow, got, c.want)
		}
	}
	// Every difference, up to the most asked for.
	orig, shadow := rows(row("1", "a"), row("2", "b"), row("3", "c")), rows(row("1", "x"), row("3", "c"), row("4", "d"))
	all := []string{`key (id=1): column "v" differs: original "a", shadow "x"`, `key (id=2) is missing from the shadow`,
		`key (id=4) is in the shadow but not in the original`}
	for most := 1; most <= 4; most++ {
		want := all[:min(most, len(all))]
		if got := m.diffRows(orig, shadow, most); !slices.Equal(got, want) {
			t.Errorf("diffs, at most %d:\n got %q\nwant %q", most, got, want)
		}
	}
}
