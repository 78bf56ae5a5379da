package copier_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"osc/apply"
	"osc/cdc"
	"osc/copier"
	"osc/table"
)

// TestMySQLCopyNewUnique: under a new unique key, a chunk row that clashes
// with a shadow row of another key (the applier has not applied that row's
// change yet) waits aside, not lost, and goes back once the applier has
// applied the change; a key aside is never copied again (the copy never
// overwrites); rows with a NULL in the key never clash; a value the
// original holds twice fails the final restore, naming it.
func TestMySQLCopyNewUnique(t *testing.T) {
	db := myOpenDB(t)
	ctx := context.Background()
	aside := table.MySQLAsideName("uniq_copy_src")
	setup := func(src, dst, asideRows string) (*copier.MySQL, *apply.MySQL) {
		for _, q := range []string{
			"DROP TABLE IF EXISTS uniq_copy_src, uniq_copy_dst, " + aside,
			"CREATE TABLE uniq_copy_src (id INT NOT NULL PRIMARY KEY, email VARCHAR(20) NULL) ENGINE=InnoDB",
			"CREATE TABLE uniq_copy_dst (id INT NOT NULL PRIMARY KEY, email VARCHAR(20) NULL, UNIQUE KEY uq (email)) ENGINE=InnoDB",
			"INSERT INTO uniq_copy_src VALUES " + src,
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if dst != "" {
			if _, err := db.ExecContext(ctx, "INSERT INTO uniq_copy_dst VALUES "+dst); err != nil {
				t.Fatal(err)
			}
		}
		p := myPlan(t, db, "uniq_copy_src", "uniq_copy_dst", 1)
		p.NewUnique = []table.UniqueKey{{Name: "uq", Columns: []string{"email"}, Shadow: []string{"email"}}}
		x, err := table.NewMySQLAside(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Create(ctx, db); err != nil {
			t.Fatal(err)
		}
		if asideRows != "" {
			if _, err := db.ExecContext(ctx, "INSERT INTO "+aside+" VALUES "+asideRows); err != nil {
				t.Fatal(err)
			}
			x.Holds(true)
		}
		c := copier.NewMySQL(db, p)
		c.UseAside(x)
		a := apply.NewMySQL(db, p)
		a.UseAside(x)
		return c, a
	}
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS uniq_copy_src, uniq_copy_dst, " + aside) }) //nolint:errcheck // best effort: the next run drops them first

	// Row 2 as it was in the shadow: its change to 'y' is not applied yet.
	// Row 5 waits aside, as a batch left it.
	c, a := setup("(1, 'x'), (2, 'y'), (3, NULL), (4, NULL), (5, 'z')", "(2, 'x')", "(5, 'z')")
	myCopyAll(t, c, 2)
	if n := myCount(t, db, "SELECT COUNT(*) FROM uniq_copy_dst WHERE id IN (3, 4)"); n != 2 {
		t.Errorf("rows 3, 4 copied: %d, want 2", n)
	}
	if n := myCount(t, db, "SELECT COUNT(*) FROM uniq_copy_dst WHERE id IN (1, 5)"); n != 0 {
		t.Errorf("rows 1 (clashing) and 5 (aside) in the shadow: %d, want none", n)
	}
	if n := myCount(t, db, "SELECT COUNT(*) FROM "+aside+" WHERE id IN (1, 5)"); n != 2 {
		t.Errorf("rows 1 and 5 aside: %d, want 2", n)
	}
	if err := a.Apply(ctx, []cdc.Change{{Op: cdc.Update, Before: cdc.Row{int32(2), "x"}, After: cdc.Row{int32(2), "y"}}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Restore(ctx, true); err != nil {
		t.Fatalf("final restore: %v", err)
	}
	if n := myCount(t, db, "SELECT COUNT(*) FROM uniq_copy_src s JOIN uniq_copy_dst d ON d.id = s.id AND d.email <=> s.email"); n != 5 {
		t.Errorf("%d rows of the shadow equal the original's, want 5", n)
	}
	if n := myCount(t, db, "SELECT COUNT(*) FROM "+aside); n != 0 {
		t.Errorf("%d rows left aside, want none", n)
	}

	// Now the original holds 'x' twice: the final restore must fail.
	c, a = setup("(1, 'x'), (2, 'X'), (3, 'y')", "", "")
	myCopyAll(t, c, 10)
	err := a.Restore(ctx, true)
	var dup *table.DuplicateError
	if !errors.As(err, &dup) {
		t.Fatalf("copy with a duplicate in the original: %v, want a DuplicateError", err)
	}
	for _, want := range []string{"uq (email)", "in 2 rows (keys (1), (2))"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if len(dup.Duplicates) != 1 || !strings.EqualFold(dup.Duplicates[0].Values[0], "x") {
		t.Errorf("duplicates %+v, want x", dup.Duplicates)
	}
}
