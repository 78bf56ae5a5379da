package checksum_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"osc/checksum"
	"osc/copier"
	"osc/engine"
	"osc/internal/testdb"
	"osc/table"
)

// myOpen opens osc_test with osc's own session settings.
func myOpen(t *testing.T) *sql.DB {
	t.Helper()
	s := testdb.MySQL(t)
	db := testdb.Connect(t, "MySQL", func(ctx context.Context) (*sql.DB, error) {
		return table.OpenMySQL(ctx, table.MySQLConn{Host: s.Host, Port: s.Port, User: s.User, Password: s.Password}, "osc_test")
	})
	t.Cleanup(func() { db.Close() })
	return db
}

// myMigrate creates name with create, fills it with rows, builds the shadow
// with the --alter as the dialect does and copies it with the copier.
func myMigrate(t *testing.T, db *sql.DB, name, create, alter string, rows ...string) *table.Plan {
	t.Helper()
	ctx := context.Background()
	shadow, changelog, _ := table.MySQLNames(name)
	testdb.DropMySQLTables(t, db, name, shadow, changelog)
	testdb.ExecMySQL(t, db, "CREATE TABLE "+name+" "+create)
	for _, r := range rows {
		testdb.ExecMySQL(t, db, "INSERT INTO "+name+" VALUES "+r)
	}
	insp, err := table.InspectMySQLTable(ctx, db, "osc_test", name, alter)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := table.CreateMySQLShadow(ctx, db, insp)
	if err != nil {
		t.Fatal(err)
	}
	cp := copier.NewMySQL(db, plan)
	var after []any
	for {
		ch, err := cp.CopyChunk(ctx, after, 5)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Done {
			break
		}
		after = ch.Last
	}
	return plan
}

func myChecksum(t *testing.T, db *sql.DB, plan *table.Plan) *checksum.MySQL {
	t.Helper()
	ck, err := checksum.NewMySQL(db, plan, checksum.Options{LockTimeout: time.Second, Retries: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	return ck
}

func nothing(context.Context) error { return nil }

// myChunks opens one reader and walks the original in chunks of size.
func myChunks(t *testing.T, ck *checksum.MySQL, size int, blocked func(context.Context) error) (engine.ChecksumReader, []engine.ChecksumChunk) {
	t.Helper()
	ctx := context.Background()
	readers, err := ck.Open(ctx, 1, nil, blocked)
	if err != nil {
		t.Fatal(err)
	}
	r := readers[0]
	t.Cleanup(func() { r.Close() })
	var chunks []engine.ChecksumChunk
	var after []any
	for {
		upto, err := r.Bound(ctx, after, size)
		if err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, engine.ChecksumChunk{After: after, Upto: upto})
		if upto == nil {
			return r, chunks
		}
		after = upto
		if len(chunks) > 10000 {
			t.Fatal("bounds do not end")
		}
	}
}

// mySums returns the chunks whose fingerprints differ, with Diff's
// description, and the rows counted on both sides.
func mySums(t *testing.T, r engine.ChecksumReader, chunks []engine.ChecksumChunk) (differ map[int]string, rows int64) {
	t.Helper()
	ctx := context.Background()
	differ = map[int]string{}
	for i, c := range chunks {
		o, s, err := r.Sum(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		rows += o.Rows
		d, err := r.Diff(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if o != s {
			if d == "" {
				t.Errorf("chunk %d (%v, %v]: sums differ (%+v, %+v) but Diff finds nothing", i, c.After, c.Upto, o, s)
			}
			differ[i] = d
		} else if d != "" {
			t.Errorf("chunk %d: sums equal but Diff says %s", i, d)
		}
	}
	return differ, rows
}

const myTypesTable = `(id INT PRIMARY KEY, i INT, b BIGINT UNSIGNED, d DECIMAL(10,2), f FLOAT, g DOUBLE,
	v VARCHAR(30) CHARACTER SET latin1, u VARCHAR(30) CHARACTER SET utf8mb4, c CHAR(10), t TEXT, bl BLOB, vb VARBINARY(10),
	e ENUM('x','y'), s SET('p','q'), w VARCHAR(10), dt DATETIME(3), da DATE, tm TIME(2), ts TIMESTAMP(3) NULL, y YEAR,
	bt BIT(5), j JSON, n INT NOT NULL DEFAULT 7, gen INT AS (i + 1) VIRTUAL)`

// myTypesRows are rows with NULLs, empty strings, zeros, extremes and the
// ordinary.
func myTypesRows() []string {
	rows := []string{
		"(1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, DEFAULT)",
		"(2, 0, 0, 0, 0, 0, '', '', '', '', '', '', 'x', '', 'x', '1970-01-01 00:00:01', '1000-01-01', '00:00:00', '1970-01-01 00:00:01', 0, 0, '{}', 0, DEFAULT)",
		"(3, -32768, 18446744073709551615, -99999999.99, -1.5e30, 1e30, 'éàü NULL', '😀日本', 'a ', 'x\\0y', 0x00c3a910, 0x00ff, 'y', 'p,q', 'y', " +
			"'2038-01-19 03:14:07.999', '9999-12-31', '-838:59:59.00', '2038-01-19 03:14:07.999', 2155, 31, '{\"a\": [1, 2]}', -1, DEFAULT)",
	}
	// Zero dates, which the conversions to and from TIMESTAMP pass on.
	rows = append(rows, "(4, 1, 1, 1, 1, 1, 'z', 'z', 'z', 'z', 'z', 'z', 'x', 'p', '2', '0000-00-00 00:00:00', '0000-00-00', '00:00:00', "+
		"'0000-00-00 00:00:00', 1901, 1, '[]', 4, DEFAULT)")
	for k := 4; k <= 60; k++ {
		rows = append(rows, fmt.Sprintf("(%d, %d, %d, %d.%02d, %d/7, %d/3, 'l%d é', 'u%d ü', 'c%d', REPEAT('t', %d), UNHEX(HEX(%d)), 'vb%d', '%s', '%s', '%s', "+
			"'2024-03-%02d %02d:%02d:%02d.%03d', '2024-01-%02d', '%02d:30:00.5', '2024-10-%02d 01:%02d:00', %d, %d, '[%d]', %d, DEFAULT)",
			k*10, k*7919%1000-500, uint64(k)*1e15, k*13%1000, k%100, k, k, k, k, k, k%20, k, k, []string{"x", "y"}[k%2], []string{"", "p", "q", "p,q"}[k%4],
			[]string{"x", "y", "Y", "x"}[k%4], k%28+1, k%24, k%60, k%60, k, k%28+1, k%24, k%28+1, k%60, 1901+k, k%32, k, k))
	}
	return rows
}

// TestMySQLNoFalseMismatch copies a table of many types through ALTERs that
// rename, widen, narrow and convert columns and change character sets, and
// requires every chunk's fingerprints to be equal; then it changes one value
// of every column in the shadow, one at a time, and requires the
// fingerprint of that row's chunk to differ.
func TestMySQLNoFalseMismatch(t *testing.T) {
	db := myOpen(t)
	for _, c := range []struct{ name, alter string }{
		{"same", "ADD COLUMN z INT"},
		{"fills", "ADD COLUMN z INT NOT NULL, ADD COLUMN z2 VARCHAR(5) NOT NULL, ADD COLUMN z3 ENUM('k','l') NOT NULL, ADD COLUMN z4 DATE NOT NULL, ADD COLUMN z5 INT DEFAULT 3"},
		{"widen", "CHANGE i ii BIGINT, MODIFY d DECIMAL(14,4), MODIFY f DOUBLE, MODIFY v VARCHAR(60) CHARACTER SET latin1, MODIFY e ENUM('x','y','z'), " +
			"MODIFY dt DATETIME(6), MODIFY tm TIME(4), MODIFY ts TIMESTAMP(6) NULL, RENAME COLUMN u TO uu, MODIFY id BIGINT"},
		{"narrow", "MODIFY d DECIMAL(10,1), MODIFY g FLOAT, MODIFY i SMALLINT, MODIFY dt DATETIME, MODIFY tm TIME"},
		{"convert", "MODIFY d INT, MODIFY i VARCHAR(20), MODIFY f VARCHAR(30), MODIFY g VARCHAR(30), MODIFY e VARCHAR(5), MODIFY s INT, " +
			"MODIFY dt DATE, MODIFY ts DATETIME(3), MODIFY da DATETIME, MODIFY tm VARCHAR(20), MODIFY y INT, MODIFY bt INT, MODIFY b DECIMAL(30,0), " +
			"MODIFY w ENUM('x','y') NULL, MODIFY bl TEXT, MODIFY j TEXT, MODIFY c VARCHAR(10), MODIFY t CHAR(30)"},
		{"convert more", "MODIFY f DECIMAL(40,4), MODIFY g DECIMAL(65,10), MODIFY d DOUBLE, MODIFY i FLOAT, MODIFY b DOUBLE, MODIFY dt VARCHAR(30), " +
			"MODIFY da INT, MODIFY tm DECIMAL(12,2), MODIFY y VARCHAR(4), MODIFY e INT, MODIFY u TEXT, MODIFY vb BLOB, MODIFY t VARCHAR(300), MODIFY s VARCHAR(10)"},
		{"times to numbers", "MODIFY dt BIGINT, MODIFY da DECIMAL(10,0), MODIFY tm INT, MODIFY d VARCHAR(20), MODIFY b VARCHAR(30), MODIFY i DOUBLE, " +
			"MODIFY ts DECIMAL(20,3), MODIFY c TEXT, MODIFY bt BIGINT, MODIFY s BIT(2)"},
		{"to timestamp", "MODIFY dt TIMESTAMP(3) NULL, MODIFY da TIMESTAMP NULL"},
		{"charsets", "MODIFY v VARCHAR(30) CHARACTER SET utf8mb4, MODIFY u VARBINARY(40), MODIFY c CHAR(10) CHARACTER SET utf16, MODIFY t TEXT CHARACTER SET latin1, " +
			"MODIFY w VARCHAR(10) COLLATE utf8mb4_bin"},
		{"labels", "MODIFY s SET('q','p','r'), MODIFY w SET('y','x'), MODIFY e YEAR, MODIFY bt VARCHAR(10), MODIFY v ENUM('éàü null','l4 é','z') CHARACTER SET latin1"},
		{"labels respelled", "MODIFY e ENUM('X','Y'), MODIFY s SET('P','Q')"},
		{"labels as bytes", "MODIFY s VARBINARY(10), MODIFY bt VARBINARY(10), MODIFY e BINARY(3), MODIFY w ENUM('x','y')"},
		{"drop", "DROP COLUMN g, DROP COLUMN gen, ADD COLUMN gen2 INT AS (ii * 2) STORED, CHANGE i ii INT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows := myTypesRows()
			if c.name == "charsets" {
				// Characters latin1 has.
				for i, r := range rows {
					rows[i] = strings.ReplaceAll(strings.ReplaceAll(r, "'x\\0y'", "'é'"), "'t', ", "'ä', ")
				}
			}
			if c.name == "labels" {
				// Labels of the ENUM, in another case.
				for i := 5; i < len(rows); i++ {
					rows[i] = strings.Replace(rows[i], fmt.Sprintf("'l%d é'", i), "'z'", 1)
				}
				rows[1] = strings.Replace(rows[1], "0, 0, 0, 0, 0, '', ", "0, 0, 0, 0, 0, 'z', ", 1)
				rows[2] = strings.Replace(rows[2], "'éàü NULL'", "'ÉÀÜ NULL'", 1)
				rows[4] = strings.Replace(rows[4], "'l4 é'", "'L4 É'", 1)
			}
			if c.name == "to timestamp" {
				rows[1] = strings.Replace(rows[1], "'1970-01-01 00:00:01', '1000-01-01'", "'1970-01-02 00:00:01', '1970-01-02'", 1)
				rows[2] = strings.Replace(strings.Replace(rows[2], "'9999-12-31'", "'2038-01-18'", 1), "'2038-01-19 03:14:07.999', '2038", "'2038-01-19 03:14:07.000', '2038", 1)
			}
			plan := myMigrate(t, db, "ckmy_types", myTypesTable, c.alter, rows...)
			ck := myChecksum(t, db, plan)
			for _, size := range []int{7, 1000} {
				r, chunks := myChunks(t, ck, size, nothing)
				differ, n := mySums(t, r, chunks)
				if len(differ) > 0 {
					t.Fatalf("size %d: false mismatches: %v", size, differ)
				}
				if n != int64(len(rows)) {
					t.Errorf("size %d: %d rows counted, want %d", size, n, len(rows))
				}
				if size == 7 && len(chunks) < 5 {
					t.Errorf("%d chunks", len(chunks))
				}
			}
			// Each column, changed in one row, makes a difference.
			shadow := plan.Shadow.Name
			copied := map[string]bool{}
			for _, m := range plan.Mapping {
				copied[m.Shadow] = true
			}
			for _, f := range plan.Fills {
				copied[f.Shadow] = true
			}
			for _, col := range plan.Shadow.Columns {
				// Not the key, nor the columns the copy leaves to the
				// server (generated, or added with their DEFAULT).
				if !copied[col.Name] || col.Name == "id" {
					continue
				}
				t.Run(col.Name, func(t *testing.T) {
					q := table.QuoteMySQL(col.Name)
					tx, err := db.Begin()
					if err != nil {
						t.Fatal(err)
					}
					defer tx.Rollback()
					// Row 3's value in row 400, or NULL, or some other value.
					for _, set := range []string{
						"UPDATE " + shadow + " a JOIN " + shadow + " b ON b.id = 3 SET a." + q + " = b." + q + " WHERE a.id = 400 AND NOT a." + q + " <=> b." + q,
						"UPDATE " + shadow + " SET " + q + " = NULL WHERE id = 400",
						"UPDATE " + shadow + " SET " + q + " = 1 WHERE id = 400",
						"UPDATE " + shadow + " SET " + q + " = 2 WHERE id = 400",
						"UPDATE " + shadow + " SET " + q + " = '2001-01-01' WHERE id = 400",
					} {
						if res, err := tx.Exec(set); err == nil {
							if n, _ := res.RowsAffected(); n == 1 {
								break
							}
						}
					}
					if err := tx.Commit(); err != nil {
						t.Fatal(err)
					}
					defer func() {
						// Put the row back.
						ctx := context.Background()
						readers, err := ck.Open(ctx, 1, nil, func(ctx context.Context) error {
							return ck.Recopy(ctx, []engine.ChecksumChunk{{After: []any{int64(399)}, Upto: []any{int64(400)}}})
						})
						if err != nil {
							t.Fatal(err)
						}
						readers[0].Close()
					}()
					r, chunks := myChunks(t, ck, 7, nothing)
					differ, _ := mySums(t, r, chunks)
					if len(differ) != 1 {
						t.Fatalf("changing column %s of row 400: %d chunks differ, want 1: %v", col.Name, len(differ), differ)
					}
					for _, d := range differ {
						if !strings.Contains(d, "key (id=400)") || !strings.Contains(d, fmt.Sprintf("column %q", col.Name)) {
							t.Errorf("diff: %s", d)
						}
					}
				})
			}
		})
	}
}

// myRepairTable is a table with a two-column key, one of whose columns the
// --alter renames.
func myRepairTable(t *testing.T, db *sql.DB) *table.Plan {
	t.Helper()
	var rows []string
	for a := 1; a <= 10; a++ {
		for b := 1; b <= 5; b++ {
			rows = append(rows, fmt.Sprintf("(%d, 'k%d', 'v%d')", a, b, a*b))
		}
	}
	rows = append(rows, "(11, 'k1', NULL)", "(11, 'k2', '')")
	return myMigrate(t, db, "ckmy_rep", "(a INT NOT NULL, b VARCHAR(10) NOT NULL, v VARCHAR(20), PRIMARY KEY (a, b))",
		"CHANGE b bb VARCHAR(10) NOT NULL, MODIFY v VARCHAR(40)", strings.Join(rows, ", "))
}

// myEqualRows fails the test unless both tables hold the same rows.
func myEqualRows(t *testing.T, db *sql.DB) {
	t.Helper()
	var orig, shadow, both int
	err := db.QueryRow(`SELECT (SELECT COUNT(*) FROM ckmy_rep), (SELECT COUNT(*) FROM ckmy_rep_osc_new),
		(SELECT COUNT(*) FROM ckmy_rep o JOIN ckmy_rep_osc_new s ON o.a = s.a AND BINARY o.b = BINARY s.bb AND o.v <=> s.v)`).Scan(&orig, &shadow, &both)
	if err != nil {
		t.Fatal(err)
	}
	if orig != shadow || orig != both {
		t.Errorf("original %d rows, shadow %d, equal %d", orig, shadow, both)
	}
}

// TestMySQLRepair corrupts the shadow behind the copy's back, one way per
// subtest: the checksum finds the chunk, Diff names the key, Recopy under
// Open repairs it.
func TestMySQLRepair(t *testing.T) {
	db := myOpen(t)
	ctx := context.Background()
	for _, c := range []struct {
		name, corrupt string
		a             int64
		b, diff       string
	}{
		{"value", "UPDATE ckmy_rep_osc_new SET v = 'bad' WHERE a = 5 AND bb = 'k3'", 5, "k3",
			`key (a=5, b="k3"): column "v" differs: original "v15", shadow "bad"`},
		{"null", "UPDATE ckmy_rep_osc_new SET v = NULL WHERE a = 7 AND bb = 'k1'", 7, "k1",
			`key (a=7, b="k1"): column "v" differs: original "v7", shadow NULL`},
		{"null to empty", "UPDATE ckmy_rep_osc_new SET v = '' WHERE a = 11 AND bb = 'k1'", 11, "k1",
			`key (a=11, b="k1"): column "v" differs: original NULL, shadow ""`},
		{"empty to NULL", "UPDATE ckmy_rep_osc_new SET v = NULL WHERE a = 11 AND bb = 'k2'", 11, "k2",
			`key (a=11, b="k2"): column "v" differs: original "", shadow NULL`},
		{"null to 'NULL'", "UPDATE ckmy_rep_osc_new SET v = 'NULL' WHERE a = 11 AND bb = 'k1'", 11, "k1",
			`key (a=11, b="k1"): column "v" differs: original NULL, shadow "NULL"`},
		{"delete", "DELETE FROM ckmy_rep_osc_new WHERE a = 4 AND bb = 'k2'", 4, "k2",
			`key (a=4, b="k2") is missing from the shadow`},
		{"extra", "INSERT INTO ckmy_rep_osc_new VALUES (6, 'k25', 'x')", 6, "k25",
			`key (a=6, b="k25") is in the shadow but not in the original`},
		{"before first", "INSERT INTO ckmy_rep_osc_new VALUES (0, 'a', 'x')", 0, "a",
			`key (a=0, b="a") is in the shadow but not in the original`},
		{"after last", "INSERT INTO ckmy_rep_osc_new VALUES (99, 'z', NULL)", 99, "z",
			`key (a=99, b="z") is in the shadow but not in the original`},
	} {
		t.Run(c.name, func(t *testing.T) {
			plan := myRepairTable(t, db)
			ck := myChecksum(t, db, plan)
			testdb.ExecMySQL(t, db, c.corrupt)
			r, chunks := myChunks(t, ck, 7, nothing)
			if len(chunks) != 8 {
				t.Fatalf("%d chunks of 52 rows, want 8", len(chunks))
			}
			differ, _ := mySums(t, r, chunks)
			if len(differ) != 1 {
				t.Fatalf("%d chunks differ, want 1: %v", len(differ), differ)
			}
			for i, d := range differ {
				ch := chunks[i]
				// (a, b) is in (After, Upto]: the keys' b are ASCII, compared
				// as bytes as the collation compares them.
				less := func(bound []any, a int64, b string) bool {
					ba, bb := bound[0].(int64), string(bound[1].([]byte))
					return ba < a || ba == a && bb < b
				}
				if ch.After != nil && !less(ch.After, c.a, c.b) || ch.Upto != nil && less(ch.Upto, c.a, c.b) {
					t.Errorf("chunk (%v, %v] differs, which does not hold (%d, %s)", ch.After, ch.Upto, c.a, c.b)
				}
				if d != c.diff {
					t.Errorf("diff: %s\nwant: %s", d, c.diff)
				}
				readers, err := ck.Open(ctx, 2, nil, func(ctx context.Context) error { return ck.Recopy(ctx, []engine.ChecksumChunk{ch}) })
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range readers {
					r.Close()
				}
			}
			r, chunks = myChunks(t, ck, 7, nothing)
			if differ, n := mySums(t, r, chunks); len(differ) > 0 || n != 52 {
				t.Errorf("after the repair: %d rows, differences %v", n, differ)
			}
			myEqualRows(t, db)
		})
	}
}

// TestMySQLUnorderedKey: when the --alter changes the key's character set, the
// whole table is one chunk and it cannot be repaired.
func TestMySQLUnorderedKey(t *testing.T) {
	db := myOpen(t)
	plan := myMigrate(t, db, "ckmy_unord", "(k VARCHAR(10) NOT NULL PRIMARY KEY, v INT) CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci",
		"MODIFY k VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL", "('a', 1), ('B', 2), ('c', 3), ('D', 4)")
	ck := myChecksum(t, db, plan)
	r, chunks := myChunks(t, ck, 1, nothing)
	if len(chunks) != 1 || chunks[0].After != nil || chunks[0].Upto != nil {
		t.Fatalf("chunks %v, want the whole table", chunks)
	}
	if differ, n := mySums(t, r, chunks); len(differ) > 0 || n != 4 {
		t.Fatalf("%d rows, differences %v", n, differ)
	}
	testdb.ExecMySQL(t, db, "UPDATE ckmy_unord_osc_new SET v = 5 WHERE k = 'c'")
	r, chunks = myChunks(t, ck, 1, nothing)
	differ, _ := mySums(t, r, chunks)
	if differ[0] != `key (k="c"): column "v" differs: original 3, shadow 5` {
		t.Errorf("diff: %v", differ)
	}
	_, err := ck.Open(context.Background(), 1, nil, func(ctx context.Context) error { return ck.Recopy(ctx, chunks[:1]) })
	if err == nil || !strings.Contains(err.Error(), "cannot be repaired") || !strings.Contains(err.Error(), "key column k") {
		t.Errorf("recopy: %v", err)
	}
}

// TestMySQLOpenBlocksWriters: a writer waits while blocked runs and succeeds
// after; the readers do not see what it wrote.
func TestMySQLOpenBlocksWriters(t *testing.T) {
	db := myOpen(t)
	ctx := context.Background()
	plan := myRepairTable(t, db)
	ck := myChecksum(t, db, plan)
	done := make(chan error, 1)
	var waited bool
	readers, err := ck.Open(ctx, 2, nil, func(ctx context.Context) error {
		go func() {
			_, err := db.Exec("INSERT INTO ckmy_rep VALUES (50, 'w', 'written')")
			done <- err
		}()
		select {
		case err := <-done:
			return fmt.Errorf("the writer was not blocked: %v", err)
		case <-time.After(300 * time.Millisecond):
			waited = true
			return nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, r := range readers {
			r.Close()
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("writer: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the writer still waits after Open returned")
	}
	if !waited {
		t.Fatal("blocked did not wait")
	}
	for _, r := range readers {
		o, s, err := r.Sum(ctx, engine.ChecksumChunk{})
		if err != nil {
			t.Fatal(err)
		}
		if o.Rows != 52 || o != s {
			t.Errorf("reader sees %+v and %+v, want the 52 rows before the write", o, s)
		}
	}
}

// TestMySQLOpenTooManyReaders: Open gives fewer readers than asked when the
// pool cannot hold them besides the lock and the applier, rather than wait
// for a connection with the writers blocked.
func TestMySQLOpenTooManyReaders(t *testing.T) {
	db := myOpen(t)
	plan := myRepairTable(t, db)
	ck := myChecksum(t, db, plan)
	most := db.Stats().MaxOpenConnections
	readers, err := ck.Open(context.Background(), most, nil, func(context.Context) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range readers {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}
	if len(readers) != most-2 {
		t.Errorf("Open gave %d readers of a pool of %d, want %d", len(readers), most, most-2)
	}
}

// TestMySQLOpenWaitsForWriters: an open transaction that wrote to the
// original makes Open's lock time out; Open retries and succeeds once it
// commits, or fails when its attempts run out.
func TestMySQLOpenWaitsForWriters(t *testing.T) {
	db := myOpen(t)
	ctx := context.Background()
	plan := myRepairTable(t, db)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("UPDATE ckmy_rep SET v = 'tx' WHERE a = 1 AND b = 'k1'"); err != nil {
		t.Fatal(err)
	}

	one, err := checksum.NewMySQL(db, plan, checksum.Options{LockTimeout: time.Second, Retries: 1})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	blocked := func(context.Context) error { calls++; return nil }
	if _, err := one.Open(ctx, 1, nil, blocked); err == nil || !strings.Contains(err.Error(), "Lock wait timeout") || calls != 0 {
		t.Fatalf("one attempt with the transaction open: %v (blocked called %d times)", err, calls)
	}

	ck, err := checksum.NewMySQL(db, plan, checksum.Options{LockTimeout: time.Second, Retries: 5})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(1500 * time.Millisecond)
		if err := tx.Commit(); err != nil {
			t.Error(err)
		}
	}()
	start := time.Now()
	readers, err := ck.Open(ctx, 1, nil, blocked)
	if err != nil {
		t.Fatal(err)
	}
	defer readers[0].Close()
	if took := time.Since(start); took < time.Second || calls != 1 {
		t.Errorf("Open took %s, blocked called %d times", took, calls)
	}
	var v string
	if err := db.QueryRow("SELECT v FROM ckmy_rep WHERE a = 1 AND b = 'k1'").Scan(&v); err != nil || v != "tx" {
		t.Errorf("the transaction's write: %q, %v", v, err)
	}
}

// BenchmarkMySQLChecksum times, on a 200,000-row table, the copy and the
// fingerprints of every chunk (sizes 1000 and 10000, one or two readers
// comparing them as the engine's threads do): go test ./checksum -run -
// -bench MySQLChecksum -benchtime 1x -v.
func BenchmarkMySQLChecksum(b *testing.B) {
	s := testdb.MySQL(b)
	ctx := context.Background()
	db := testdb.Connect(b, "MySQL", func(ctx context.Context) (*sql.DB, error) {
		return table.OpenMySQL(ctx, table.MySQLConn{Host: s.Host, Port: s.Port, User: s.User, Password: s.Password}, "osc_test")
	})
	b.Cleanup(func() { db.Close() }) // after the tables' drop
	testdb.DropMySQLTables(b, db, "ckmy_bench", "ckmy_bench_osc_new", "ckmy_bench_osc_log")
	testdb.ExecMySQL(b, db, `CREATE TABLE ckmy_bench (id INT PRIMARY KEY, a INT, b VARCHAR(64), c DATETIME, d DECIMAL(10,2), e TEXT)`)
	testdb.ExecMySQL(b, db, `INSERT INTO ckmy_bench SELECT seq, seq * 7, MD5(seq), '2024-01-01' + INTERVAL seq SECOND, seq / 100, REPEAT(MD5(seq), 3)
		FROM seq_1_to_200000`)
	insp, err := table.InspectMySQLTable(ctx, db, "osc_test", "ckmy_bench", "MODIFY a BIGINT")
	if err != nil {
		b.Fatal(err)
	}
	plan, err := table.CreateMySQLShadow(ctx, db, insp)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	cp := copier.NewMySQL(db, plan)
	var after []any
	for {
		ch, err := cp.CopyChunk(ctx, after, 1000)
		if err != nil {
			b.Fatal(err)
		}
		if ch.Done {
			break
		}
		after = ch.Last
	}
	b.Logf("copy: %s", time.Since(start).Round(time.Millisecond))
	ck, err := checksum.NewMySQL(db, plan, checksum.Options{LockTimeout: time.Second, Retries: 1})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ size, threads int }{{1000, 1}, {10000, 1}, {10000, 2}} {
		b.Run(fmt.Sprintf("%d rows x %d", c.size, c.threads), func(b *testing.B) {
			for range b.N {
				start := time.Now()
				// One reader bounds the chunks, the others compare them.
				readers, err := ck.Open(ctx, c.threads+1, nil, nothing)
				if err != nil {
					b.Fatal(err)
				}
				chunks := make(chan engine.ChecksumChunk)
				sums := make(chan error, c.threads)
				var rows atomic.Int64
				for _, r := range readers[1:] {
					go func() {
						for ch := range chunks {
							o, s, err := r.Sum(ctx, ch)
							if err == nil && o != s {
								err = fmt.Errorf("chunk (%v, %v] differs", ch.After, ch.Upto)
							}
							if err != nil {
								sums <- err
								for range chunks {
								}
								return
							}
							rows.Add(o.Rows)
						}
						sums <- nil
					}()
				}
				var after []any
				for {
					upto, err := readers[0].Bound(ctx, after, c.size)
					if err != nil {
						b.Fatal(err)
					}
					chunks <- engine.ChecksumChunk{After: after, Upto: upto}
					if upto == nil {
						break
					}
					after = upto
				}
				close(chunks)
				for range c.threads {
					if err := <-sums; err != nil {
						b.Fatal(err)
					}
				}
				for _, r := range readers {
					r.Close()
				}
				if rows.Load() != 200000 {
					b.Fatalf("%d rows", rows.Load())
				}
				b.ReportMetric(time.Since(start).Seconds(), "checksum-s")
			}
		})
	}
}

// TestMySQLRecopyRefusesRenumbered: Recopy refuses, as the copy does, a row
// whose value a plain ALTER would renumber.
func TestMySQLRecopyRefusesRenumbered(t *testing.T) {
	db := myOpen(t)
	plan := myMigrate(t, db, "ckmy_renum", "(id INT PRIMARY KEY, u INT NULL, UNIQUE KEY u (u))",
		"MODIFY u INT AUTO_INCREMENT", "(1, 11), (2, 12), (3, 13)")
	if plan.Renumbered == nil {
		t.Fatal("the plan renumbers nothing")
	}
	ck := myChecksum(t, db, plan)
	testdb.ExecMySQL(t, db, "UPDATE ckmy_renum SET u = NULL WHERE id = 2")
	_, err := ck.Open(context.Background(), 1, nil, func(ctx context.Context) error {
		return ck.Recopy(ctx, []engine.ChecksumChunk{{After: []any{int64(1)}, Upto: []any{int64(2)}}})
	})
	if err == nil || !strings.Contains(err.Error(), "NULL") {
		t.Fatalf("recopy of a NULL the ALTER renumbers: %v", err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM ckmy_renum_osc_new WHERE id = 2 AND u = 12").Scan(&n); err != nil || n != 1 {
		t.Errorf("the refused recopy changed the shadow: %d, %v", n, err)
	}
}
