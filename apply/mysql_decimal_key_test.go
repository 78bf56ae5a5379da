package apply_test

import (
	"context"
	"database/sql"
	"testing"

	"osc/apply"
	"osc/cdc"
	"osc/internal/testdb"
	"osc/table"
)

// TestMySQLApplyDecimalKeyExact: a DECIMAL key whose values differ beyond a
// double's precision (12345678901234567.1 and .2 are one double), in a
// table small enough that the server reads the applier's DELETE of four keys
// (dk IN (?, ?, ?, ?)) by a scan, not by the key's ranges: it compared the
// column with the string parameters as doubles and deleted every neighbour
// of a deleted key from the shadow, rows lost (myKeyCompare). The reverse
// applier deletes so too.
func TestMySQLApplyDecimalKeyExact(t *testing.T) {
	db, _ := myOpenDB(t)
	for _, tc := range []struct {
		name string
		new  func(*sql.DB, *table.Plan) *apply.MySQL
	}{{"applier", apply.NewMySQL}, {"revert", apply.NewMySQLRevert}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			testdb.DropMySQLTables(t, db, "h8dk_src", "h8dk_dst")
			t.Cleanup(func() { testdb.DropMySQLTables(t, db, "h8dk_src", "h8dk_dst", "_h8dk_src_ghc") })
			for _, name := range []string{"h8dk_src", "h8dk_dst"} {
				testdb.ExecMySQL(t, db, "CREATE TABLE "+name+" (dk DECIMAL(30,10) NOT NULL PRIMARY KEY, v INT) ENGINE=InnoDB")
				testdb.ExecMySQL(t, db, "INSERT INTO "+name+" SELECT 12345678901234567 + seq / 10, seq FROM seq_0_to_9")
			}
			var changes []cdc.Change
			for _, k := range []string{"12345678901234567.1000000000", "12345678901234567.5000000000", "12345678901234567.7000000000", "12345678901234567.9000000000"} {
				testdb.ExecMySQL(t, db, "DELETE FROM h8dk_src WHERE dk = "+k)
				changes = append(changes, cdc.Change{Op: cdc.Delete, Before: cdc.Row{k, int64(0)}})
			}
			// A key-changing update: the applier deletes its old key with
			// the others, the reverse applier moves the row.
			testdb.ExecMySQL(t, db, "UPDATE h8dk_src SET dk = 1.5 WHERE dk = 12345678901234567.3")
			changes = append(changes, cdc.Change{Op: cdc.Update,
				Before: cdc.Row{"12345678901234567.3000000000", int64(3)}, After: cdc.Row{"1.5000000000", int64(3)}})
			p := myLoadPlan(t, db, "h8dk_src", "h8dk_dst")
			if err := tc.new(db, p).Apply(ctx, changes); err != nil {
				t.Fatal(err)
			}
			mySameTables(t, db, p, "h8dk_src", "h8dk_dst")
		})
	}
}
