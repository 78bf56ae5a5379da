package cdc

import (
	"context"
	"database/sql"
	"errors"
	mrand "math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"osc/internal/testdb"
	"osc/table"
)

// myOpenTestDB opens osc_test the way the engine does.
func myOpenTestDB(t *testing.T) (*sql.DB, MySQLConfig) {
	t.Helper()
	srv := testdb.MySQL(t)
	cfg := srv.Config(t, "osc_test")
	cfg.Params = map[string]string{
		"time_zone": "'+00:00'",
		"sql_mode":  "'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
	}
	db := testdb.OpenMySQL(t, cfg)
	return db, MySQLConfig{Host: srv.Host, Port: uint16(srv.Port), User: srv.User, Password: srv.Password,
		ServerID: 4000000 + mrand.Uint32N(1000000), Flavor: testdb.MySQLFlavor(t, db)}
}

// myTestTable creates tbl_mysqldata_<name> (id, v) with its changelog and
// returns its plan; shadow names the shadow (not created).
func myTestTable(t *testing.T, db *sql.DB, name string) *table.Plan {
	t.Helper()
	tbl, ghc, gho := "tbl_mysqldata_"+name, "_tbl_mysqldata_"+name+"_ghc", "_tbl_mysqldata_"+name+"_gho"
	testdb.DropMySQLTables(t, db, tbl, ghc, gho, "_tbl_mysqldata_"+name+"_del")
	testdb.ExecMySQL(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, v VARCHAR(20))")
	testdb.ExecMySQL(t, db, "CREATE TABLE "+ghc+` (id BIGINT AUTO_INCREMENT PRIMARY KEY,
		ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), hint VARCHAR(64) NOT NULL, value VARCHAR(4096) NOT NULL)`)
	return &table.Plan{
		Source: &table.Table{Schema: "osc_test", Name: tbl, Columns: []table.Column{
			{Name: "id", DataType: "int", ColumnType: "int(11)"},
			{Name: "v", DataType: "varchar", ColumnType: "varchar(20)", Nullable: true, Charset: "utf8mb4"},
		}},
		Shadow:        &table.Table{Schema: "osc_test", Name: gho},
		ChangelogName: ghc,
		Key:           []string{"id"},
		KeyIndex:      []int{0},
		Mapping:       []table.ColumnMap{{Source: "id", Shadow: "id"}, {Source: "v", Shadow: "v", SourceIndex: 1}},
	}
}

func myStart(t *testing.T, db *sql.DB, cfg MySQLConfig, p *table.Plan) *MySQLSource {
	t.Helper()
	s, err := NewMySQL(cfg, db, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// myNext reads n changes.
func myNext(t *testing.T, s *MySQLSource, n int) []Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []Change
	for len(out) < n {
		cs, err := s.Next(ctx, n-len(out))
		if err != nil {
			t.Fatalf("next: %v after %d changes", err, len(out))
		}
		out = append(out, cs...)
	}
	return out
}

func TestMySQLChangesAndMarkers(t *testing.T) {
	db, cfg := myOpenTestDB(t)
	p := myTestTable(t, db, "cdc")
	goroutines := runtime.NumGoroutine()
	s := myStart(t, db, cfg, p)
	ctx := context.Background()
	testdb.ExecMySQL(t, db, "CREATE TABLE IF NOT EXISTS tbl_mysqldata_other (id INT PRIMARY KEY)")
	t.Cleanup(func() { testdb.ExecMySQL(t, db, "DROP TABLE IF EXISTS tbl_mysqldata_other") })

	testdb.ExecMySQL(t, db, "INSERT INTO tbl_mysqldata_cdc VALUES (1, 'a'), (2, NULL)")
	testdb.ExecMySQL(t, db, "INSERT INTO tbl_mysqldata_other VALUES (1)") // not ours
	if err := s.EmitMarker(ctx, "first"); err != nil {
		t.Fatal(err)
	}
	testdb.ExecMySQL(t, db, "UPDATE tbl_mysqldata_cdc SET v = 'b' WHERE id = 1")
	testdb.ExecMySQL(t, db, "DELETE FROM tbl_mysqldata_cdc WHERE id = 2")
	if err := s.EmitMarker(ctx, "second"); err != nil {
		t.Fatal(err)
	}
	cs := myNext(t, s, 6)
	want := []string{"insert [1 a]", "insert [2 <nil>]", "marker first", "update [1 a] [1 b]", "delete [2 <nil>]", "marker second"}
	var last MySQLPos
	for i, c := range cs {
		var got string
		switch c.Op {
		case Insert:
			got = c.Op.String() + " " + myFmtRow(c.After)
		case Update:
			got = c.Op.String() + " " + myFmtRow(c.Before) + " " + myFmtRow(c.After)
		case Delete:
			got = c.Op.String() + " " + myFmtRow(c.Before)
		case Marker:
			got = c.Op.String() + " " + c.Marker
		}
		if got != want[i] {
			t.Errorf("change %d = %s, want %s", i, got, want[i])
		}
		pos, ok := c.Pos.(MySQLPos)
		if !ok || pos.File == "" || pos.File == last.File && pos.Pos < last.Pos {
			t.Errorf("change %d at %v after %v", i, c.Pos, last)
		}
		last = pos
	}
	s.Ack(last)
	if lag := s.Lag(); !strings.HasPrefix(lag, "binlog ") || !strings.Contains(lag, "applied "+last.String()) {
		t.Errorf("lag %q", lag)
	}

	// DDL on the table fails the source, after the changes before it.
	testdb.ExecMySQL(t, db, "INSERT INTO tbl_mysqldata_cdc VALUES (3, 'c')")
	testdb.ExecMySQL(t, db, "ALTER TABLE tbl_mysqldata_cdc ADD COLUMN w INT")
	if cs := myNext(t, s, 1); cs[0].Op != Insert {
		t.Fatalf("got %v, want the insert", cs[0].Op)
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := s.Next(tctx, 10)
	if err == nil || !strings.Contains(err.Error(), "DDL on osc_test.tbl_mysqldata_cdc during migration: ALTER TABLE") {
		t.Fatalf("next after ALTER: %v", err)
	}

	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(ctx, 1); err == nil {
		t.Fatal("next after close succeeded")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after close, %d before:\n%s", n, goroutines, buf[:runtime.Stack(buf, true)])
	}
}

func myFmtRow(r Row) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, v := range r {
		if i > 0 {
			b.WriteByte(' ')
		}
		switch x := v.(type) {
		case nil:
			b.WriteString("<nil>")
		case string:
			b.WriteString(x)
		case int32:
			b.WriteString(strconv.Itoa(int(x)))
		default:
			b.WriteString("?")
		}
	}
	b.WriteByte(']')
	return b.String()
}

func TestMySQLTruncateAndStatementFail(t *testing.T) {
	db, cfg := myOpenTestDB(t)
	p := myTestTable(t, db, "trunc")
	s := myStart(t, db, cfg, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	testdb.ExecMySQL(t, db, "TRUNCATE TABLE tbl_mysqldata_trunc")
	if _, err := s.Next(ctx, 1); err == nil || !strings.Contains(err.Error(), "DDL on osc_test.tbl_mysqldata_trunc during migration: TRUNCATE") {
		t.Fatalf("next after TRUNCATE: %v", err)
	}

	// A replica's server id must be unique: close the first source.
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.ServerID++
	s = myStart(t, db, cfg, p)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION binlog_format = 'STATEMENT'"); err != nil {
		t.Skipf("cannot log statements: %v", err)
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO tbl_mysqldata_trunc VALUES (1, 'x')"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(ctx, 1); err == nil || !strings.Contains(err.Error(), "statement-based binlog event") {
		t.Fatalf("next after a statement-logged insert: %v", err)
	}
}

// An XA transaction's rows reach the binlog at XA PREPARE, before it commits
// or rolls back: the source refuses them; a plain transaction before it is
// delivered.
func TestMySQLXARefused(t *testing.T) {
	db, cfg := myOpenTestDB(t)
	p := myTestTable(t, db, "xa")
	s := myStart(t, db, cfg, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	testdb.ExecMySQL(t, db, "INSERT INTO tbl_mysqldata_xa VALUES (1, 'plain')")
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"XA START 'osc_test_xa'", "INSERT INTO tbl_mysqldata_xa VALUES (2, 'xa')",
		"XA END 'osc_test_xa'", "XA PREPARE 'osc_test_xa'", "XA ROLLBACK 'osc_test_xa'"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cs, err := s.Next(ctx, 10)
	if err != nil || len(cs) != 1 || cs[0].Op != Insert {
		t.Fatalf("first changes %+v (%v), want the plain insert", cs, err)
	}
	if _, err := s.Next(ctx, 10); err == nil || !strings.Contains(err.Error(), "an XA transaction changed osc_test.tbl_mysqldata_xa") {
		t.Fatalf("next after an XA transaction: %v", err)
	}
}

func TestMySQLCutOverEndsStream(t *testing.T) {
	db, cfg := myOpenTestDB(t)
	p := myTestTable(t, db, "cut")
	testdb.ExecMySQL(t, db, "CREATE TABLE _tbl_mysqldata_cut_gho LIKE tbl_mysqldata_cut")
	s := myStart(t, db, cfg, p)
	testdb.ExecMySQL(t, db, "INSERT INTO tbl_mysqldata_cut VALUES (1, 'a')")
	testdb.ExecMySQL(t, db, "RENAME TABLE tbl_mysqldata_cut TO _tbl_mysqldata_cut_del, _tbl_mysqldata_cut_gho TO tbl_mysqldata_cut")
	testdb.ExecMySQL(t, db, "INSERT INTO tbl_mysqldata_cut VALUES (2, 'b')") // into the new table
	if cs := myNext(t, s, 1); len(cs) != 1 || cs[0].Op != Insert {
		t.Fatalf("got %v, want the first insert", cs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if cs, err := s.Next(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("after the cut-over: %v, %v; want no change until ctx ends", cs, err)
	}
}

func TestMySQLEmptyRowImageRefused(t *testing.T) {
	db, cfg := myOpenTestDB(t)
	p := myTestTable(t, db, "minimal")
	s := myStart(t, db, cfg, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION binlog_row_image = 'MINIMAL'"); err != nil {
		t.Skipf("cannot set binlog_row_image: %v", err)
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO tbl_mysqldata_minimal VALUES (1, 'x')"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "UPDATE tbl_mysqldata_minimal SET v = 'y'"); err != nil {
		t.Fatal(err)
	}
	var err2 error
	for err2 == nil {
		_, err2 = s.Next(ctx, 10)
	}
	if !strings.Contains(err2.Error(), "binlog_row_image=FULL") {
		t.Fatalf("next with a minimal row image: %v", err2)
	}
}

func TestMySQLClassify(t *testing.T) {
	s := &MySQLSource{plan: &table.Plan{
		Source: &table.Table{Schema: "db", Name: "t"},
		Shadow: &table.Table{Schema: "db", Name: "_t_gho"},
	}}
	for _, c := range []struct {
		schema, query string
		want          myQueryKind
	}{
		{"db", "ALTER TABLE t ADD COLUMN x INT", myQueryDDL},
		{"db", "alter table `t` add x int", myQueryDDL},
		{"other", "ALTER TABLE db.t ADD x INT", myQueryDDL},
		{"other", "ALTER TABLE `db` . `t` ADD x INT", myQueryDDL},
		{"other", "ALTER TABLE t ADD x INT", myQueryOther},
		{"db", "ALTER TABLE t2 ADD x INT", myQueryOther},
		{"db", "ALTER TABLE _t_gho ADD x INT", myQueryOther},
		{"db", "DROP TABLE IF EXISTS `t` /* generated by server */", myQueryDDL},
		{"db", "DROP TABLE IF EXISTS `_t_del` /* generated by server */", myQueryOther},
		{"db", "TRUNCATE t", myQueryDDL},
		{"db", "RENAME TABLE t TO t_old", myQueryDDL},
		{"db", "RENAME TABLE `t` TO `_t_del`, `_t_gho` TO `t`", myQueryCutOver},
		{"x", "DROP DATABASE db", myQueryDDL},
		{"x", "DROP SCHEMA `db`", myQueryDDL},
		{"db", "CREATE OR REPLACE TABLE t (id INT)", myQueryDDL},
		{"db", "CREATE TABLE _t_gho LIKE t", myQueryOther},
		{"db", "/* c */ ALTER /*!50100 TABLE t */ ENGINE=InnoDB", myQueryDDL},
		{"db", "/*!40000 ALTER TABLE `t` DISABLE KEYS */", myQueryDDL},
		{"db", "-- t\nSELECT 1", myQueryOther},
		{"db", "BEGIN", myQueryOther},
		{"db", "INSERT INTO t VALUES (1, 'ALTER TABLE t')", myQueryDML},
		{"db", "INSERT INTO t2 VALUES (1, 't')", myQueryOther},
		{"db", "UPDATE db.t SET v = 1", myQueryDML},
		{"db", "ALTER TABLE x COMMENT 'about t'", myQueryOther},
		// MariaDB logs SET STATEMENT … FOR word for word.
		{"db", "SET STATEMENT max_statement_time=100 FOR TRUNCATE TABLE t", myQueryDDL},
		{"db", "SET STATEMENT max_statement_time=100, sql_mode='' FOR ALTER TABLE t ADD x INT", myQueryDDL},
		{"db", "SET STATEMENT max_statement_time=100 FOR ALTER TABLE t2 ADD x INT", myQueryOther},
		{"x", "DROP DATABASE IF EXISTS db", myQueryDDL},
		{"x", "DROP SCHEMA IF EXISTS `db`", myQueryDDL},
		{"x", "DROP DATABASE IF EXISTS db2", myQueryOther},
		{"db", "WITH x AS (SELECT 1) UPDATE t SET v = 1", myQueryDML},
		{"db", "WITH x AS (SELECT 1) SELECT * FROM t", myQueryOther},
		// Another object of the table's name is not the table.
		{"db", "ALTER EVENT t DISABLE", myQueryOther},
		{"db", "ALTER DEFINER=`root`@`localhost` EVENT `t` ON SCHEDULE EVERY 1 HOUR", myQueryOther},
		{"db", "DROP EVENT IF EXISTS db.t", myQueryOther},
		{"db", "DROP PROCEDURE t", myQueryOther},
		{"db", "CREATE DEFINER=`root`@`localhost` PROCEDURE `t`() SELECT 1", myQueryOther},
		{"db", "ALTER FUNCTION t COMMENT 'x'", myQueryOther},
		{"db", "CREATE OR REPLACE ALGORITHM=MERGE DEFINER=root@localhost SQL SECURITY INVOKER VIEW v AS SELECT * FROM t", myQueryOther},
		{"db", "RENAME USER t TO u", myQueryOther},
		{"db", "DROP USER t", myQueryOther},
		{"db", "DROP TRIGGER t", myQueryOther},
		// DDL that changes the table without ALTER TABLE.
		{"db", "CREATE INDEX i ON t (v)", myQueryDDL},
		{"db", "CREATE UNIQUE INDEX i ON db.t (v)", myQueryDDL},
		{"db", "CREATE INDEX i ON t2 (v)", myQueryOther},
		{"db", "DROP INDEX i ON t", myQueryDDL},
		{"db", "CREATE DEFINER=`root`@`localhost` TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.v = 1", myQueryDDL},
		{"db", "CREATE TRIGGER tr BEFORE INSERT ON t2 FOR EACH ROW INSERT INTO t VALUES (1)", myQueryOther},
		{"db", "CREATE TRIGGER t BEFORE INSERT ON t2 FOR EACH ROW SET NEW.v = 1", myQueryOther},
		{"x", "CREATE TRIGGER tr AFTER DELETE ON db.t FOR EACH ROW DELETE FROM x.t2", myQueryDDL},
		{"db", "RENAME TABLE t2 TO t3", myQueryOther},
		{"db", "CREATE OR REPLACE TEMPORARY TABLE t (id INT)", myQueryDDL},
		{"db", "ALTER ONLINE IGNORE TABLE t ADD x INT", myQueryDDL},
		// osc's own ALTER of the shadow at the cut-over, whose column may be named like the table.
		{"x", "ALTER TABLE `db`.`_t_gho` ADD CONSTRAINT `_fk` FOREIGN KEY (`t`) REFERENCES `db`.`p` (`id`)", myQueryOther},
		{"db", "ALTER TABLE _t_gho ADD CONSTRAINT fk FOREIGN KEY (t) REFERENCES p (id)", myQueryOther},
		{"other", "ALTER TABLE _t_gho ADD CONSTRAINT fk FOREIGN KEY (t) REFERENCES db.t (id)", myQueryDDL},
		{"db", "ALTER TABLE t2 ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES t (id)", myQueryDDL},
	} {
		if got := s.classify(c.schema, c.query); got != c.want {
			t.Errorf("classify(%q, %q) = %d, want %d", c.schema, c.query, got, c.want)
		}
	}
}
