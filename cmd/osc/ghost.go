package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"
)

// ghostFlags are gh-ost's flags that name no setting of osc's own, so that a
// gh-ost command line either runs as its author meant or says why not: the
// ones whose request osc already fulfils are accepted, the others refused
// with what osc does instead.
type ghostFlags struct {
	assumeRBR              bool
	approveRenamedColumns  bool
	cutOver                string
	defaultRetries         int
	checkFlag              bool
	switchToRBR            bool
	testOnReplica          bool
	migrateOnReplica       bool
	skipRenamedColumns     bool
	timestampOldTable      bool
	criticalLoadHibernateS int
}

// ghostRefusals are the refused flags: name, and why.
var ghostRefusals = []struct{ name, why string }{
	{"switch-to-rbr", "osc does not change the server's binlog_format: it needs binlog_format=ROW and binlog_row_image=FULL already " +
		"(SET GLOBAL binlog_format = 'ROW', binlog_row_image = 'FULL'; sessions open before keep theirs until they reconnect)"},
	{"test-on-replica", "osc migrates on the primary only; it has no replica test mode"},
	{"migrate-on-replica", "osc migrates on the primary only"},
	{"skip-renamed-columns", "osc copies a renamed column's values into its new name, as the ALTER does; it cannot leave them out"},
	{"timestamp-old-table", "osc names the old table t_osc_old (MySQL) or _t_old (PostgreSQL), the name a resumed run and the revert window find it by; " +
		"keep an earlier one by renaming it, or drop it with --initially-drop-old-table"},
	{"critical-load-hibernate-seconds", "osc does not hibernate: at --critical-load it aborts cleanly (after a second look " +
		"--critical-load-interval-millis later, if given); use --max-load to pause the copy instead"},
}

func addGhostFlags(fs *pflag.FlagSet) *ghostFlags {
	g := &ghostFlags{}
	fs.BoolVar(&g.assumeRBR, "assume-rbr", false, "accepted for gh-ost compatibility: osc never changes binlog_format; it checks ROW and FULL and refuses otherwise")
	fs.BoolVar(&g.approveRenamedColumns, "approve-renamed-columns", false, "accepted for gh-ost compatibility: osc copies a column the --alter renames into its new name")
	fs.StringVar(&g.cutOver, "cut-over", "atomic", `accepted for gh-ost compatibility: "atomic" or "default", osc's one cut-over (both names swapped in one step); "two-step" is refused`)
	fs.IntVar(&g.defaultRetries, "default-retries", 0, "gh-ost's: attempts of a chunk copy or an apply batch that fails on a deadlock or a lock wait timeout "+
		"(default 20), and, unless --cut-over-retries is given, its value (the cut-over's, the checksum's, a native ALTER's attempts at their locks)")
	fs.BoolVar(&g.checkFlag, "check-flag", false, "only check the other flags given: exit 0 when osc takes them all, 2 otherwise (gh-ost's, for scripts that serve several versions)")
	fs.BoolVar(&g.switchToRBR, "switch-to-rbr", false, "")
	fs.BoolVar(&g.testOnReplica, "test-on-replica", false, "")
	fs.BoolVar(&g.migrateOnReplica, "migrate-on-replica", false, "")
	fs.BoolVar(&g.skipRenamedColumns, "skip-renamed-columns", false, "")
	fs.BoolVar(&g.timestampOldTable, "timestamp-old-table", false, "")
	fs.IntVar(&g.criticalLoadHibernateS, "critical-load-hibernate-seconds", 0, "")
	for _, r := range ghostRefusals {
		if err := fs.MarkHidden(r.name); err != nil {
			panic(err) // a name above that is not a flag: a defect here
		}
	}
	return g
}

// errCheckFlag asks run to exit 0 without doing anything (--check-flag).
var errCheckFlag = errors.New("flags checked")

// refusal returns why osc refuses a gh-ost flag given on the command line, or
// nil. A refused flag given its default (--test-on-replica=false,
// --critical-load-hibernate-seconds 0) asks for nothing osc lacks.
func (g *ghostFlags) refusal(fs *pflag.FlagSet) error {
	for _, r := range ghostRefusals {
		if f := fs.Lookup(r.name); f.Changed && f.Value.String() != f.DefValue {
			return fmt.Errorf("--%s is gh-ost's: %s", r.name, r.why)
		}
	}
	switch g.cutOver {
	case "atomic", "default", "": // gh-ost takes "" as atomic too
	case "two-step":
		return errors.New("--cut-over two-step is gh-ost's: osc cuts over in one step only (--cut-over atomic), without the moment in which the table is missing")
	default:
		return fmt.Errorf("--cut-over %q: osc has one cut-over, atomic (gh-ost's default)", g.cutOver)
	}
	return nil
}

// apply sets what the accepted flags ask in o.
func (g *ghostFlags) apply(fs *pflag.FlagSet, o *options) error {
	if err := g.refusal(fs); err != nil {
		return err
	}
	if fs.Changed("default-retries") {
		if g.defaultRetries < 1 {
			return errors.New("--default-retries must be at least 1")
		}
		o.cfg.Retries = g.defaultRetries
		if !fs.Changed("cut-over-retries") {
			o.cfg.CutOverRetries = g.defaultRetries
		}
	}
	return nil
}
