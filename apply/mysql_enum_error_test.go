package apply_test

import (
	"context"
	"strings"
	"testing"

	"osc/apply"
	"osc/internal/testdb"
	"osc/table"
)

// TestMySQLEnumErrorValue: the ENUM error value (index 0, which a
// non-strict session stores for a text that is no member) goes into an ENUM
// shadow column as index 0, as a plain ALTER keeps it, in a statement among
// rows of members; the session is strict again afterwards. A batch that
// also holds a value the shadow's ENUM lacks fails, as in strict mode.
func TestMySQLEnumErrorValue(t *testing.T) {
	db, cfg := myOpenDB(t)
	const orig, shadow = "applyenum_error", "_applyenum_error_gho"
	testdb.DropMySQLTables(t, db, orig, shadow)
	t.Cleanup(func() { testdb.DropMySQLTables(t, db, orig, shadow, "_"+orig+"_ghc") })
	testdb.ExecMySQL(t, db, "CREATE TABLE "+orig+" (id INT PRIMARY KEY, k ENUM('a', 'b', 'c') NOT NULL, n ENUM('x', 'y') NULL)")
	testdb.ExecMySQL(t, db, "CREATE TABLE "+shadow+" (id INT PRIMARY KEY, k ENUM('c', 'b', 'a', 'd') NOT NULL, n ENUM('y', 'x') NULL)")
	p := myLoadPlan(t, db, orig, shadow)
	src := myStartSource(t, db, cfg, p)
	db.SetMaxOpenConns(1) // one session: the one whose sql_mode is read afterwards
	ctx := context.Background()
	var mode string
	if err := db.QueryRow("SELECT @@SESSION.sql_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	testdb.ExecMySQL(t, db, "SET SESSION sql_mode = ''")
	testdb.ExecMySQL(t, db, "INSERT INTO "+orig+" VALUES (1, 'a', 'x'), (2, 'nope', 'zz'), (3, 'c', NULL), (4, 'b', 'no')")
	testdb.ExecMySQL(t, db, "UPDATE "+orig+" SET k = 'nix' WHERE id = 3")
	testdb.ExecMySQL(t, db, "UPDATE "+orig+" SET id = 7 WHERE id = 2") // a key change: the reverse applier's move
	testdb.ExecMySQL(t, db, "SET SESSION sql_mode = '"+mode+"'")
	if err := src.EmitMarker(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	changes := myReadUntil(t, src, "e1")
	// The forward applier, and the reverse one's upserts and moves.
	for _, a := range []struct {
		name string
		ap   *apply.MySQL
	}{{"applier", apply.NewMySQL(db, p)}, {"reverse applier", apply.NewMySQLRevert(db, p)}} {
		testdb.ExecMySQL(t, db, "DELETE FROM "+shadow)
		if err := a.ap.Apply(ctx, changes); err != nil {
			t.Fatalf("%s: %v", a.name, err)
		}
		rows, err := db.Query("SELECT CONCAT(id, ':', k + 0, ':', COALESCE(n + 0, 'null')) FROM " + shadow + " ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		var all []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			all = append(all, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if want := "1:3:2 3:0:null 4:2:0 7:0:0"; strings.Join(all, " ") != want {
			t.Errorf("%s: shadow rows (id:k index:n index) %q, want %q", a.name, strings.Join(all, " "), want)
		}
		var after string
		if err := db.QueryRow("SELECT @@SESSION.sql_mode").Scan(&after); err != nil {
			t.Fatal(err)
		}
		if after != mode {
			t.Errorf("%s: the session's sql_mode after it is %q, want %q", a.name, after, mode)
		}
	}

	// A member the shadow lacks, next to an error value: strict mode
	// refuses it, and so must the applier.
	testdb.ExecMySQL(t, db, "ALTER TABLE "+shadow+" MODIFY k ENUM('a', 'b') NOT NULL")
	testdb.ExecMySQL(t, db, "DELETE FROM "+shadow)
	p = myLoadPlan(t, db, orig, shadow)
	testdb.ExecMySQL(t, db, "SET SESSION sql_mode = ''")
	testdb.ExecMySQL(t, db, "INSERT INTO "+orig+" VALUES (5, 'c', NULL), (6, 'nope', NULL)")
	testdb.ExecMySQL(t, db, "SET SESSION sql_mode = '"+mode+"'")
	if err := src.EmitMarker(ctx, "e2"); err != nil {
		t.Fatal(err)
	}
	changes = myReadUntil(t, src, "e2")
	err := apply.NewMySQL(db, p).Apply(ctx, changes)
	if err == nil || !strings.Contains(err.Error(), "Data truncated for column 'k'") || !table.MySQLUnfit(err) {
		t.Fatalf("a member the shadow lacks: %v, want the strict session's refusal (table.MySQLUnfit)", err)
	}
	var after string
	if err := db.QueryRow("SELECT @@SESSION.sql_mode").Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != mode {
		t.Errorf("the session's sql_mode after the failed statement is %q, want %q", after, mode)
	}
}
