package checksum_test

import (
	"testing"
)

// TestMySQLYearAndBitIntoStrings: a YEAR changed to a string holds its
// zero-padded text ("0000", a YEAR(2)'s "00"), as the ALTER stores it, and a
// BIT changed to a TEXT its bytes; the checksum finds the copy equal, and
// finds each value rendered otherwise (the number's text) different.
func TestMySQLYearAndBitIntoStrings(t *testing.T) {
	db := myOpen(t)
	plan := myMigrate(t, db, "yr_ck_year", "(id INT PRIMARY KEY, y YEAR, y2 YEAR(2), bt BIT(10), yt YEAR, yb YEAR)",
		"MODIFY y VARCHAR(10), MODIFY y2 CHAR(2), MODIFY bt TEXT, MODIFY yt TEXT, MODIFY yb BINARY(6)",
		"(1, 0, 0, b'1000001', 0, 0), (2, 1999, 1999, 0, 1999, 1999), (3, NULL, NULL, NULL, NULL, NULL), (4, 2155, 2069, b'1100100001', 2155, 2155)")
	ck := myChecksum(t, db, plan)
	r, chunks := myChunks(t, ck, 2, nothing)
	if differ, n := mySums(t, r, chunks); len(differ) > 0 || n != 4 {
		t.Fatalf("false mismatches: %v (%d rows)", differ, n)
	}
	shadow := plan.Shadow.Name
	var y, y2, bt, yt, yb string
	if err := db.QueryRow("SELECT y, y2, HEX(bt), yt, HEX(yb) FROM "+shadow+" WHERE id = 1").Scan(&y, &y2, &bt, &yt, &yb); err != nil {
		t.Fatal(err)
	}
	if y != "0000" || y2 != "00" || bt != "0041" || yt != "0000" || yb != "303030300000" {
		t.Errorf("copied 0000 and b'1000001' as %q, %q, %s, %q, %s; the ALTER stores 0000, 00, 0041, 0000, 303030300000", y, y2, bt, yt, yb)
	}
	for _, c := range []struct{ wrong, right string }{
		{"y = '0'", "y = '0000'"},
		{"y2 = '0'", "y2 = '00'"},
		{"bt = '65'", "bt = UNHEX('0041')"},
		{"yt = '0'", "yt = '0000'"},
		{"yb = '0'", "yb = '0000'"},
	} {
		t.Run(c.wrong, func(t *testing.T) {
			if _, err := db.Exec("UPDATE " + shadow + " SET " + c.wrong + " WHERE id = 1"); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if _, err := db.Exec("UPDATE " + shadow + " SET " + c.right + " WHERE id = 1"); err != nil {
					t.Fatal(err)
				}
			}()
			r, chunks := myChunks(t, ck, 2, nothing)
			if differ, _ := mySums(t, r, chunks); len(differ) != 1 {
				t.Errorf("%d chunks differ, want 1: %v", len(differ), differ)
			}
		})
	}
}
