package localtests

import (
	"context"
	"database/sql"
	"os/exec"
	"testing"
)

// TestPgSequenceGrantorUserSchema: the cut-over grants an identity
// sequence's privilege as its grantor (SET ROLE), under whom the
// search_path's "$user" names the grantor's own schema. A sequence name
// left unqualified there (the table's schema being on osc's search_path)
// named the grantor's same-named sequence: the privilege went to it and the
// new table's sequence lost it, with no error.
func TestPgSequenceGrantorUserSchema(t *testing.T) {
	const ns, grantor, reader = "osc_rev4_grantor_tbl", "osc_rev4_grantor", "osc_rev4_reader"
	bin := requireOsc(t)
	d := pgDialect{dsn: pgDSN()}
	admin := d.connectAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	cleanup := func() {
		for _, q := range []string{"DROP SCHEMA IF EXISTS " + ns + " CASCADE", "DROP SCHEMA IF EXISTS " + grantor + " CASCADE",
			"DROP ROLE IF EXISTS " + reader, "DROP ROLE IF EXISTS " + grantor} {
			if _, err := admin.ExecContext(context.Background(), q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	}
	cleanup()
	t.Cleanup(cleanup)
	for _, q := range []string{
		"CREATE ROLE " + grantor + " NOLOGIN",
		"CREATE ROLE " + reader + " NOLOGIN",
		"CREATE SCHEMA " + ns,
		"GRANT USAGE ON SCHEMA " + ns + " TO " + grantor,
		"CREATE TABLE " + ns + ".t (id int PRIMARY KEY, c int GENERATED ALWAYS AS IDENTITY, b text)",
		"INSERT INTO " + ns + ".t (id, b) SELECT g, 'b' FROM generate_series(1, 100) g",
		"GRANT USAGE, SELECT ON SEQUENCE " + ns + ".t_c_seq TO " + grantor + " WITH GRANT OPTION",
		"SET ROLE " + grantor,
		"GRANT SELECT ON SEQUENCE " + ns + ".t_c_seq TO " + reader,
		"RESET ROLE",
		// The grantor's own schema, "$user" under SET ROLE, with
		// sequences of the names the new table's has.
		"CREATE SCHEMA " + grantor + " AUTHORIZATION " + grantor,
		"CREATE SEQUENCE " + grantor + ".t_c_seq",
		"CREATE SEQUENCE " + grantor + "._t_osc_c_seq",
		"ALTER SEQUENCE " + grantor + ".t_c_seq OWNER TO " + grantor,
		"ALTER SEQUENCE " + grantor + "._t_osc_c_seq OWNER TO " + grantor,
	} {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	acl := func(db *sql.DB, where string) map[string]string {
		rows, err := db.QueryContext(ctx, `SELECT n.nspname || '.' || c.relname, coalesce(c.relacl::text, '') FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND n.nspname IN ($1, $2) `+where, ns, grantor)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]string{}
		for rows.Next() {
			var name, a string
			if err := rows.Scan(&name, &a); err != nil {
				t.Fatal(err)
			}
			out[name] = a
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := acl(admin, "")
	dsn, err := withSearchPath(d.dsn, `"$user", `+ns)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, bin, "--dsn", dsn, "--table", ns+".t", "--alter", "ADD COLUMN n int",
		"--strategy", "copy", "--execute").CombinedOutput()
	if err != nil {
		t.Fatalf("osc: %v\n%s", err, out)
	}
	after := acl(admin, "")
	want := map[string]string{
		ns + ".t_c_seq":           before[ns+".t_c_seq"],
		grantor + ".t_c_seq":      before[grantor+".t_c_seq"],
		grantor + "._t_osc_c_seq": before[grantor+"._t_osc_c_seq"],
	}
	for name, w := range want {
		if after[name] != w {
			t.Errorf("%s: privileges %q after osc, want %q (before: %v)\n%s", name, after[name], w, before, out)
		}
	}
}
