package checksum_test

import (
	"database/sql"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"

	"osc/internal/testdb"
)

// The corruptions below cancel out in a fingerprint that combines the rows'
// CRC32s by XOR (pt-table-checksum's and Spirit's BIT_XOR) or by a plain
// sum; each test first shows on the server that both fingerprints miss it,
// then that the checksum finds it.

// cancelRows are the ids of the cancellation tests' tables: two digits each,
// so that every row renders at the same length.
const cancelFirst, cancelLast = 10, 99

// cancelCRC is the CRC32 of the checksum's rendering of a row (id INT NOT
// NULL, v VARCHAR NOT NULL), as the server computes it: the id, then v's
// bytes (the row's last bytes, without their length), joined by a zero byte
// (mysqlRowText).
func cancelCRC(id int, v string) int64 {
	return int64(crc32.ChecksumIEEE(fmt.Appendf(nil, "%d\x00%s", id, v)))
}

// cancelValue is the n-th candidate wrong value, as long as every value of
// the tables.
func cancelValue(n int) string { return fmt.Sprintf("w%07d", n) }

// cancelFiller is the value of a row no corruption touches.
func cancelFiller(id int) string { return fmt.Sprintf("f%07d", id) }

// sameChangeCancels finds n ids and a wrong value w such that changing v
// into w in those rows leaves the sum of the rows' CRC32s as it was (the
// XOR of the CRCs is left as it was by any even number of such rows: CRC32
// is affine over XOR, and the rows render at the same length).
func sameChangeCancels(t *testing.T, v string, n int) (ids []int, w string) {
	t.Helper()
	type pair struct{ a, b int }
	for try := range 1 << 16 {
		w = cancelValue(try)
		delta := func(id int) int64 { return cancelCRC(id, w) - cancelCRC(id, v) }
		sums := map[int64][]pair{}
		for a := cancelFirst; a <= cancelLast; a++ {
			for b := a + 1; b <= cancelLast; b++ {
				d := delta(a) + delta(b)
				if n == 2 && d == 0 {
					return []int{a, b}, w
				}
				if n != 4 {
					continue
				}
				for _, p := range sums[-d] {
					if p.a != a && p.a != b && p.b != a && p.b != b {
						return []int{p.a, p.b, a, b}, w
					}
				}
				sums[d] = append(sums[d], pair{a, b})
			}
		}
	}
	t.Fatalf("no %d rows whose change cancels in the sum of their CRCs", n)
	return nil, ""
}

// swapCancels finds two ids and a value w such that swapping the values v
// (in the first row) and w (in the second) leaves the sum of the rows'
// CRC32s as it was (their XOR is left as it was by every swap of values of
// the same length).
func swapCancels(t *testing.T, v string) (a, b int, w string) {
	t.Helper()
	for try := range 1 << 16 {
		w = cancelValue(try)
		for a := cancelFirst; a <= cancelLast; a++ {
			for b := a + 1; b <= cancelLast; b++ {
				if cancelCRC(a, w)+cancelCRC(b, v) == cancelCRC(a, v)+cancelCRC(b, w) {
					return a, b, w
				}
			}
		}
	}
	t.Fatal("no swap that cancels in the sum of the rows' CRCs")
	return 0, 0, ""
}

// cancelTable creates name (id, v) with v set for the ids in set and a
// filler for the others, migrates it (ADD COLUMN, as the benchmark does)
// runs corrupt on the shadow, and returns the difference the checksum finds
// in the table's one chunk ("" when its fingerprints are equal).
func cancelTable(t *testing.T, db *sql.DB, name string, set map[int]string, corrupt ...string) string {
	t.Helper()
	var rows []string
	for id := cancelFirst; id <= cancelLast; id++ {
		v, ok := set[id]
		if !ok {
			v = cancelFiller(id)
		}
		rows = append(rows, fmt.Sprintf("(%d, '%s')", id, v))
	}
	plan := myMigrate(t, db, name, "(id INT NOT NULL PRIMARY KEY, v VARCHAR(16) NOT NULL)", "ADD COLUMN z INT NULL",
		strings.Join(rows, ", "))
	shadow := plan.Shadow.Name
	for _, c := range corrupt {
		testdb.ExecMySQL(t, db, strings.ReplaceAll(c, "{shadow}", shadow))
	}
	// The fingerprints osc does not use, over the same rendering, miss the
	// corruption: the test's data is the case it is meant to be.
	for _, agg := range []string{"BIT_XOR", "SUM"} {
		q := "SELECT COUNT(*), " + agg + "(CRC32(CONCAT_WS(0x00, id, v))) FROM "
		var on, oh, sn, sh int64
		if err := db.QueryRow(q+name).Scan(&on, &oh); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(q+shadow).Scan(&sn, &sh); err != nil {
			t.Fatal(err)
		}
		if on != sn || oh != sh {
			t.Fatalf("COUNT and %s(CRC32) tell the tables apart (%d %d, %d %d): the data does not cancel", agg, on, oh, sn, sh)
		}
	}
	ck := myChecksum(t, db, plan)
	r, chunks := myChunks(t, ck, 1000, nothing)
	if len(chunks) != 1 {
		t.Fatalf("%d chunks, want 1", len(chunks))
	}
	differ, _ := mySums(t, r, chunks)
	return differ[0]
}

// TestMySQLSameChangeInTwoRows: the same wrong value written into two rows
// that held the same value (a conversion or replay defect repeats itself)
// is found.
func TestMySQLSameChangeInTwoRows(t *testing.T) {
	db := myOpen(t)
	const v = "v0000000"
	ids, w := sameChangeCancels(t, v, 2)
	d := cancelTable(t, db, "cksum_same2", map[int]string{ids[0]: v, ids[1]: v},
		fmt.Sprintf("UPDATE {shadow} SET v = '%s' WHERE id IN (%d, %d)", w, ids[0], ids[1]))
	want := fmt.Sprintf(`key (id=%d): column "v" differs: original %q, shadow %q`, ids[0], v, w)
	if d != want {
		t.Errorf("the chunk's difference: %q, want %q", d, want)
	}
}

// TestMySQLSameChangeInFourRows: four rows changed alike, whose CRCs' sum
// and XOR both stay, are found.
func TestMySQLSameChangeInFourRows(t *testing.T) {
	db := myOpen(t)
	const v = "v0000000"
	ids, w := sameChangeCancels(t, v, 4)
	set := map[int]string{}
	for _, id := range ids {
		set[id] = v
	}
	d := cancelTable(t, db, "cksum_same4", set,
		fmt.Sprintf("UPDATE {shadow} SET v = '%s' WHERE id IN (%d, %d, %d, %d)", w, ids[0], ids[1], ids[2], ids[3]))
	if !strings.Contains(d, `column "v" differs`) {
		t.Errorf("the chunk's difference: %q, want a value of v", d)
	}
}

// TestMySQLSwappedValues: two rows' values swapped (changes applied to the
// wrong keys) are found.
func TestMySQLSwappedValues(t *testing.T) {
	db := myOpen(t)
	const v = "v0000000"
	a, b, w := swapCancels(t, v)
	d := cancelTable(t, db, "cksum_swap", map[int]string{a: v, b: w},
		fmt.Sprintf("UPDATE {shadow} SET v = IF(id = %d, '%s', '%s') WHERE id IN (%d, %d)", a, w, v, a, b))
	want := fmt.Sprintf(`key (id=%d): column "v" differs: original %q, shadow %q`, a, v, w)
	if d != want {
		t.Errorf("the chunk's difference: %q, want %q", d, want)
	}
}
