package apply_test

import (
	"context"
	"fmt"
	"testing"

	"osc/apply"
	"osc/cdc"
	"osc/internal/testdb"
)

// TestMySQLApplyIntegerKeyLongerThanBinary: an integer key the --alter makes
// a BINARY(12), whose text is longer than the column: the plain ALTER fails
// on such a row, but one deleted before the copy read it never reaches the
// shadow, and the applier deletes its key. Compared with CAST(? AS
// BINARY(12)), the text was cut to its first 12 bytes (with a warning), and
// the delete of 1234567890123456 took the row of 123456789012 out of the
// shadow: a row lost (myKeyCompare). The ZEROFILL number's padded text is cut
// so too. Under --panic-on-warnings the warning failed the migration.
func TestMySQLApplyIntegerKeyLongerThanBinary(t *testing.T) {
	db, _ := myOpenDB(t)
	for _, tc := range []struct {
		src   string
		panic bool // --panic-on-warnings
	}{
		{"BIGINT UNSIGNED", false},
		{"BIGINT(5) UNSIGNED ZEROFILL", false},
		{"BIGINT UNSIGNED", true},
		{"BIGINT(5) UNSIGNED ZEROFILL", true},
	} {
		t.Run(fmt.Sprintf("%s panic %v", tc.src, tc.panic), func(t *testing.T) {
			ctx := context.Background()
			testdb.DropMySQLTables(t, db, "r8bk_src", "r8bk_dst")
			t.Cleanup(func() { testdb.DropMySQLTables(t, db, "r8bk_src", "r8bk_dst", "_r8bk_src_ghc") })
			testdb.ExecMySQL(t, db, "CREATE TABLE r8bk_src (id "+tc.src+" NOT NULL PRIMARY KEY, v INT) ENGINE=InnoDB")
			testdb.ExecMySQL(t, db, "CREATE TABLE r8bk_dst (id BINARY(12) NOT NULL PRIMARY KEY, v INT) ENGINE=InnoDB")
			testdb.ExecMySQL(t, db, "INSERT INTO r8bk_src VALUES (123456789012, 1), (123456789013, 2)")
			testdb.ExecMySQL(t, db, "INSERT INTO r8bk_dst VALUES ('123456789012', 1), ('123456789013', 2)")
			a := apply.NewMySQL(db, myLoadPlan(t, db, "r8bk_src", "r8bk_dst"))
			a.PanicOnWarnings = tc.panic
			if err := a.Apply(ctx, []cdc.Change{
				{Op: cdc.Delete, Before: cdc.Row{uint64(1234567890123456), int64(3)}},
				{Op: cdc.Delete, Before: cdc.Row{uint64(1234567890123), int64(4)}},
			}); err != nil {
				t.Fatal(err)
			}
			var keys string
			if err := db.QueryRowContext(ctx, "SELECT GROUP_CONCAT(id ORDER BY id SEPARATOR ' ') FROM r8bk_dst").Scan(&keys); err != nil {
				t.Fatal(err)
			}
			if want := "123456789012 123456789013"; keys != want {
				t.Fatalf("the shadow holds the keys %s, want %s", keys, want)
			}
		})
	}
}
