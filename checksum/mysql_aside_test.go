package checksum_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"osc/copier"
	"osc/internal/testdb"
	"osc/table"
)

// TestMySQLChecksumAside: rows waiting in the aside table (a new unique key)
// are rows of the shadow for the checksum. A row moved aside leaves the
// chunks equal; a row aside that differs from the original's is found and
// described; a recopy takes the chunk's keys out of the aside table and
// copies them into the shadow.
func TestMySQLChecksumAside(t *testing.T) {
	db := myOpen(t)
	ctx := context.Background()
	const name = "ckmy_aside"
	aside := table.MySQLAsideName(name)
	testdb.DropMySQLTables(t, db, aside)
	rows := []string{}
	for i := 1; i <= 30; i++ {
		rows = append(rows, fmt.Sprintf("(%d, 'e%d', 'v%d')", i, i, i))
	}
	testdb.DropMySQLTables(t, db, name, name+"_osc_new", name+"_osc_log")
	testdb.ExecMySQL(t, db, "CREATE TABLE "+name+" (id INT PRIMARY KEY, e VARCHAR(20), v VARCHAR(20))")
	testdb.ExecMySQL(t, db, "INSERT INTO "+name+" VALUES "+strings.Join(rows, ", "))
	t.Cleanup(func() { testdb.DropMySQLTables(t, db, name, name+"_osc_new", name+"_osc_log", aside) })
	insp, err := table.InspectMySQLTable(ctx, db, "osc_test", name, "ADD UNIQUE KEY uq (e)")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := table.CreateMySQLShadow(ctx, db, insp)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.NewUnique) != 1 {
		t.Fatalf("plan's new unique keys %v, want uq", plan.NewUnique)
	}
	x, err := table.NewMySQLAside(plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Create(ctx, db); err != nil {
		t.Fatal(err)
	}
	cp := copier.NewMySQL(db, plan)
	for after := []any(nil); ; {
		ch, err := cp.CopyChunk(ctx, after, 5)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Done {
			break
		}
		after = ch.Last
	}
	// Rows 3 and 17 wait aside: row 17 differs there.
	testdb.ExecMySQL(t, db, "INSERT INTO "+aside+" SELECT id, e, v FROM "+name+"_osc_new WHERE id IN (3, 17)")
	testdb.ExecMySQL(t, db, "DELETE FROM "+name+"_osc_new WHERE id IN (3, 17)")
	ck := myChecksum(t, db, plan)
	r, chunks := myChunks(t, ck, 7, nothing)
	differ, n := mySums(t, r, chunks)
	if len(differ) != 0 || n != 30 {
		t.Fatalf("with rows aside: %d rows, chunks differ %v; want 30 rows, none", n, differ)
	}
	testdb.ExecMySQL(t, db, "UPDATE "+aside+" SET v = 'bad' WHERE id = 17")
	r, chunks = myChunks(t, ck, 7, nothing)
	differ, _ = mySums(t, r, chunks)
	if len(differ) != 1 || !strings.Contains(differ[2], `key (id=17): column "v" differs: original "v17", shadow "bad"`) {
		t.Fatalf("chunks differ %v, want chunk 2 naming id 17", differ)
	}
	if err := ck.Recopy(ctx, chunks[2:3]); err != nil {
		t.Fatal(err)
	}
	count := func(q string) (n int) {
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count("SELECT COUNT(*) FROM " + aside + " WHERE id = 17"); n != 0 {
		t.Errorf("the recopy left row 17 aside")
	}
	if n := count("SELECT COUNT(*) FROM " + aside + " WHERE id = 3"); n != 1 {
		t.Errorf("the recopy of another chunk took row 3 out of the aside table")
	}
	r, chunks = myChunks(t, ck, 7, nothing)
	if differ, n := mySums(t, r, chunks); len(differ) != 0 || n != 30 {
		t.Errorf("after the recopy: %d rows, chunks differ %v", n, differ)
	}
}
