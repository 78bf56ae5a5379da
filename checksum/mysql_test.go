package checksum_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
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
	readers, err := ck.Open(ctx, 1, blocked)
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
		{"to timestamp", "MODIFY dt TIMESTAMP(3) NULL, MODIFY da TIMESTAMP NULL"},
		{"charsets", "MODIFY v VARCHAR(30) CHARACTER SET utf8mb4, MODIFY u VARBINARY(40), MODIFY c CHAR(10) CHARACTER SET utf16, MODIFY t TEXT CHARACTER SET latin1, " +
			"MODIFY w VARCHAR(10) COLLATE utf8mb4_bin"},
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
						readers, err := ck.Open(ctx, 1, func(ctx context.Context) error {
							return ck.Recopy(ctx, engine.ChecksumChunk{After: []any{int64(399)}, Upto: []any{int64(400)}})
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
						if !strings.Contains(d, "key (id=\"400\")") || !strings.Contains(d, fmt.Sprintf("column %q", col.Name)) {
							t.Errorf("diff: %s", d)
						}
					}
				})
			}
		})
	}
}
