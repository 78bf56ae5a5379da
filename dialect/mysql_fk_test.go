package dialect

import (
	"context"
	"strings"
	"testing"

	"osc/engine"
)

// TestMySQLForeignKeysPreflight: a child table is refused without
// --discard-foreign-keys, naming the flag; with it the inspection accepts the
// table and the preflight report says what happens to its foreign keys.
func TestMySQLForeignKeysPreflight(t *testing.T) {
	const child, parent = "cov_fk_child", "cov_fk_parent"
	db := mysqlTestDB(t, child, parent)
	mustExec(t, db, "CREATE TABLE "+parent+" (id INT PRIMARY KEY) ENGINE=InnoDB")
	mustExec(t, db, "CREATE TABLE "+child+" (id INT PRIMARY KEY, p INT, CONSTRAINT cov_fk_p FOREIGN KEY (p) REFERENCES "+parent+" (id)) ENGINE=InnoDB")
	ctx := context.Background()
	cfg := engine.Config{Schema: mysqlTestSchema, Table: child, Alter: "ADD COLUMN w INT"}
	for _, discard := range []bool{false, true} {
		conn := mysqlTestConn(t)
		conn.DiscardForeignKeys = discard
		dd, err := NewMySQL(cfg, conn, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := dd.(*mysqlDialect)
		err = d.Inspect(ctx)
		if !discard {
			if err == nil || !strings.Contains(err.Error(), "or run with --discard-foreign-keys") {
				t.Errorf("without --discard-foreign-keys: %v", err)
			}
			d.Close()
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		r, err := d.Preflight(ctx, 0)
		d.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := "discarded (--discard-foreign-keys): the new table has none of cov_fk_p referencing osc_test.cov_fk_parent"; !strings.Contains(r.ForeignKeys, want) {
			t.Errorf("preflight foreign keys %q, want %q", r.ForeignKeys, want)
		}
	}
}
