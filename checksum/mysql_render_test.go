package checksum

import (
	"strings"
	"testing"

	"osc/internal/testdb"
)

// TestMySQLRowTextUnambiguous searches every layout of one to three columns
// (each column's encoding, and whether it has a NULL mark) for two distinct
// rows that render alike, over values chosen to look like the rendering's
// own parts: NULL, empty strings, the digits of NULL marks and lengths, zero
// bytes, and strings that end or begin with a separator followed by digits.
// It knows nothing of the rendering's layout (where the marks or the lengths
// go), so any rearrangement that makes two rows render alike fails it.
func TestMySQLRowTextUnambiguous(t *testing.T) {
	cfg := testdb.MySQL(t).Config(t, "osc_test")
	db := testdb.OpenMySQL(t, cfg)
	// Each encoding's values as SQL, the first NULL (left out where the
	// column has no mark). Three-column layouts use the first few only.
	values := map[mysqlEncoding][]string{
		mysqlPlain: {"NULL", "0", "1", "10", "100", "-1"},
		mysqlBytes: {"NULL", "_binary''", "_binary'0'", "_binary'1'", "_binary'10'", "_binary 0x00", "_binary 0x0030",
			"_binary 0x3000", "_binary 0x310031", "_binary 0x300031", "_binary 0x00310030", "_binary 0x0030003000"},
		mysqlUTF8: {"NULL", "_utf8mb4''", "_utf8mb4'1'", "_utf8mb4'0'", "_utf8mb4'10'", "CONVERT(0x00 USING utf8mb4)",
			"CONVERT(0x0031 USING utf8mb4)", "CONVERT(0x3100 USING utf8mb4)", "CONVERT(0x310030 USING utf8mb4)",
			"CONVERT(0x00310030 USING utf8mb4)", "_utf8mb4'é'", "CONVERT(0x0030003000 USING utf8mb4)"},
		mysqlDigest: {"NULL", "_utf8mb4''", "_utf8mb4'1'", "_utf8mb4'0'", "CONVERT(0x00 USING utf8mb4)"},
	}
	encodings := []mysqlEncoding{mysqlPlain, mysqlBytes, mysqlUTF8, mysqlDigest}
	var layouts [][]mysqlEncoding
	for _, a := range encodings {
		layouts = append(layouts, []mysqlEncoding{a})
		for _, b := range encodings {
			layouts = append(layouts, []mysqlEncoding{a, b})
			for _, c := range encodings {
				layouts = append(layouts, []mysqlEncoding{a, b, c})
			}
		}
	}
	checked := 0
	for _, encs := range layouts {
		for marks := range 1 << len(encs) {
			nullable := make([]bool, len(encs))
			cols := make([]string, len(encs))
			var from []string
			for i, e := range encs {
				nullable[i] = marks&(1<<i) != 0
				vals := values[e]
				if len(encs) == 3 {
					vals = vals[:min(len(vals), 7)]
				}
				if !nullable[i] {
					vals = vals[1:]
				}
				sel := make([]string, len(vals))
				for j, v := range vals {
					sel[j] = "SELECT " + v + " AS v, " + quoteSQL(v) + " AS s"
				}
				alias := string(rune('a' + i))
				cols[i] = alias + ".v"
				from = append(from, "("+strings.Join(sel, " UNION ALL ")+") AS "+alias)
			}
			names := make([]string, len(encs))
			for i := range encs {
				names[i] = string(rune('a'+i)) + ".s"
			}
			q := "SELECT HEX(" + mysqlRowText(cols, encs, nullable) + "), CONCAT_WS(' | ', " + strings.Join(names, ", ") +
				") FROM " + strings.Join(from, " CROSS JOIN ")
			rows, err := db.Query(q)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			seen := map[string]string{}
			for rows.Next() {
				var text, row string
				if err := rows.Scan(&text, &row); err != nil {
					t.Fatal(err)
				}
				checked++
				if other, ok := seen[text]; ok {
					t.Errorf("encodings %v, NULL marks %v: rows (%s) and (%s) render alike: %s", encodingNames(encs), nullable, other, row, text)
				}
				seen[text] = row
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			rows.Close()
		}
	}
	t.Logf("%d rows in %d layouts", checked, len(layouts))
}

// encodingNames names the encodings, for a message.
func encodingNames(encs []mysqlEncoding) []string {
	names := map[mysqlEncoding]string{mysqlBytes: "bytes", mysqlUTF8: "utf8", mysqlPlain: "plain", mysqlDigest: "digest"}
	out := make([]string, len(encs))
	for i, e := range encs {
		out[i] = names[e]
	}
	return out
}

// quoteSQL is v as an SQL string literal, to name a row in a message.
func quoteSQL(v string) string {
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}
