package table

import (
	"context"
	"database/sql"
	"reflect"
	"strings"
	"testing"
)

// TestMySQLSharedKey: an --alter that leaves no key in both tables is
// migrated when a key of the altered table holds an original key's columns
// (the copy reads by the original's key, rows of the shadow are told apart
// by the wider key), and refused, naming the fix, otherwise.
func TestMySQLSharedKey(t *testing.T) {
	db := testMySQL(t)
	ctx := context.Background()
	setup(t, db, []string{"pkchange_plan", "pkchange_plan2"},
		"CREATE TABLE pkchange_plan (id INT NOT NULL PRIMARY KEY, tenant INT NOT NULL, v INT) ENGINE=InnoDB",
		`CREATE TABLE pkchange_plan2 (id INT NOT NULL PRIMARY KEY, tenant INT NOT NULL,
		code VARCHAR(20) NOT NULL, UNIQUE KEY u_code (code)) ENGINE=InnoDB`)
	for _, tc := range []struct {
		name, alter  string
		key, rowKey  []string
		refused      string
		keyIndexName string
	}{
		{alter: "DROP PRIMARY KEY, ADD PRIMARY KEY (id, tenant)", key: []string{"id"}, rowKey: []string{"id", "tenant"}, keyIndexName: "PRIMARY"},
		{alter: "DROP PRIMARY KEY, ADD PRIMARY KEY (tenant, id), MODIFY tenant BIGINT NOT NULL", key: []string{"id"}, rowKey: []string{"tenant", "id"}, keyIndexName: "PRIMARY"},
		// The unique key on code is kept: it is a key of both tables.
		{name: "pkchange_plan2", alter: "DROP PRIMARY KEY, ADD PRIMARY KEY (tenant, code)", key: []string{"code"}, keyIndexName: "u_code"},
		// Another unique key of the original becomes part of the new one.
		{name: "pkchange_plan2", alter: "DROP PRIMARY KEY, DROP INDEX u_code, ADD PRIMARY KEY (code, tenant)", key: []string{"code"}, rowKey: []string{"code", "tenant"}, keyIndexName: "u_code"},
		{alter: "RENAME COLUMN tenant TO t2, DROP PRIMARY KEY, ADD PRIMARY KEY (id, t2)", key: []string{"id"}, rowKey: []string{"id", "tenant"}, keyIndexName: "PRIMARY"},
		// v may be NULL in the original.
		{alter: "DROP PRIMARY KEY, ADD PRIMARY KEY (id, v)", refused: "no key is usable in both tables: osc needs the original's PRIMARY (id)"},
		// Values that may merge: a type that rounds (16777217 becomes
		// 16777216). A narrower integer fails on a value out of range.
		{alter: "DROP PRIMARY KEY, ADD PRIMARY KEY (id, tenant), MODIFY tenant FLOAT NOT NULL", refused: "keep an old key as a UNIQUE key in the --alter (for example ADD UNIQUE (`id`))"},
		// A prefix of a column.
		{name: "pkchange_plan2", alter: "DROP PRIMARY KEY, DROP INDEX u_code, ADD PRIMARY KEY (code(5), id)", refused: "no key is usable in both tables"},
	} {
		name := tc.name
		if name == "" {
			name = "pkchange_plan"
		}
		in, err := InspectMySQLTable(ctx, db, testSchema, name, tc.alter)
		if err != nil {
			t.Fatal(err)
		}
		p, err := CreateMySQLShadow(ctx, db, in)
		if tc.refused != "" {
			if err == nil || !strings.Contains(err.Error(), tc.refused) {
				t.Errorf("%q: error %v, want one containing %q", tc.alter, err, tc.refused)
			}
			if err == nil {
				dropMySQLShadow(t, db, p)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.alter, err)
			continue
		}
		if !reflect.DeepEqual(p.Key, tc.key) || !reflect.DeepEqual(p.RowKey, tc.rowKey) || p.KeyIndexName != tc.keyIndexName {
			t.Errorf("%q: key %v (%s), row key %v; want %v (%s), %v", tc.alter, p.Key, p.KeyIndexName, p.RowKey, tc.key, tc.keyIndexName, tc.rowKey)
		}
		key, index := p.Identity()
		for n, i := range index {
			if p.Source.Columns[i].Name != key[n] {
				t.Errorf("%q: row key column %s at %d", tc.alter, key[n], i)
			}
		}
		if tc.rowKey != nil {
			if err := p.RowKeyRevertRefusal(); err == nil || !strings.Contains(err.Error(), "--revert-window: the --alter changes the key") {
				t.Errorf("%q: revert refusal %v", tc.alter, err)
			}
			if !strings.Contains(strings.Join(p.Notes, "\n"), "rows of the altered table identified by ("+strings.Join(tc.rowKey, ", ")+")") {
				t.Errorf("%q: notes %v", tc.alter, p.Notes)
			}
		}
		dropMySQLShadow(t, db, p)
	}
}

// dropMySQLShadow drops the shadow and changelog tables a plan made.
func dropMySQLShadow(t *testing.T, db *sql.DB, p *Plan) {
	t.Helper()
	for _, n := range []string{p.Shadow.Name, p.ChangelogName} {
		if n == "" {
			continue
		}
		if err := DropMySQLTable(context.Background(), db, testSchema, n); err != nil {
			t.Error(err)
		}
	}
}
