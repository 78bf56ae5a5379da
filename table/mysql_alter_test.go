package table

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseMySQLAlter(t *testing.T) {
	a, err := ParseMySQLAlter("t", "ADD COLUMN x INT, DROP COLUMN y, CHANGE COLUMN a b BIGINT NOT NULL, "+
		"RENAME COLUMN c TO d, CHANGE e e VARCHAR(10), MODIFY f INT, DROP COLUMN g, ADD COLUMN g TEXT, AUTO_INCREMENT = 5;")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"a": "b", "c": "d"}; !reflect.DeepEqual(a.Renames, want) {
		t.Errorf("renames %v, want %v", a.Renames, want)
	}
	if want := map[string]bool{"y": true, "g": true}; !reflect.DeepEqual(a.Dropped, want) {
		t.Errorf("dropped %v, want %v", a.Dropped, want)
	}
	if len(a.Unique) != 0 {
		t.Errorf("unique %v, want none", a.Unique)
	}
	if !a.SetsAutoIncrement {
		t.Error("AUTO_INCREMENT option not seen")
	}
	for col, want := range map[string]string{"A": "b", "c": "d", "y": "", "g": "", "e": "e", "z": "z"} {
		if got := a.ShadowName(col); got != want {
			t.Errorf("ShadowName(%s) = %q, want %q", col, got, want)
		}
	}
}

func TestParseMySQLAlterUnique(t *testing.T) {
	a, err := ParseMySQLAlter("t", "ADD COLUMN u INT UNIQUE, ADD UNIQUE KEY uk (p(10), q), "+
		"DROP PRIMARY KEY, ADD PRIMARY KEY (id, z), MODIFY m INT PRIMARY KEY, ADD UNIQUE ((lower(h)))")
	if err != nil {
		t.Fatal(err)
	}
	want := []MySQLIndex{
		{Unique: true, Columns: []string{"u"}, SubParts: []int{0}},
		{Name: "uk", Unique: true, Columns: []string{"p", "q"}, SubParts: []int{10, 0}},
		{Name: "PRIMARY", Primary: true, Unique: true, Columns: []string{"id", "z"}, SubParts: []int{0, 0}},
		{Name: "PRIMARY", Primary: true, Unique: true, Columns: []string{"m"}, SubParts: []int{0}},
		{Unique: true, Columns: []string{""}, SubParts: []int{0}},
	}
	if !reflect.DeepEqual(a.Unique, want) {
		t.Errorf("unique\n got %+v\nwant %+v", a.Unique, want)
	}
}

func TestParseMySQLAlterRefusals(t *testing.T) {
	for _, tc := range []struct{ alter, want string }{
		{"  ", "--alter is empty"},
		{"ALTER TABLE t ADD COLUMN x INT", "not a whole statement"},
		{"ADD COLUMN x INTEGRAL", "does not parse"},
		{"ADD COLUMN x INT, RENAME TO u", "renames the table (RENAME TO)"},
		{"RENAME AS u", "renames the table"},
		{"ADD COLUMN x INT; DROP TABLE t", "holds 2 statements"},
		{"ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES p (id)", "foreign key"},
		{"ADD COLUMN x INT REFERENCES p (id)", "foreign key"},
	} {
		_, err := ParseMySQLAlter("t", tc.alter)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.alter, err, tc.want)
		}
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

func TestCheckNewUnique(t *testing.T) {
	src, idx := testSource()
	for _, tc := range []struct {
		alter string
		ok    bool
	}{
		{"ADD UNIQUE KEY (note(10))", false},      // not unique before
		{"ADD COLUMN x INT UNIQUE", false},        // a new column
		{"ADD UNIQUE KEY (id, note(10))", true},   // contains the PRIMARY KEY
		{"ADD UNIQUE KEY (note(5), email)", true}, // contains uk_email
		{"ADD UNIQUE KEY (name(10))", false},      // shorter prefix than uk_name
		{"ADD UNIQUE KEY (name(30))", true},       // longer prefix
		{"ADD UNIQUE KEY (name)", true},           // whole value
		{"RENAME COLUMN email TO mail, ADD UNIQUE (mail)", true},
		{"DROP COLUMN email, ADD COLUMN email INT, ADD UNIQUE (email)", false}, // a new column under the old name
		{"DROP PRIMARY KEY, ADD PRIMARY KEY (email)", true},
		{"DROP PRIMARY KEY, ADD PRIMARY KEY (note(10))", false},
		{"MODIFY note VARCHAR(10) PRIMARY KEY", false},
		{"ADD UNIQUE ((lower(email)))", false},
		{"ADD INDEX (note(10))", true},
	} {
		a, err := ParseMySQLAlter("t", tc.alter)
		if err != nil {
			t.Fatalf("%q: %v", tc.alter, err)
		}
		err = a.CheckNewUnique(src, idx)
		if tc.ok != (err == nil) {
			t.Errorf("%q: error %v, want ok=%v", tc.alter, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "rows that duplicate it would be lost silently") {
			t.Errorf("%q: unclear message %q", tc.alter, err)
		}
	}
}

func TestBuildMySQLPlan(t *testing.T) {
	src, idx := testSource()
	src.Columns = append(src.Columns, Column{Name: "g", DataType: "int", ColumnType: "int(11)", Generated: true})
	a, err := ParseMySQLAlter("t", "CHANGE name full_name VARCHAR(200), DROP COLUMN note, ADD COLUMN age INT")
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
		SourceCollations: map[string]string{"name": "utf8mb4_bin"}, ShadowCollations: map[string]string{"full_name": "utf8mb4_general_ci"}}
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
		"warning: unique key column full_name changes collation utf8mb4_bin -> utf8mb4_general_ci; values distinct before but equal after would be lost",
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
}

func TestBuildMySQLPlanCompositeRenamedKey(t *testing.T) {
	src := &Table{Schema: "db", Name: "t", Columns: []Column{
		{Name: "a", ColumnType: "int"}, {Name: "b", ColumnType: "int"}, {Name: "v", ColumnType: "int"},
	}}
	idx := []MySQLIndex{{Name: "PRIMARY", Primary: true, Unique: true, Columns: []string{"a", "b"}, SubParts: []int{0, 0}}}
	a, err := ParseMySQLAlter("t", "RENAME COLUMN b TO bb")
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
