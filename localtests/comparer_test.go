package localtests

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// colPair names one compared column in the old and in the new table.
type colPair struct{ old, new string }

func (p colPair) String() string {
	if p.old == p.new {
		return p.old
	}
	return p.old + " (new " + p.new + ")"
}

// comparison is the result of compareTables.
type comparison struct {
	oldRows, newRows int
	diffs            []string // the first differences, in key order of the new table
	total            int      // all differences
}

// value is one column value as the comparer reads it.
type value struct {
	s    string
	null bool
}

func (v value) String() string {
	if v.null {
		return "NULL"
	}
	return strconv.Quote(abbreviate(v.s, 64))
}

// compareTables compares two tables of the same database row by row: the
// rows are matched by key (key columns by their old and new names), and the
// cols of matched rows compared as the dialect renders them as text. It
// reports missing and extra rows and differing values, at most maxDiffs of
// them (but counts them all). The old table is held in memory, the new one
// streamed.
func compareTables(ctx context.Context, db *sql.DB, d dialect, oldTable, newTable string, key, cols []colPair, maxDiffs int) (*comparison, error) {
	cmp := &comparison{}
	report := func(format string, args ...any) {
		cmp.total++
		if len(cmp.diffs) < maxDiffs {
			cmp.diffs = append(cmp.diffs, fmt.Sprintf(format, args...))
		}
	}

	oldByKey := map[string][]value{}
	var oldKeys []string // in key order, for the "missing" report
	err := scanTable(ctx, db, d, oldTable, key, cols, func(p colPair) string { return p.old }, func(k string, vals []value) {
		oldByKey[k] = vals
		oldKeys = append(oldKeys, k)
	})
	if err != nil {
		return nil, err
	}
	cmp.oldRows = len(oldKeys)

	err = scanTable(ctx, db, d, newTable, key, cols, func(p colPair) string { return p.new }, func(k string, vals []value) {
		cmp.newRows++
		old, ok := oldByKey[k]
		if !ok {
			report("extra in new: key=%s", showKey(vals[:len(key)]))
			return
		}
		delete(oldByKey, k)
		for i, c := range cols {
			if o, n := old[len(key)+i], vals[len(key)+i]; o != n {
				report("differs at key=%s column %s: old=%s new=%s", showKey(vals[:len(key)]), c, o, n)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	for _, k := range oldKeys {
		if vals, ok := oldByKey[k]; ok {
			report("missing in new: key=%s", showKey(vals[:len(key)]))
		}
	}
	return cmp, nil
}

// scanTable reads the key and cols of table in key order and calls row with
// an exact encoding of the key and the values (key first).
func scanTable(ctx context.Context, db *sql.DB, d dialect, table string, key, cols []colPair, name func(colPair) string,
	row func(k string, vals []value)) error {
	var exprs, order []string
	for _, p := range key {
		exprs = append(exprs, d.textExpr(d.quote(name(p))))
		order = append(order, d.quote(name(p)))
	}
	for _, p := range cols {
		exprs = append(exprs, d.textExpr(d.quote(name(p))))
	}
	q := fmt.Sprintf("SELECT %s FROM %s ORDER BY %s", strings.Join(exprs, ", "), d.quote(table), strings.Join(order, ", "))
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	defer rows.Close()
	raw := make([]any, len(exprs))
	ptrs := make([]any, len(exprs))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("read %s: %w", table, err)
		}
		vals := make([]value, len(raw))
		var k strings.Builder
		for i, r := range raw {
			vals[i] = toValue(r)
			if i < len(key) {
				fmt.Fprintf(&k, "%t%d:%s", vals[i].null, len(vals[i].s), vals[i].s)
			}
		}
		row(k.String(), vals)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	return nil
}

// toValue renders what database/sql scanned into an any: []byte for strings,
// binary strings and most types; the MySQL driver parses integers and floats,
// and they are rendered back exactly (equal values, equal text).
func toValue(v any) value {
	switch x := v.(type) {
	case nil:
		return value{null: true}
	case []byte:
		return value{s: string(x)}
	case string:
		return value{s: x}
	case int64:
		return value{s: strconv.FormatInt(x, 10)}
	case uint64:
		return value{s: strconv.FormatUint(x, 10)}
	case float32:
		return value{s: strconv.FormatFloat(float64(x), 'g', -1, 32)}
	case float64:
		return value{s: strconv.FormatFloat(x, 'g', -1, 64)}
	default:
		return value{s: fmt.Sprint(x)}
	}
}

func showKey(vals []value) string {
	if len(vals) == 1 {
		return vals[0].s
	}
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = v.s
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// TestComparer checks on both databases that the comparer finds a lost row,
// an extra row and changed values (NULL is not the empty string), and that
// identical tables compare equal.
func TestComparer(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			admin := d.connectAdmin(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			const ns = "osct__comparer"
			if err := d.resetNamespace(ctx, admin, ns); err != nil {
				t.Fatal(err)
			}
			db, err := d.open(ns)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			exec := func(stmts ...string) {
				t.Helper()
				for _, s := range stmts {
					if _, err := db.ExecContext(ctx, s); err != nil {
						t.Fatalf("%s: %v", s, err)
					}
				}
			}
			exec("CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20), n INT)",
				"CREATE TABLE b (id INT PRIMARY KEY, v2 VARCHAR(20), n INT)",
				"INSERT INTO a VALUES (1, 'one', 1), (2, 'two', NULL), (3, 'three', 3), (4, '', 4)",
				"INSERT INTO b VALUES (4, '', 4), (3, 'three', 3), (2, 'two', NULL), (1, 'one', 1)")
			key := []colPair{{"id", "id"}}
			cols := []colPair{{"v", "v2"}, {"n", "n"}}

			cmp, err := compareTables(ctx, db, d, "a", "b", key, cols, 10)
			if err != nil {
				t.Fatal(err)
			}
			if cmp.total != 0 || cmp.oldRows != 4 || cmp.newRows != 4 {
				t.Fatalf("identical tables: %d differences %q, %d and %d rows", cmp.total, cmp.diffs, cmp.oldRows, cmp.newRows)
			}

			exec("DELETE FROM b WHERE id = 2",
				"INSERT INTO b VALUES (9, 'nine', 9)",
				"UPDATE b SET n = 33 WHERE id = 3",
				"UPDATE b SET v2 = NULL WHERE id = 4")
			cmp, err = compareTables(ctx, db, d, "a", "b", key, cols, 10)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{
				`differs at key=3 column n: old="3" new="33"`,
				`differs at key=4 column v (new v2): old="" new=NULL`,
				`extra in new: key=9`,
				`missing in new: key=2`,
			}
			if !slices.Equal(cmp.diffs, want) || cmp.total != len(want) {
				t.Fatalf("differences:\n got %q (total %d)\nwant %q", cmp.diffs, cmp.total, want)
			}
			if cmp, err = compareTables(ctx, db, d, "a", "b", key, cols, 2); err != nil || len(cmp.diffs) != 2 || cmp.total != 4 {
				t.Fatalf("maxDiffs 2: %v, %q, total %d", err, cmp.diffs, cmp.total)
			}
			if err := d.dropNamespace(ctx, admin, ns); err != nil {
				t.Fatal(err)
			}
		})
	}
}
