package table

import (
	"context"
	"reflect"
	"testing"
)

// TestMySQLBinaryMembers: the members of a CHARACTER SET binary ENUM or
// SET, which information_schema shows with a '?' for each byte that is not
// UTF-8, are read exactly, of the original and of the shadow, and in the
// revert window's plan of the tables as they are before the swap; other
// columns' are not read.
func TestMySQLBinaryMembers(t *testing.T) {
	db := testMySQL(t)
	ctx := context.Background()
	setup(t, db, []string{"members_plan"},
		"CREATE TABLE members_plan (id INT NOT NULL PRIMARY KEY, e ENUM('?', 0xFF, 0xFE80, 'a') CHARACTER SET binary NOT NULL, "+
			"s SET(0xC3, '?') CHARACTER SET binary, l ENUM('x', 'y') CHARACTER SET latin1) ENGINE=InnoDB")
	in, err := InspectMySQLTable(ctx, db, testSchema, "members_plan",
		"MODIFY e ENUM(0xFE80, 'a', 0xFF, '?', 0xFD) CHARACTER SET binary NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	p, err := CreateMySQLShadow(ctx, db, in)
	if err != nil {
		t.Fatal(err)
	}
	defer dropMySQLShadow(t, db, p)
	members := func(tbl *Table, name string) []string { return tbl.Columns[tbl.ColumnIndex(name)].Members }
	want := map[string][2][]string{
		"e": {{"?", "\xff", "\xfe\x80", "a"}, {"\xfe\x80", "a", "\xff", "?", "\xfd"}},
		"s": {{"\xc3", "?"}, {"\xc3", "?"}},
		"l": {nil, nil},
	}
	for name, w := range want {
		if got := members(p.Source, name); !reflect.DeepEqual(got, w[0]) {
			t.Errorf("the original's %s: members %q, want %q", name, got, w[0])
		}
		if got := members(p.Shadow, name); !reflect.DeepEqual(got, w[1]) {
			t.Errorf("the shadow's %s: members %q, want %q", name, got, w[1])
		}
	}
	r, err := PlanMySQLRevert(ctx, db, p, in.Alter)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		if got := members(r.Source, name); !reflect.DeepEqual(got, w[1]) {
			t.Errorf("the revert's original's %s: members %q, want %q", name, got, w[1])
		}
		if got := members(r.Shadow, name); !reflect.DeepEqual(got, w[0]) {
			t.Errorf("the revert's old table's %s: members %q, want %q", name, got, w[0])
		}
	}
}
