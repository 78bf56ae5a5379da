package table

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func TestMySQLTruncatedColumn(t *testing.T) {
	for _, c := range []struct {
		w    mysqlWarning
		name string
		ok   bool
	}{
		{mysqlWarning{"Note", 1265, "Data truncated for column 'g' at row 3"}, "g", true},
		{mysqlWarning{"Note", 1265, "Data truncated for column 'it's' at row 12"}, "it's", true},
		{mysqlWarning{"Warning", 1264, "Out of range value for column 'g' at row 1"}, "", false},
		{mysqlWarning{"Note", 1265, "Data truncated for column 'g'"}, "", false},
	} {
		name, ok := mysqlTruncatedColumn(c.w)
		if name != c.name || ok != c.ok {
			t.Errorf("%q: got %q %v, want %q %v", c.w.message, name, ok, c.name, c.ok)
		}
	}
}

func TestMySQLShortenedVarchar(t *testing.T) {
	v20 := Column{Name: "g", DataType: "varchar", ColumnType: "varchar(20)", Charset: "utf8mb4", Collation: "utf8mb4_general_ci"}
	for _, c := range []struct {
		dst  Column
		n    int
		want bool
	}{
		{Column{DataType: "varchar", ColumnType: "varchar(3)", Charset: "utf8mb4", Collation: "utf8mb4_general_ci"}, 3, true},
		{Column{DataType: "varchar", ColumnType: "varchar(20)", Charset: "utf8mb4", Collation: "utf8mb4_general_ci"}, 0, false},
		{Column{DataType: "varchar", ColumnType: "varchar(30)", Charset: "utf8mb4", Collation: "utf8mb4_general_ci"}, 0, false},
		{Column{DataType: "varchar", ColumnType: "varchar(3)", Charset: "utf8mb4", Collation: "utf8mb4_bin"}, 0, false},
		{Column{DataType: "varchar", ColumnType: "varchar(3)", Charset: "latin1", Collation: "latin1_swedish_ci"}, 0, false},
		{Column{DataType: "char", ColumnType: "char(3)", Charset: "utf8mb4", Collation: "utf8mb4_general_ci"}, 0, false},
	} {
		n, ok := MySQLShortenedVarchar(v20, c.dst)
		if n != c.n || ok != c.want {
			t.Errorf("varchar(20) into %s %s: got %d %v, want %d %v", c.dst.ColumnType, c.dst.Collation, n, ok, c.n, c.want)
		}
	}
}

// TestMySQLCutNoted: the applier's check fails on a note that a shortened
// VARCHAR's whitespace was cut, passes another column's note, and fails
// when the server kept fewer notes than the statement left.
func TestMySQLCutNoted(t *testing.T) {
	db := testMySQL(t)
	setup(t, db, []string{"cut_noted"}, "CREATE TABLE cut_noted (id INT PRIMARY KEY, s VARCHAR(2), d DECIMAL(5,1))")
	ctx := context.Background()
	for _, c := range []struct {
		name, insert string
		maxErrors    int
		want         string
	}{
		{"cut", "INSERT INTO cut_noted VALUES (1, 'ab  ', 1)", 64, "column `s`: a change written while osc ran gives it a value longer than the new VARCHAR(2)"},
		{"another column", "INSERT INTO cut_noted VALUES (1, 'ab', 1.25)", 64, ""},
		{"no note", "INSERT INTO cut_noted VALUES (1, 'ab', 1)", 64, ""},
		{"hidden", "INSERT INTO cut_noted VALUES (1, 'ab', 1.25), (2, 'ab  ', 1)", 1, "of which the server kept 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for _, q := range []string{"DELETE FROM cut_noted", fmt.Sprintf("SET SESSION max_error_count = %d", c.maxErrors), c.insert} {
				if _, err := conn.ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			err = MySQLCutNoted(ctx, conn, map[string]int{"s": 2})
			switch {
			case c.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
			if _, err := conn.ExecContext(ctx, "SET SESSION max_error_count = DEFAULT"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
