package localtests

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

func (pgDialect) casesFile() string { return "postgres.cases" }

// plainAlter: a PostgreSQL --alter may hold several ALTER TABLE statements'
// clauses separated by ";" (osc accepts that, for RENAME and for type
// changes in sequence); each part is one ALTER TABLE t, as a DBA would run
// them. The split honours single quotes, which is all the cases need.
func (pgDialect) plainAlter(alter string) []string {
	var stmts []string
	quoted, start := false, 0
	for i := 0; i <= len(alter); i++ {
		if i < len(alter) && alter[i] == '\'' {
			quoted = !quoted
		}
		if i == len(alter) || alter[i] == ';' && !quoted {
			if part := strings.TrimSpace(alter[start:i]); part != "" {
				stmts = append(stmts, "ALTER TABLE t "+part)
			}
			start = i + 1
		}
	}
	return stmts
}

func (pgDialect) sessionInfo(ctx context.Context, db *sql.DB) (string, error) {
	var tz, style string
	if err := db.QueryRowContext(ctx, "SELECT current_setting('TimeZone'), current_setting('DateStyle')").Scan(&tz, &style); err != nil {
		return "", fmt.Errorf("session settings: %w", err)
	}
	return fmt.Sprintf("TimeZone %s, DateStyle %s", tz, style), nil
}

func (d pgDialect) oscSessionArgs(ns string) ([]string, error) {
	dsn, err := withSearchPath(d.dsn, ns)
	if err != nil {
		return nil, err
	}
	return []string{"--dsn", dsn, "--table", ns + ".t"}, nil
}

// pgCatalog describes what pg_dump shows only in part, or not at all: the
// state of sequences, the validity flags of indexes and constraints, index
// columns' statistics targets. $1 is the schema.
var pgCatalog = []struct{ name, query string }{
	// acl: NULL stands for the owner's default privileges (a sequence's are
	// not a table's), which a table or sequence that osc created and granted
	// them to spells out; both grant the same.
	{"relations", `SELECT c.relname, c.relkind, c.relpersistence, c.relreplident, c.reloptions,
			tc.reloptions AS toast_options, coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner)) AS acl,
			pg_get_userbyid(c.relowner) AS owner,
			c.relrowsecurity, c.relforcerowsecurity, obj_description(c.oid, 'pg_class') AS comment
		FROM pg_class c LEFT JOIN pg_class tc ON tc.oid = c.reltoastrelid
		WHERE c.relnamespace = $1::regnamespace ORDER BY c.relname`},
	// position is the column's rank among the live ones, not attnum: a plain
	// DROP COLUMN leaves a gap in attnum that a rebuilt table has not, and
	// nobody sees it (pg_dump and SELECT * skip dropped columns).
	// atthasmissing is left out for the same reason: a plain ADD COLUMN with a
	// constant default stores the value once in the catalog, a copy in every
	// row; the rows' values are compared. So is the pg_attver option
	// (PostgreSQL 15.20 on): the server stamps each column with the WAL
	// position it was made at, which no statement sets, and which pg_dump
	// leaves out; a rebuilt table's columns are newer.
	{"columns", `SELECT c.relname, a.attname,
			row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) AS position,
			format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS default,
			a.attidentity, a.attgenerated, a.attstattarget, a.attstorage, a.attcompression, co.collname,
			(SELECT array_agg(o) FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg\_attver=%') AS attoptions,
			a.attacl, col_description(c.oid, a.attnum) AS comment
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		LEFT JOIN pg_collation co ON co.oid = a.attcollation
		WHERE c.relnamespace = $1::regnamespace AND c.relkind <> 'S' AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY c.relname, a.attnum`},
	{"constraints", `SELECT c.relname, con.conname, pg_get_constraintdef(con.oid) AS def, con.convalidated,
			con.condeferrable, con.condeferred, con.conislocal, con.connoinherit,
			con.conindid::regclass::text AS index, obj_description(con.oid, 'pg_constraint') AS comment
		FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
		WHERE c.relnamespace = $1::regnamespace ORDER BY c.relname, con.conname`},
	{"indexes", `SELECT i.indexrelid::regclass::text AS index, pg_get_indexdef(i.indexrelid) AS def, i.indisprimary,
			i.indisunique, i.indisclustered, i.indisreplident, i.indisvalid, i.indisready, i.indislive, i.indimmediate
		FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
		WHERE c.relnamespace = $1::regnamespace ORDER BY 1`},
	{"statistics objects", `SELECT s.stxname, pg_get_statisticsobjdef(s.oid) AS def, s.stxstattarget,
			obj_description(s.oid, 'pg_statistic_ext') AS comment
		FROM pg_statistic_ext s WHERE s.stxnamespace = $1::regnamespace ORDER BY 1`},
	{"sequences", `SELECT s.sequencename, s.data_type, s.start_value, s.min_value, s.max_value, s.increment_by,
			s.cycle, s.cache_size, s.last_value,
			(SELECT string_agg(format('%s.%s (%s)', rc.relname, a.attname, d.deptype), ', ')
			 FROM pg_depend d JOIN pg_class rc ON rc.oid = d.refobjid
			 JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
			 WHERE d.classid = 'pg_class'::regclass AND d.objid = format('%I.%I', s.schemaname, s.sequencename)::regclass
			   AND d.deptype IN ('a', 'i')) AS owned_by
		FROM pg_sequences s WHERE s.schemaname = $1 ORDER BY 1`},
	{"triggers, rules, policies", `SELECT pg_get_triggerdef(g.oid) AS def FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
			WHERE c.relnamespace = $1::text::regnamespace AND NOT g.tgisinternal
		UNION ALL SELECT definition FROM pg_rules WHERE schemaname = $1::text
		UNION ALL SELECT format('policy %s on %s: %s %s %s', policyname, tablename, cmd, qual, with_check)
			FROM pg_policies WHERE schemaname = $1::text
		ORDER BY 1`},
}

// state: pg_dump --schema-only of the schema, the catalog queries above, and
// every row of every table as its row's text (each type's output function,
// in the session's TimeZone and DateStyle).
func (d pgDialect) state(ctx context.Context, db *sql.DB, ns string) ([]section, error) {
	out, err := exec.CommandContext(ctx, "pg_dump", "--schema-only", "--schema="+ns, "--dbname="+d.dsn).Output()
	if err != nil {
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("pg_dump --schema %s: %w", ns, err)
	}
	var dump []string
	for _, l := range strings.Split(string(out), "\n") {
		// \restrict and \unrestrict (pg_dump 15.14 and later) carry a random
		// key, new for every dump.
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, `\restrict `) && !strings.HasPrefix(l, `\unrestrict `) {
			dump = append(dump, l)
		}
	}
	sections := []section{{"pg_dump --schema-only", dump}}
	for _, q := range pgCatalog {
		ls, err := queryLines(ctx, db, q.query, ns)
		if err != nil {
			return nil, fmt.Errorf("%s of %s: %w", q.name, ns, err)
		}
		sections = append(sections, section{q.name, ls})
	}
	tables, err := queryStrings(ctx, db, `SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace
		AND relkind IN ('r', 'p', 'm') ORDER BY 1`, ns)
	if err != nil {
		return nil, err
	}
	for _, tbl := range tables {
		rows, err := queryStrings(ctx, db, fmt.Sprintf("SELECT x::text FROM %s.%s AS x", d.quote(ns), d.quote(tbl)))
		if err != nil {
			return nil, err
		}
		slices.Sort(rows) // by bytes, whatever the collation
		sections = append(sections, section{"rows of " + tbl, rows})
	}
	return sections, nil
}

// queryStrings returns the first column of q's rows.
func queryStrings(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", abbreviate(q, 100), err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s sql.NullString
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		if s.Valid {
			out = append(out, s.String)
		} else {
			out = append(out, "NULL")
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", abbreviate(q, 100), err)
	}
	return out, nil
}
