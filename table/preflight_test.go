package table

import (
	"context"
	"testing"

	"osc/internal/testdb"
)

// TestReadMySQLTableIO: the per-table write count read from
// performance_schema is valid SQL on the server (MySQL 8 has
// performance_schema on by default, so the preflight report depends on it
// there; the sandbox's MariaDB has it off, but its tables are defined and
// answer with no rows).
func TestReadMySQLTableIO(t *testing.T) {
	srv := testdb.MySQL(t)
	db := testdb.OpenMySQL(t, srv.Config(t, ""))
	if _, err := readMySQLTableIO(context.Background(), db, "review7_no_such_schema", "t"); err != nil {
		t.Fatal(err)
	}
}
