package table

import (
	"context"
	"strings"
	"testing"
)

// Which foreign keys the cut-over checks before the swap, and the check's
// query: the server's validation, with its casts and collation.
func TestPostgresForeignKeyCheck(t *testing.T) {
	pool := pgTestPool(t,
		`CREATE TABLE fp (id int PRIMARY KEY, code text COLLATE "C" UNIQUE)`,
		"INSERT INTO fp VALUES (1, 'a'), (2, 'b')",
		"CREATE TABLE fc (id int PRIMARY KEY, p int REFERENCES fp, q int, code varchar(5))",
		"INSERT INTO fc VALUES (1, 1, 1, 'a'), (2, 2, 7, 'z')",
		"ALTER TABLE fc ADD CONSTRAINT fc_q_fkey FOREIGN KEY (q) REFERENCES fp NOT VALID",
	)
	for _, c := range []struct {
		alter   string
		checked string // the keys checked before the swap
	}{
		{"ADD COLUMN n int", ""}, // the original holds its rows to fc_p_fkey
		{"ALTER COLUMN p TYPE bigint", "fc_p_fkey"},
		{"ALTER COLUMN p TYPE int USING p + 1", "fc_p_fkey"},
		{"VALIDATE CONSTRAINT fc_q_fkey", "fc_q_fkey"},
		{"ADD FOREIGN KEY (code) REFERENCES pgplan_test.fp (code)", "fc_code_fkey"},
		{"ADD FOREIGN KEY (code) REFERENCES pgplan_test.fp (code) NOT VALID", ""},
	} {
		sh, err := pgShadow(t, pool, "fc", c.alter)
		if err != nil {
			t.Errorf("%s: %v", c.alter, err)
			continue
		}
		var checked []string
		for _, fk := range sh.ForeignKeys {
			if fk.Check != nil {
				checked = append(checked, fk.Name)
			}
		}
		if got := strings.Join(checked, ","); got != c.checked {
			t.Errorf("%s: checked %q, want %q", c.alter, got, c.checked)
		}
		for _, fk := range sh.ForeignKeys {
			if fk.Check == nil {
				continue
			}
			if fk.Name == "fc_code_fkey" {
				// text = text, the varchar column cast, the referenced
				// column's collation.
				want := `SELECT fk.code::text FROM ONLY "pgplan_test"."_fc_osc" fk LEFT JOIN ONLY pgplan_test.fp pk ON (pk.code OPERATOR(pg_catalog.=) fk.code::pg_catalog.text COLLATE pg_catalog."C") WHERE pk.code IS NULL AND (fk.code IS NOT NULL) LIMIT 1`
				if fk.Check.Query != want {
					t.Errorf("check query\n got %s\nwant %s", fk.Check.Query, want)
				}
			}
			// The shadow is empty: nothing violates.
			if err := CheckPostgresForeignKey(context.Background(), pool, fk.Name, *fk.Check); err != nil {
				t.Errorf("%s: %s on an empty shadow: %v", c.alter, fk.Name, err)
			}
		}
		if err := DropPostgresTable(context.Background(), pool, pgTestSchema, sh.Plan.Shadow.Name); err != nil {
			t.Fatal(err)
		}
	}
}
