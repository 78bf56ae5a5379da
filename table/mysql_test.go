package table

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"osc/internal/testdb"
)

const testSchema = "osc_test"

func testMySQL(t *testing.T) *sql.DB {
	t.Helper()
	srv := testdb.MySQL(t)
	db := testdb.Connect(t, "MySQL", func(ctx context.Context) (*sql.DB, error) {
		return OpenMySQL(ctx, MySQLConn{Host: srv.Host, Port: srv.Port, User: srv.User, Password: srv.Password}, testSchema)
	})
	t.Cleanup(func() { db.Close() })
	return db
}

// setup runs the statements and drops the named tables (and their osc
// helper tables) before and after the test.
func setup(t *testing.T, db *sql.DB, tables []string, stmts ...string) {
	t.Helper()
	drop := func() {
		// Children before parents.
		for i := len(tables) - 1; i >= 0; i-- {
			n := tables[i]
			shadow, changelog, old := MySQLNames(n)
			for _, x := range []string{n, shadow, changelog, old} {
				testdb.ExecMySQL(t, db, "DROP TABLE IF EXISTS "+QuoteMySQL(x))
			}
			testdb.ExecMySQL(t, db, "DROP VIEW IF EXISTS "+QuoteMySQL(n))
		}
	}
	drop()
	t.Cleanup(drop)
	for _, s := range stmts {
		testdb.ExecMySQL(t, db, s)
	}
}

func TestOpenMySQLSession(t *testing.T) {
	db := testMySQL(t)
	var mode, global, tz, cs string
	if err := db.QueryRow("SELECT @@SESSION.sql_mode, @@GLOBAL.sql_mode, @@SESSION.time_zone, @@SESSION.character_set_client").Scan(&mode, &global, &tz, &cs); err != nil {
		t.Fatal(err)
	}
	// The server's own mode, and 0 kept in AUTO_INCREMENT columns.
	got, want := strings.Split(mode, ","), strings.Split(global+",NO_AUTO_VALUE_ON_ZERO", ",")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || tz != "+00:00" || cs != "utf8mb4" {
		t.Errorf("session sql_mode=%q time_zone=%q charset=%q", mode, tz, cs)
	}
}

func TestInspectMySQLRefusals(t *testing.T) {
	db := testMySQL(t)
	ctx := context.Background()
	setup(t, db, []string{"tbl_mysqlplan_parent", "tbl_mysqlplan_child", "tbl_mysqlplan_trg", "tbl_mysqlplan_trg2", "tbl_mysqlplan_nokey",
		"tbl_mysqlplan_view", "tbl_mysqlplan_myisam", "tbl_mysqlplan_ok", "hmp_compressed"},
		"CREATE TABLE tbl_mysqlplan_parent (id INT PRIMARY KEY) ENGINE=InnoDB",
		"CREATE TABLE tbl_mysqlplan_child (id INT PRIMARY KEY, pid INT, CONSTRAINT fk_mysqlplan FOREIGN KEY (pid) REFERENCES tbl_mysqlplan_parent (id) ON DELETE CASCADE) ENGINE=InnoDB",
		"CREATE TABLE tbl_mysqlplan_trg (id INT PRIMARY KEY, v INT) ENGINE=InnoDB",
		"CREATE TRIGGER trg_mysqlplan BEFORE INSERT ON tbl_mysqlplan_trg FOR EACH ROW SET NEW.v = 1",
		// Takes the name trg_mysqlplan would be carried under.
		"CREATE TABLE tbl_mysqlplan_trg2 (id INT PRIMARY KEY, v INT) ENGINE=InnoDB",
		"CREATE TRIGGER _trg_mysqlplan BEFORE INSERT ON tbl_mysqlplan_trg2 FOR EACH ROW SET NEW.v = 2",
		"CREATE TABLE tbl_mysqlplan_nokey (id INT NULL, v INT, UNIQUE KEY (id)) ENGINE=InnoDB",
		"CREATE VIEW tbl_mysqlplan_view AS SELECT 1 AS x",
		"CREATE TABLE tbl_mysqlplan_myisam (id INT PRIMARY KEY) ENGINE=MyISAM",
		"CREATE TABLE tbl_mysqlplan_ok (id INT PRIMARY KEY, v INT) ENGINE=InnoDB",
		"CREATE TABLE hmp_compressed (id INT PRIMARY KEY, v VARCHAR(10) COMPRESSED, b BLOB COMPRESSED) ENGINE=InnoDB",
		"CREATE TABLE tbl_mysqlplan_ok_osc_new (id INT PRIMARY KEY) ENGINE=InnoDB",
	)
	// copy: a refusal of the copy alone (MySQLInspection.CopyRefusal), which
	// the native path does not concern.
	for _, tc := range []struct {
		table, alter, want string
		copy               bool
	}{
		{"tbl_mysqlplan_missing", "ADD COLUMN x INT", "table osc_test.tbl_mysqlplan_missing does not exist", false},
		{"tbl_mysqlplan_trg", "ADD COLUMN x INT", "trigger trg_mysqlplan: osc carries it to the new table as _trg_mysqlplan (trigger names are schema-wide), and schema osc_test has a trigger of that name", true},
		{"tbl_mysqlplan_child", "ADD COLUMN x INT", "table osc_test.tbl_mysqlplan_child has foreign keys that change its rows when their parent changes (fk_mysqlplan referencing osc_test.tbl_mysqlplan_parent (ON DELETE CASCADE ON UPDATE RESTRICT))", true},
		{"tbl_mysqlplan_parent", "ADD COLUMN x INT", "table osc_test.tbl_mysqlplan_parent is referenced by foreign keys (fk_mysqlplan of osc_test.tbl_mysqlplan_child)", true},
		{"tbl_mysqlplan_nokey", "ADD COLUMN x INT", "has no PRIMARY KEY and no UNIQUE key on NOT NULL columns", true},
		{"tbl_mysqlplan_view", "ADD COLUMN x INT", "osc_test.tbl_mysqlplan_view is a VIEW, not a base table", false},
		{"tbl_mysqlplan_myisam", "ADD COLUMN x INT", "uses the MyISAM engine; osc needs InnoDB", true},
		{"hmp_compressed", "ADD COLUMN x INT", "table osc_test.hmp_compressed has COMPRESSED columns (v, b); osc reads the table's changes from the binlog", true},
		{"tbl_mysqlplan_ok", "ADD COLUMN x INT", "tables left by an earlier osc run on osc_test.tbl_mysqlplan_ok exist (tbl_mysqlplan_ok_osc_new): it saved no checkpoint (--resume cannot continue it): run again with --initially-drop-ghost-table to drop them and start afresh", false},
		{"tbl_mysqlplan_" + strings.Repeat("x", 47), "ADD COLUMN x INT", "is too long", false},
	} {
		in, err := InspectMySQLTable(ctx, db, testSchema, tc.table, tc.alter)
		if tc.copy {
			if err != nil {
				t.Errorf("%s: error %v, want the copy refused, not the inspection", tc.table, err)
				continue
			}
			if err = in.CopyRefusal; err != nil {
				if _, serr := CreateMySQLShadow(ctx, db, in); serr != err { //nolint:errorlint // the very refusal
					t.Errorf("%s: CreateMySQLShadow: %v, want %v", tc.table, serr, err)
				}
			}
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.table, err, tc.want)
		}
	}

	if _, err := db.Exec("DROP TABLE tbl_mysqlplan_ok_osc_new"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ alter, want string }{
		{"ALTER TABLE tbl_mysqlplan_ok ADD COLUMN x INT", "not a whole statement"},
		{"RENAME TO tbl_mysqlplan_other", "--alter renames the table (RENAME TO tbl_mysqlplan_other)"},
		{"ADD COLUMN x INT; DROP TABLE tbl_mysqlplan_ok", "holds a ';'"},
	} {
		_, err := InspectMySQLTable(ctx, db, testSchema, "tbl_mysqlplan_ok", tc.alter)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.alter, err, tc.want)
		}
	}
}

// TestInspectMySQLTriggerCollation: a trigger made under another default
// collation of its schema than the schema's now refuses the copy (osc's copy
// of the trigger would take the new default, and compare strings otherwise);
// the trigger made again under the new default does not.
func TestInspectMySQLTriggerCollation(t *testing.T) {
	db := testMySQL(t)
	ctx := context.Background()
	const schema = "tbl_mysqlplan_coll"
	drop := func() { testdb.ExecMySQL(t, db, "DROP DATABASE IF EXISTS "+schema) }
	drop()
	t.Cleanup(drop)
	trigger := "CREATE TRIGGER " + schema + ".t_bi BEFORE INSERT ON " + schema + ".t FOR EACH ROW SET NEW.r = IF(NEW.v = 'a', 'eq', 'ne')"
	for _, s := range []string{
		"CREATE DATABASE " + schema + " CHARACTER SET latin1 COLLATE latin1_bin",
		"CREATE TABLE " + schema + ".t (id INT PRIMARY KEY, v VARCHAR(10), r VARCHAR(10)) ENGINE=InnoDB",
		trigger,
		"ALTER DATABASE " + schema + " CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
	} {
		testdb.ExecMySQL(t, db, s)
	}
	in, err := InspectMySQLTable(ctx, db, schema, "t", "ADD COLUMN x INT")
	if err != nil {
		t.Fatal(err)
	}
	want := "trigger t_bi was made while schema " + schema + "'s default collation was latin1_bin; it is utf8mb4_general_ci now"
	if in.CopyRefusal == nil || !strings.Contains(in.CopyRefusal.Error(), want) {
		t.Errorf("copy refusal %v, want one containing %q", in.CopyRefusal, want)
	}
	testdb.ExecMySQL(t, db, "DROP TRIGGER "+schema+".t_bi")
	testdb.ExecMySQL(t, db, trigger)
	if in, err = InspectMySQLTable(ctx, db, schema, "t", "ADD COLUMN x INT"); err != nil {
		t.Fatal(err)
	}
	if in.CopyRefusal != nil {
		t.Errorf("the trigger made again: copy refusal %v", in.CopyRefusal)
	}
}

func TestLockMySQL(t *testing.T) {
	db := testMySQL(t)
	ctx := context.Background()
	l, err := LockMySQL(ctx, db, testSchema, "tbl_mysqlplan_lock")
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := l.conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("another osc is migrating osc_test.tbl_mysqlplan_lock (advisory lock osc:osc_test.tbl_mysqlplan_lock is held by session %d; "+
		"if that osc died with its host and the session lingers, KILL %d)", id, id)
	if _, err := LockMySQL(ctx, db, testSchema, "tbl_mysqlplan_lock"); err == nil || err.Error() != want {
		t.Errorf("second lock: %v, want %q", err, want)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	l, err = LockMySQL(ctx, db, testSchema, "tbl_mysqlplan_lock")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	// A holder that goes away within the wait (a killed run's session the
	// server has not ended yet) does not refuse the next run.
	released := make(chan error, 1)
	time.AfterFunc(time.Second, func() { released <- l.Release(ctx) })
	l, err = LockMySQL(ctx, db, testSchema, "tbl_mysqlplan_lock")
	if rerr := <-released; rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatalf("lock released while waiting: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestCreateMySQLShadow(t *testing.T) {
	db := testMySQL(t)
	ctx := context.Background()
	const name = "tbl_mysqlplan_shadow"
	setup(t, db, []string{name},
		`CREATE TABLE tbl_mysqlplan_shadow (
			tenant INT UNSIGNED NOT NULL,
			id BIGINT NOT NULL AUTO_INCREMENT,
			name VARCHAR(50) CHARACTER SET latin1 NOT NULL,
			obsolete TEXT,
			twice INT GENERATED ALWAYS AS (tenant * 2) VIRTUAL,
			PRIMARY KEY (tenant, id),
			KEY (id)
		) ENGINE=InnoDB`,
		"INSERT INTO tbl_mysqlplan_shadow (tenant, id, name) VALUES (1, 1, 'a'), (1, 2, 'b'), (2, 70, 'c')",
	)
	in, err := InspectMySQLTable(ctx, db, testSchema, name,
		"DROP COLUMN obsolete, CHANGE COLUMN name full_name VARCHAR(100) NOT NULL, ADD COLUMN created DATETIME(6) NULL, "+
			"ADD COLUMN n INT NOT NULL, ADD COLUMN at DATETIME(3) DEFAULT CURRENT_TIMESTAMP(3), ADD COLUMN ts TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP")
	if err != nil {
		t.Fatal(err)
	}
	p, err := CreateMySQLShadow(ctx, db, in)
	if err != nil {
		t.Fatal(err)
	}
	wantSource := []Column{
		{Name: "tenant", DataType: "int", ColumnType: "int(10) unsigned", Unsigned: true, NoDefault: true},
		{Name: "id", DataType: "bigint", ColumnType: "bigint(20)", AutoIncrement: true},
		{Name: "name", DataType: "varchar", ColumnType: "varchar(50)", Charset: "latin1", Collation: "latin1_swedish_ci", NoDefault: true},
		{Name: "obsolete", DataType: "text", ColumnType: "text", Nullable: true, Charset: "utf8mb4", Collation: "utf8mb4_general_ci", Default: "NULL"},
		{Name: "twice", DataType: "int", ColumnType: "int(11)", Nullable: true, Generated: true, Expression: "`tenant` * 2"},
	}
	if !reflect.DeepEqual(p.Source.Columns, wantSource) {
		t.Errorf("source columns\n got %+v\nwant %+v", p.Source.Columns, wantSource)
	}
	var shadowNames []string
	for _, c := range p.Shadow.Columns {
		shadowNames = append(shadowNames, c.Name)
	}
	if want := []string{"tenant", "id", "full_name", "twice", "created", "n", "at", "ts"}; !reflect.DeepEqual(shadowNames, want) {
		t.Errorf("shadow columns %v, want %v", shadowNames, want)
	}
	// The added NOT NULL column gets its implicit default, the DATETIME and
	// the TIMESTAMP the one time the plan was made at (the DATETIME in the
	// server's zone), truncated to their DEFAULT's precision.
	zone, err := ReadMySQLTimeZone(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if !mysqlAlterTime.MatchString(p.AlterTime) {
		t.Fatalf("the plan's time %q", p.AlterTime)
	}
	wantFills := []ColumnFill{{Shadow: "n", Expr: "0"},
		{Shadow: "at", Expr: "CONVERT_TZ('" + p.AlterTime[:23] + "', '+00:00', '" + zone + "')"},
		{Shadow: "ts", Expr: "'" + p.AlterTime[:19] + "'"}}
	if !reflect.DeepEqual(p.Fills, wantFills) || p.TimeZone != zone {
		t.Errorf("fills %+v in zone %q, want %+v in %q", p.Fills, p.TimeZone, wantFills, zone)
	}
	if p.Shadow.Name != "tbl_mysqlplan_shadow_osc_new" || p.Shadow.Schema != testSchema ||
		p.OldName != "tbl_mysqlplan_shadow_osc_old" || p.ChangelogName != "tbl_mysqlplan_shadow_osc_log" {
		t.Errorf("names: shadow %s.%s old %s changelog %s", p.Shadow.Schema, p.Shadow.Name, p.OldName, p.ChangelogName)
	}
	wantMap := []ColumnMap{
		{Source: "tenant", Shadow: "tenant", SourceIndex: 0},
		{Source: "id", Shadow: "id", SourceIndex: 1},
		{Source: "name", Shadow: "full_name", SourceIndex: 2},
	}
	if !reflect.DeepEqual(p.Mapping, wantMap) {
		t.Errorf("mapping %+v, want %+v", p.Mapping, wantMap)
	}
	if !reflect.DeepEqual(p.Key, []string{"tenant", "id"}) || !reflect.DeepEqual(p.KeyIndex, []int{0, 1}) {
		t.Errorf("key %v %v", p.Key, p.KeyIndex)
	}
	notes := strings.Join(p.Notes, "\n")
	for _, want := range []string{"rename column name -> full_name", "drop column obsolete (its data will be lost)",
		"add column created", "key: PRIMARY (tenant, id)", "rows: ~"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}

	// The changelog table is there as the binlog reader expects it, and the
	// shadow carries the AUTO_INCREMENT counter over.
	if _, err := db.Exec("INSERT INTO tbl_mysqlplan_shadow_osc_log (hint, value) VALUES ('marker', 'x')"); err != nil {
		t.Errorf("changelog insert: %v", err)
	}
	var ai int64
	if err := db.QueryRow(`SELECT AUTO_INCREMENT FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'tbl_mysqlplan_shadow_osc_new'`, testSchema).Scan(&ai); err != nil || ai != 71 {
		t.Errorf("shadow AUTO_INCREMENT %d (err %v), want 71", ai, err)
	}
}

func TestCreateMySQLShadowFailingAlter(t *testing.T) {
	db := testMySQL(t)
	ctx := context.Background()
	const name = "tbl_mysqlplan_bad"
	setup(t, db, []string{"hmp_parent", name}, "CREATE TABLE hmp_parent (id INT PRIMARY KEY) ENGINE=InnoDB",
		"CREATE TABLE tbl_mysqlplan_bad (id INT PRIMARY KEY, v INT, gs INT AS (v + 1) STORED, gv INT AS (v * 2) VIRTUAL) ENGINE=InnoDB")
	const syntax = "the --alter fails on the shadow table: Error 1064 (42000): You have an error in your SQL syntax"
	for _, tc := range []struct{ alter, want string }{
		{"DROP COLUMN nosuch", "the --alter fails on the shadow table: Error 1091 (42000): Can't DROP COLUMN `nosuch`"},
		{"DROP PRIMARY KEY, ADD PRIMARY KEY (id, v)", "no key is usable in both tables: osc needs the original's PRIMARY (id)"},
		{"ADD UNIQUE KEY (v), MODIFY v BIGINT", "the --alter adds a UNIQUE key v (v) that no existing unique key of the original implies, " +
			"and the --alter changes its column v (int(11) -> bigint(20))"},
		// A generated column's value is computed by the shadow, not written:
		// the applier cannot look for the rows holding a value it writes.
		{"ADD UNIQUE KEY (gs)", "the --alter adds a UNIQUE key gs (gs) that no existing unique key of the original implies, and its column gs is generated"},
		{"ADD UNIQUE KEY (v, gv)", "the --alter adds a UNIQUE key v (v, gv) that no existing unique key of the original implies, and its column gv is generated"},
		// The server judges the syntax: MySQL's (and TiDB's) syntax that
		// MariaDB refuses, which osc's former parser accepted, and text osc
		// cannot read that the server refuses too.
		{"ADD COLUMN x INTEGRAL", "the --alter fails on the shadow table: Error 4161 (HY000): Unknown data type: 'INTEGRAL'"},
		{"ADD INDEX iv (v) INVISIBLE", syntax},
		{"ADD INDEX ((v + 1))", syntax},
		{"ADD COLUMN x INT AUTO_RANDOM", syntax},
		{"CHANGE v 'w' INT", syntax},
		// What the server accepts and osc cannot migrate.
		{"ADD CONSTRAINT fk_hmp FOREIGN KEY (v) REFERENCES hmp_parent (id)",
			"the --alter adds a foreign key (fk_hmp referencing osc_test.hmp_parent); osc does not support foreign keys"},
		{"ADD SYSTEM VERSIONING", "the --alter makes the table a SYSTEM VERSIONED table; osc migrates base tables only"},
		{"ENGINE=MyISAM", "the --alter makes the table use the MyISAM engine; osc needs InnoDB"},
	} {
		in, err := InspectMySQLTable(ctx, db, testSchema, name, tc.alter)
		if err != nil {
			t.Fatal(err)
		}
		_, err = CreateMySQLShadow(ctx, db, in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.alter, err, tc.want)
		}
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?
			AND TABLE_NAME IN ('tbl_mysqlplan_bad_osc_new', 'tbl_mysqlplan_bad_osc_log')`, testSchema).Scan(&n); err != nil || n != 0 {
			t.Errorf("%q: %d helper tables left behind (err %v)", tc.alter, n, err)
		}
	}
}

// TestCreateMySQLShadowIgnoredKey: an IGNORED unique key of the original is
// never the key (the copy's FORCE INDEX cannot name it), even when it comes
// first.
func TestCreateMySQLShadowIgnoredKey(t *testing.T) {
	db := testMySQL(t)
	ctx := context.Background()
	const name = "hmp_ignored"
	setup(t, db, []string{name}, `CREATE TABLE hmp_ignored (id INT NOT NULL, id2 INT NOT NULL, v INT,
		UNIQUE KEY z_id (id), UNIQUE KEY a_id2 (id2) IGNORED) ENGINE=InnoDB`)
	in, err := InspectMySQLTable(ctx, db, testSchema, name, "ADD COLUMN x INT")
	if err != nil {
		t.Fatal(err)
	}
	want := []MySQLIndex{
		{Name: "a_id2", Unique: true, Columns: []string{"id2"}, SubParts: []int{0}, Ignored: true},
		{Name: "z_id", Unique: true, Columns: []string{"id"}, SubParts: []int{0}},
	}
	if !reflect.DeepEqual(in.Indexes, want) {
		t.Errorf("indexes\n got %+v\nwant %+v", in.Indexes, want)
	}
	p, err := CreateMySQLShadow(ctx, db, in)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Key, []string{"id"}) || p.KeyIndexName != "z_id" {
		t.Errorf("key %v (index %s), want [id] (z_id)", p.Key, p.KeyIndexName)
	}
}

// TestCreateMySQLShadowUnread: a clause osc cannot read fails the migration
// once the server has accepted the alter (the server's error comes first),
// and nothing is left behind.
func TestCreateMySQLShadowUnread(t *testing.T) {
	db := testMySQL(t)
	ctx := context.Background()
	const name = "hmp_unread"
	setup(t, db, []string{name}, "CREATE TABLE hmp_unread (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
	in, err := InspectMySQLTable(ctx, db, testSchema, name, "CHANGE v w INT")
	if err != nil {
		t.Fatal(err)
	}
	unread := errors.New("osc cannot read the --alter clause")
	in.Alter.unread = unread
	if _, err := CreateMySQLShadow(ctx, db, in); !errors.Is(err, unread) {
		t.Errorf("error %v, want %v", err, unread)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?
		AND TABLE_NAME IN ('hmp_unread_osc_new', 'hmp_unread_osc_log')`, testSchema).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d helper tables left behind (err %v)", n, err)
	}
}

// TestCreateMySQLShadowMariaDBSyntax: MariaDB syntax that osc's former
// parser (TiDB's) refused makes the same table as a plain ALTER TABLE on an
// identical one, and the plan maps the columns the alter renames and drops.
func TestCreateMySQLShadowMariaDBSyntax(t *testing.T) {
	db := testMySQL(t)
	ctx := context.Background()
	const name, control = "hmp_syntax", "hmp_syntax_ctl"
	create := ` (
			id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
			a VARCHAR(20) CHARACTER SET latin1 NOT NULL DEFAULT '',
			b TEXT,
			g GEOMETRY NOT NULL,
			c INT
		) ENGINE=InnoDB`
	setup(t, db, []string{name, control}, "CREATE TABLE "+name+create,
		"INSERT INTO "+name+" (id, a, b, g, c) VALUES (1, 'x', 'y', POINT(1, 2), 3), (40, 'z', NULL, POINT(0, 0), NULL)")
	for _, tc := range []struct {
		alter   string
		mapping []string // source:shadow of every copied column
	}{
		{"CONVERT TO CHARACTER SET latin2", nil},
		{"CONVERT TO CHARACTER SET cp1250", nil},
		{"CONVERT TO CHARACTER SET cp1251 COLLATE cp1251_bin", nil},
		{"CONVERT TO CHARACTER SET utf16", nil},
		{"MODIFY a VARCHAR(20) CHARACTER SET latin2 NOT NULL DEFAULT '', MODIFY b TEXT CHARACTER SET utf16", nil},
		{"ADD COLUMN hidden INT INVISIBLE DEFAULT 7, MODIFY c INT INVISIBLE", nil},
		{"ADD INDEX ia (a) IGNORED", nil},
		{"ADD SPATIAL INDEX sg (g)", nil},
		{"MODIFY b TEXT COMPRESSED, ADD COLUMN z BLOB COMPRESSED", nil},
		{"ADD COLUMN r VARCHAR(20) DEFAULT REPEAT('x', 5)", nil},
		{"ADD COLUMN s INT DEFAULT (1 + 1), ALGORITHM=COPY", nil},
		{"ADD COLUMN u UUID, ADD COLUMN v INT AS (c + 1) PERSISTENT", nil},
		{"AUTO_INCREMENT = 500, ADD COLUMN w INT", nil},
		{"CHANGE `a` `my a` VARCHAR(30) CHARACTER SET cp1250 NOT NULL, DROP COLUMN c, ADD COLUMN c INT INVISIBLE",
			[]string{"id:id", "a:my a", "b:b", "g:g"}},
		{"WAIT 5 RENAME COLUMN b TO `change`, ADD INDEX ib (`change`(10)) IGNORED",
			[]string{"id:id", "a:a", "b:change", "g:g", "c:c"}},
	} {
		in, err := InspectMySQLTable(ctx, db, testSchema, name, tc.alter)
		if err != nil {
			t.Errorf("%q: inspect: %v", tc.alter, err)
			continue
		}
		p, err := CreateMySQLShadow(ctx, db, in)
		if err != nil {
			t.Errorf("%q: %v", tc.alter, err)
			continue
		}
		var got []string
		for _, m := range p.Mapping {
			got = append(got, m.Source+":"+m.Shadow)
		}
		if tc.mapping == nil {
			tc.mapping = []string{"id:id", "a:a", "b:b", "g:g", "c:c"}
		}
		if !slices.Equal(got, tc.mapping) {
			t.Errorf("%q: mapping %v, want %v", tc.alter, got, tc.mapping)
		}
		const compressedNote = "warning: the altered table has COMPRESSED columns (b, z); osc cannot migrate it again"
		if notes := strings.Join(p.Notes, "\n"); strings.Contains(tc.alter, "COMPRESSED") != strings.Contains(notes, compressedNote) {
			t.Errorf("%q: notes %q, want the COMPRESSED warning only after MODIFY b … COMPRESSED, ADD COLUMN z … COMPRESSED", tc.alter, notes)
		}
		testdb.ExecMySQL(t, db, "DROP TABLE IF EXISTS "+control)
		testdb.ExecMySQL(t, db, "CREATE TABLE "+control+create)
		testdb.ExecMySQL(t, db, "ALTER TABLE "+control+" AUTO_INCREMENT = 41")
		testdb.ExecMySQL(t, db, "ALTER TABLE "+control+" "+tc.alter)
		shadow, _, _ := MySQLNames(name)
		if a, b := showCreate(t, db, shadow), showCreate(t, db, control); a != b {
			t.Errorf("%q: the shadow differs from a plain ALTER TABLE:\n%s\n%s", tc.alter, a, b)
		}
		for _, n := range []string{p.Shadow.Name, p.ChangelogName} {
			testdb.ExecMySQL(t, db, "DROP TABLE "+QuoteMySQL(n))
		}
	}
}

// showCreate returns SHOW CREATE TABLE of name with the table's name left out.
func showCreate(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var n, ddl string
	if err := db.QueryRow("SHOW CREATE TABLE "+QuoteMySQL(name)).Scan(&n, &ddl); err != nil {
		t.Fatal(err)
	}
	return strings.Replace(ddl, QuoteMySQL(name), "<table>", 1)
}
