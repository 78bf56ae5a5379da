package localtests

import (
	"context"
	"testing"
	"time"
)

// TestNativeThrottleQuery: the native path runs the throttler, not only the
// operator's holds: while --throttle-query returns a value above 0 (a row in
// table hold, for 3 s here) the native ALTER waits; it runs once the query
// returns 0. The flag file's hold is TestNatrvThrottleHoldsNative's.
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
			select {
			case <-p.done:
				p.logOutput(t)
				t.Fatalf("osc ran the native ALTER while the throttle query held it (%s)", p.failure())
			case <-time.After(3 * time.Second):
			}
			if got, want := tg.def(ctx, t, db, ns, "t"), tg.def(ctx, t, db, ns, "t_ctl"); got != want {
				t.Errorf("the table was altered while throttled:\n%s", got)
			}
			if _, err := db.ExecContext(ctx, "DELETE FROM hold"); err != nil {
				t.Fatal(err)
			}
			<-p.done
			p.logOutput(t)
			if p.err != nil || !p.logged("the native ALTER waits while throttled") {
				t.Errorf("osc after the throttle ended: %s (want it to have said it waited)", p.failure())
			}
			tg.plainAlter(ctx, t, db, alter)
			tg.compare(ctx, t, db, ns)
			dropCase(ctx, t, tg.d, admin, ns)
		})
	}
}
