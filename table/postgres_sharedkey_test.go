package table

import (
	"reflect"
	"strings"
	"testing"
)

// TestPostgresSharedKey: an --alter that leaves no key in both tables is
// migrated when a key of the altered table holds an original key's columns
// and the replica identity carries its columns; refused, naming the fix,
// otherwise.
func TestPostgresSharedKey(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE TABLE pkchange_f (id int PRIMARY KEY, tenant int NOT NULL, v int)",
		"ALTER TABLE pkchange_f REPLICA IDENTITY FULL",
		"CREATE TABLE pkchange_c (id int PRIMARY KEY, tenant int NOT NULL, code text NOT NULL UNIQUE)",
		"ALTER TABLE pkchange_c REPLICA IDENTITY FULL",
		"CREATE TABLE pkchange_d (id int PRIMARY KEY, tenant int NOT NULL)",
	)
	for _, tc := range []struct {
		table, alter string
		key, rowKey  []string
		refused      string
	}{
		{table: "pkchange_f", alter: "DROP CONSTRAINT pkchange_f_pkey, ADD PRIMARY KEY (id, tenant)", key: []string{"id"}, rowKey: []string{"id", "tenant"}},
		{table: "pkchange_f", alter: "DROP CONSTRAINT pkchange_f_pkey, ADD PRIMARY KEY (tenant, id); ALTER COLUMN tenant TYPE bigint", key: []string{"id"}, rowKey: []string{"tenant", "id"}},
		{table: "pkchange_f", alter: "RENAME COLUMN tenant TO t2; DROP CONSTRAINT pkchange_f_pkey, ADD PRIMARY KEY (id, t2)", key: []string{"id"}, rowKey: []string{"id", "tenant"}},
		// The unique constraint on code stays a key of both tables.
		{table: "pkchange_c", alter: "DROP CONSTRAINT pkchange_c_pkey, ADD PRIMARY KEY (id, tenant)", key: []string{"code"}},
		// Another unique key of the original becomes part of the new one.
		{table: "pkchange_c", alter: "DROP CONSTRAINT pkchange_c_pkey, DROP CONSTRAINT pkchange_c_code_key, ADD PRIMARY KEY (code, tenant)", key: []string{"code"}, rowKey: []string{"code", "tenant"}},
		// Values that may merge or that a USING computes (refused as a
		// unique key the original does not guarantee), a column that may
		// be NULL in the original.
		{table: "pkchange_f", alter: "DROP CONSTRAINT pkchange_f_pkey, ADD PRIMARY KEY (id, tenant); ALTER COLUMN tenant TYPE smallint",
			refused: "which the original does not guarantee"},
		{table: "pkchange_f", alter: "DROP CONSTRAINT pkchange_f_pkey, ADD PRIMARY KEY (id, tenant); ALTER COLUMN tenant TYPE int USING tenant + 1",
			refused: "which the original does not guarantee"},
		{table: "pkchange_f", alter: "DROP CONSTRAINT pkchange_f_pkey, ADD PRIMARY KEY (id, v)",
			refused: "no key is usable in both tables: osc needs the original's primary key pkchange_f_pkey (id)"},
		// The replica identity (the primary key) does not carry tenant.
		{table: "pkchange_d", alter: "DROP CONSTRAINT pkchange_d_pkey, ADD PRIMARY KEY (id, tenant)",
			refused: `but the original's replica identity (DEFAULT, the primary key (id)) does not carry all of (id, tenant): logical replication would not say which row an UPDATE of them left; ALTER TABLE "pgplan_test"."pkchange_d" REPLICA IDENTITY FULL first`},
	} {
		sh, err := pgShadow(t, pool, tc.table, tc.alter)
		if tc.refused != "" {
			if err == nil || !strings.Contains(err.Error(), tc.refused) {
				t.Errorf("%q: error %v, want one containing %q", tc.alter, err, tc.refused)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.alter, err)
			continue
		}
		p := sh.Plan
		if !reflect.DeepEqual(p.Key, tc.key) || !reflect.DeepEqual(p.RowKey, tc.rowKey) {
			t.Errorf("%q: key %v, row key %v; want %v, %v", tc.alter, p.Key, p.RowKey, tc.key, tc.rowKey)
		}
		key, index := p.Identity()
		for n, i := range index {
			if p.Source.Columns[i].Name != key[n] {
				t.Errorf("%q: row key column %s at %d", tc.alter, key[n], i)
			}
		}
		if tc.rowKey != nil {
			if _, err := PlanPostgresRevert(t.Context(), pool, sh); err == nil || !strings.Contains(err.Error(), "--revert-window: the --alter changes the key") {
				t.Errorf("%q: revert refusal %v", tc.alter, err)
			}
		}
		if err := DropPostgresTable(t.Context(), pool, pgTestSchema, p.Shadow.Name); err != nil {
			t.Fatal(err)
		}
	}
}
