package table

import (
	"strings"
	"testing"
)

func TestMySQLTimeConversion(t *testing.T) {
	ts := Column{Name: "a", DataType: "timestamp", ColumnType: "timestamp(3)"}
	dt := Column{Name: "b", DataType: "datetime", ColumnType: "datetime"}
	vc := Column{Name: "c", DataType: "varchar", ColumnType: "varchar(40)"}
	for _, tc := range []struct {
		src, dst Column
		want     string
	}{
		{ts, ts, "?"},
		{dt, vc, "?"},
		{ts, dt, "IF(? LIKE '0000-00-00%', CAST(? AS DATETIME(3)), IF(CAST(? AS DATETIME(3)) < '1970-01-01 00:00:01', CONVERT_TZ(CAST(? AS DATETIME(3)) + INTERVAL 1 SECOND, '+00:00', 'Europe/Berlin') - INTERVAL 1 SECOND, " +
			"CONVERT_TZ(CAST(? AS DATETIME(3)), '+00:00', 'Europe/Berlin')))"},
		{vc, ts, "IF(? LIKE '0000-00-00%', ?, IF(CONVERT_TZ(CONVERT_TZ(?, 'Europe/Berlin', '+00:00'), '+00:00', 'Europe/Berlin') <=> " +
			"CAST(? AS DATETIME(6)), CONVERT_TZ(?, 'Europe/Berlin', '+00:00'), " +
			"IF(CONVERT_TZ(? + INTERVAL 1 SECOND, 'Europe/Berlin', '+00:00') - INTERVAL 1 SECOND > '1970-01-01 00:00:00' AND CONVERT_TZ(? + INTERVAL 1 SECOND, 'Europe/Berlin', '+00:00') - INTERVAL 1 SECOND < '1970-01-01 00:00:01' AND CONVERT_TZ(CONVERT_TZ(? + INTERVAL 1 SECOND, 'Europe/Berlin', '+00:00') - INTERVAL 1 SECOND + INTERVAL 1 SECOND, '+00:00', 'Europe/Berlin') - INTERVAL 1 SECOND <=> CAST(? AS DATETIME(6)), " +
			"CONVERT_TZ(? + INTERVAL 1 SECOND, 'Europe/Berlin', '+00:00') - INTERVAL 1 SECOND, CONCAT(?, ' is not a time in Europe/Berlin'))))"},
		{ts, Column{Name: "b", DataType: "bit", ColumnType: "bit(64)"}, "TRUNCATE(IF(? LIKE '0000-00-00%', CAST(? AS DATETIME(3)), IF(CAST(? AS DATETIME(3)) < '1970-01-01 00:00:01', CONVERT_TZ(CAST(? AS DATETIME(3)) + INTERVAL 1 SECOND, '+00:00', 'Europe/Berlin') - INTERVAL 1 SECOND, " +
			"CONVERT_TZ(CAST(? AS DATETIME(3)), '+00:00', 'Europe/Berlin'))) + 0, 0)"},
		// A BIT by its number, its 0 the zero TIMESTAMP.
		{Column{Name: "d", DataType: "bit", ColumnType: "bit(64)"}, ts, "IF((? + 0) = 0, '0000-00-00 00:00:00', IF(CONVERT_TZ(CONVERT_TZ((? + 0), 'Europe/Berlin', '+00:00'), '+00:00', 'Europe/Berlin') <=> " +
			"CAST((? + 0) AS DATETIME(6)), CONVERT_TZ((? + 0), 'Europe/Berlin', '+00:00'), " +
			"IF(CONVERT_TZ((? + 0) + INTERVAL 1 SECOND, 'Europe/Berlin', '+00:00') - INTERVAL 1 SECOND > '1970-01-01 00:00:00' AND CONVERT_TZ((? + 0) + INTERVAL 1 SECOND, 'Europe/Berlin', '+00:00') - INTERVAL 1 SECOND < '1970-01-01 00:00:01' AND CONVERT_TZ(CONVERT_TZ((? + 0) + INTERVAL 1 SECOND, 'Europe/Berlin', '+00:00') - INTERVAL 1 SECOND + INTERVAL 1 SECOND, '+00:00', 'Europe/Berlin') - INTERVAL 1 SECOND <=> CAST((? + 0) AS DATETIME(6)), " +
			"CONVERT_TZ((? + 0) + INTERVAL 1 SECOND, 'Europe/Berlin', '+00:00') - INTERVAL 1 SECOND, CONCAT((? + 0), ' is not a time in Europe/Berlin'))))"},
		// A number's 0 is the zero TIMESTAMP.
		{Column{Name: "d", DataType: "decimal", ColumnType: "decimal(20,1)"}, ts, "IF(? = 0, '0000-00-00 00:00:00', IF(CONVERT_TZ(CONVERT_TZ(?, 'Europe/Berlin', '+00:00'), '+00:00', 'Europe/Berlin') <=> " +
			"CAST(? AS DATETIME(6)), CONVERT_TZ(?, 'Europe/Berlin', '+00:00'), " +
			"IF(CONVERT_TZ(? + INTERVAL 1 SECOND, 'Europe/Berlin', '+00:00') - INTERVAL 1 SECOND > '1970-01-01 00:00:00' AND CONVERT_TZ(? + INTERVAL 1 SECOND, 'Europe/Berlin', '+00:00') - INTERVAL 1 SECOND < '1970-01-01 00:00:01' AND CONVERT_TZ(CONVERT_TZ(? + INTERVAL 1 SECOND, 'Europe/Berlin', '+00:00') - INTERVAL 1 SECOND + INTERVAL 1 SECOND, '+00:00', 'Europe/Berlin') - INTERVAL 1 SECOND <=> CAST(? AS DATETIME(6)), " +
			"CONVERT_TZ(? + INTERVAL 1 SECOND, 'Europe/Berlin', '+00:00') - INTERVAL 1 SECOND, CONCAT(?, ' is not a time in Europe/Berlin'))))"},
		// A day its month lacks: the zero TIMESTAMP, as the ALTER gives.
		{dt, ts, "IF(? LIKE '0000-00-00%', ?, IF(SUBSTRING(?, 9, 2) > DAY(LAST_DAY(CONCAT(LEFT(?, 8), '01'))), '0000-00-00 00:00:00', " +
			"IF(CONVERT_TZ(CONVERT_TZ(?, 'Europe/Berlin', '+00:00'), '+00:00', 'Europe/Berlin') <=> " +
			"CAST(? AS DATETIME(6)), CONVERT_TZ(?, 'Europe/Berlin', '+00:00'), " +
			"IF(CONVERT_TZ(? + INTERVAL 1 SECOND, 'Europe/Berlin', '+00:00') - INTERVAL 1 SECOND > '1970-01-01 00:00:00' AND CONVERT_TZ(? + INTERVAL 1 SECOND, 'Europe/Berlin', '+00:00') - INTERVAL 1 SECOND < '1970-01-01 00:00:01' AND CONVERT_TZ(CONVERT_TZ(? + INTERVAL 1 SECOND, 'Europe/Berlin', '+00:00') - INTERVAL 1 SECOND + INTERVAL 1 SECOND, '+00:00', 'Europe/Berlin') - INTERVAL 1 SECOND <=> CAST(? AS DATETIME(6)), " +
			"CONVERT_TZ(? + INTERVAL 1 SECOND, 'Europe/Berlin', '+00:00') - INTERVAL 1 SECOND, CONCAT(?, ' is not a time in Europe/Berlin')))))"},
	} {
		got, err := MySQLTimeConversion("?", tc.src, tc.dst, "Europe/Berlin")
		if err != nil || got != tc.want {
			t.Errorf("%s -> %s: %q, %v; want %q", tc.src.ColumnType, tc.dst.ColumnType, got, err, tc.want)
		}
	}
	if _, err := MySQLTimeConversion("?", ts, dt, "x'; DROP"); err == nil {
		t.Error("a zone that is not a name or an offset was accepted")
	}
}

func TestMySQLNullToTimestamp(t *testing.T) {
	now := "2026-12-01 03:52:20.123456"
	tsNull := Column{Name: "a", DataType: "timestamp", ColumnType: "timestamp", Nullable: true}
	ts := Column{Name: "a", DataType: "timestamp", ColumnType: "timestamp"}
	ts3 := Column{Name: "a", DataType: "timestamp", ColumnType: "timestamp(3)"}
	dtNull := Column{Name: "b", DataType: "datetime", ColumnType: "datetime(3)", Nullable: true}
	dt := Column{Name: "b", DataType: "datetime", ColumnType: "datetime"}
	for _, tc := range []struct {
		src, dst Column
		want     string
	}{
		{tsNull, ts, "COALESCE(?, '2026-12-01 03:52:20')"},
		{dtNull, ts3, "COALESCE(?, '2026-12-01 03:52:20.123')"},
		// Nothing to fill: the source holds no NULL, or the shadow
		// takes it, or a DATETIME NOT NULL, which refuses it as the
		// ALTER does.
		{ts, ts, "?"},
		{tsNull, tsNull, "?"},
		{dtNull, dt, "?"},
	} {
		got, err := MySQLNullToTimestamp("?", tc.src, tc.dst, now)
		if err != nil || got != tc.want {
			t.Errorf("%s (nullable %v) -> %s: %q, %v; want %q", tc.src.ColumnType, tc.src.Nullable, tc.dst.ColumnType, got, err, tc.want)
		}
	}
	// No ALTER time: the server's ALTER gives no time (or none ran).
	if got, err := MySQLNullToTimestamp("?", tsNull, ts, ""); err != nil || got != "?" {
		t.Errorf("without an ALTER time: %q, %v; want ?", got, err)
	}
	if _, err := MySQLNullToTimestamp("?", tsNull, ts, "now'); DROP"); err == nil {
		t.Error("an ALTER time that is not a time was accepted")
	}
}

func TestMySQLSessionSQLMode(t *testing.T) {
	for global, want := range map[string]string{
		"":                                 "STRICT_TRANS_TABLES,NO_AUTO_VALUE_ON_ZERO",
		"STRICT_TRANS_TABLES,NO_ZERO_DATE": "STRICT_TRANS_TABLES,NO_ZERO_DATE,NO_AUTO_VALUE_ON_ZERO",
		"NO_AUTO_VALUE_ON_ZERO,ANSI_QUOTES,STRICT_ALL_TABLES": "ANSI_QUOTES,STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO",
		// Not strict: made strict, so that a single-row write converts (or
		// fails) as a multi-row one does.
		"ERROR_FOR_DIVISION_BY_ZERO": "ERROR_FOR_DIVISION_BY_ZERO,STRICT_TRANS_TABLES,NO_AUTO_VALUE_ON_ZERO",
		// PAD_CHAR_TO_FULL_LENGTH dropped: CHAR values read as the binlog has them.
		"STRICT_TRANS_TABLES,PAD_CHAR_TO_FULL_LENGTH,EMPTY_STRING_IS_NULL": "STRICT_TRANS_TABLES,EMPTY_STRING_IS_NULL,NO_AUTO_VALUE_ON_ZERO",
	} {
		if got := mysqlSessionSQLMode(global); got != want {
			t.Errorf("global %q: session %q, want %q", global, got, want)
		}
	}
}

func TestMySQLFill(t *testing.T) {
	for _, tc := range []struct {
		c    Column
		want string
	}{
		{Column{Name: "i", DataType: "int", NoDefault: true}, "0"},
		{Column{Name: "e", DataType: "enum", NoDefault: true}, "1"},
		{Column{Name: "d", DataType: "datetime", NoDefault: true}, "'0000-00-00 00:00:00'"},
		{Column{Name: "n", DataType: "int", Nullable: true, NoDefault: true}, ""},
		{Column{Name: "l", DataType: "longtext", NoDefault: true}, "SPACE(0)"},
		{Column{Name: "v", DataType: "int", Default: "7"}, ""},
		{Column{Name: "at", DataType: "datetime", Default: "current_timestamp(3)"}, "CONVERT_TZ('2026-11-30 01:02:03.456', '+00:00', '+02:00')"},
		{Column{Name: "at", DataType: "datetime", Default: "current_timestamp()"}, "CONVERT_TZ('2026-11-30 01:02:03', '+00:00', '+02:00')"},
		{Column{Name: "ts", DataType: "timestamp", Default: "current_timestamp()"}, "'2026-11-30 01:02:03'"},
		{Column{Name: "ts", DataType: "timestamp", Default: "CURRENT_TIMESTAMP(6)"}, "'2026-11-30 01:02:03.456789'"},
		{Column{Name: "g", DataType: "int", Generated: true}, ""},
	} {
		got, err := mysqlFill(tc.c, "+02:00", "2026-11-30 01:02:03.456789")
		if err != nil || got != tc.want {
			t.Errorf("%+v: %q, %v; want %q", tc.c, got, err, tc.want)
		}
	}
	// A DEFAULT that reads a sequence: refused, as information_schema
	// shows NEXT VALUE FOR and PREVIOUS VALUE FOR.
	for _, def := range []string{"nextval(`d`.`s`)", "(1 + nextval(`d`.`s`))", "lastval(`d`.`s`)"} {
		if _, err := mysqlFill(Column{Name: "n", DataType: "int", Nullable: true, Default: def}, "+02:00", "2026-11-30 01:02:03.456789"); err == nil ||
			!strings.Contains(err.Error(), "which reads a sequence") {
			t.Errorf("DEFAULT %s: error %v, want a refusal", def, err)
		}
	}
	// A DEFAULT expression that reads the statement's time: refused (the
	// ALTER's one time for all rows cannot be told from a chunk's).
	for _, def := range []string{"(current_timestamp(6) + interval 1 day)", "unix_timestamp()", "curdate()", "utc_timestamp()",
		"concat('x',current_timestamp())", "hour(now())"} {
		if _, err := mysqlFill(Column{Name: "n", DataType: "int", Nullable: true, Default: def}, "+02:00", "2026-11-30 01:02:03.456789"); err == nil ||
			!strings.Contains(err.Error(), "which reads the clock") {
			t.Errorf("DEFAULT %s: error %v, want a refusal", def, err)
		}
	}
	// A DEFAULT that reads the writing session: refused.
	for _, def := range []string{"User()", "current_user()", "concat(connection_id(),'')", "database()", "current_role()"} {
		if _, err := mysqlFill(Column{Name: "n", DataType: "varchar", Nullable: true, Default: def}, "+02:00", "2026-11-30 01:02:03.456789"); err == nil ||
			!strings.Contains(err.Error(), "which reads the writing session") {
			t.Errorf("DEFAULT %s: error %v, want a refusal", def, err)
		}
	}
	// Not the statement's clock: a literal or a quoted name that reads
	// like one, UNIX_TIMESTAMP of a column, SYSDATE() (each row's own time
	// in the ALTER too).
	for _, def := range []string{"'now()'", "concat('now(','it\\'s',`a`)", "unix_timestamp(`e`)", "sysdate()", "(`a` * 2)", "`now`(`x`)", "'user()'", "`user`(1)", "uuid()"} {
		if got, err := mysqlFill(Column{Name: "n", DataType: "varchar", Nullable: true, Default: def}, "+02:00", "2026-11-30 01:02:03.456789"); err != nil || got != "" {
			t.Errorf("DEFAULT %s: %q, %v; want no fill", def, got, err)
		}
	}
	if got, err := mysqlFill(Column{Name: "n", DataType: "varchar", Nullable: true, Default: "'nextval'"}, "+02:00", "2026-11-30 01:02:03.456789"); err != nil || got != "" {
		t.Errorf("DEFAULT 'nextval': %q, %v; want no fill", got, err)
	}
	// A spatial column: the ALTER's empty value has no literal.
	if _, err := mysqlFill(Column{Name: "g", DataType: "point", ColumnType: "point", NoDefault: true}, "+02:00", "2026-11-30 01:02:03.456789"); err == nil ||
		!strings.Contains(err.Error(), "adds the column g point NOT NULL without a DEFAULT") {
		t.Errorf("point: error %v, want a refusal", err)
	}
}

func TestCheckTimeToDate(t *testing.T) {
	tm := Column{Name: "tm", DataType: "time", ColumnType: "time(2)"}
	for dst, refused := range map[string]bool{"timestamp": true, "datetime": true, "date": true, "varchar": false, "time": false, "int": false} {
		err := checkTimeToDate(tm, Column{Name: "tm", DataType: dst, ColumnType: dst})
		if (err != nil) != refused {
			t.Errorf("time -> %s: error %v, want refused %v", dst, err, refused)
		}
	}
}

func TestMySQLFloatConversion(t *testing.T) {
	vc := Column{DataType: "varchar", ColumnType: "varchar(30)"}
	for _, tc := range []struct {
		src, dst Column
		want     string
	}{
		{Column{DataType: "float", ColumnType: "float"}, vc, "CONCAT(CAST(? AS FLOAT))"},
		{Column{DataType: "float", ColumnType: "float(7,3)"}, vc, "CONCAT(CAST(? AS DECIMAL(65,3)))"},
		{Column{DataType: "double", ColumnType: "double(9,4) unsigned"}, Column{DataType: "text", ColumnType: "text"}, "CONCAT(CAST(? AS DECIMAL(65,4)))"},
		{Column{DataType: "double", ColumnType: "double"}, vc, "?"},
		{Column{DataType: "float", ColumnType: "float"}, Column{DataType: "double", ColumnType: "double"}, "?"},
		{Column{DataType: "int", ColumnType: "int(11)"}, vc, "?"},
		{Column{DataType: "float", ColumnType: "float"}, Column{DataType: "bigint", ColumnType: "bigint(20)"},
			"IF(? >= 9223372036854775807, 9223372036854775807, IF(? < -9223372036854775808, -9223372036854775808, CAST(ROUND(?) AS SIGNED)))"},
		{Column{DataType: "float", ColumnType: "float"}, Column{DataType: "bigint", ColumnType: "bigint(20) unsigned", Unsigned: true},
			"IF(? >= 9223372036854775807, 9223372036854775807, CAST(ROUND(?) AS SIGNED))"},
		{Column{DataType: "double", ColumnType: "double"}, Column{DataType: "bigint", ColumnType: "bigint(20)"}, "?"},
		{Column{DataType: "float", ColumnType: "float"}, Column{DataType: "bit", ColumnType: "bit(64)"},
			"CAST(IF(? >= 9223372036854775807, 9223372036854775807, IF(? < -9223372036854775808, -9223372036854775808, CAST(ROUND(?) AS SIGNED))) AS UNSIGNED)"},
		{Column{DataType: "double", ColumnType: "double"}, Column{DataType: "bit", ColumnType: "bit(64)"},
			"CAST(IF(? >= 9223372036854775807, 9223372036854775807, IF(? < -9223372036854775808, -9223372036854775808, CAST(ROUND(?) AS SIGNED))) AS UNSIGNED) + " +
				"IF(? > 9223372036854775807 OR ? < -9223372036854775808, 18446744073709551615, 0)"},
		{Column{DataType: "double", ColumnType: "double"}, Column{DataType: "bigint", ColumnType: "bigint(20) unsigned", Unsigned: true},
			"IF(? >= 9223372036854775807, 9223372036854775807, CAST(ROUND(?) AS SIGNED)) + IF(? > 9223372036854775807, 18446744073709551615, 0)"},
	} {
		if got := MySQLFloatConversion("?", tc.src, tc.dst); got != tc.want {
			t.Errorf("%s -> %s: %q, want %q", tc.src.ColumnType, tc.dst.ColumnType, got, tc.want)
		}
	}
}

func TestPadCharRefusal(t *testing.T) {
	src := &Table{Columns: []Column{{Name: "id", DataType: "int"}, {Name: "c", DataType: "char", ColumnType: "char(5)"}}}
	p := &Plan{Source: src, Mapping: []ColumnMap{{Source: "id", Shadow: "id"}, {Source: "c", Shadow: "c", SourceIndex: 1}}}
	for _, tc := range []struct {
		mode, shadowType string
		refused          bool
	}{
		{"STRICT_TRANS_TABLES,PAD_CHAR_TO_FULL_LENGTH", "varchar", true},
		{"STRICT_TRANS_TABLES,PAD_CHAR_TO_FULL_LENGTH", "char", false},
		{"STRICT_TRANS_TABLES", "varchar", false},
	} {
		p.Shadow = &Table{Columns: []Column{{Name: "id", DataType: "int"}, {Name: "c", DataType: tc.shadowType, ColumnType: tc.shadowType + "(5)"}}}
		if err := padCharRefusal(tc.mode, p); (err != nil) != tc.refused {
			t.Errorf("%s, char -> %s: error %v, want refused %v", tc.mode, tc.shadowType, err, tc.refused)
		}
	}
}

func TestMySQLTimeText(t *testing.T) {
	vc := Column{DataType: "varchar", ColumnType: "varchar(30)"}
	for _, tc := range []struct {
		src, dst Column
		want     string
	}{
		{Column{DataType: "time", ColumnType: "time(3)"}, vc, "CAST(? AS TIME(3))"},
		{Column{DataType: "time", ColumnType: "time"}, vc, "?"},
		{Column{DataType: "time", ColumnType: "time(3)"}, Column{DataType: "time", ColumnType: "time(6)"}, "?"},
		{Column{DataType: "datetime", ColumnType: "datetime(2)"}, vc, "?"},
	} {
		if got := MySQLTimeText("?", tc.src, tc.dst); got != tc.want {
			t.Errorf("%s -> %s: %q, want %q", tc.src.ColumnType, tc.dst.ColumnType, got, tc.want)
		}
	}
}
