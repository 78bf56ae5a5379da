package localtests

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	// diffParallel cases of each database run at once: a case mostly waits
	// (osc's start, its postponed cut-over, pg_dump).
	diffParallel = 3
	diffTimeout  = 3 * time.Minute
	// diffOscTimeout bounds each wait for osc: to postpone, to exit.
	diffOscTimeout = time.Minute
	// diffChunkSize: a few dozen rows make several chunks, so that the
	// writes reach osc while it copies as well as once it is caught up.
	diffChunkSize = "3"
	// diffWritePause is the longest pause between two writes; the writes
	// go on for diffWriteAfter once osc waits for the cut-over.
	diffWritePause = 4 * time.Millisecond
	diffWriteAfter = 150 * time.Millisecond
	diffMaxWrites  = 400
	// diffEarlyWrites are the writes made before osc captures changes (the
	// copy reads what they left); the others wait until it does, so that
	// osc replays them, whatever its start takes on a loaded machine.
	diffEarlyWrites = diffMaxWrites / 4
	diffMaxLines    = 40 // differing lines shown per section
	// diffPrefix starts the names of the differential cases' namespaces,
	// <prefix><case>_p (plain ALTER) and <prefix><case>_o (osc).
	diffPrefix = "hdf_"
)

// differ is a dialect that can describe a namespace for the differential
// test: every object a DBA would look at, with the namespace's name left in
// (the comparison replaces it), and every row.
type differ interface {
	dialect
	// casesFile is the file under differential/.
	casesFile() string
	// state describes the objects of ns and their rows, as sections of
	// lines.
	state(ctx context.Context, db *sql.DB, ns string) ([]section, error)
	// sessionInfo says what the plain ALTER's session runs under (time zone,
	// sql_mode), for the log.
	sessionInfo(ctx context.Context, db *sql.DB) (string, error)
	// oscSessionArgs are the osc flags that select the server and table t
	// of ns, with the session the plain ALTER runs in (PostgreSQL: its
	// search_path, which resolves the names the --alter gives without a
	// schema).
	oscSessionArgs(ns string) ([]string, error)
	// plainAlter is the plain side of an --alter: the ALTER TABLE t
	// statements to run, one transaction each.
	plainAlter(alter string) []string
}

// section is one part of a namespace's description: pg_dump's output, the
// columns, the rows of a table, ...
type section struct {
	name  string
	lines []string
}

// TestDifferential runs each ALTER of differential/*.cases twice, on two
// identical copies of a table: as a plain ALTER TABLE on one, through osc
// (under writes, replayed on the plain copy before its ALTER) on the other,
// and compares the two namespaces: definitions, names, dependent objects
// and every row. The server is the oracle for what the ALTER means.
func TestDifferential(t *testing.T) {
	for _, d := range []differ{mysqlDialect{}, pgDialect{dsn: diffPgDSN(t)}} {
		t.Run(d.dir(), func(t *testing.T) {
			t.Parallel()
			cases, err := loadDiffCases(d.casesFile())
			if err != nil {
				t.Fatal(err)
			}
			bin := requireOsc(t)
			if _, ok := d.(pgDialect); ok {
				makeDiffPgDatabase(t)
			}
			admin := d.connectAdmin(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			info, err := d.sessionInfo(ctx, admin)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("plain ALTERs and writes run under %s", info)
			all := os.Getenv("OSC_DIFF_ALL") == "1"
			start := time.Now()
			var (
				wg    sync.WaitGroup
				mu    sync.Mutex
				known []string
			)
			sem := make(chan struct{}, diffParallel)
			for _, c := range cases {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					// Subtests run from several goroutines instead of
					// t.Parallel: the cases wait more than they compute, and
					// -parallel (the number of CPUs) would leave the CPUs idle.
					t.Run(c.name, func(t *testing.T) {
						if !all && !diffInSuite(c.name) {
							t.Skip("not in the suite's half of the cases; OSC_DIFF_ALL=1 (make differential) runs every case")
						}
						if runDiffCase(t, d, admin, bin, c) {
							mu.Lock()
							known = append(known, c.name+": "+c.known)
							mu.Unlock()
						}
					})
				}()
			}
			wg.Wait()
			slices.Sort(known)
			share := "every case (OSC_DIFF_ALL=1)"
			if !all {
				share = "the suite's half (OSC_DIFF_ALL=1 runs every case)"
			}
			t.Logf("%d cases (before -run), %s, in %v; %d known differences among those run:\n  %s", len(cases), share,
				time.Since(start).Round(time.Second), len(known), strings.Join(known, "\n  "))
		})
	}
}

// diffInSuite reports whether the case named name is in the half of the
// cases that the suite (make test) runs, a fixed half by the name's hash: the
// whole corpus, well over a thousand osc runs, would take most of the suite's
// time on its own. make differential (OSC_DIFF_ALL=1) runs every case, as a
// change to the data path must before it lands.
func diffInSuite(name string) bool {
	h := fnv.New32a()
	h.Write([]byte(name))
	return h.Sum32()%2 == 0
}

// diffPgDatabase is the database of the PostgreSQL differential cases, made
// on the sandbox's server when missing: a logical slot decodes every change
// of its database, so the cases' slots would decode the other tests' writes
// in osc_test (full-speed writers among them) and theirs the cases', each
// change once per slot active at the time; changes to another database are
// skipped before they are decoded.
const diffPgDatabase = "osc_diff"

// makeDiffPgDatabase makes diffPgDatabase on the sandbox's server when it is
// missing.
func makeDiffPgDatabase(t *testing.T) {
	admin := connect(t, "PostgreSQL", "pgx", pgDSN())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exists, err := queryBool(ctx, admin, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = '"+diffPgDatabase+"')")
	if err == nil && !exists {
		_, err = admin.ExecContext(ctx, "CREATE DATABASE "+diffPgDatabase)
	}
	if err != nil {
		t.Fatalf("database %s: %v", diffPgDatabase, err)
	}
}

// diffPgDSN is the PostgreSQL connection of the differential test, in
// diffPgDatabase (makeDiffPgDatabase): every session, osc's included, in a
// time zone that is not UTC, has a half-hour offset and daylight saving
// time, so that a conversion done in another zone shows.
func diffPgDSN(t *testing.T) string {
	dsn, err := withDatabase(pgDSN(), diffPgDatabase)
	if err == nil {
		dsn, err = withDSNParam(dsn, "options", "-c TimeZone=America/St_Johns")
	}
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// runDiffCase runs one case and reports whether it is a known difference
// that still differs.
func runDiffCase(t *testing.T, d differ, admin *sql.DB, bin string, c *diffCase) (stillKnown bool) {
	ctx, cancel := context.WithTimeout(context.Background(), diffTimeout)
	defer cancel()
	if c.skipUnless != "" {
		holds, err := queryBool(ctx, admin, c.skipUnless)
		if err != nil {
			t.Fatalf("skip-unless: %v", err)
		}
		if !holds {
			t.Skipf("the server lacks what the case needs (skip-unless: %s)", c.skipUnless)
		}
	}
	plainNS, oscNS := diffPrefix+c.name+"_p", diffPrefix+c.name+"_o"
	plain := diffSetup(ctx, t, d, admin, plainNS, c)
	osc := diffSetup(ctx, t, d, admin, oscNS, c)
	var (
		problems    []string
		startedOver bool
	)
	switch {
	case c.bothRefuse && c.writes != nil:
		problems = runDiffRefusalUnderWrites(ctx, t, d, bin, c, plain, osc, plainNS, oscNS)
	case c.bothRefuse || c.oscRefuses:
		problems = runDiffRefusal(ctx, t, d, bin, c, plain, osc, plainNS, oscNS)
	default:
		problems, startedOver = runDiffMigration(ctx, t, d, bin, c, plain, osc, plainNS, oscNS)
	}

	known := c.known
	if c.knownIf != "" {
		holds, err := queryBool(ctx, plain, c.knownIf)
		if err != nil {
			t.Fatalf("known-if: %v", err)
		}
		if !holds {
			t.Logf("the known mark does not hold here (known-if: %s): the case must compare equal", c.knownIf)
			known = ""
		}
	}
	switch {
	case len(problems) > 0 && known != "":
		t.Logf("known difference (%s), still there:\n%s", known, strings.Join(problems, "\n"))
		stillKnown = true
	case len(problems) > 0:
		t.Errorf("plain ALTER TABLE t %s\nvs osc:\n%s", c.alter, strings.Join(problems, "\n"))
	case known != "" && startedOver:
		// The writes' DDL, committed while osc made its slot, met
		// PostgreSQL's decoding bug, and osc started over from a new
		// shadow once most writes were done: the run the mark describes
		// did not happen.
		t.Logf("equal where a difference is known (%s): osc started the migration over", known)
	case known != "":
		t.Errorf("now equal: remove the known mark (%s)", known)
	}
	if t.Failed() {
		t.Logf("kept %s and %s for inspection", plainNS, oscNS)
		return stillKnown
	}
	for _, ns := range []string{plainNS, oscNS} {
		if err := d.dropNamespace(ctx, admin, ns); err != nil {
			t.Error(err)
		}
	}
	return stillKnown
}

// diffSetup creates ns afresh, runs the case's setup in it and returns a
// connection pool that uses it.
func diffSetup(ctx context.Context, t *testing.T, d differ, admin *sql.DB, ns string, c *diffCase) *sql.DB {
	t.Helper()
	if err := d.resetNamespace(ctx, admin, ns); err != nil {
		t.Fatal(err)
	}
	db, err := d.open(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := execScript(ctx, db, c.setup); err != nil {
		t.Fatalf("setup: %v", err)
	}
	return db
}

// runDiffMigration runs osc under the case's writes, replays them on the
// plain copy, runs the plain ALTER there, lets osc cut over and compares.
// It returns the differences, and whether osc started the migration over
// (PostgreSQL's decoding bug).
func runDiffMigration(ctx context.Context, t *testing.T, d differ, bin string, c *diffCase, plain, osc *sql.DB, plainNS, oscNS string) ([]string, bool) {
	p, plainErr, problems := runDiffUnderWrites(ctx, t, d, bin, c, plain, osc, oscNS)
	defer p.logOutput(t)
	startedOver := p.logged(diffStartedOver)
	switch {
	case plainErr != nil && p.err != nil:
		return append(problems, fmt.Sprintf("both refuse (plain: %v; osc: %s): mark the case both-refuse", plainErr, p.lastErrorLine())), startedOver
	case plainErr != nil:
		return append(problems, fmt.Sprintf("osc succeeded where the server refuses: %v", plainErr)), startedOver
	case p.err != nil:
		return append(problems, fmt.Sprintf("osc failed: %s", p.lastErrorLine())), startedOver
	}
	for _, db := range []*sql.DB{plain, osc} {
		if err := execScript(ctx, db, c.then); err != nil {
			return append(problems, fmt.Sprintf("then: %v", err)), startedOver
		}
	}
	if p.logged(diffChecksumDiffers) {
		// The recopy that followed hid it: the copy and the applier wrote
		// a row differently.
		problems = append(problems, "osc's checksum found the shadow different from the table before it recopied chunks")
	}
	return append(problems, compareStates(ctx, t, d, plain, osc, plainNS, oscNS)...), startedOver
}

// diffCaptureStarted is what osc logs once it captures changes, or once it
// knows it alters the table natively, without a capture: the writer holds
// its later writes until then (diffEarlyWrites).
var diffCaptureStarted = []string{"change capture started", "plan: native"}

// diffStartedOver is what osc logs when it starts a migration over.
const diffStartedOver = "starting the migration over"

// diffChecksumDiffers is what osc logs when its checksum finds chunks that
// differ.
const diffChecksumDiffers = "checksum: chunks differ"

// runDiffUnderWrites runs osc under the case's writes until it postpones
// the cut-over (or exits), replays the writes on the plain copy, runs the
// plain ALTER there and lets osc go on until it exits. It returns osc's run,
// the plain ALTER's error and the problems seen (leftovers included).
func runDiffUnderWrites(ctx context.Context, t *testing.T, d differ, bin string, c *diffCase, plain, osc *sql.DB, oscNS string) (*oscProcess, error, []string) { //nolint:staticcheck // the error is a result (the plain ALTER's), not this function's failure
	w, err := diffWorkload(ctx, d, osc, oscNS, c)
	if err != nil {
		t.Fatal(err)
	}
	baseline, err := leftovers(ctx, d, osc, oscNS, "t", true)
	if err != nil {
		t.Fatal(err)
	}
	flag := filepath.Join(t.TempDir(), "postpone-cut-over")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	capturing := make(chan struct{})
	rec := startRecorder(ctx, t, d, osc, w, c.name, capturing)
	p, err := startOsc(ctx, bin, diffOscArgs(t, d, oscNS, c, "--postpone-cut-over-flag-file", flag))
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	go func() {
		defer close(capturing)
		for !p.outputContainsAny(diffCaptureStarted) {
			select {
			case <-p.done:
				return
			case <-rec.stopCh:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	var problems []string
	var beforeCaughtUp int64
	select {
	case <-p.postponed:
		beforeCaughtUp = rec.n.Load()
		time.Sleep(diffWriteAfter)
	case <-p.done:
	case <-time.After(diffOscTimeout):
		problems = append(problems, fmt.Sprintf("osc did not reach the cut-over within %v", diffOscTimeout))
	}
	writes, err := rec.stop()
	if err != nil {
		problems = append(problems, fmt.Sprintf("a write to the original failed while osc ran: %v", err))
	}
	if len(writes) > 0 {
		t.Logf("%d writes while osc ran (%d before it was caught up), replayed on the plain copy", len(writes), beforeCaughtUp)
	}
	if err := replay(ctx, d, plain, writes); err != nil {
		t.Fatal(err)
	}
	plainErr := execScript(ctx, plain, d.plainAlter(c.alter))

	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(diffOscTimeout):
		problems = append(problems, fmt.Sprintf("osc did not exit within %v of the cut-over's release", diffOscTimeout))
		p.stop()
	}
	return p, plainErr, append(problems, leftoverProblems(ctx, t, d, osc, oscNS, baseline)...)
}

// runDiffRefusalUnderWrites runs a both-refuse case with writes: osc runs
// under them, as in a migration, and must fail; the plain copy, which had
// the same writes and whose ALTER failed, is what osc must leave.
func runDiffRefusalUnderWrites(ctx context.Context, t *testing.T, d differ, bin string, c *diffCase, plain, osc *sql.DB, plainNS, oscNS string) []string {
	p, plainErr, problems := runDiffUnderWrites(ctx, t, d, bin, c, plain, osc, oscNS)
	defer p.logOutput(t)
	if plainErr == nil {
		problems = append(problems, "the plain ALTER succeeds: the case is not both-refuse")
	}
	if p.err == nil {
		return append(problems, "osc succeeded; want a refusal mentioning "+fmt.Sprintf("%q", c.refuseMsg))
	}
	if msg := p.lastErrorLine(); c.refuseMsg != "" && !failureMatches(msg, []string{c.refuseMsg}) {
		problems = append(problems, fmt.Sprintf("osc's error %q does not mention %q", msg, c.refuseMsg))
	}
	for _, diff := range compareStates(ctx, t, d, plain, osc, plainNS, oscNS) {
		problems = append(problems, "osc failed but left the table otherwise than the failed plain ALTER: "+diff)
	}
	return problems
}

// runDiffRefusal runs a case that osc must refuse: osc (without writes)
// must fail as expected and leave the table as it was.
func runDiffRefusal(ctx context.Context, t *testing.T, d differ, bin string, c *diffCase, plain, osc *sql.DB, plainNS, oscNS string) []string {
	before, err := d.state(ctx, osc, oscNS)
	if err != nil {
		t.Fatal(err)
	}
	baseline, err := leftovers(ctx, d, osc, oscNS, "t", true)
	if err != nil {
		t.Fatal(err)
	}
	plainErr := execScript(ctx, plain, d.plainAlter(c.alter))
	p, err := startOsc(ctx, bin, diffOscArgs(t, d, oscNS, c))
	if err != nil {
		t.Fatal(err)
	}
	defer p.logOutput(t)
	defer p.stop()
	select {
	case <-p.done:
	case <-time.After(diffOscTimeout):
		return []string{fmt.Sprintf("osc did not exit within %v; it should have refused", diffOscTimeout)}
	}

	var problems []string
	switch {
	case c.bothRefuse && plainErr == nil:
		problems = append(problems, "the plain ALTER succeeds: the case is not both-refuse")
	case c.oscRefuses && plainErr != nil:
		problems = append(problems, fmt.Sprintf("the server refuses too (%v): mark the case both-refuse", plainErr))
	}
	if p.err == nil {
		if plainErr != nil {
			return append(problems, fmt.Sprintf("osc succeeded where the server refuses: %v", plainErr))
		}
		return append(problems, "osc succeeded; want a refusal mentioning "+fmt.Sprintf("%q", c.refuseMsg))
	}
	if msg := p.lastErrorLine(); c.refuseMsg != "" && !failureMatches(msg, []string{c.refuseMsg}) {
		problems = append(problems, fmt.Sprintf("osc's error %q does not mention %q", msg, c.refuseMsg))
	}
	problems = append(problems, leftoverProblems(ctx, t, d, osc, oscNS, baseline)...)
	after, err := d.state(ctx, osc, oscNS)
	if err != nil {
		t.Fatal(err)
	}
	for _, diff := range diffSections(before, after, oscNS, oscNS) {
		problems = append(problems, "osc failed but changed the table: "+diff)
	}
	return problems
}

func diffOscArgs(t *testing.T, d differ, ns string, c *diffCase, more ...string) []string {
	args, err := d.oscSessionArgs(ns)
	if err != nil {
		t.Fatal(err)
	}
	args = append(args, "--alter", c.alter, "--execute", "--ok-to-drop-table",
		"--chunk-size", diffChunkSize, "--max-lag-millis", "0")
	args = append(args, more...)
	return append(args, c.args...)
}

func leftoverProblems(ctx context.Context, t *testing.T, d differ, db *sql.DB, ns string, baseline []string) []string {
	found, err := leftovers(ctx, d, db, ns, "t", true)
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	for _, f := range found {
		if !slices.Contains(baseline, f) {
			problems = append(problems, "osc left "+f+" behind")
		}
	}
	return problems
}

// compareStates describes both namespaces and returns their differences.
func compareStates(ctx context.Context, t *testing.T, d differ, plain, osc *sql.DB, plainNS, oscNS string) []string {
	// The two descriptions are read at once: each mostly waits on the
	// server (pg_dump, catalog queries).
	var (
		a    []section
		aErr error
		read = make(chan struct{})
	)
	go func() {
		defer close(read)
		a, aErr = d.state(ctx, plain, plainNS)
	}()
	b, err := d.state(ctx, osc, oscNS)
	<-read
	if err = cmp.Or(aErr, err); err != nil {
		t.Fatal(err)
	}
	return diffSections(a, b, plainNS, oscNS)
}

// diffSections compares two descriptions section by section, each
// namespace's name replaced by NS (the one thing that must differ), and
// returns a readable line diff per differing section: "-" lines are the
// plain ALTER's, "+" lines osc's. Nothing else is normalised here: what a
// DBA would see as different (names, validity, options) must stay.
func diffSections(a, b []section, nsA, nsB string) []string {
	norm := func(ss []section, ns string) map[string][]string {
		m := map[string][]string{}
		for _, s := range ss {
			ls := make([]string, len(s.lines))
			for i, l := range s.lines {
				ls[i] = strings.ReplaceAll(l, ns, "NS")
			}
			m[s.name] = ls
		}
		return m
	}
	ma, mb := norm(a, nsA), norm(b, nsB)
	var names []string
	for _, s := range a {
		names = append(names, s.name)
	}
	for _, s := range b {
		if _, ok := ma[s.name]; !ok {
			names = append(names, s.name)
		}
	}
	var out []string
	for _, name := range names {
		if d := lineDiff(ma[name], mb[name], diffMaxLines); d != "" {
			out = append(out, fmt.Sprintf("%s (- plain, + osc):\n%s", name, d))
		}
	}
	return out
}

// lineDiff returns the lines only in a ("- ") and only in b ("+ ") along
// their longest common subsequence, at most max of them, or "" when a and
// b are equal.
func lineDiff(a, b []string, limit int) string {
	if slices.Equal(a, b) {
		return ""
	}
	// lcs[i][j]: the longest common subsequence of a[i:] and b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []string
	n := 0
	add := func(prefix, l string) {
		n++
		if len(out) < limit {
			out = append(out, "  "+prefix+abbreviate(l, 400))
		}
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			i, j = i+1, j+1
		case j < len(b) && (i == len(a) || lcs[i][j+1] >= lcs[i+1][j]):
			add("+ ", b[j])
			j++
		default:
			add("- ", a[i])
			i++
		}
	}
	if n > len(out) {
		out = append(out, fmt.Sprintf("  … %d differing lines in all", n))
	}
	return strings.Join(out, "\n")
}

// diffWorkload returns the writers' workload for the case's table t in ns,
// or nil for none.
func diffWorkload(ctx context.Context, d differ, db *sql.DB, ns string, c *diffCase) (*workload, error) {
	if c.noWrites {
		return nil, nil
	}
	info, err := d.describe(ctx, db, ns, "t")
	if err != nil {
		return nil, err
	}
	if info == nil {
		return nil, errors.New("the setup did not create table t")
	}
	var w *workload
	if c.writes != nil {
		w = customWorkload(c.writes)
	} else if w, err = genericWorkload(d, info); err != nil {
		return nil, fmt.Errorf("%w (or writes: none)", err)
	}
	if err := w.initRange(ctx, db, d, info); err != nil {
		return nil, err
	}
	return w, nil
}

// write is one statement a writer committed, with the rows it changed.
type write struct {
	stmt string
	rows int64
}

// recorder is the one writer of a case: a single connection, so the order
// in which it ran its statements is their commit order.
type recorder struct {
	stopCh chan struct{}
	done   chan struct{}
	n      atomic.Int64 // len(writes), for other goroutines
	writes []write
	err    error
}

// startRecorder starts writing to db with w's templates (nothing when w is
// nil), drawn from a random source seeded by the case's name so that a run
// can be repeated.
func startRecorder(ctx context.Context, t *testing.T, d differ, db *sql.DB, w *workload, name string, capturing <-chan struct{}) *recorder {
	r := &recorder{stopCh: make(chan struct{}), done: make(chan struct{})}
	if w == nil {
		close(r.done)
		return r
	}
	conn, err := db.Conn(ctx)
	if err == nil && d.writerInit() != "" {
		_, err = conn.ExecContext(ctx, d.writerInit())
	}
	if err != nil {
		t.Fatalf("writer connection: %v", err)
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	rng := rand.New(rand.NewPCG(h.Sum64(), 1))
	go func() {
		defer close(r.done)
		defer conn.Close()
		for len(r.writes) < diffMaxWrites {
			if len(r.writes) == diffEarlyWrites {
				select {
				case <-r.stopCh:
					return
				case <-capturing:
				}
			}
			select {
			case <-r.stopCh:
				return
			case <-time.After(time.Duration(rng.Int64N(int64(diffWritePause)))):
			}
			q, n, err := w.execOne(ctx, conn, rng)
			switch {
			case err != nil && d.duplicateKey(err):
				// Fails the same way on the plain copy: not replayed.
			case err != nil:
				r.err = fmt.Errorf("%s: %w", abbreviate(q, 200), err)
				return
			default:
				r.writes = append(r.writes, write{q, n})
				r.n.Add(1)
			}
		}
	}()
	return r
}

// stop stops the writer and returns what it wrote.
func (r *recorder) stop() ([]write, error) {
	select {
	case <-r.stopCh:
	default:
		close(r.stopCh)
	}
	<-r.done
	return r.writes, r.err
}

// replay runs the writes on db in their order, on one connection; each must
// change as many rows as it did on the other copy, or the copies were not
// identical.
func replay(ctx context.Context, d differ, db *sql.DB, writes []write) error {
	if len(writes) == 0 {
		return nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if init := d.writerInit(); init != "" {
		if _, err := conn.ExecContext(ctx, init); err != nil {
			return err
		}
	}
	for i, w := range writes {
		res, err := conn.ExecContext(ctx, w.stmt)
		var n int64
		if err == nil {
			n, err = res.RowsAffected()
		}
		if err != nil {
			return fmt.Errorf("replay write %d %s: %w", i, abbreviate(w.stmt, 200), err)
		}
		if n != w.rows {
			return fmt.Errorf("replay write %d %s: %d rows, %d on the original: the copies were not identical", i, abbreviate(w.stmt, 200), n, w.rows)
		}
	}
	return nil
}

// queryLines runs q and renders each row as "column=value ..." (values
// quoted, NULL bare), in the query's order.
func queryLines(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	out, err := scanRows(ctx, db, q, -1, func(v value) string {
		if v.null {
			return "NULL"
		}
		return strconv.Quote(v.s) // whole: a long value may differ at its end
	}, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", abbreviate(q, 100), err)
	}
	return out, nil
}

// queryBool runs q, which returns one value, and reports whether it is
// true (1, t or true).
func queryBool(ctx context.Context, db *sql.DB, q string) (bool, error) {
	var v sql.NullString
	if err := db.QueryRowContext(ctx, q).Scan(&v); err != nil {
		return false, fmt.Errorf("%s: %w", abbreviate(q, 100), err)
	}
	switch strings.ToLower(v.String) {
	case "1", "t", "true":
		return true, nil
	}
	return false, nil
}

func TestLineDiff(t *testing.T) {
	got := lineDiff([]string{"a", "b", "c", "d"}, []string{"a", "c", "x", "d"}, 10)
	if want := "  - b\n  + x"; got != want {
		t.Fatalf("lineDiff:\n%s\nwant\n%s", got, want)
	}
	if lineDiff([]string{"a"}, []string{"a"}, 10) != "" {
		t.Fatal("equal lines differ")
	}
	if got := lineDiff(nil, []string{"a", "b", "c"}, 2); got != "  + a\n  + b\n  … 3 differing lines in all" {
		t.Fatalf("lineDiff with max 2: %q", got)
	}
}
