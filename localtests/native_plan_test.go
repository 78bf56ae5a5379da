package localtests

import (
	"context"
	"strings"
	"testing"
)

// TestNativePlanReport: the dry run's preflight report gives the plan clause
// by clause (which clause needs the copy, and the server's reason), the
// locks, and an estimate.
func TestNativePlanReport(t *testing.T) {
	for _, tg := range nativeTargets() {
		t.Run(tg.d.dir(), func(t *testing.T) {
			t.Parallel()
			bin := requireOsc(t)
			ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
			defer cancel()
			create := tg.create
			if _, ok := tg.d.(pgDialect); ok {
				// An estimate needs the rows, which PostgreSQL counts in ANALYZE.
				create = append(create, "ANALYZE t")
			}
			admin, _, ns := nativeSetupWith(ctx, t, tg, "osct_native_plan", create)
			// tg.copy: a catalog-only clause, then one that needs the copy.
			first, second, _ := strings.Cut(tg.copy, ", ")
			p := runOscToEnd(ctx, t, bin, append(tg.d.oscArgs(ns, "t"), "--alter", tg.copy, "--strategy", "auto"))
			p.out.mu.Lock()
			report := p.out.stdout.String()
			p.out.mu.Unlock()
			for _, want := range []string{
				"plan:          copy the table: ",
				"clause:        " + first + ": metadata-only",
				"clause:        " + second + ": copy: ",
				"locks:         the checksum and the cut-over each block writes at most 3s per attempt, up to 60 attempts (3m0s at worst)\n",
				"estimate:      ~",
			} {
				if !strings.Contains(report, want) {
					t.Errorf("the report lacks %q:\n%s", want, report)
				}
			}
			p = runOscToEnd(ctx, t, bin, append(tg.d.oscArgs(ns, "t"), "--alter", first, "--strategy", "auto"))
			p.out.mu.Lock()
			report = p.out.stdout.String()
			p.out.mu.Unlock()
			for _, want := range []string{
				"plan:          native, no copy: 1 step(s)\n",
				"clause:        " + first + ": metadata-only",
				"step 1:        ",
				"blocks writers at most 3s per attempt, up to 60 attempts (3m0s at worst)]\n",
				"estimate:      ~0s, plus any lock waits: catalog changes only",
			} {
				if !strings.Contains(report, want) {
					t.Errorf("the report lacks %q:\n%s", want, report)
				}
			}
			dropCase(ctx, t, tg.d, admin, ns)
		})
	}
}
