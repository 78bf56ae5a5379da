package localtests

import (
	"os"
	"slices"
	"testing"
)

// TestResumeAddedDefault: a plain ALTER that adds a column with DEFAULT now()
// next to a type change that rewrites the table gives every existing row one
// value; osc keeps it in its bookkeeping table (table/postgres_added.go), so
// that a resumed run writes the value the killed run wrote. osc is killed in
// its copy under full-speed writers and resumed; the writers stop while the
// resumed run postpones its cut-over, so every row of the migrated table
// existed before it and must hold the one value.
func TestResumeAddedDefault(t *testing.T) {
	for _, rt := range resumeTargets() {
		if _, ok := rt.d.(pgDialect); !ok {
			continue
		}
		rt.v.alter = "ADD COLUMN at timestamptz DEFAULT now(), ALTER COLUMN n TYPE bigint"
		t.Run(rt.d.dir(), func(t *testing.T) {
			e := newResumeEnv(t, rt, "osct_resume_default")
			e.startLoad()
			args := e.args(rt.v.alter, "--ok-to-drop-table")
			if e.killedRun(args, killCopy) {
				t.Fatal("the run finished before it was killed in its copy")
			}
			if err := os.WriteFile(e.flag, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			p := e.start(slices.Concat(args, []string{"--resume", "--postpone-cut-over-flag-file", e.flag}))
			if err := p.waitOutput(postponedMarker, resumeReach); err != nil {
				t.Fatal(err)
			}
			for _, we := range e.load.stop() {
				t.Errorf("writer error: %v", we.err)
			}
			if err := os.Remove(e.flag); err != nil {
				t.Fatal(err)
			}
			e.succeed(p, "the resume")
			e.finish()
			e.expectObjects("after the resume")
			var values, nulls, rows int
			if err := e.db.QueryRowContext(e.ctx, "SELECT count(DISTINCT at), count(*) FILTER (WHERE at IS NULL), count(*) FROM t").Scan(&values, &nulls, &rows); err != nil {
				t.Fatal(err)
			}
			if values != 1 || nulls != 0 {
				t.Errorf("the added column holds %d distinct values and %d NULLs in %d rows; want one value in every row, as the plain ALTER gives", values, nulls, rows)
			}
		})
	}
}
