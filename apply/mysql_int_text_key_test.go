package apply_test

import (
	"context"
	"testing"

	"osc/apply"
	"osc/cdc"
	"osc/internal/testdb"
)

// TestMySQLApplyIntegerKeyMadeText: an integer key the --alter makes a
// VARCHAR. The applier compared the text column with the binlog's number,
// which the server does as numbers, reading every row of the shadow: its
// delete waited for the lock on another row (as the copy's chunk holds
// them) until the lock wait timeout failed it, where compared as the text
// the shadow holds it reads the key's rows alone (myKeyCompare).
func TestMySQLApplyIntegerKeyMadeText(t *testing.T) {
	db, _ := myOpenDB(t)
	ctx := context.Background()
	testdb.DropMySQLTables(t, db, "h8ik_src", "h8ik_dst")
	t.Cleanup(func() { testdb.DropMySQLTables(t, db, "h8ik_src", "h8ik_dst", "_h8ik_src_ghc") })
	testdb.ExecMySQL(t, db, "CREATE TABLE h8ik_src (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, v INT) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "CREATE TABLE h8ik_dst (id VARCHAR(30) NOT NULL PRIMARY KEY, v INT) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "INSERT INTO h8ik_src VALUES (7, 7), (18446744073709551615, 2)")
	testdb.ExecMySQL(t, db, "INSERT INTO h8ik_dst VALUES ('7', 7), ('42', 42), ('18446744073709551614', 1), ('18446744073709551615', 2)")

	// The applier's sessions wait a second for a lock.
	cfg := testdb.MySQL(t).Config(t, "osc_test")
	cfg.InterpolateParams, cfg.ParseTime, cfg.MaxAllowedPacket = false, false, 0
	cfg.Params = map[string]string{"innodb_lock_wait_timeout": "1", "sql_mode": "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"}
	adb := testdb.OpenMySQL(t, cfg)
	a := apply.NewMySQL(adb, myLoadPlan(t, db, "h8ik_src", "h8ik_dst"))

	// Another transaction holds the row '7'.
	lock, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(ctx, "SELECT * FROM h8ik_dst WHERE id = '7' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, []cdc.Change{
		{Op: cdc.Delete, Before: cdc.Row{uint64(42), int64(42)}},
		{Op: cdc.Delete, Before: cdc.Row{uint64(18446744073709551614), int64(1)}},
	}); err != nil {
		t.Fatal(err)
	}
	var keys string
	if err := db.QueryRowContext(ctx, "SELECT GROUP_CONCAT(id ORDER BY id SEPARATOR ' ') FROM h8ik_dst").Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if keys != "18446744073709551615 7" {
		t.Fatalf("the shadow holds the keys %s, want 18446744073709551615 7", keys)
	}
}
