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
	labels := []PostgresEnumLabel{{OID: 10, Type: "mood", Label: "sad", Order: 1, XMin: 700}, {OID: 12, Type: "mood", Label: "it's ok", Order: 2, XMin: 700},
		{OID: 20, Type: "s.color", Label: "red", Order: 1, XMin: 800}}
	same := func(l string, order float32, xmin uint32) pgEnumValue {
		return pgEnumValue{label: l, order: order, xmin: xmin}
	}
	for _, c := range []struct {
		name   string
		labels []PostgresEnumLabel // labels when nil
		now    map[uint32]pgEnumValue
		want   []string // none: no error
	}{
		{name: "same", now: map[uint32]pgEnumValue{10: same("sad", 1, 700), 12: same("it's ok", 2, 700), 20: same("red", 1, 800)}},
		{name: "values added", now: map[uint32]pgEnumValue{10: same("sad", 1, 700), 11: same("meh", 1.5, 900), 12: same("it's ok", 2, 700), 20: same("red", 1, 800), 21: same("blue", 2, 900)}},
		{name: "renumbered", now: map[uint32]pgEnumValue{10: same("sad", 1, 700), 11: same("meh", 2, 900), 12: same("it's ok", 3, 900), 20: same("red", 1, 800)}},
		{name: "renamed", now: map[uint32]pgEnumValue{10: same("blue", 1, 900), 12: same("it's ok", 2, 700), 20: same("red", 1, 800)}, want: []string{"mood value 'sad' renamed to 'blue'", "run osc again"}},
		{name: "quoted", now: map[uint32]pgEnumValue{10: same("sad", 1, 700), 12: same("fine", 2, 900), 20: same("red", 1, 800)}, want: []string{"mood value 'it''s ok' renamed to 'fine'"}},
		{name: "type gone", now: map[uint32]pgEnumValue{10: same("sad", 1, 700), 12: same("it's ok", 2, 700)}, want: []string{"s.color value 'red' is gone"}},
		{name: "renamed back", now: map[uint32]pgEnumValue{10: same("sad", 1, 950), 12: same("it's ok", 2, 700), 20: same("red", 1, 800)}, want: []string{"mood value 'sad' renamed and renamed back"}},
		{name: "checkpoint without xmin", labels: []PostgresEnumLabel{{OID: 10, Type: "mood", Label: "sad"}}, now: map[uint32]pgEnumValue{10: same("sad", 1, 950)}},
	} {
		l := labels
		if c.labels != nil {
			l = c.labels
		}
		err := pgEnumLabelChanges(l, c.now)
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
	testdb.ExecPostgres(t, pool, q("ALTER TYPE S.e3 RENAME VALUE 'z3' TO 'a3'"))
	if err := CheckPostgresEnumLabels(ctx, pool, labels); err == nil || !strings.Contains(err.Error(), q("S.e3 value 'a3' renamed and renamed back")) {
		t.Errorf("value renamed back: %v", err)
	}
}
