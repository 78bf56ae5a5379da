package localtests

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The resume cases: osc is killed with SIGKILL (no cleanup) at a random
// moment of a phase while writers change the table at full speed, and then
// run again with --resume; the migrated table must equal the control table
// that the writers changed alike, and nothing osc made may be left. See
// README.md, "Resume cases".
const (
	resumeChunkSize = "100"
	// resumeReach is the longest a run may take to reach a kill point.
	resumeReach = 2 * time.Minute
	// resumeFinish is the longest the last (resumed) run may take.
	resumeFinish = 3 * time.Minute
	// resumeRefuse is the longest a refusal may take.
	resumeRefuse = time.Minute
	// resumeMinTx is the least number of writer transactions a case must
	// commit while osc runs and is dead: a case without load proves nothing.
	resumeMinTx = 300
	// resumeAfterExit: the writers go on this long after the last run, on
	// the migrated table.
	resumeAfterExit = time.Second
)

// killPoint is a phase of a run in which the resume cases kill osc.
type killPoint int

const (
	killCopy      killPoint = iota // the copy, after this run saved a checkpoint
	killBacklog                    // after the copy, the applier held back by the test's lock on the shadow
	killPostponed                  // the cut-over postponed (the flag file)
	killChecksum                   // the checksum before the cut-over
	killCutOver                    // the cut-over
	killAny                        // one of the above, drawn at random
)

func (k killPoint) String() string {
	return [...]string{"copy", "backlog", "postponed", "checksum", "cutover", "any"}[k]
}

// resumeScenarios are the kill cases: the points of the killed runs, in
// order; a last run with --resume migrates the table.
var resumeScenarios = []struct {
	name  string
	kills []killPoint
	extra []string // more osc flags, for every run
}{
	{"copy", []killPoint{killCopy}, nil},
	{"backlog", []killPoint{killBacklog}, nil},
	{"postponed", []killPoint{killPostponed}, nil},
	{"checksum", []killPoint{killChecksum}, nil},
	{"cutover", []killPoint{killCutOver}, nil},
	// The resumed run is killed too.
	{"twice", []killPoint{killCopy, killAny}, nil},
	// Chunks copied at once: ranges above the checkpoint's watermark may
	// be copied, or in flight, when osc is killed.
	{"copy_threads", []killPoint{killCopy}, []string{"--copy-threads", "2"}},
	{"twice_threads", []killPoint{killCopy, killCopy}, []string{"--copy-threads", "3"}},
}

// resumeTarget is a database the resume cases run on: the stress cases'
// writers and control table, on a smaller table.
type resumeTarget struct {
	stressTarget
	v          stressVariant
	otherAlter string // not the killed run's --alter: a resume with it is refused
	nextAlter  string // a second migration of the migrated table
	// lockShadow, run on one connection, keeps osc's applier from writing
	// to the shadow until unlockShadow.
	lockShadow   func(shadow string) []string
	unlockShadow string
	// readShadow, run on one connection, holds the lock that reading the
	// shadow takes (MySQL: a shared metadata lock; PostgreSQL: ACCESS
	// SHARE) until unlockShadow: the cut-over's rename of the shadow waits
	// for it, and nothing else osc does.
	readShadow func(shadow string) []string
	// cutOverWaits is a query that counts osc's sessions waiting in the
	// cut-over for the lock readShadow holds, from $1 the namespace and $2
	// the shadow.
	cutOverWaits string
	// leftoverNames is what the refusal of a killed run's leftovers must
	// also name, for namespace ns (PostgreSQL: how to drop the slot, which
	// retains WAL, by hand).
	leftoverNames func(ns string) []string
}

func resumeTargets() []resumeTarget {
	var out []resumeTarget
	for _, st := range stressTargets() {
		rt := resumeTarget{stressTarget: st}
		switch st.d.(type) {
		case mysqlDialect:
			rt.v = stressVariant{
				name: "resume",
				create: `CREATE TABLE t (id INT NOT NULL PRIMARY KEY, n INT NOT NULL, s VARCHAR(100) NOT NULL, d DATETIME(6) NULL, KEY idx_n (n)) ENGINE=InnoDB;
INSERT INTO t SELECT seq, seq % 1000, MD5(seq), IF(seq % 7 = 0, NULL, '2026-01-01' + INTERVAL seq SECOND) FROM seq_1_to_12500 WHERE seq % 5 <> 0;
CREATE TABLE t_ctl LIKE t;
INSERT INTO t_ctl SELECT * FROM t;`,
				alter: "ADD COLUMN extra INT NULL, ENGINE=InnoDB",
			}
			rt.otherAlter = "ADD COLUMN extra BIGINT NULL, ENGINE=InnoDB"
			rt.nextAlter = "ADD COLUMN extra2 INT NULL"
			rt.lockShadow = func(shadow string) []string { return []string{"LOCK TABLES " + st.d.quote(shadow) + " READ"} }
			rt.unlockShadow = "COMMIT; UNLOCK TABLES"
			rt.readShadow = func(shadow string) []string {
				return []string{"START TRANSACTION", "SELECT 1 FROM " + st.d.quote(shadow) + " LIMIT 1"}
			}
			// The rename waits for the original while the cut-over's lock
			// holds it, and then for the shadow.
			rt.cutOverWaits = `SELECT COUNT(*) FROM information_schema.PROCESSLIST
				WHERE STATE = 'Waiting for table metadata lock' AND INFO LIKE 'RENAME TABLE%' AND INSTR(INFO, ?) > 0 AND INSTR(INFO, ?) > 0`
		case pgDialect:
			rt.v = stressVariant{
				name: "resume",
				create: `CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL, s text NOT NULL, d timestamptz);
INSERT INTO t SELECT g, g % 1000, md5(g::text), CASE WHEN g % 7 <> 0 THEN '2026-01-01'::timestamptz + g * interval '1 second' END FROM generate_series(1, 12500) g WHERE g % 5 <> 0;
CREATE TABLE t_ctl (LIKE t INCLUDING ALL);
INSERT INTO t_ctl SELECT * FROM t;`,
				alter: "ADD COLUMN extra int",
			}
			rt.otherAlter = "ADD COLUMN extra bigint"
			rt.nextAlter = "ADD COLUMN extra2 int"
			rt.lockShadow = func(shadow string) []string {
				return []string{"BEGIN", "LOCK TABLE " + st.d.quote(shadow) + " IN SHARE MODE"}
			}
			rt.unlockShadow = "COMMIT"
			rt.leftoverNames = func(ns string) []string {
				// The slot's name ends in a hash of the database, schema and table.
				return []string{fmt.Sprintf("SELECT pg_drop_replication_slot('osc_%s_t_", ns)}
			}
			rt.readShadow = func(shadow string) []string {
				return []string{"BEGIN", "SELECT 1 FROM " + st.d.quote(shadow) + " LIMIT 1"}
			}
			// After the drain, the cut-over's transaction locks the shadow.
			rt.cutOverWaits = `SELECT count(*) FROM pg_locks
				WHERE relation = to_regclass(quote_ident($1) || '.' || quote_ident($2)) AND mode = 'AccessExclusiveLock' AND NOT granted`
		}
		// One writer at full speed: the cases run in parallel, and osc's
		// single applier must keep up with each of them.
		rt.v.key, rt.v.cols, rt.v.writers = "id", []string{"n", "s", "d"}, 1
		out = append(out, rt)
	}
	return out
}

// TestResume kills osc (SIGKILL) at random moments of each phase under
// full-speed writers, then runs it again with --resume, and checks the
// refusals around resuming: nothing to resume, leftovers without --resume,
// another --alter, and the old table a previous migration kept. With
// OSC_RESUME_RUNS=N each kill case runs N times.
func TestResume(t *testing.T) {
	runs := 1
	if v := os.Getenv("OSC_RESUME_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("OSC_RESUME_RUNS=%q: want a positive number", v)
		}
		runs = n
	}
	for _, rt := range resumeTargets() {
		for _, sc := range resumeScenarios {
			t.Run(rt.d.dir()+"/"+sc.name, func(t *testing.T) {
				t.Parallel()
				for i := 1; i <= runs; i++ {
					ns := "osct_resume_" + sc.name
					name := "run"
					if runs > 1 {
						ns += fmt.Sprintf("_r%03d", i)
						name = fmt.Sprintf("run_%03d", i)
					}
					t.Run(name, func(t *testing.T) {
						newResumeEnv(t, rt, ns).killAndResume(sc.kills, sc.extra...)
					})
				}
			})
		}
		t.Run(rt.d.dir()+"/cutover_blocked", func(t *testing.T) {
			t.Parallel()
			newResumeEnv(t, rt, "osct_resume_blocked").cutOverBlocked()
		})
		t.Run(rt.d.dir()+"/refusals", func(t *testing.T) {
			t.Parallel()
			newResumeEnv(t, rt, "osct_resume_refusals").refusals()
		})
		t.Run(rt.d.dir()+"/fresh_start", func(t *testing.T) {
			t.Parallel()
			newResumeEnv(t, rt, "osct_resume_fresh").freshStart()
		})
	}
}

// resumeEnv is one resume case: its namespace with t and t_ctl, the writers,
// and the osc runs.
type resumeEnv struct {
	t    *testing.T
	ctx  context.Context
	rt   resumeTarget
	d    dialect
	db   *sql.DB
	ns   string
	bin  string
	sock string // the interactive socket, which a killed run leaves
	flag string // the postpone flag file
	rng  *rand.Rand
	load *stressLoad
	runs int // osc runs so far
}

// newResumeEnv creates the case's namespace and tables. At the end of the
// test it stops every osc and the writers, drops the namespace if the test
// passed, and drops the case's replication slot whatever happened (after
// logging it): an abandoned slot retains WAL on the shared sandbox.
func newResumeEnv(t *testing.T, rt resumeTarget, ns string) *resumeEnv {
	bin := requireOsc(t)
	admin := rt.d.connectAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	t.Cleanup(cancel)
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	e := &resumeEnv{t: t, ctx: ctx, rt: rt, d: rt.d, ns: ns, bin: bin, rng: rand.New(rand.NewPCG(seed, 0))}
	if err := e.dropReplication(ctx, admin); err != nil {
		t.Fatal(err)
	}
	if err := e.d.resetNamespace(ctx, admin, ns); err != nil {
		t.Fatal(err)
	}
	db, err := rt.open(ns)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxIdleConns(8)
	t.Cleanup(func() {
		// Runs after the osc processes' and the writers' cleanups (those
		// were registered later).
		bg, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.dropReplication(bg, admin); err != nil {
			t.Error(err)
		}
		db.Close()
		dropCase(bg, t, e.d, admin, ns)
	})
	e.db = db
	if err := execScript(ctx, db, splitSQL(rt.v.create)); err != nil {
		t.Fatalf("create: %v", err)
	}
	dir, err := os.MkdirTemp("", "osc-rs") // short: a socket path is limited to 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e.sock, e.flag = filepath.Join(dir, "osc.sock"), filepath.Join(dir, "postpone")
	return e
}

// dropReplication drops the publication and the slot of the case's
// namespace (PostgreSQL), logging the slot's state first.
func (e *resumeEnv) dropReplication(ctx context.Context, admin *sql.DB) error {
	pg, ok := e.d.(pgDialect)
	if !ok {
		return nil
	}
	// Exactly the names of t's slot and publication: a test whose
	// namespace's name contains this one's may run at the same time.
	capture, revert, err := pg.captureNames(e.ns, "t")
	if err != nil {
		return err
	}
	mine := "slot_name IN ($1, $2) AND database = current_database()"
	slots, err := scanRows(ctx, admin, `SELECT slot_name, active, confirmed_flush_lsn, restart_lsn, wal_status FROM pg_replication_slots
		WHERE `+mine, -1, func(v value) string { return v.String() }, capture, revert)
	if err != nil {
		return fmt.Errorf("list slots: %w", err)
	}
	if len(slots) > 0 {
		e.t.Logf("dropping replication slots of %s: %s", e.ns, strings.Join(slots, "; "))
	}
	// A walsender may take a moment to notice its osc is gone.
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, err = admin.ExecContext(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE `+mine, capture, revert)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("drop the slots of %s: %w", e.ns, err)
	}
	rows, err := admin.QueryContext(ctx, "SELECT pubname FROM pg_publication WHERE pubname IN ($1, $2)", capture, revert)
	if err != nil {
		return fmt.Errorf("list publications: %w", err)
	}
	var pubs []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return fmt.Errorf("list publications: %w", err)
		}
		pubs = append(pubs, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list publications: %w", err)
	}
	for _, p := range pubs {
		if _, err := admin.ExecContext(ctx, "DROP PUBLICATION IF EXISTS "+e.d.quote(p)); err != nil {
			return fmt.Errorf("drop publication %s: %w", p, err)
		}
	}
	return nil
}

// startLoad starts the writers on t and t_ctl.
func (e *resumeEnv) startLoad() {
	ws, err := startStressWriters(e.ctx, e.rt.stressTarget, e.rt.v, e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	e.load = ws
	e.t.Cleanup(func() { ws.stop() })
	time.Sleep(200 * time.Millisecond) // the load is running when osc starts
}

// args is the osc command line for alter, with more flags.
func (e *resumeEnv) args(alter string, more ...string) []string {
	args := append(e.d.oscArgs(e.ns, "t"), "--alter", alter, "--execute", "--chunk-size", resumeChunkSize,
		"--checkpoint-seconds", "1", "--status-interval", "1", "--serve-socket-file", e.sock)
	args = append(args, e.rt.extra...)
	return append(args, more...)
}

// start runs osc; at the end of the test it is stopped if it still runs,
// and its output logged if the test failed.
func (e *resumeEnv) start(args []string) *oscProcess {
	e.runs++
	n := e.runs
	p, err := startOsc(e.ctx, e.bin, args)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		p.stop()
		// The checksum's recopy would repair the shadow and hide a change
		// the resumed run did not apply.
		if p.logged("checksum: chunks differ") {
			e.t.Errorf("osc run %d: its checksum found chunks that differ: the shadow was not the table's copy", n)
		}
		if e.t.Failed() || testing.Verbose() {
			e.t.Logf("osc run %d:", n)
			p.logOutput(e.t)
		}
	})
	return p
}

// killedRun starts osc with args and the postpone flag file, and kills it
// at point k. It reports whether osc finished the migration before the kill
// came (a kill at the end of the cut-over can come too late).
func (e *resumeEnv) killedRun(args []string, k killPoint) (finished bool) {
	if err := os.WriteFile(e.flag, nil, 0o644); err != nil {
		e.t.Fatal(err)
	}
	if k == killAny {
		k = killPoint(e.rng.IntN(int(killAny)))
	}
	more := []string{"--postpone-cut-over-flag-file", e.flag}
	if k == killCopy {
		// A copy at a fifth of its speed, so that it lasts beyond the first
		// status line that shows a checkpoint (a PostgreSQL copy of the
		// table at full speed takes about a second).
		more = append(more, "--chunk-size", "25", "--nice-ratio", "2")
	}
	p := e.start(slices.Concat(args, more))
	where, finished, err := e.killAt(p, k)
	if err != nil {
		e.t.Fatalf("run %d, kill at %s: %v", e.runs, k, err)
	}
	left, err := e.objects()
	if err != nil {
		e.t.Fatal(err)
	}
	if finished {
		e.t.Logf("run %d finished before the kill at %s came: %s; left: %s", e.runs, k, where, strings.Join(left, ", "))
		return true
	}
	e.t.Logf("run %d killed at %s: %s; left: %s", e.runs, k, where, strings.Join(left, ", "))
	return false
}

// killAt waits for point k of osc's run, kills it at a random moment of the
// phase, and says where the kill landed, or that osc had finished the
// migration (exited 0) before.
func (e *resumeEnv) killAt(p *oscProcess, k killPoint) (where string, finished bool, err error) {
	postponed := func() error { return p.waitOutput(postponedMarker, resumeReach) }
	// The kill comes at a random moment up to max into the phase, or as
	// soon as osc prints one of end (the phase is over), if that comes
	// first.
	var max time.Duration
	var end []string
	switch k {
	case killCopy:
		// A checkpoint saved by this run: a status line shows its age.
		if err := p.waitOutput("Checkpoint: ", resumeReach); err != nil {
			return "", false, err
		}
		max, end = 2*time.Second, []string{"row copy complete"}
	case killBacklog:
		if err := p.waitOutput("row copy complete", resumeReach); err != nil {
			return "", false, err
		}
		// Keep the applier off the shadow for 1 to 2 s, so that it falls
		// behind, and kill osc at a random moment from half-way through
		// that until 60 ms after the lock is gone (while the applier
		// catches up). A statement the applier had waiting for the lock
		// may run once it is gone, after osc died.
		hold := time.Second + e.randDuration(time.Second)
		after := hold/2 + e.randDuration(hold/2+60*time.Millisecond)
		unlock, err := e.lockShadow()
		if err != nil {
			return "", false, err
		}
		if after < hold {
			time.Sleep(after)
			kerr := p.kill()
			time.Sleep(hold - after)
			if err := errors.Join(kerr, unlock()); err != nil {
				return "", false, err
			}
			return fmt.Sprintf("%v after the test locked the shadow, %v before it let go", after.Round(time.Millisecond),
				(hold - after).Round(time.Millisecond)), false, nil
		}
		time.Sleep(hold)
		if err := unlock(); err != nil {
			return "", false, err
		}
		time.Sleep(after - hold)
		if err := p.kill(); err != nil {
			return "", false, err
		}
		return fmt.Sprintf("%v after the test let go of the shadow it had locked for %v", (after - hold).Round(time.Millisecond),
			hold.Round(time.Millisecond)), false, nil
	case killPostponed:
		if err := postponed(); err != nil {
			return "", false, err
		}
		max = time.Second
	case killChecksum:
		if err := postponed(); err != nil {
			return "", false, err
		}
		if err := os.Remove(e.flag); err != nil {
			return "", false, err
		}
		if err := p.waitOutput("state=checksumming", resumeReach); err != nil {
			return "", false, err
		}
		max, end = 150*time.Millisecond, []string{"checksum: the shadow equals the table"}
	case killCutOver:
		if err := postponed(); err != nil {
			return "", false, err
		}
		if err := os.Remove(e.flag); err != nil {
			return "", false, err
		}
		if err := p.waitOutput(`state="cutting over"`, resumeReach); err != nil {
			return "", false, err
		}
		// Before or during the swap, or right after it (before the
		// cleanup): the cleanup and osc's exit follow within milliseconds.
		max, end = 250*time.Millisecond, []string{"cut-over complete", "cut-over: tables swapped"}
	}
	reached := time.Now()
	for until := reached.Add(e.randDuration(max)); time.Now().Before(until) && !p.outputContainsAny(end); {
		time.Sleep(2 * time.Millisecond)
	}
	into := time.Since(reached)
	ended := ""
	for _, m := range end {
		if p.outputContains(m) {
			ended = fmt.Sprintf(" (after the phase's end, %q)", m)
		}
	}
	select {
	case <-p.done:
		if p.err != nil {
			return "", false, fmt.Errorf("osc failed before the kill: %v: %s", p.err, p.errorText())
		}
		return fmt.Sprintf("it exited %v into the phase", into.Round(time.Millisecond)), true, nil
	default:
	}
	if err := p.kill(); err != nil {
		return "", false, err
	}
	if p.err == nil { // it exited 0 just before the signal
		return fmt.Sprintf("it exited %v into the phase", into.Round(time.Millisecond)), true, nil
	}
	return fmt.Sprintf("%v into the phase%s, in state %q (last lines: %s)", into.Round(time.Millisecond), ended, p.lastState(),
		strings.Join(p.lastLines(2), " | ")), false, nil
}

func (e *resumeEnv) randDuration(max time.Duration) time.Duration {
	return time.Duration(e.rng.Int64N(int64(max)))
}

// lockShadow locks the shadow on a connection of its own, keeping osc's
// applier from writing to it, until the returned function is called.
func (e *resumeEnv) lockShadow() (unlock func() error, err error) {
	conn, err := e.db.Conn(e.ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range e.rt.lockShadow(e.shadow()) {
		if _, err := conn.ExecContext(e.ctx, q); err != nil {
			conn.Close()
			return nil, fmt.Errorf("lock the shadow: %s: %w", q, err)
		}
	}
	return func() error {
		defer conn.Close()
		if _, err := conn.ExecContext(e.ctx, e.rt.unlockShadow); err != nil {
			return fmt.Errorf("unlock the shadow: %w", err)
		}
		return nil
	}, nil
}

// leftoverNames is what the refusal of a killed run's leftovers must name.
func (e *resumeEnv) leftoverNames() []string {
	names := []string{"--resume", "--initially-drop-ghost-table"}
	if e.rt.leftoverNames != nil {
		names = append(names, e.rt.leftoverNames(e.ns)...)
	}
	return names
}

func (e *resumeEnv) shadow() string {
	names, _ := e.d.helperTables("t")
	return names[0]
}

func (e *resumeEnv) oldTable() string {
	_, old := e.d.helperTables("t")
	return old
}

// succeed waits for osc to exit 0.
func (e *resumeEnv) succeed(p *oscProcess, what string) {
	e.t.Helper()
	select {
	case <-p.done:
	case <-time.After(resumeFinish):
		e.t.Fatalf("%s: osc did not finish within %v", what, resumeFinish)
	}
	if p.err != nil {
		e.t.Fatalf("%s: osc failed: %v: %s", what, p.err, p.errorText())
	}
}

// refused runs osc with args, which must fail naming every one of want, and
// change none of the objects osc makes in the database (a stale socket file
// it may replace and remove).
func (e *resumeEnv) refused(what string, args []string, want ...string) {
	e.t.Helper()
	before, err := e.dbObjects()
	if err != nil {
		e.t.Fatal(err)
	}
	p := e.start(args)
	select {
	case <-p.done:
	case <-time.After(resumeRefuse):
		e.t.Fatalf("%s: osc did not exit within %v; want a refusal", what, resumeRefuse)
	}
	msg := p.errorText()
	switch {
	case p.err == nil:
		e.t.Errorf("%s: osc succeeded; want a refusal naming %q", what, want)
	case strings.Contains(msg, "not implemented"):
		e.t.Errorf("%s: %s", what, msg)
	default:
		for _, w := range want {
			if !strings.Contains(strings.ToLower(msg), strings.ToLower(w)) {
				e.t.Errorf("%s: osc's error does not name %q: %s", what, w, msg)
			}
		}
	}
	e.t.Logf("%s: %s", what, msg)
	after, err := e.dbObjects()
	if err != nil {
		e.t.Fatal(err)
	}
	if !slices.Equal(before, after) {
		e.t.Errorf("%s: osc refused but changed what is left:\nbefore: %s\n after: %s", what, strings.Join(before, ", "), strings.Join(after, ", "))
	}
}

// objects lists the tables of the namespace, the replication objects of
// the namespace and the socket file, sorted.
func (e *resumeEnv) objects() ([]string, error) {
	found, err := e.dbObjects()
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(e.sock); err == nil {
		found = append(found, "socket "+e.sock)
	}
	slices.Sort(found)
	return found, nil
}

// dbObjects lists the tables and the replication objects of the namespace,
// sorted.
func (e *resumeEnv) dbObjects() ([]string, error) {
	q := "SELECT table_name FROM information_schema.tables WHERE table_schema = ?"
	if _, ok := e.d.(pgDialect); ok {
		q = "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1"
	}
	var found []string
	rows, err := e.db.QueryContext(e.ctx, q, e.ns)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list tables: %w", err)
		}
		found = append(found, "table "+n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	more, err := e.d.replicationLeftovers(e.ctx, e.db, e.ns, "t")
	if err != nil {
		return nil, err
	}
	found = append(found, more...)
	slices.Sort(found)
	return found, nil
}

// expectObjects fails the test unless exactly the tables t, t_ctl and more
// are left.
func (e *resumeEnv) expectObjects(what string, more ...string) {
	e.t.Helper()
	found, err := e.objects()
	if err != nil {
		e.t.Fatal(err)
	}
	want := []string{"table t", "table " + controlTable}
	for _, m := range more {
		want = append(want, "table "+m)
	}
	slices.Sort(want)
	if !slices.Equal(found, want) {
		e.t.Errorf("%s: want only %s; found %s", what, strings.Join(want, ", "), strings.Join(found, ", "))
	}
}

// finish stops the writers a moment after the last run and compares t with
// the control table, row by row.
func (e *resumeEnv) finish() {
	time.Sleep(resumeAfterExit)
	for _, we := range e.load.stop() {
		e.t.Errorf("writer error: %v", we.err)
	}
	tx := e.load.committed.Load()
	e.t.Logf("writer transactions: %d", tx)
	if tx < resumeMinTx {
		e.t.Errorf("only %d writer transactions committed (want at least %d): the case ran without load", tx, resumeMinTx)
	}
	info, err := e.d.describe(e.ctx, e.db, e.ns, controlTable)
	if err != nil || info == nil {
		e.t.Fatalf("describe %s: %v (exists: %t)", controlTable, err, info != nil)
	}
	var key, cols []colPair
	for _, c := range info.columns {
		if c.name == e.rt.v.key {
			key = append(key, colPair{c.name, c.name})
		} else {
			cols = append(cols, colPair{c.name, c.name})
		}
	}
	c, err := compareTables(e.ctx, e.db, e.d, controlTable, "t", key, cols, maxDiffs)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("compared %d control rows with %d rows of the migrated table", c.oldRows, c.newRows)
	if c.total > 0 {
		e.t.Errorf("the migrated table t (new) differs from the control table %s (old) in %d rows (%s):", controlTable, c.total, diffKinds(c.diffs))
		for _, diff := range c.diffs {
			e.t.Error("  " + diff)
		}
	}
}

// killAndResume kills a run at each of kills in turn (each after the first
// resuming), resumes once more to the end, and checks the result; every run
// with extra flags.
func (e *resumeEnv) killAndResume(kills []killPoint, extra ...string) {
	e.startLoad()
	args := e.args(e.rt.v.alter, append([]string{"--ok-to-drop-table"}, extra...)...)
	finished := false
	for i, k := range kills {
		more := []string{}
		if i > 0 {
			more = append(more, "--resume")
		}
		if finished = e.killedRun(slices.Concat(args, more), k); finished {
			break
		}
	}
	if !finished {
		e.succeed(e.start(slices.Concat(args, []string{"--resume"})), "the last resume")
	}
	e.finish()
	e.expectObjects("after the last resume")
}

// cutOverBlocked kills osc in the middle of its cut-over: a session reading
// the shadow holds the cut-over where it renames the shadow (MySQL: the
// rename, queued, has the original and waits for the shadow, the sentry
// dropped and the table lock released; PostgreSQL: the transaction has the
// original locked and the changes drained, and waits for the shadow). osc is
// killed there, and resumed while the session still holds the shadow, which
// it lets go half a second later: the killed run's statement may then
// complete (a MySQL rename does: the swap happens after osc died). The
// resumed run may refuse meanwhile; then a second --resume must finish.
func (e *resumeEnv) cutOverBlocked() {
	e.startLoad()
	args := e.args(e.rt.v.alter, "--ok-to-drop-table")
	if err := os.WriteFile(e.flag, nil, 0o644); err != nil {
		e.t.Fatal(err)
	}
	p := e.start(slices.Concat(args, []string{"--postpone-cut-over-flag-file", e.flag}))
	if err := p.waitOutput(postponedMarker, resumeReach); err != nil {
		e.t.Fatal(err)
	}
	reader, err := e.db.Conn(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer reader.Close()
	for _, q := range e.rt.readShadow(e.shadow()) {
		if _, err := reader.ExecContext(e.ctx, q); err != nil {
			e.t.Fatalf("read the shadow: %s: %v", q, err)
		}
	}
	released := false
	release := func() {
		if !released {
			released = true
			if _, err := reader.ExecContext(e.ctx, e.rt.unlockShadow); err != nil {
				e.t.Fatalf("let go of the shadow: %v", err)
			}
		}
	}
	defer release()
	if err := os.Remove(e.flag); err != nil {
		e.t.Fatal(err)
	}
	waiting := func() (bool, error) {
		var n int
		err := e.db.QueryRowContext(e.ctx, e.rt.cutOverWaits, e.ns, e.shadow()).Scan(&n)
		return n > 0, err
	}
	for deadline := time.Now().Add(resumeReach); ; {
		w, err := waiting()
		if err != nil {
			e.t.Fatalf("watch the cut-over: %v", err)
		}
		if w {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("osc's cut-over was not seen waiting for the shadow within %v", resumeReach)
		}
		select {
		case <-p.done:
			e.t.Fatalf("osc exited before its cut-over waited for the shadow: %v: %s", p.err, p.errorText())
		case <-time.After(2 * time.Millisecond):
		}
	}
	into := e.randDuration(100 * time.Millisecond)
	time.Sleep(into)
	if err := p.kill(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("run 1 killed %v after its cut-over was seen waiting for the shadow (last lines: %s)", into.Round(time.Millisecond),
		strings.Join(p.lastLines(2), " | "))

	r := e.start(slices.Concat(args, []string{"--resume"}))
	time.Sleep(500 * time.Millisecond)
	release()
	left, err := e.objects()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("let go of the shadow; left: %s", strings.Join(left, ", "))
	select {
	case <-r.done:
	case <-time.After(resumeFinish):
		e.t.Fatalf("the resume started while the cut-over waited did not finish within %v", resumeFinish)
	}
	if r.err != nil {
		e.t.Logf("the resume started while the killed cut-over waited failed: %s", r.errorText())
		e.succeed(e.start(slices.Concat(args, []string{"--resume"})), "the resume after the killed cut-over's statement ended")
	}
	e.finish()
	e.expectObjects("after the last resume")
}

// refusals: --resume with nothing to resume; a killed run's leftovers
// without --resume; --resume with another --alter; then the resume that
// works, keeping the old table; a second migration, refused until
// --initially-drop-old-table.
func (e *resumeEnv) refusals() {
	alter := e.rt.v.alter
	e.refused("--resume with nothing to resume", e.args(alter, "--resume"), "nothing to resume")
	e.expectObjects("after --resume with nothing to resume")

	e.startLoad()
	e.killedRun(e.args(alter), killCopy)
	e.refused("a killed run's leftovers without --resume", e.args(alter), e.leftoverNames()...)
	e.refused("--resume with another --alter", e.args(e.rt.otherAlter, "--resume"), "--alter")
	e.succeed(e.start(e.args(alter, "--resume")), "the resume after the refusals")
	e.expectObjects("after the resume, without --ok-to-drop-table", e.oldTable())

	e.refused("a second migration with the old table kept", e.args(e.rt.nextAlter), "--initially-drop-old-table")
	e.succeed(e.start(e.args(e.rt.nextAlter, "--initially-drop-old-table", "--ok-to-drop-table")), "the second migration with --initially-drop-old-table")
	e.finish()
	e.expectObjects("after the second migration")
}

// freshStart: a killed run's leftovers are refused without --resume, and
// --initially-drop-ghost-table drops them and migrates from scratch.
func (e *resumeEnv) freshStart() {
	alter := e.rt.v.alter
	e.startLoad()
	// Before the cut-over: after it, what is left is the old table.
	e.killedRun(e.args(alter), killPoint(e.rng.IntN(int(killCutOver))))
	e.refused("a killed run's leftovers without --resume", e.args(alter), e.leftoverNames()...)
	p := e.start(e.args(alter, "--initially-drop-ghost-table", "--ok-to-drop-table"))
	e.succeed(p, "--initially-drop-ghost-table")
	e.finish()
	e.expectObjects("after --initially-drop-ghost-table")
}

// waitOutput waits until osc's stdout or stderr contains s.
func (p *oscProcess) waitOutput(s string, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		if p.outputContains(s) {
			return nil
		}
		select {
		case <-p.done:
			if p.outputContains(s) {
				return nil
			}
			return fmt.Errorf("osc exited before printing %q: %v: %s", s, p.err, p.errorText())
		case <-deadline:
			return fmt.Errorf("osc did not print %q within %v", s, timeout)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (p *oscProcess) outputContainsAny(ss []string) bool {
	for _, s := range ss {
		if p.outputContains(s) {
			return true
		}
	}
	return false
}

func (p *oscProcess) outputContains(s string) bool {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	return strings.Contains(p.out.stderr.String(), s) || strings.Contains(p.out.stdout.String(), s)
}

// kill kills osc with SIGKILL, which it cannot catch: nothing is cleaned
// up, as when its host dies.
func (p *oscProcess) kill() error {
	select {
	case <-p.done:
		return fmt.Errorf("osc exited before the kill: %v: %s", p.err, p.errorText())
	default:
	}
	// It may have exited meanwhile (os.ErrProcessDone).
	if err := p.signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill osc: %w", err)
	}
	<-p.done
	return nil
}

// lastState is the state osc last logged.
func (p *oscProcess) lastState() string {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	s := p.out.stderr.String()
	i := strings.LastIndex(s, "msg=state state=")
	if i < 0 {
		return ""
	}
	s = s[i+len("msg=state state="):]
	if line, _, ok := strings.Cut(s, "\n"); ok {
		s = line
	}
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	return s
}

// lastLines are the last n lines of osc's stderr.
func (p *oscProcess) lastLines(n int) []string {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	ls := lines(p.out.stderr.String())
	return ls[max(0, len(ls)-n):]
}

// errorText is osc's error: its stderr from the last "osc: error:" on (an
// error may take several lines).
func (p *oscProcess) errorText() string {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	s := p.out.stderr.String()
	if i := strings.LastIndex(s, "osc: error:"); i >= 0 {
		return strings.TrimSpace(s[i:])
	}
	if ls := lines(s); len(ls) > 0 {
		return ls[len(ls)-1]
	}
	return ""
}
