package checksum_test

import (
	"strings"
	"testing"

	"osc/internal/testdb"
)

// TestMySQLChecksumCharsets: a row that mixes character sets (utf8mb4 and
// binary strings rendered as their bytes beside latin1, ascii, ucs2 and
// utf16 ones cast to BINARY) fingerprints equal when the copy is right,
// with and without an --alter that changes character sets, and differs
// when one value of the shadow changes: to a value equal under the
// column's collation, by a zero byte, across a column boundary, or
// between NULL, the empty string and 'NULL'.
func TestMySQLChecksumCharsets(t *testing.T) {
	db := myOpen(t)
	create := "(id INT PRIMARY KEY, l VARCHAR(10) CHARACTER SET latin1, a VARCHAR(10) CHARACTER SET ascii," +
		" u2 VARCHAR(10) CHARACTER SET ucs2, u16 VARCHAR(10) CHARACTER SET utf16, m3 VARCHAR(10) CHARACTER SET utf8mb3," +
		" m4 VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci, el ENUM('é','x') CHARACTER SET latin1," +
		" e4 ENUM('é','x','ß') CHARACTER SET utf8mb4, s4 SET('a','é') CHARACTER SET utf8mb4, b BINARY(4), vb VARBINARY(10)," +
		" tb TINYBLOB, c CHAR(5) CHARACTER SET utf8mb4, n INT, last VARCHAR(10) CHARACTER SET utf8mb4)"
	rows := "(1, 'é', 'a', 'é', '€', '€', 'ß', 'é', 'é', 'a,é', 'ab', 'a\\0', 'x\\0', 'ab', 1, 'z')," +
		" (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)," +
		" (3, '', '', '', '', '', '', 'x', 'x', '', '', '', '', '', 0, '')," +
		" (4, 'NULL', '1', '0', '10', '1\\01', '\\01', 'x', 'ß', 'a', '\\0\\0\\0\\0', '\\0', '\\0\\0', 'a', 10, '\\0' '1')"
	for _, alter := range []string{
		"ADD COLUMN z INT",
		"MODIFY l VARCHAR(10) CHARACTER SET utf8mb4, MODIFY u16 VARCHAR(10) CHARACTER SET utf8mb4, MODIFY m4 VARCHAR(12) CHARACTER SET utf8mb3" +
			", MODIFY el ENUM('é','x') CHARACTER SET utf8mb4, MODIFY m3 VARBINARY(10), MODIFY u2 VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
	} {
		for _, c := range []struct{ name, set string }{
			{"none", ""},
			{"case", "m4 = 'SS'"},
			{"sharp_s", "m4 = 'ss'"},
			{"upper", "last = 'Z'"},
			{"latin1_accent", "l = 'e'"},
			{"enum", "e4 = 'ß'"},
			{"enum_latin1", "el = 'x'"},
			{"set", "s4 = 'a'"},
			{"binary_zero", "b = 0x61620001"},
			{"varbinary_trailing_zero", "vb = 'a'"},
			{"varbinary_more_zeros", "vb = 'a\\0\\0'"},
			{"tinyblob_trailing_zero", "tb = 'x'"},
			{"boundary_m3_m4", "m3 = '€ß', m4 = ''"},
			{"boundary_m4_last", "m4 = 'ßz', last = ''"},
			{"boundary_c_last", "c = 'abz', last = ''"},
			{"last_empty_to_null", "last = NULL WHERE id = 3 OR id = 0"},
			{"last_null_to_empty", "last = '' WHERE id = 2 OR id = 0"},
			{"last_null_to_text", "last = 'NULL' WHERE id = 2 OR id = 0"},
			{"n_null", "n = NULL"},
			{"n_and_last", "n = NULL, last = '1\\0z'"},
			{"ucs2", "u2 = 'e'"},
			{"utf16", "u16 = 'e'"},
			{"ascii", "a = 'b'"},
			{"trailing_space", "m4 = 'ß '"},
			{"last_trailing_space", "last = 'z '"},
			{"zero_bytes_across_m3_m4", "m3 = '1', m4 = '1\\0\\01' WHERE id = 4"},
			{"zero_bytes_across_m4_last", "m4 = '\\01\\0', last = '1' WHERE id = 4"},
			{"zero_bytes_across_vb_tb", "vb = '', tb = '\\0\\0\\0' WHERE id = 4"},
		} {
			t.Run(strings.Fields(alter)[0]+"/"+c.name, func(t *testing.T) {
				name := "ckcs_" + c.name
				plan := myMigrate(t, db, name, create, alter, rows)
				if c.set != "" {
					q := "UPDATE " + name + "_osc_new SET " + c.set
					if !strings.Contains(c.set, " WHERE ") {
						q += " WHERE id = 1"
					}
					testdb.ExecMySQL(t, db, q)
				}
				ck := myChecksum(t, db, plan)
				r, chunks := myChunks(t, ck, 1000, nothing)
				differ, n := mySums(t, r, chunks)
				if n != 4 {
					t.Errorf("%d rows, want 4", n)
				}
				if c.set == "" && len(differ) > 0 {
					t.Errorf("a correct copy differs: %v", differ)
				}
				if c.set != "" && len(differ) == 0 {
					t.Errorf("SET %s: every chunk's fingerprint is equal", c.set)
				}
			})
		}
	}
}
