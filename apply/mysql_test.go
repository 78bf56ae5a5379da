package apply_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"osc/apply"
	"osc/cdc"
	"osc/copier"
	"osc/engine"
	"osc/internal/testdb"
	"osc/table"
)

var (
	_ engine.Source  = (*cdc.MySQLSource)(nil)
	_ engine.Copier  = (*copier.MySQL)(nil)
	_ engine.Applier = (*apply.MySQL)(nil)
)

// myOpenDB opens osc_test the way the engine does.
func myOpenDB(t testing.TB) (*sql.DB, cdc.MySQLConfig) {
	t.Helper()
	srv := testdb.MySQL(t)
	cfg := srv.Config(t, "osc_test")
	cfg.InterpolateParams, cfg.ParseTime = false, false
	cfg.MaxAllowedPacket = 0
	cfg.Params = map[string]string{
		"time_zone": "'+00:00'",
		"sql_mode":  "'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
	}
	db := testdb.OpenMySQL(t, cfg)
	return db, cdc.MySQLConfig{
		Host: srv.Host, Port: uint16(srv.Port), User: srv.User, Password: srv.Password,
		ServerID: 3000000 + mrand.Uint32N(1000000), Flavor: testdb.MySQLFlavor(t, db),
	}
}

// myLoadPlan builds the plan of copying src into shadow (same columns) from
// information_schema, with a changelog table created here.
func myLoadPlan(t testing.TB, db *sql.DB, src, shadow string) *table.Plan {
	t.Helper()
	ghc := "_" + src + "_ghc"
	testdb.DropMySQLTables(t, db, ghc)
	testdb.ExecMySQL(t, db, "CREATE TABLE "+ghc+` (id BIGINT AUTO_INCREMENT PRIMARY KEY,
		ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), hint VARCHAR(64) NOT NULL, value VARCHAR(4096) NOT NULL)`)
	read := func(name string) *table.Table {
		rows, err := db.Query(`SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE = 'YES',
			COALESCE(CHARACTER_SET_NAME, ''), EXTRA LIKE '%GENERATED%', COALESCE(COLLATION_NAME, '')
			FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'osc_test' AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, name)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		tbl := &table.Table{Schema: "osc_test", Name: name}
		for rows.Next() {
			var c table.Column
			if err := rows.Scan(&c.Name, &c.DataType, &c.ColumnType, &c.Nullable, &c.Charset, &c.Generated, &c.Collation); err != nil {
				t.Fatal(err)
			}
			c.Unsigned = strings.Contains(c.ColumnType, "unsigned")
			tbl.Columns = append(tbl.Columns, c)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return tbl
	}
	p := &table.Plan{Source: read(src), Shadow: read(shadow), ChangelogName: ghc, KeyIndexName: "PRIMARY"}
	rows, err := db.Query(`SELECT COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = 'osc_test' AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`, src)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		p.Key = append(p.Key, k)
		p.KeyIndex = append(p.KeyIndex, p.Source.ColumnIndex(k))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for i, c := range p.Source.Columns {
		if !c.Generated {
			p.Mapping = append(p.Mapping, table.ColumnMap{Source: c.Name, Shadow: c.Name, SourceIndex: i})
		}
	}
	return p
}

// myDump reads a table with the text protocol: every value as the server
// renders it, NULL as nil.
func myDump(t *testing.T, db *sql.DB, name string) [][][]byte {
	t.Helper()
	rows, err := db.Query("SELECT * FROM " + name + " ORDER BY 1, 2")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][][]byte
	for rows.Next() {
		raw := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range raw {
			ptrs[i] = &raw[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([][]byte, len(cols))
		for i, r := range raw {
			if r != nil {
				row[i] = append([]byte{}, r...)
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// mySameTables compares two tables byte for byte, and FLOAT/DOUBLE columns
// exactly (their text rendering may round).
func mySameTables(t *testing.T, db *sql.DB, p *table.Plan, a, b string) {
	t.Helper()
	da, db2 := myDump(t, db, a), myDump(t, db, b)
	if len(da) != len(db2) {
		t.Fatalf("%s has %d rows, %s has %d", a, len(da), b, len(db2))
	}
	for i := range da {
		for j := range da[i] {
			x, y := da[i][j], db2[i][j]
			if (x == nil) != (y == nil) || !bytes.Equal(x, y) {
				t.Errorf("row %d column %s: %s has %s, %s has %s", i, p.Source.Columns[j].Name, a, myShow(x), b, myShow(y))
			}
		}
	}
	var conds []string
	for _, c := range p.Source.Columns {
		if c.DataType == "float" || c.DataType == "double" {
			conds = append(conds, fmt.Sprintf("NOT (x.%[1]s <=> y.%[1]s)", c.Name))
		}
	}
	if len(conds) > 0 {
		var n int
		q := fmt.Sprintf("SELECT COUNT(*) FROM %s x JOIN %s y USING (%s) WHERE %s", a, b, p.Key[0], strings.Join(conds, " OR "))
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d rows differ in a floating-point column", n)
		}
	}
}

func myShow(b []byte) string {
	if b == nil {
		return "NULL"
	}
	if len(b) > 64 {
		return fmt.Sprintf("%q... (%d bytes)", b[:64], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// myReadUntil reads changes until the marker id.
func myReadUntil(t testing.TB, src *cdc.MySQLSource, id string) []cdc.Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []cdc.Change
	for {
		cs, err := src.Next(ctx, 7)
		if err != nil {
			t.Fatalf("next: %v (after %d changes)", err, len(out))
		}
		for _, c := range cs {
			out = append(out, c)
			if c.Op == cdc.Marker && c.Marker == id {
				return out
			}
		}
	}
}

func myStartSource(t testing.TB, db *sql.DB, cfg cdc.MySQLConfig, p *table.Plan) *cdc.MySQLSource {
	t.Helper()
	src, err := cdc.NewMySQL(cfg, db, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := src.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return src
}

const myAllTypes = `(
	id INT NOT NULL PRIMARY KEY,
	ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
	mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
	d DECIMAL(65,30), du DECIMAL(10,2) UNSIGNED, d0 DECIMAL(5,0),
	f FLOAT, db DOUBLE, f2 FLOAT(7,3),
	dt DATE, tm TIME(6), tm0 TIME, tm3 TIME(3), dtm DATETIME(6), dtm0 DATETIME, ts TIMESTAMP(6) NULL, ts0 TIMESTAMP NULL, y YEAR,
	c CHAR(10), vc VARCHAR(100), tx TEXT,
	cl CHAR(5) CHARACTER SET latin1, vcl VARCHAR(300) CHARACTER SET latin1, txl TEXT CHARACTER SET latin1,
	bn BINARY(4), vb VARBINARY(300), bl LONGBLOB, tb TINYBLOB,
	j JSON,
	e ENUM('a','b''c','é'), el ENUM('x','ÿ') CHARACTER SET latin1, st SET('p','q','r'),
	b1 BIT(1), b64 BIT(64), b10 BIT(10),
	g BIGINT AS (i + 1) VIRTUAL, gs VARCHAR(120) AS (CONCAT(vc, '!')) STORED
) DEFAULT CHARSET utf8mb4`

const myAllCols = `id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, d, du, d0, f, db, f2,
	dt, tm, tm0, tm3, dtm, dtm0, ts, ts0, y, c, vc, tx, cl, vcl, txl, bn, vb, bl, tb, j, e, el, st, b1, b64, b10`

// myInsertAllTypes inserts the edge rows: minimums, maximums, odd values and
// NULLs, with ids base+1...
func myInsertAllTypes(t *testing.T, db *sql.DB, name string, base int) {
	t.Helper()
	blob := make([]byte, 1<<20)
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	latin := make([]byte, 0, 224)
	for b := 0x20; b <= 0xff; b++ {
		latin = append(latin, byte(b))
	}
	nines := strings.Repeat("9", 35) + "." + strings.Repeat("9", 30)
	// latin1 columns get their bytes through UNHEX, independently of the
	// applier's conversion.
	latin1 := map[int]bool{29: true, 30: true, 31: true}
	params := make([]string, 43)
	for i := range params {
		params[i] = "?"
		if latin1[i] {
			params[i] = "CONVERT(UNHEX(?) USING latin1)"
		}
	}
	q := "INSERT INTO " + name + " (" + myAllCols + ") VALUES (" + strings.Join(params, ", ") + ")"
	ins := func(args ...any) {
		t.Helper()
		if len(args) != len(params) {
			t.Fatalf("row %v has %d values, want %d", args[0], len(args), len(params))
		}
		for i := range args {
			if b, ok := args[i].([]byte); ok && latin1[i] {
				args[i] = fmt.Sprintf("%X", b)
			}
		}
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("insert row %v: %v", args[0], err)
		}
	}
	// minimums
	ins(base+1, -128, 0, -32768, 0, -8388608, 0, math.MinInt32, 0, int64(math.MinInt64), 0, "-"+nines, "0.00", "-99999",
		-math.MaxFloat32, -math.MaxFloat64, -9999.999,
		"0000-00-00", "-838:59:59.000000", "-838:59:59", "-00:00:00.001", "0000-00-00 00:00:00.000000", "1000-01-01 00:00:00",
		"0000-00-00 00:00:00", "1970-01-01 00:00:01", 0,
		"", "", "", "", "", "", []byte{0, 0, 0, 0}, []byte{}, []byte{}, []byte{},
		`{}`, "a", "x", "", 0, 0, 0)
	// maximums
	ins(base+2, 127, 255, 32767, 65535, 8388607, 16777215, math.MaxInt32, uint64(math.MaxUint32), int64(math.MaxInt64), uint64(math.MaxUint64),
		nines, "99999999.99", "99999",
		math.MaxFloat32, math.MaxFloat64, 9999.999,
		"9999-12-31", "838:59:59.000000", "838:59:59", "838:59:59.999", "9999-12-31 23:59:59.999999", "9999-12-31 23:59:59",
		"2038-01-19 03:14:07.999999", "2038-01-19 03:14:07", 2155,
		"😀 emoji ", "ünïcödé 😀 ok  ", strings.Repeat("日本語", 1000),
		[]byte("\xe9t\xe9"), latin, latin, []byte{0xff, 0, 0x80, 0}, []byte{0, 0xff, 0xc3, 0x28, 0}, blob, []byte("\x00\x01\xfe"),
		`{"a": [1, 2.5, "x", true, null], "b": {"c": "é😀"}, "d": -0.0000001}`, "é", "ÿ", "p,q,r", 1, uint64(math.MaxUint64), 1023)
	// odd values
	ins(base+3, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, "-0.000000000000000000000000000001", "0.01", "0",
		float32(0.1), 0.1, 0.001,
		"2020-02-29", "-00:00:00.500000", "00:00:00", "-12:34:56.789", "1969-12-31 23:59:59.000001", "2020-00-00 00:00:00",
		"2000-06-15 12:00:00.123456", "2000-06-15 12:00:00", 1901,
		"a", "trailing  ", "", []byte("caf\xe9"), []byte("\x80\x81\x8d\x8f\x90\x9d"), []byte("\xe9"), []byte{0x61}, []byte{}, []byte{0}, []byte("x"),
		`[1.0, 1e300, "\u0000"]`, "b'c", "x", "q", 0, uint64(1)<<63, 512)
	// NULLs, and the smallest floating-point numbers
	nulls := make([]any, len(params))
	nulls[0], nulls[14], nulls[15] = base+4, float32(math.SmallestNonzeroFloat32), math.SmallestNonzeroFloat64
	ins(nulls...)
}

func TestMySQLRoundTripAllTypes(t *testing.T) {
	db, cfg := myOpenDB(t)
	const orig, shadow, copied = "tbl_mysqldata_rt", "_tbl_mysqldata_rt_gho", "tbl_mysqldata_rt_copy"
	testdb.DropMySQLTables(t, db, orig, shadow, copied)
	testdb.ExecMySQL(t, db, "CREATE TABLE "+orig+" "+myAllTypes)
	testdb.ExecMySQL(t, db, "CREATE TABLE "+shadow+" LIKE "+orig)
	testdb.ExecMySQL(t, db, "CREATE TABLE "+copied+" LIKE "+orig)
	p := myLoadPlan(t, db, orig, shadow)
	src := myStartSource(t, db, cfg, p)
	ctx := context.Background()

	myInsertAllTypes(t, db, orig, 0)
	myInsertAllTypes(t, db, orig, 10)
	testdb.ExecMySQL(t, db, "INSERT INTO "+orig+" (id) VALUES (20), (21), (22)")
	// Updates in place, a key change, deletes, and a multi-row update event.
	testdb.ExecMySQL(t, db, "UPDATE "+orig+" SET f = f / 3, db = db / 3, tm = '-01:02:03.000004', vcl = CONCAT(vcl, 'ü'), e = 'é', st = 'q,r', b64 = b'1' WHERE id = 13")
	testdb.ExecMySQL(t, db, "UPDATE "+orig+" SET id = 30, bl = REPEAT('z', 10) WHERE id = 12")
	testdb.ExecMySQL(t, db, "UPDATE "+orig+" SET tiu = 200, miu = 16000000, iu = 4000000000, biu = 18000000000000000000 WHERE id IN (20, 21, 22)")
	testdb.ExecMySQL(t, db, "DELETE FROM "+orig+" WHERE id IN (11, 14)")
	if err := src.EmitMarker(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	changes := myReadUntil(t, src, "m1")
	a := apply.NewMySQL(db, p)
	// Apply in uneven batches.
	for len(changes) > 0 {
		n := min(len(changes), 5)
		if err := a.Apply(ctx, changes[:n]); err != nil {
			t.Fatalf("apply: %v", err)
		}
		changes = changes[n:]
	}
	mySameTables(t, db, p, orig, shadow)

	// The copy gives the same table.
	cp := copier.NewMySQL(db, myLoadPlan(t, db, orig, copied))
	var after []any
	for chunks := 0; ; chunks++ {
		ch, err := cp.CopyChunk(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Done {
			break
		}
		after = ch.Last
		if chunks > 10 {
			t.Fatal("copy does not end")
		}
	}
	mySameTables(t, db, p, orig, copied)

	// The test data is what it claims to be.
	var hex, frac string
	if err := db.QueryRow("SELECT HEX(cl), tm FROM "+shadow+" WHERE id = 2").Scan(&hex, &frac); err != nil {
		t.Fatal(err)
	}
	if hex != "E974E9" || frac != "838:59:59.000000" {
		t.Errorf("latin1 é = %s, time = %s", hex, frac)
	}
}

func TestMySQLKeyChangingUpdate(t *testing.T) {
	db, cfg := myOpenDB(t)
	const orig, shadow = "tbl_mysqldata_kc", "_tbl_mysqldata_kc_gho"
	testdb.DropMySQLTables(t, db, orig, shadow)
	testdb.ExecMySQL(t, db, "CREATE TABLE "+orig+" (a INT NOT NULL, b VARCHAR(20) CHARACTER SET latin1 NOT NULL, v VARCHAR(20), PRIMARY KEY (a, b))")
	testdb.ExecMySQL(t, db, "CREATE TABLE "+shadow+" LIKE "+orig)
	testdb.ExecMySQL(t, db, "INSERT INTO "+orig+" VALUES (1, 'é', 'one'), (2, 'x', 'two')")
	testdb.ExecMySQL(t, db, "INSERT INTO "+shadow+" SELECT * FROM "+orig)
	p := myLoadPlan(t, db, orig, shadow)
	src := myStartSource(t, db, cfg, p)
	ctx := context.Background()

	testdb.ExecMySQL(t, db, "UPDATE "+orig+" SET b = 'ü' WHERE a = 1")            // key change in a latin1 column
	testdb.ExecMySQL(t, db, "UPDATE "+orig+" SET a = 3, v = 'three' WHERE a = 2") // key change
	testdb.ExecMySQL(t, db, "INSERT INTO "+orig+" VALUES (2, 'x', 'again')")      // the old key reused
	testdb.ExecMySQL(t, db, "UPDATE "+orig+" SET v = 'same key' WHERE a = 3")     // no key change
	testdb.ExecMySQL(t, db, "UPDATE "+orig+" SET a = 4 WHERE a = 2")
	testdb.ExecMySQL(t, db, "DELETE FROM "+orig+" WHERE a = 4")
	if err := src.EmitMarker(ctx, "kc"); err != nil {
		t.Fatal(err)
	}
	changes := myReadUntil(t, src, "kc")
	if err := apply.NewMySQL(db, p).Apply(ctx, changes); err != nil {
		t.Fatal(err)
	}
	mySameTables(t, db, p, orig, shadow)
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + shadow).Scan(&n); err != nil || n != 2 {
		t.Fatalf("shadow has %d rows (%v), want 2", n, err)
	}

	// The same changes applied one by one, in one batch each.
	testdb.ExecMySQL(t, db, "DELETE FROM "+shadow)
	testdb.ExecMySQL(t, db, "INSERT INTO "+shadow+" VALUES (1, 'é', 'one'), (2, 'x', 'two')")
	a := apply.NewMySQL(db, p)
	for _, c := range changes {
		if err := a.Apply(ctx, []cdc.Change{c}); err != nil {
			t.Fatal(err)
		}
	}
	mySameTables(t, db, p, orig, shadow)
}

// myKeys lists a table's keys as utf8mb4 bytes in hex, sorted.
func myKeys(t *testing.T, db *sql.DB, name string) []string {
	t.Helper()
	rows, err := db.Query("SELECT CONCAT(a, ':', HEX(CONVERT(k USING utf8mb4))) x FROM " + name + " ORDER BY x")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// A replayed delete (cdc.Change.Replay) removes only the row whose key has
// exactly the deleted key's bytes: after a key change to a collation-equal
// key ('key' -> 'KEY', 'key' -> 'key '), replaying the delete of the old key
// must not delete the live row with the new one.
func TestMySQLReplayDeleteIsByteExact(t *testing.T) {
	db, cfg := myOpenDB(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, orig, shadow string
		updates            []string
	}{
		{"u8", "a INT NOT NULL, k VARCHAR(20) COLLATE utf8mb4_general_ci NOT NULL, PRIMARY KEY (k)", "",
			[]string{"KEY000001:key000001", "key000050 :key000050", "KEYÉ:keyé"}},
		{"l1", "a INT NOT NULL, k VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_swedish_ci NOT NULL, PRIMARY KEY (k)", "",
			[]string{"KEY000001:key000001", "key000050 :key000050", "KEYÉ:keyé"}},
		// CHAR drops trailing spaces: 'key000050 ' is the same value.
		{"ch", "a INT NOT NULL, k CHAR(12) COLLATE utf8mb4_general_ci NOT NULL, PRIMARY KEY (k)", "",
			[]string{"KEY000001:key000001", "KEYÉ:keyé"}},
		// The ALTER changed the key's character set: bytes differ between the tables.
		{"cv", "a INT NOT NULL, k VARCHAR(20) CHARACTER SET latin1 NOT NULL, PRIMARY KEY (k)",
			"a INT NOT NULL, k VARCHAR(20) COLLATE utf8mb4_general_ci NOT NULL, PRIMARY KEY (k)",
			[]string{"KEY000001:key000001", "key000050 :key000050", "KEYÉ:keyé"}},
		{"ck", "a INT NOT NULL, k VARCHAR(20) COLLATE utf8mb4_general_ci NOT NULL, PRIMARY KEY (a, k)", "",
			[]string{"KEY000001:key000001", "key000050 :key000050", "KEYÉ:keyé"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig, shadow := "tbl_myreplay_"+tc.name, "_tbl_myreplay_"+tc.name+"_gho"
			testdb.DropMySQLTables(t, db, orig, shadow)
			t.Cleanup(func() { testdb.DropMySQLTables(t, db, orig, shadow, "_"+orig+"_ghc") })
			testdb.ExecMySQL(t, db, "CREATE TABLE "+orig+" ("+tc.orig+")")
			if tc.shadow == "" {
				testdb.ExecMySQL(t, db, "CREATE TABLE "+shadow+" LIKE "+orig)
			} else {
				testdb.ExecMySQL(t, db, "CREATE TABLE "+shadow+" ("+tc.shadow+")")
			}
			testdb.ExecMySQL(t, db, "INSERT INTO "+orig+" VALUES (1, 'key000001'), (1, 'key000050'), (1, 'keyé'), (2, 'other')")
			testdb.ExecMySQL(t, db, "INSERT INTO "+shadow+" SELECT * FROM "+orig)
			p := myLoadPlan(t, db, orig, shadow)
			src := myStartSource(t, db, cfg, p)
			for _, u := range tc.updates {
				to, from, _ := strings.Cut(u, ":")
				testdb.ExecMySQL(t, db, "UPDATE "+orig+" SET k = ? WHERE k = ?", to, from)
			}
			if err := src.EmitMarker(ctx, "rp"); err != nil {
				t.Fatal(err)
			}
			changes := myReadUntil(t, src, "rp")
			a := apply.NewMySQL(db, p)
			if err := a.Apply(ctx, changes); err != nil {
				t.Fatal(err)
			}
			want := myKeys(t, db, orig)
			if got := myKeys(t, db, shadow); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("after applying: shadow has %v, want %v", got, want)
			}
			var olds, news []cdc.Change
			for _, c := range changes {
				if c.Op == cdc.Update {
					olds = append(olds, cdc.Change{Op: cdc.Delete, Before: c.Before, Replay: true})
					news = append(news, cdc.Change{Op: cdc.Delete, Before: c.After, Replay: true})
				}
			}
			if len(olds) != len(tc.updates) {
				t.Fatalf("%d updates read, want %d", len(olds), len(tc.updates))
			}
			// Replayed deletes of the old keys, in one statement and one by one.
			if err := a.Apply(ctx, olds); err != nil {
				t.Fatal(err)
			}
			for _, c := range olds {
				if err := a.Apply(ctx, []cdc.Change{c}); err != nil {
					t.Fatal(err)
				}
			}
			if got := myKeys(t, db, shadow); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("replayed deletes of the old keys removed rows: shadow has %v, want %v", got, want)
			}
			// A plain delete still matches under the collation (unchanged path).
			plain := olds[0]
			plain.Replay = false
			if err := a.Apply(ctx, []cdc.Change{plain}); err != nil {
				t.Fatal(err)
			}
			if got := myKeys(t, db, shadow); len(got) != len(want)-1 {
				t.Fatalf("a plain delete of the old key under the collation left %v", got)
			}
			// Replayed deletes of the exact keys remove their rows.
			if err := a.Apply(ctx, news); err != nil {
				t.Fatal(err)
			}
			if got := myKeys(t, db, shadow); len(got) != 4-len(tc.updates) || got[len(got)-1] != "2:6F74686572" {
				t.Fatalf("replayed deletes of the exact keys left %v, want only the rows not updated", got)
			}
		})
	}
}
