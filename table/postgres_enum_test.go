package table

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/internal/testdb"
)

func TestPgEnumLabelChanges(t *testing.T) {
	labels := []PostgresEnumLabel{{OID: 10, Type: "mood", Label: "sad"}, {OID: 12, Type: "mood", Label: "it's ok"}, {OID: 20, Type: "s.color", Label: "red"}}
	for _, c := range []struct {
		name string
		now  map[uint32]string
		want []string // none: no error
	}{
		{name: "same", now: map[uint32]string{10: "sad", 12: "it's ok", 20: "red"}},
		{name: "values added", now: map[uint32]string{10: "sad", 11: "meh", 12: "it's ok", 20: "red", 21: "blue"}},
		{name: "renamed", now: map[uint32]string{10: "blue", 12: "it's ok", 20: "red"}, want: []string{"mood value 'sad' renamed to 'blue'", "run osc again"}},
		{name: "quoted", now: map[uint32]string{10: "sad", 12: "fine", 20: "red"}, want: []string{"mood value 'it''s ok' renamed to 'fine'"}},
		{name: "type gone", now: map[uint32]string{10: "sad", 12: "it's ok"}, want: []string{"s.color value 'red' is gone"}},
	} {
		err := pgEnumLabelChanges(labels, c.now)
		if len(c.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want %q", c.name, err, w)
			}
		}
	}
}

// TestPostgresEnumLabels: the enum values of a table's columns are found
// through arrays, domains, ranges and composite types, and only a rename
// (not values added before the others) fails the check.
func TestPostgresEnumLabels(t *testing.T) {
	const schema = "h8_enum_labels"
	pool := testdb.Connect(t, "PostgreSQL", func(ctx context.Context) (*pgxpool.Pool, error) {
		return OpenPostgres(ctx, testdb.PostgresDSN())
	})
	t.Cleanup(pool.Close)
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Error(err)
		}
	}
	drop()
	t.Cleanup(drop)
	q := func(s string) string { return strings.ReplaceAll(s, "S.", schema+".") }
	testdb.ExecPostgres(t, pool, "CREATE SCHEMA "+schema,
		q("CREATE TYPE S.e1 AS ENUM ('a1')"), q("CREATE TYPE S.e2 AS ENUM ('a2')"), q("CREATE TYPE S.e3 AS ENUM ('a3')"),
		q("CREATE TYPE S.e4 AS ENUM ('a4')"), q("CREATE TYPE S.unused AS ENUM ('x')"),
		q("CREATE DOMAIN S.d2 AS S.e2[]"), q("CREATE TYPE S.r3 AS RANGE (subtype = S.e3)"), q("CREATE TYPE S.c4 AS (x int, y S.e4)"),
		q("CREATE TABLE S.t (id int, a S.e1, b S.d2, c S.r3, d S.c4[])"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	labels, err := ReadPostgresEnumLabels(ctx, pool, q("S.t"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range labels {
		got = append(got, l.Type+" "+l.Label)
	}
	if want := q("S.e1 a1, S.e2 a2, S.e3 a3, S.e4 a4"); strings.Join(got, ", ") != want {
		t.Errorf("enum values %v, want %s", got, want)
	}
	for i := range 60 {
		testdb.ExecPostgres(t, pool, q(fmt.Sprintf("ALTER TYPE S.e1 ADD VALUE 'b%d' BEFORE 'a1'", i)))
	}
	if err := CheckPostgresEnumLabels(ctx, pool, labels); err != nil {
		t.Errorf("values added: %v", err)
	}
	testdb.ExecPostgres(t, pool, q("ALTER TYPE S.e3 RENAME VALUE 'a3' TO 'z3'"))
	if err := CheckPostgresEnumLabels(ctx, pool, labels); err == nil || !strings.Contains(err.Error(), q("S.e3 value 'a3' renamed to 'z3'")) {
		t.Errorf("value renamed: %v", err)
	}
}
