package checksum_test

import (
	"testing"

	"osc/internal/testdb"
)

// TestMySQLChecksumBlindSpots corrupts the shadow in ways the MySQL
// fingerprint must see (from the independent review: each failed with a
// BIT_XOR of CRCs, or FLOAT rendered with 6 digits).
func TestMySQLChecksumBlindSpots(t *testing.T) {
	db := myOpen(t)
	for _, c := range []struct {
		name, create, rows, corrupt string
	}{
		// A CRC is affine over XOR: the same change of two rows of the same
		// layout would cancel in the chunk's BIT_XOR.
		{"swap", "(id INT PRIMARY KEY, v INT)", "(1, 10), (2, 20), (3, 30), (4, 40)",
			"UPDATE ckrv_swap_osc_new SET v = IF(id = 1, 20, 10) WHERE id IN (1, 2)"},
		{"same_change_two_rows", "(id INT PRIMARY KEY, v VARCHAR(10))", "(1, 'open'), (2, 'open'), (3, 'done')",
			"UPDATE ckrv_same_change_two_rows_osc_new SET v = 'shut' WHERE id IN (1, 2)"},
		{"text_swap", "(id INT PRIMARY KEY, t TEXT)", "(1, 'alpha'), (2, 'bravo'), (3, 'charlie')",
			"UPDATE ckrv_text_swap_osc_new SET t = IF(id = 1, 'bravo', 'alpha') WHERE id IN (1, 2)"},
		// CONCAT renders a FLOAT with 6 significant digits.
		{"float_digits", "(id INT PRIMARY KEY, f FLOAT)", "(1, 1.0000001), (2, 123456.7)",
			"UPDATE ckrv_float_digits_osc_new SET f = IF(id = 1, 1.0000002, 123456.8)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := "ckrv_" + c.name
			plan := myMigrate(t, db, name, c.create, "ADD COLUMN z INT", c.rows)
			testdb.ExecMySQL(t, db, c.corrupt)
			var n int
			if err := db.QueryRow("SELECT COUNT(*) FROM " + name + " o JOIN " + name + "_osc_new s USING (id) WHERE NOT (o." +
				map[bool]string{true: "f", false: "v"}[c.name == "float_digits"] + " <=> s." +
				map[bool]string{true: "f", false: "v"}[c.name == "float_digits"] + ")").Scan(&n); err != nil && c.name != "text_swap" {
				t.Fatal(err)
			}
			ck := myChecksum(t, db, plan)
			r, chunks := myChunks(t, ck, 1000, nothing)
			differ, _ := mySums(t, r, chunks)
			if len(differ) == 0 {
				t.Errorf("the shadow differs from the original (%d rows differ by a plain join) but every chunk's fingerprint is equal", n)
			}
		})
	}
}

// TestMySQLChecksumConversions: correct copies of converted columns
// fingerprint equal (the independent review's probes).
func TestMySQLChecksumConversions(t *testing.T) {
	db := myOpen(t)
	for i, c := range []struct{ create, alter, rows string }{
		{"(id INT PRIMARY KEY, d DATETIME)", "MODIFY d DATE", "(1, '0000-00-00 00:00:00'), (2, '2020-02-29 23:59:59'), (3, NULL)"},
		{"(id BIT(8) PRIMARY KEY, v INT)", "ADD COLUMN z INT", "(0, 1), (1, 2), (b'10000000', 3), (b'11111111', 4), (7, 5)"},
		{"(id INT PRIMARY KEY, v BIGINT UNSIGNED)", "MODIFY v DECIMAL(20,0)", "(1, 18446744073709551615), (2, 0)"},
		{"(id INT PRIMARY KEY, y YEAR)", "MODIFY y INT", "(1, 0), (2, 1901), (3, 2155), (4, 1970)"},
		{"(id INT PRIMARY KEY, y INT)", "MODIFY y YEAR", "(1, 0), (2, 69), (3, 70), (4, 2155), (5, 1901), (6, 99)"},
		{"(id INT PRIMARY KEY, t TIME(3))", "MODIFY t TIME", "(1, '12:00:00.999'), (2, '-838:59:59.000'), (3, '00:00:00.500')"},
		{"(id INT PRIMARY KEY, t DATETIME(6))", "MODIFY t DATETIME", "(1, '2020-01-01 00:00:00.999999'), (2, '9999-12-31 23:59:59.5')"},
		{"(id INT PRIMARY KEY, d DECIMAL(10,4))", "MODIFY d DECIMAL(10,2)", "(1, 2.675), (2, -2.675), (3, 0.005), (4, -0.005)"},
		{"(id INT PRIMARY KEY, g DOUBLE)", "MODIFY g DECIMAL(10,2)", "(1, 2.675), (2, 1.005), (3, -1.115), (4, 0.125), (5, 1e-9)"},
		{"(id INT PRIMARY KEY, f FLOAT)", "MODIFY f DECIMAL(12,9)", "(1, 0.1), (2, 1.1), (3, 2.675)"},
		{"(id INT PRIMARY KEY, f FLOAT)", "MODIFY f DOUBLE", "(1, 0.1), (2, 1.1), (3, 3.4e38)"},
		{"(id INT PRIMARY KEY, g DOUBLE)", "MODIFY g FLOAT", "(1, 0.1), (2, 1.0000001), (3, 123456.75)"},
		{"(id INT PRIMARY KEY, g DOUBLE)", "MODIFY g INT", "(1, 2.5), (2, 3.5), (3, -2.5), (4, 0.49999999999999994)"},
		{"(id INT PRIMARY KEY, g DOUBLE)", "MODIFY g BIGINT UNSIGNED", "(1, 9.2233720368547748e18), (2, 9.5), (3, 0.5), (4, 9223372036854775807)"},
		{"(id INT PRIMARY KEY, b BIGINT)", "MODIFY b DOUBLE", "(1, 9007199254740993), (2, -9223372036854775808)"},
		{"(id INT PRIMARY KEY, v VARCHAR(20))", "MODIFY v DECIMAL(6,2)", "(1, '1.005'), (2, '-0'), (3, ' 3'), (4, '1e2')"},
		{"(id INT PRIMARY KEY, v VARCHAR(20))", "MODIFY v DOUBLE", "(1, '0.1'), (2, '1e308'), (3, '-0')"},
		{"(id INT PRIMARY KEY, v VARCHAR(20))", "MODIFY v DATETIME", "(1, '2020-01-01'), (2, '20200102030405'), (3, '2020-1-2 3:4:5.6')"},
		{"(id INT PRIMARY KEY, v VARCHAR(20))", "MODIFY v TIME", "(1, '12'), (2, '1 02:03'), (3, '123456.7')"},
		{"(id INT PRIMARY KEY, v VARCHAR(20))", "MODIFY v ENUM('x','y')", "(1, 'X'), (2, 'y '), (3, '2')"},
		{"(id INT PRIMARY KEY, v VARCHAR(20))", "MODIFY v SET('p','q')", "(1, 'q,p'), (2, 'P'), (3, ''), (4, '3')"},
		{"(id INT PRIMARY KEY, v ENUM('a','b'))", "MODIFY v VARCHAR(5)", "(1, 'a'), (2, 'b'), (3, NULL)"},
		{"(id INT PRIMARY KEY, v ENUM('a','b'))", "MODIFY v INT", "(1, 'a'), (2, 'b'), (3, NULL)"},
		{"(id INT PRIMARY KEY, v BIT(10))", "MODIFY v VARCHAR(10)", "(1, 0), (2, 1023), (3, 65)"},
		{"(id INT PRIMARY KEY, v INT)", "MODIFY v BIT(10)", "(1, 0), (2, 1023), (3, 65)"},
		{"(id INT PRIMARY KEY, v VARCHAR(20) CHARACTER SET utf8mb4)", "MODIFY v VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", "(1, 'a😀'), (2, 'a '), (3, 'A')"},
		{"(id VARCHAR(10) PRIMARY KEY, v INT)", "ADD COLUMN z INT", "('a', 1), ('a\t', 2), ('b ', 3), ('😀', 4), ('', 5)"},
		{"(id DECIMAL(5,2) PRIMARY KEY, v INT)", "MODIFY id DECIMAL(7,3)", "(-999.99, 1), (0, 2), (-0.01, 3), (999.99, 4)"},
		{"(id ENUM('b','a','c') PRIMARY KEY, v INT)", "MODIFY id ENUM('b','a','c','d')", "('a', 1), ('b', 2), ('c', 3)"},
		{"(id BINARY(3) PRIMARY KEY, v INT)", "ADD COLUMN z INT", "(0x000000, 1), (0x000001, 2), (0xff, 3), ('a', 4)"},
		{"(id INT PRIMARY KEY, ts TIMESTAMP(3) NULL)", "MODIFY ts DATETIME(3)", "(1, '2026-03-08 02:30:00'), (2, '1970-01-01 00:00:01'), (3, '2038-01-19 03:14:07.999')"},
		{"(id INT PRIMARY KEY, d DATETIME NULL)", "MODIFY d TIMESTAMP NULL", "(1, '2026-03-08 02:30:00'), (2, '1970-01-02 00:00:01'), (3, '0000-00-00 00:00:00')"},
		{"(id INT PRIMARY KEY, v TEXT)", "MODIFY v MEDIUMTEXT CHARACTER SET utf8mb4", "(1, 'x'), (2, ''), (3, NULL)"},
		{"(id INT PRIMARY KEY, v INT, g INT AS (v * 2) STORED)", "ADD COLUMN z INT", "(1, 1, DEFAULT)"},
	} {
		t.Run(c.alter, func(t *testing.T) {
			name := "ckrv_cv" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			plan := myMigrate(t, db, name, c.create, c.alter, c.rows)
			ck := myChecksum(t, db, plan)
			r, chunks := myChunks(t, ck, 2, nothing)
			differ, rows := mySums(t, r, chunks)
			for i, d := range differ {
				t.Errorf("false mismatch on a correct copy: chunk %d: %s", i, d)
			}
			var n int64
			if err := db.QueryRow("SELECT COUNT(*) FROM " + name).Scan(&n); err != nil || n != rows {
				t.Errorf("%d rows compared, table has %d (%v)", rows, n, err)
			}
		})
	}
}
