package copier_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"osc/copier"
	"osc/table"
)

// TestMySQLCopyNewUnique: a chunk row that clashes under a new unique key
// with a shadow row of another key is skipped when the original does not
// hold the value twice now (the shadow row is stale: its change is still
// to be applied), and fails the chunk, naming the value and the key, when
// it does. Rows with a NULL in the key never clash.
func TestMySQLCopyNewUnique(t *testing.T) {
	db := myOpenDB(t)
	ctx := context.Background()
	for _, q := range []string{
		"DROP TABLE IF EXISTS uniq_copy_src, uniq_copy_dst",
		"CREATE TABLE uniq_copy_src (id INT NOT NULL PRIMARY KEY, email VARCHAR(20) NULL) ENGINE=InnoDB",
		"CREATE TABLE uniq_copy_dst (id INT NOT NULL PRIMARY KEY, email VARCHAR(20) NULL, UNIQUE KEY uq (email)) ENGINE=InnoDB",
		"INSERT INTO uniq_copy_src VALUES (1, 'x'), (2, 'y'), (3, NULL), (4, NULL), (5, 'z')",
		// Row 2 as it was: the applier has not applied its change to 'y' yet.
		"INSERT INTO uniq_copy_dst VALUES (2, 'x')",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS uniq_copy_src, uniq_copy_dst") }) //nolint:errcheck // best effort: the next run drops them first
	plan := func() *table.Plan {
		p := myPlan(t, db, "uniq_copy_src", "uniq_copy_dst", 1)
		p.NewUnique = []table.UniqueKey{{Name: "uq", Columns: []string{"email"}, Shadow: []string{"email"}}}
		return p
	}
	myCopyAll(t, copier.NewMySQL(db, plan()), 2)
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM uniq_copy_dst WHERE id IN (3, 4, 5)").Scan(&n); err != nil || n != 3 {
		t.Fatalf("rows 3, 4, 5 copied: %d (%v), want 3", n, err)
	}
	// Now the original holds 'x' twice: the chunk must fail.
	for _, q := range []string{"UPDATE uniq_copy_src SET email = 'X' WHERE id = 2", "DELETE FROM uniq_copy_dst WHERE id <> 2"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_, err := copier.NewMySQL(db, plan()).CopyChunk(ctx, nil, 10)
	var dup *table.DuplicateError
	if !errors.As(err, &dup) {
		t.Fatalf("copy with a duplicate in the original: %v, want a DuplicateError", err)
	}
	for _, want := range []string{"uq (email)", "in 2 rows", "the copy of the first chunk"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if len(dup.Duplicates) != 1 || !strings.EqualFold(dup.Duplicates[0].Values[0], "x") {
		t.Errorf("duplicates %+v, want x", dup.Duplicates)
	}
}
