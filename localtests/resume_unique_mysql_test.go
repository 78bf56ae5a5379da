package localtests

import (
	"strings"
	"testing"
)

// TestResumeNewUniqueMySQL: unique_new's table (the --alter adds a unique
// key; the writer moves values between rows) migrated by a run killed in
// its copy, whose resumed run is killed at a random point and resumed
// again: each resume takes up the aside table of the rows the new key
// turned away (README, "Why nothing is lost", steps 5 and 11), and the
// table must end equal to its control table.
func TestResumeNewUniqueMySQL(t *testing.T) {
	for _, rt := range resumeTargets() {
		if _, ok := rt.d.(mysqlDialect); !ok {
			continue
		}
		t.Run(rt.d.dir(), func(t *testing.T) {
			rt.v.create = strings.Replace(mysqlUniqueMovesCreate, "UNIQUE KEY uq_u (u)", "KEY idx_u (u)", 1)
			rt.v.alter = "ADD UNIQUE KEY uq_u (u), ADD COLUMN extra INT NULL"
			rt.v.unique = "u"
			newResumeEnv(t, rt, "osct_resume_uniq").killAndResume([]killPoint{killCopy, killAny})
		})
	}
}
