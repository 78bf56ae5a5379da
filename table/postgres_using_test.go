package table

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func TestPgParseUsing(t *testing.T) {
	for _, c := range []struct {
		clause string
		want   string // column=expr;…
	}{
		{"ALTER COLUMN a TYPE integer USING 0", "a=0"},
		{`alter a set data type text using case when b then 'IT WAS TRUE, really' else 'x' end, ALTER "B" TYPE int8 USING "B"::int8 + c`,
			`a=case when b then 'IT WAS TRUE, really' else 'x' end;B="B"::int8 + c`},
		{`ADD COLUMN x int DEFAULT 1, ALTER COLUMN Ab TYPE numeric(10,2) COLLATE "C" USING f(ab, 'x,y') -- a comment, USING x
			, DROP COLUMN z`, "ab=f(ab, 'x,y')"},
		{"ALTER a TYPE text USING $q$a,b$q$ || a /* c, USING */ || E'\\', USING' || $$,$$, ALTER b TYPE int", `a=$q$a,b$q$ || a /* c, USING */ || E'\', USING' || $$,$$`},
		{"ALTER a TYPE int[] USING ARRAY[a, b], ALTER c DROP DEFAULT", "a=ARRAY[a, b]"},
		{"ADD CONSTRAINT p PRIMARY KEY USING INDEX i, ALTER CONSTRAINT f DEFERRABLE", ""},
		{"ALTER COLUMN a TYPE bigint", ""},
		{"ALTER COLUMN a SET DATA TYPE bigint USING a::bigint", "a=a::bigint"},
	} {
		us, err := pgParseUsing(c.clause)
		if err != nil {
			t.Errorf("%s: %v", c.clause, err)
			continue
		}
		var got []string
		for _, u := range us {
			got = append(got, u.Column+"="+u.Text(c.clause))
		}
		if g := strings.Join(got, ";"); g != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.clause, g, c.want)
		}
	}
	for _, bad := range []string{"ALTER CONSTRAINT c USING x", "ALTER COLUMN a SET DEFAULT 1 USING 2", "ALTER a TYPE USING 1"} {
		if _, err := pgParseUsing(bad); err == nil || !strings.Contains(err.Error(), "cannot read the USING") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestPgRewriteUsing(t *testing.T) {
	clause := `ALTER a TYPE int USING t.a + s.t.b + f.t(x) + x::t + "t"."c" + tt.a + T.d + s.t.f(1) + CAST(y AS s.t)`
	us, err := pgParseUsing(clause)
	if err != nil || len(us) != 1 {
		t.Fatal(us, err)
	}
	f := pgRewriteUsing(clause, us[0], "s", "t", "_t_osc")
	if want := `"_t_osc".a + "_t_osc".b + f.t(x) + x::t + "_t_osc"."c" + tt.a + "_t_osc".d + s.t.f(1) + CAST(y AS s.t)`; f.Shadow != want {
		t.Errorf("shadow form\n got %s\nwant %s", f.Shadow, want)
	}
	if want := `"t".a + "t".b + f.t(x) + x::t + "t"."c" + tt.a + "t".d + s.t.f(1) + CAST(y AS s.t)`; f.Eval != want {
		t.Errorf("eval form\n got %s\nwant %s", f.Eval, want)
	}
}

func TestPgUsingIsColumn(t *testing.T) {
	for expr, want := range map[string]bool{
		"a::bigint": true, "(a)::int8": true, "CAST(t.a AS bigint)": true, `"a"::numeric(10, 2)`: true, "a": true, "((a))": true,
		"a::int8 + b": false, "a::int8 is null": false, "b::int8": false, "0": false, "a + 0": false, "t.b": false,
		"CAST(a AS int) + 1": false, "a::text || 'x'": false, "coalesce(a, 0)": false,
	} {
		if got := pgUsingIsColumn(pgLex(expr), "a", "t"); got != want {
			t.Errorf("%s: %v, want %v", expr, got, want)
		}
	}
}

// The --alter's USING values on the shadow: the plan's expression per
// column, the key judged by them, the notes, and the refusals.
func TestCreatePostgresShadowUsing(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE TABLE ut (id int PRIMARY KEY, a int, b boolean, n int UNIQUE, m int, big text, v varchar(5), s text, "+
			"d numeric(21,2), w numeric(22,2), ch char(4), c5 char(5), bt bit(96), vb varbit(97))")
	for _, c := range []struct {
		alter, mapping, key string
	}{
		{"ALTER COLUMN a TYPE integer USING 0", "a=0 []", "id"},
		{"ALTER COLUMN id TYPE bigint USING id::bigint", "id=id::bigint [0]", "id"},
		{"RENAME COLUMN a TO a2; ALTER COLUMN id TYPE bigint USING CAST(ut.id AS int8)", `id=(SELECT (CAST("ut".id AS int8)) FROM (SELECT "id" AS "id") AS "ut") [0]`, "id"},
		{"ALTER COLUMN a TYPE int8 USING ut.a::int8 + pgplan_test.ut.n", `a="ut".a::int8 + "ut".n [1 3]`, "id"},
		// The second clause sees a renamed, and n as numeric.
		{"RENAME COLUMN a TO a2; ALTER m TYPE numeric(10,1); ALTER a2 TYPE text USING a2 || '/' || m / 3",
			`a2=(SELECT (a2 || '/' || m / 3) FROM (SELECT "a" AS "a2", CAST(("m") AS numeric(10,1)) AS "m") AS "ut") [1 4]`, "id"},
		// A type change converts the value the one before stored.
		{"ALTER m TYPE smallint; ALTER m TYPE numeric", `m=CAST(("m") AS smallint) [4]`, "id"},
		// Into a length-limited type as the column stores it: too long fails.
		{"ALTER v TYPE varchar(3); ALTER a TYPE text USING v",
			`a=(SELECT (v) FROM (SELECT (pg_catalog.varcharin(CAST(CAST(("v") AS text) AS cstring), 1043, 7)) COLLATE pg_catalog."default" AS "v") AS "ut") [6]`, "id"},
		{"ALTER s TYPE char(2); ALTER s TYPE text", `s=(pg_catalog.bpcharin(CAST(CAST(("s") AS text) AS cstring), 1042, 6)) COLLATE pg_catalog."default" [7]`, "id"},
		// A clause that changes only the collation: a later USING reads the
		// column with it.
		{`ALTER s TYPE text COLLATE "C"; ALTER a TYPE text USING upper(s)`, `a=(SELECT (upper(s)) FROM (SELECT ("s") COLLATE pg_catalog."C" AS "s") AS "ut") [7]`, "id"},
		// Columns whose values are never stored out of line (at most 20
		// bytes), read beside others.
		{"ALTER COLUMN a TYPE numeric USING a + d", "a=a + d [1 8]", "id"},
		{"ALTER COLUMN a TYPE text USING a::text || ch || bt::text", "a=a::text || ch || bt::text [1 10 12]", "id"},
	} {
		sh, err := pgShadow(t, pool, "ut", c.alter)
		if err != nil {
			t.Errorf("%s: %v", c.alter, err)
			continue
		}
		var got []string
		for _, m := range sh.Plan.Mapping {
			if m.Expr != "" {
				got = append(got, fmt.Sprintf("%s=%s %v", m.Shadow, m.Expr, m.Reads))
			}
		}
		if g := strings.Join(got, ";"); g != c.mapping || strings.Join(sh.Plan.Key, ",") != c.key {
			t.Errorf("%s:\n got %s key %v\nwant %s key %s", c.alter, g, sh.Plan.Key, c.mapping, c.key)
		}
		if !strings.Contains(strings.Join(sh.Plan.Notes, "\n"), "USING") {
			t.Errorf("%s: notes %q", c.alter, sh.Plan.Notes)
		}
		if err := DropPostgresTable(context.Background(), pool, pgTestSchema, sh.Plan.Shadow.Name); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ alter, want string }{
		{"ALTER COLUMN id TYPE bigint USING id + 1", "primary key ut_pkey"},
		{"ALTER COLUMN n TYPE bigint USING n / 2", "unique index ut_n_key"},
		{"ALTER COLUMN a TYPE float8 USING random()", "to the next (random()"},
		{"ALTER COLUMN a TYPE float8 USING extract(epoch from now())", "to the next (now()"},
		{"ALTER COLUMN a TYPE text USING a::text || current_timestamp", "to the next (CURRENT_DATE, CURRENT_TIME, CURRENT_TIMESTAMP"},
		{"ALTER COLUMN a TYPE int USING pg_column_size(s)", "calls pg_column_size(\"any\"), whose value depends on how the value is stored"},
		{"ALTER COLUMN s TYPE text USING coalesce(pg_column_compression(s), '')", "pg_column_compression(\"any\"), whose value depends on how"},
		{"ALTER COLUMN a TYPE int USING pg_backend_pid()", "calls pg_backend_pid(), whose value depends on the session"},
		{"ALTER COLUMN s TYPE text USING s || current_setting('application_name')", "calls current_setting(text), whose value depends on the session"},
		{"ALTER COLUMN s TYPE text USING s || inet_client_addr()::text", "inet_client_addr(), whose value depends on the session"},
		{"ALTER COLUMN s TYPE text USING s || txid_current_snapshot()::text", "txid_current_snapshot(), whose value depends on the session"},
		{"ALTER COLUMN s TYPE text USING s || statement_timestamp()", "to the next (statement_timestamp()"},
		{"ALTER COLUMN s TYPE text USING s || txid_current()", "to the next (txid_current()"},
		{"ALTER COLUMN s TYPE text USING s || big", "can be stored out of line"},
		{"ALTER COLUMN a TYPE numeric USING a + w", "and w can be stored out of line"},
		{"ALTER COLUMN a TYPE text USING a::text || c5", "and c5 can be stored out of line"},
		{"ALTER COLUMN a TYPE text USING a::text || vb::text", "and vb can be stored out of line"},
		{"ALTER COLUMN a TYPE text USING a::text || v", "and v can be stored out of line"},
		{"ALTER COLUMN s TYPE text USING ut::text", "refers to the whole row (ut)"},
		{"ADD COLUMN c int; ALTER a TYPE int USING c", "which an earlier clause of the --alter adds"},
		{"ALTER v TYPE varchar(3)[] USING ARRAY[v]; ALTER v TYPE text", "an array of a length-limited type, or a domain over one"},
		{"ALTER COLUMN a TYPE bigint USING nosuch", `column "nosuch" does not exist`},
	} {
		_, err := pgShadow(t, pool, "ut", c.alter)
		wantErr(t, err, c.want)
		if pgTestExists(t, pool, "_ut_osc") || pgTestExists(t, pool, "_ut_osc_using") {
			t.Fatalf("%s: left behind", c.alter)
		}
	}
}
