package table

import "testing"

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
