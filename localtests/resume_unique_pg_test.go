package localtests

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestResumeNewUniquePostgres: the PostgreSQL TestResumeNewUniqueMySQL. A
// run adding a unique key is killed in its copy, the resumed run at a random
// point, and the last resume migrates the table (README, "Why nothing is
// lost", steps 5 and 12): the table must end equal to its control table.
// Then (aside) a run is killed while a row waits in the table of rows set
// aside: the test gives row 2100000002 row 2100000001's value while the
// cut-over is postponed (the applier sets row 2100000001 aside), gives it a
// value of its own again, and kills osc once the applier has set the row
// aside (nothing moves it back before the cut-over). The resumed run must
// take the table of rows set aside up as it is and move the row back.
func TestResumeNewUniquePostgres(t *testing.T) {
	for _, rt := range resumeTargets() {
		if _, ok := rt.d.(pgDialect); !ok {
			continue
		}
		// unique_new's PostgreSQL table: the original does not keep u
		// unique, the --alter adds the key.
		rt.v.create = strings.Replace(pgUniqueMovesCreate, ", CONSTRAINT t_u UNIQUE (u)", "", 1)
		rt.v.alter = "ADD CONSTRAINT t_u UNIQUE (u), ADD COLUMN extra int"
		rt.v.unique = "u"
		t.Run("random", func(t *testing.T) {
			newResumeEnv(t, rt, "osct_resume_uniq").killAndResume([]killPoint{killCopy, killAny})
		})
		t.Run("aside", func(t *testing.T) {
			e := newResumeEnv(t, rt, "osct_resume_uniq_aside")
			e.startLoad()
			both := func(stmt string) {
				for _, tbl := range []string{"t", controlTable} {
					if _, err := e.db.ExecContext(e.ctx, strings.ReplaceAll(stmt, "{t}", tbl)); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Two rows no writer touches: the writers read their keys
			// when they started, and pick new ones near those, with
			// values of their own.
			both("INSERT INTO {t} VALUES (2100000001, 1, 'a', NULL, 'osc-a'), (2100000002, 2, 'b', NULL, 'osc-b')")
			args := e.args(rt.v.alter, "--ok-to-drop-table")
			if err := os.WriteFile(e.flag, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			p := e.start(slices.Concat(args, []string{"--postpone-cut-over-flag-file", e.flag}))
			if err := p.waitOutput(postponedMarker, resumeReach); err != nil {
				t.Fatal(err)
			}
			aside := func() int {
				var n int
				if err := e.db.QueryRowContext(e.ctx, "SELECT count(*) FROM _t_osd WHERE id = 2100000001").Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			both("UPDATE {t} SET u = 'osc-a' WHERE id = 2100000002")
			for deadline := time.Now().Add(resumeReach); aside() == 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the applier did not set row 2100000001 aside")
				}
			}
			both("UPDATE {t} SET u = 'osc-b2' WHERE id = 2100000002")
			time.Sleep(e.randDuration(500 * time.Millisecond))
			if err := p.kill(); err != nil {
				t.Fatal(err)
			}
			if aside() != 1 {
				t.Fatal("row 2100000001 was no longer aside when osc was killed")
			}
			if err := os.Remove(e.flag); err != nil {
				t.Fatal(err)
			}
			e.succeed(e.start(slices.Concat(args, []string{"--resume"})), "the resume")
			e.finish()
			e.expectObjects("after the resume")
		})
	}
}
