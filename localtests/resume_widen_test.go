package localtests

import (
	"strings"
	"testing"
)

// TestResumeWidenedKey: the resume cases' table migrated with its primary
// key (id) widened to (id, n), which the writer changes all the time (osc
// copies by id and tells the new table's rows apart by (id, n)): a run
// killed in its copy, and the resumed run killed at a random point, then
// resumed again, must leave the table equal to its control table.
func TestResumeWidenedKey(t *testing.T) {
	for _, rt := range resumeTargets() {
		t.Run(rt.d.dir(), func(t *testing.T) {
			t.Parallel()
			switch rt.d.(type) {
			case mysqlDialect:
				rt.v.alter = "DROP PRIMARY KEY, ADD PRIMARY KEY (id, n)"
			case pgDialect:
				rt.v.alter = "DROP CONSTRAINT t_pkey, ADD PRIMARY KEY (id, n)"
				// The old rows must carry n (README, "Usage: PostgreSQL").
				rt.v.create = strings.Replace(rt.v.create, ";\n", ";\nALTER TABLE t REPLICA IDENTITY FULL;\n", 1)
			}
			newResumeEnv(t, rt, "osct_resume_pkwiden").killAndResume([]killPoint{killCopy, killAny})
		})
	}
}
