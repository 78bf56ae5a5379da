package copier_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"testing"

	"osc/copier"
	"osc/internal/testdb"
	"osc/table"
)

// myOpenDB opens osc_test the way the engine does.
func myOpenDB(t *testing.T) *sql.DB {
	t.Helper()
	cfg := testdb.MySQL(t).Config(t, "osc_test")
	cfg.Params = map[string]string{
		"time_zone": "'+00:00'",
		"sql_mode":  "'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
	}
	return testdb.OpenMySQL(t, cfg)
}

// myPlan is the plan of copying the columns of src (key: the first keyLen
// columns, which form its primary key) into dst.
func myPlan(t *testing.T, db *sql.DB, src, dst string, keyLen int) *table.Plan {
	t.Helper()
	rows, err := db.Query(`SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, COALESCE(CHARACTER_SET_NAME, '')
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'osc_test' AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, src)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	p := &table.Plan{Source: &table.Table{Schema: "osc_test", Name: src}, Shadow: &table.Table{Schema: "osc_test", Name: dst}, KeyIndexName: "PRIMARY"}
	for rows.Next() {
		var c table.Column
		if err := rows.Scan(&c.Name, &c.DataType, &c.ColumnType, &c.Charset); err != nil {
			t.Fatal(err)
		}
		i := len(p.Source.Columns)
		p.Source.Columns = append(p.Source.Columns, c)
		p.Mapping = append(p.Mapping, table.ColumnMap{Source: c.Name, Shadow: c.Name, SourceIndex: i})
		if i < keyLen {
			p.Key, p.KeyIndex = append(p.Key, c.Name), append(p.KeyIndex, i)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return p
}

// myCopyAll walks the table in chunks of size and checks each chunk's report.
func myCopyAll(t *testing.T, cp *copier.MySQL, size int) (chunks int) {
	t.Helper()
	ctx := context.Background()
	var after []any
	for {
		ch, err := cp.CopyChunk(ctx, after, size)
		if err != nil {
			t.Fatalf("chunk %d after %v: %v", chunks, after, err)
		}
		chunks++
		if ch.Done {
			if ch.Rows >= int64(size) {
				t.Errorf("last chunk copied %d rows, want < %d", ch.Rows, size)
			}
			return chunks
		}
		if ch.Rows != int64(size) || len(ch.Last) == 0 {
			t.Fatalf("chunk %d: %+v", chunks, ch)
		}
		after = ch.Last
		if chunks > 1000 {
			t.Fatal("the copy does not end")
		}
	}
}

func myCount(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestMySQLCompositeKeyChunks copies (int, varchar) keys in latin1 and utf8mb4
// into a shadow without a key, where a row copied twice would show.
func TestMySQLCompositeKeyChunks(t *testing.T) {
	db := myOpenDB(t)
	for _, cs := range []string{"latin1", "utf8mb4"} {
		t.Run(cs, func(t *testing.T) {
			src, dst := "tbl_mysqldata_ck_"+cs, "tbl_mysqldata_ck_"+cs+"_copy"
			testdb.DropMySQLTables(t, db, src, dst)
			testdb.ExecMySQL(t, db, "CREATE TABLE "+src+" (a INT NOT NULL, b VARCHAR(20) NOT NULL, v INT, PRIMARY KEY (a, b)) CHARACTER SET "+cs)
			words := []string{"", " ", "a", "A ", "b", "é", "ü", "z", "ÿy", "e", "f"}
			if cs == "utf8mb4" {
				words = append(words, "😀", "日本")
			}
			n := 0
			for a := range 5 {
				for _, w := range words {
					if _, err := db.Exec("INSERT INTO "+src+" VALUES (?, ?, ?)", a, w, n); err != nil {
						if strings.Contains(err.Error(), "Duplicate") { // 'a' = 'A ' under the collation
							continue
						}
						t.Fatal(err)
					}
					n++
				}
			}
			testdb.ExecMySQL(t, db, "CREATE TABLE "+dst+" AS SELECT * FROM "+src+" WHERE 0") // no key: duplicates stay
			cp := copier.NewMySQL(db, myPlan(t, db, src, dst, 2))
			for _, size := range []int{1, 4, 7, n, n + 1} {
				testdb.ExecMySQL(t, db, "DELETE FROM "+dst)
				chunks := myCopyAll(t, cp, size)
				if want := n/size + 1; chunks != want {
					t.Errorf("size %d: %d chunks, want %d", size, chunks, want)
				}
				if got := myCount(t, db, "SELECT COUNT(*) FROM "+dst); got != n {
					t.Errorf("size %d: copied %d rows, want %d", size, got, n)
				}
				if got := myCount(t, db, "SELECT COUNT(*) FROM "+src+" s JOIN "+dst+" d ON s.a = d.a AND BINARY s.b = BINARY d.b AND s.v = d.v"); got != n {
					t.Errorf("size %d: %d rows match, want %d", size, got, n)
				}
			}
		})
	}
}

// TestMySQLKeyTypes walks keys whose values must round-trip exactly through
// CopyChunk's Last.
func TestMySQLKeyTypes(t *testing.T) {
	db := myOpenDB(t)
	for _, c := range []struct {
		name, typ string
		vals      []any
	}{
		{"dec", "DECIMAL(30,10)", []any{"12345678901234567890.1234567891", "12345678901234567890.1234567892", "-0.0000000001", "0", "12345678901234567890.1234567890"}},
		{"ubig", "BIGINT UNSIGNED", []any{uint64(18446744073709551615), uint64(18446744073709551614), uint64(9007199254740993), uint64(9007199254740992), uint64(0)}},
		{"vbin", "VARBINARY(8)", []any{[]byte{0xff}, []byte{0xfe, 0x00}, []byte{0}, []byte{}, []byte("\xc3\x28"), []byte("a")}},
		{"dt", "DATETIME(6)", []any{"2020-01-01 00:00:00.000001", "2020-01-01 00:00:00", "0000-00-00 00:00:00", "9999-12-31 23:59:59.999999"}},
		{"dbl", "DOUBLE", []any{0.1, math.Nextafter(0.1, 1), 0.30000000000000004, 0.3, -1e300}},
		{"enum", "ENUM('z','a','m')", []any{"z", "a", "m"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			src, dst := "tbl_mysqldata_kt_"+c.name, "tbl_mysqldata_kt_"+c.name+"_copy"
			testdb.DropMySQLTables(t, db, src, dst)
			testdb.ExecMySQL(t, db, "CREATE TABLE "+src+" (k "+c.typ+" NOT NULL PRIMARY KEY, n INT)")
			for i, v := range c.vals {
				testdb.ExecMySQL(t, db, "INSERT INTO "+src+" VALUES (?, ?)", v, i)
			}
			n := myCount(t, db, "SELECT COUNT(*) FROM "+src)
			testdb.ExecMySQL(t, db, "CREATE TABLE "+dst+" AS SELECT * FROM "+src+" WHERE 0")
			cp := copier.NewMySQL(db, myPlan(t, db, src, dst, 1))
			for _, size := range []int{1, 2} {
				testdb.ExecMySQL(t, db, "DELETE FROM "+dst)
				myCopyAll(t, cp, size)
				if got := myCount(t, db, "SELECT COUNT(*) FROM "+src+" s JOIN "+dst+" d ON s.k <=> d.k AND s.n = d.n"); got != n {
					t.Errorf("size %d: %d rows copied once, want %d (copy has %d)", size, got, n, myCount(t, db, "SELECT COUNT(*) FROM "+dst))
				}
			}
		})
	}
}

// TestMySQLCopyNeverOverwrites: a row already in the shadow (written by the
// applier) stays as it is; an error of the shadow is not ignored.
func TestMySQLCopyNeverOverwrites(t *testing.T) {
	db := myOpenDB(t)
	src, dst := "tbl_mysqldata_ow", "_tbl_mysqldata_ow_gho"
	testdb.DropMySQLTables(t, db, src, dst)
	testdb.ExecMySQL(t, db, "CREATE TABLE "+src+" (id INT PRIMARY KEY, v VARCHAR(10))")
	testdb.ExecMySQL(t, db, "CREATE TABLE "+dst+" LIKE "+src)
	testdb.ExecMySQL(t, db, "INSERT INTO "+src+" VALUES (1, 'old'), (2, 'old'), (3, 'old'), (4, NULL)")
	testdb.ExecMySQL(t, db, "INSERT INTO "+dst+" VALUES (2, 'applied')")
	cp := copier.NewMySQL(db, myPlan(t, db, src, dst, 1))
	ch, err := cp.CopyChunk(context.Background(), nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Done || ch.Rows != 3 || fmt.Sprint(ch.Last) != "[3]" {
		t.Errorf("chunk %+v", ch)
	}
	var v string
	if err := db.QueryRow("SELECT GROUP_CONCAT(v ORDER BY id) FROM " + dst).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != "old,applied,old" {
		t.Errorf("shadow has %s", v)
	}

	testdb.ExecMySQL(t, db, "ALTER TABLE "+dst+" MODIFY v VARCHAR(10) NOT NULL")
	if _, err := cp.CopyChunk(context.Background(), ch.Last, 3); err == nil || !strings.Contains(err.Error(), "cannot be null") {
		t.Errorf("copying a NULL into a NOT NULL column: %v", err)
	}
}

// Rows inserted above the highest key once the copy started are left to
// change capture: the copy stops at that key instead of chasing them.
func TestMySQLCopyStopsAtHighestKey(t *testing.T) {
	db := myOpenDB(t)
	src, dst := "tbl_mysqldata_limit", "tbl_mysqldata_limit_copy"
	testdb.DropMySQLTables(t, db, src, dst)
	testdb.ExecMySQL(t, db, "CREATE TABLE "+src+" (id INT PRIMARY KEY, v INT)")
	testdb.ExecMySQL(t, db, "INSERT INTO "+src+" SELECT seq, seq FROM seq_1_to_20")
	testdb.ExecMySQL(t, db, "CREATE TABLE "+dst+" LIKE "+src)
	cp := copier.NewMySQL(db, myPlan(t, db, src, dst, 1))
	ctx := context.Background()
	var after []any
	for n := 0; ; n++ {
		ch, err := cp.CopyChunk(ctx, after, 5)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			testdb.ExecMySQL(t, db, "INSERT INTO "+src+" VALUES (100, 100), (15000, 0)")
		}
		if ch.Done {
			break
		}
		after = ch.Last
	}
	if got := myCount(t, db, "SELECT COUNT(*) FROM "+dst); got != 20 {
		t.Errorf("copied %d rows, want the 20 there when the copy started", got)
	}
}
