package localtests

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// revertAlter drops z, which the writers never write (its values must come
// back with the revert, moved with their rows by the writers' key changes),
// and adds a column (gone again after the revert); revertAlterPG is it on
// PostgreSQL.
const (
	revertAlter   = "DROP COLUMN z, ADD COLUMN extra INT NULL DEFAULT 5, ENGINE=InnoDB"
	revertAlterPG = "DROP COLUMN z, ADD COLUMN extra int DEFAULT 5"
)

// TestRevert runs osc with --revert-window under the resume cases'
// full-speed writers (inserts, updates, key changes, deletes on t and on the
// control table alike; on MySQL the table has a long unique key, whose
// hidden hash column the binlog's rows carry), lets them write into the
// migrated table, reverts
// with osc ctl, and lets them write on: t must then equal the control table,
// which was never migrated, row by row (z included) and in its definition,
// and nothing osc made may be left.
func TestRevert(t *testing.T) {
	for _, rt := range resumeTargets() {
		_, pg := rt.d.(pgDialect)
		t.Run(rt.d.dir(), func(t *testing.T) {
			t.Parallel()
			e := newResumeEnv(t, rt, "osct_revert")
			for _, tbl := range []string{"t", controlTable} {
				qs := []string{"ALTER TABLE " + tbl + " ADD COLUMN z INT NULL", "UPDATE " + tbl + " SET z = id * 3 WHERE id % 4 <> 0"}
				if !pg {
					// A long unique key (MariaDB): the altered table's
					// binlog rows, which the window reads, carry its
					// hidden hash column.
					qs = append(qs, "ALTER TABLE "+tbl+" ADD COLUMN h TEXT NULL, ADD UNIQUE KEY h (h)")
				}
				for _, q := range qs {
					if _, err := e.db.ExecContext(e.ctx, q); err != nil {
						t.Fatal(err)
					}
				}
			}
			e.startLoad()
			alter := revertAlter
			if pg {
				alter = revertAlterPG
			}
			p := e.start(e.args(alter, "--revert-window", "3m", "--ok-to-drop-table"))
			if err := p.waitOutput("revert window open", resumeReach); err != nil {
				t.Fatal(err)
			}
			// At least a second of writes in the window, and at least 50
			// of them, however slowly a busy machine runs the writers.
			before := e.load.committed.Load()
			time.Sleep(time.Second)
			for limit := time.Now().Add(resumeReach); e.load.committed.Load()-before < 50; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(limit) {
					t.Fatalf("only %d writer transactions during the window in %v", e.load.committed.Load()-before, resumeReach)
				}
			}
			ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, e.bin, "ctl", "--socket", e.sock, "revert").CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "Reverted") {
				t.Fatalf("osc ctl revert: %v: %s", err, out)
			}
			e.succeed(p, "the reverted run")
			e.finish()
			if got, want := e.createTable("t"), e.createTable(controlTable); got != want {
				t.Errorf("the reverted table's definition differs from the original's:\n%s\nwant\n%s", got, want)
			}
			e.expectObjects("after the revert")
		})
	}
}

var autoIncrementClause = regexp.MustCompile(` AUTO_INCREMENT=\d+`)

// createTable is the table's SHOW CREATE TABLE, under the name x
// (PostgreSQL: its columns, indexes and constraints, pgDefinition).
func (e *resumeEnv) createTable(name string) string {
	e.t.Helper()
	if _, ok := e.d.(pgDialect); ok {
		return e.pgDefinition(name)
	}
	var n, ddl string
	if err := e.db.QueryRowContext(e.ctx, "SHOW CREATE TABLE "+e.d.quote(name)).Scan(&n, &ddl); err != nil {
		e.t.Fatal(err)
	}
	return autoIncrementClause.ReplaceAllString(strings.Replace(ddl, e.d.quote(name), "`x`", 1), "")
}

// pgDefinition is the PostgreSQL table's columns, indexes and constraints,
// its name (also where it starts an index's or a constraint's) written x.
func (e *resumeEnv) pgDefinition(name string) string {
	e.t.Helper()
	var def string
	err := e.db.QueryRowContext(e.ctx, `SELECT concat_ws(E'\n',
		(SELECT string_agg(format('%s %s %s %s', attname, format_type(atttypid, atttypmod), attnotnull,
			pg_get_expr(d.adbin, d.adrelid)), E'\n' ORDER BY attnum)
		 FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		 WHERE a.attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped),
		(SELECT string_agg(pg_get_indexdef(indexrelid), E'\n' ORDER BY pg_get_indexdef(indexrelid)) FROM pg_index WHERE indrelid = $1::regclass),
		(SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), E'\n' ORDER BY conname) FROM pg_constraint WHERE conrelid = $1::regclass))`,
		e.d.quote(e.ns)+"."+e.d.quote(name)).Scan(&def)
	if err != nil {
		e.t.Fatal(err)
	}
	def = strings.ReplaceAll(def, "."+name+" ", ".x ")
	return regexp.MustCompile(`(?m)(INDEX |^)`+regexp.QuoteMeta(name)+`_`).ReplaceAllString(def, "${1}x_")
}
