package localtests

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// checkPlainAlter is the server's verdict on a plain_alter case (MySQL):
// once osc has cut over, the old table holds the original with every row the
// writers left. A plain ALTER TABLE with the case's alter makes it what osc
// should have made; both tables must then have the same SHOW CREATE TABLE
// (apart from the name and the AUTO_INCREMENT counter) and the same rows,
// every column compared, invisible and generated ones included.
func checkPlainAlter(ctx context.Context, t *testing.T, d dialect, db *sql.DB, ns string, c *testCase) {
	t.Helper()
	if _, ok := d.(mysqlDialect); !ok {
		t.Fatalf("plain_alter: only MySQL cases can compare with a plain ALTER TABLE")
	}
	_, oldName := d.helperTables(c.table)
	if _, err := db.ExecContext(ctx, "ALTER TABLE "+d.quote(oldName)+" "+c.alter); err != nil {
		t.Fatalf("plain_alter: the plain ALTER TABLE of the old table: %v", err)
	}
	mine, err := showCreateTable(ctx, db, d, c.table)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := showCreateTable(ctx, db, d, oldName)
	if err != nil {
		t.Fatal(err)
	}
	if mine != plain {
		t.Errorf("plain_alter: osc's table differs from a plain ALTER TABLE's:\nosc:\n%s\nplain:\n%s", mine, plain)
	}
	info, err := d.describe(ctx, db, ns, c.table)
	if err != nil {
		t.Fatal(err)
	}
	var key, cols []colPair
	for _, k := range info.key {
		key = append(key, colPair{k, k})
	}
	for _, col := range info.columns {
		cols = append(cols, colPair{col.name, col.name})
	}
	cmp, err := compareTables(ctx, db, d, oldName, c.table, key, cols, maxDiffs)
	if err != nil {
		t.Fatal(err)
	}
	for _, diff := range cmp.diffs {
		t.Errorf("plain_alter: %s", diff)
	}
	if cmp.total > len(cmp.diffs) {
		t.Errorf("plain_alter: … %d differences in all", cmp.total)
	}
	t.Logf("plain_alter: same definition; compared %d rows on all %d columns", cmp.newRows, len(cols))
}

// autoIncrementOption is the table's counter in SHOW CREATE TABLE: osc
// carries the original's over, which later inserts into the original moved.
var autoIncrementOption = regexp.MustCompile(` AUTO_INCREMENT=\d+`)

// showCreateTable returns SHOW CREATE TABLE of table without its name and
// AUTO_INCREMENT counter.
func showCreateTable(ctx context.Context, db *sql.DB, d dialect, table string) (string, error) {
	var name, ddl string
	if err := db.QueryRowContext(ctx, "SHOW CREATE TABLE "+d.quote(table)).Scan(&name, &ddl); err != nil {
		return "", fmt.Errorf("show create table %s: %w", table, err)
	}
	ddl = strings.Replace(ddl, d.quote(table), "<table>", 1)
	return autoIncrementOption.ReplaceAllString(ddl, ""), nil
}
