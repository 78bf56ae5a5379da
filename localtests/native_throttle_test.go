package localtests

import (
	"context"
	"testing"
)

// nativeThrottleWait is what osc logs once the throttle has held the native
// ALTER for a second.
const nativeThrottleWait = "the native ALTER waits while throttled"

// TestNativeThrottleQuery: the native path runs the throttler, not only the
// operator's holds: while --throttle-query returns a value above 0 (a row in
// table hold, until osc says it waits) the native ALTER waits; it runs once
// the query returns 0. The flag file's hold is TestNatrvThrottleHoldsNative's.
func TestNativeThrottleQuery(t *testing.T) {
	for _, tg := range nativeTargets() {
		t.Run(tg.d.dir(), func(t *testing.T) {
			t.Parallel()
			bin := requireOsc(t)
			ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
			defer cancel()
			admin, db, ns := nativeSetupWith(ctx, t, tg, "osct_native_thrq",
				append(tg.create, "CREATE TABLE hold (id int PRIMARY KEY)", "INSERT INTO hold VALUES (1)"))
			const alter = "ADD COLUMN n INT NULL"
			p, err := startOsc(ctx, bin, append(tg.d.oscArgs(ns, "t"), "--alter", alter, "--execute", "--strategy", "native",
				"--throttle-query", "SELECT COUNT(*) FROM "+ns+".hold"))
			if err != nil {
				t.Fatal(err)
			}
			defer p.stop()
			// Held until osc says it waits (once the hold lasts a second),
			// however long osc takes to get there on a busy machine.
			if err := p.waitOutput(nativeThrottleWait, postponeTimeout); err != nil {
				p.logOutput(t)
				t.Fatalf("osc ran the native ALTER while the throttle query held it, or never waited: %v", err)
			}
			if got, want := tg.def(ctx, t, db, ns, "t"), tg.def(ctx, t, db, ns, "t_ctl"); got != want {
				t.Errorf("the table was altered while throttled:\n%s", got)
			}
			if _, err := db.ExecContext(ctx, "DELETE FROM hold"); err != nil {
				t.Fatal(err)
			}
			<-p.done
			p.logOutput(t)
			if p.err != nil {
				t.Errorf("osc after the throttle ended: %s", p.failure())
			}
			tg.plainAlter(ctx, t, db, alter)
			tg.compare(ctx, t, db, ns)
			dropCase(ctx, t, tg.d, admin, ns)
		})
	}
}
