package localtests

import (
	"strings"
	"testing"
)

// TestResumeAsidePostgres: PostgreSQL's unique_new table (the --alter
// adds a unique key; the writer moves values between rows) migrated by a
// run killed in its copy, whose resumed run is killed at a random point
// and resumed again: each resume takes up the table of rows set aside
// (_<t>_osd) as the killed run left it (README, "Why nothing is lost",
// steps 5 and 11), and the table must end equal to its control table.
func TestResumeAsidePostgres(t *testing.T) {
	for _, rt := range resumeTargets() {
		if _, ok := rt.d.(pgDialect); !ok {
			continue
		}
		t.Run(rt.d.dir(), func(t *testing.T) {
			rt.v.create = strings.Replace(pgUniqueMovesCreate, ", CONSTRAINT t_u UNIQUE (u)", "", 1)
			rt.v.alter = "ADD CONSTRAINT t_u UNIQUE (u), ADD COLUMN extra int"
			rt.v.unique = "u"
			newResumeEnv(t, rt, "osct_rsm_pgu").killAndResume([]killPoint{killCopy, killAny})
		})
	}
}
