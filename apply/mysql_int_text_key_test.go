package apply_test

import (
	"context"
	"database/sql"
	"testing"

	"osc/apply"
	"osc/cdc"
	"osc/internal/testdb"
)

// TestMySQLApplyIntegerKeyMadeText: an integer key the --alter makes a
// string. The applier compared the string column with the binlog's number,
// which the server does as numbers, reading every row of the shadow: its
// delete waited for the lock on another row (as the copy's chunk holds
// them) until the lock wait timeout failed it, where compared as the text
// the shadow holds it reads the key's rows alone (myKeyCompare). A BINARY
// holds the text padded with zero bytes, and a ZEROFILL number's text
// ('00042') found no row there unless padded too.
func TestMySQLApplyIntegerKeyMadeText(t *testing.T) {
	db, _ := myOpenDB(t)
	// The applier's sessions wait a second for a lock.
	cfg := testdb.MySQL(t).Config(t, "osc_test")
	cfg.InterpolateParams, cfg.ParseTime, cfg.MaxAllowedPacket = false, false, 0
	cfg.Params = map[string]string{"innodb_lock_wait_timeout": "1", "sql_mode": "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"}
	adb := testdb.OpenMySQL(t, cfg)
	for _, tc := range []struct {
		src, dst string
		pad      bool // ZEROFILL(5)
	}{
		{"BIGINT UNSIGNED", "VARCHAR(30)", false},
		{"BIGINT UNSIGNED", "VARCHAR(30) CHARACTER SET latin1", false},
		{"BIGINT UNSIGNED", "BINARY(24)", false},
		{"BIGINT UNSIGNED", "VARBINARY(30)", false},
		{"BIGINT(5) UNSIGNED ZEROFILL", "VARCHAR(30)", true},
		{"BIGINT(5) UNSIGNED ZEROFILL", "BINARY(24)", true},
		{"BIGINT(5) UNSIGNED ZEROFILL", "VARBINARY(30)", true},
	} {
		t.Run(tc.src+" to "+tc.dst, func(t *testing.T) {
			ctx := context.Background()
			testdb.DropMySQLTables(t, db, "h8ik_src", "h8ik_dst")
			t.Cleanup(func() { testdb.DropMySQLTables(t, db, "h8ik_src", "h8ik_dst", "_h8ik_src_ghc") })
			testdb.ExecMySQL(t, db, "CREATE TABLE h8ik_src (id "+tc.src+" NOT NULL PRIMARY KEY, v INT) ENGINE=InnoDB")
			testdb.ExecMySQL(t, db, "CREATE TABLE h8ik_dst (id "+tc.dst+" NOT NULL PRIMARY KEY, v INT) ENGINE=InnoDB")
			testdb.ExecMySQL(t, db, "INSERT INTO h8ik_src VALUES (7, 7), (18446744073709551615, 2)")
			seven, fortytwo := "7", "42"
			if tc.pad {
				seven, fortytwo = "00007", "00042"
			}
			testdb.ExecMySQL(t, db, "INSERT INTO h8ik_dst VALUES ('"+seven+"', 7), ('"+fortytwo+"', 42), ('18446744073709551614', 1), ('18446744073709551615', 2)")
			a := apply.NewMySQL(adb, myLoadPlan(t, db, "h8ik_src", "h8ik_dst"))

			// Another transaction holds the row of 7 (READ COMMITTED: the
			// locks of the rows its scan passes go).
			lock, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
			if err != nil {
				t.Fatal(err)
			}
			defer lock.Rollback()
			if _, err := lock.ExecContext(ctx, "SELECT * FROM h8ik_dst WHERE v = 7 FOR UPDATE"); err != nil {
				t.Fatal(err)
			}
			if err := a.Apply(ctx, []cdc.Change{
				{Op: cdc.Delete, Before: cdc.Row{uint64(42), int64(42)}},
				{Op: cdc.Delete, Before: cdc.Row{uint64(18446744073709551614), int64(1)}},
			}); err != nil {
				t.Fatal(err)
			}
			var keys string
			if err := db.QueryRowContext(ctx, "SELECT GROUP_CONCAT(TRIM(TRAILING 0x00 FROM id) ORDER BY id SEPARATOR ' ') FROM h8ik_dst").Scan(&keys); err != nil {
				t.Fatal(err)
			}
			want := "18446744073709551615 " + seven
			if tc.pad {
				want = seven + " 18446744073709551615"
			}
			if keys != want {
				t.Fatalf("the shadow holds the keys %s, want %s", keys, want)
			}
		})
	}
}
