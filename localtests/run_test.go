package localtests

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	caseTimeout     = 6 * time.Minute
	postponeTimeout = 2 * time.Minute // from osc's start until it postpones the cut-over
	cutOverTimeout  = 2 * time.Minute // from the flag file's removal until osc exits
	failureTimeout  = 2 * time.Minute // for osc to fail in an expect_failure case
	// writeAfterPostpone: the writers keep going this long once osc is
	// caught up, so that changes reach it in the postponed state too (and
	// longer, until minWrites succeeded while osc ran).
	writeAfterPostpone = 300 * time.Millisecond
	// minWrites is the least number of writes that must succeed while osc
	// runs (before the cut-over): a case cannot pass without load.
	minWrites = 50
	chunkSize = "50" // small chunks: the copy of a few thousand rows overlaps the writes
	maxDiffs  = 20
	logLines  = 60 // osc output lines logged for a failed (or -v) case
)

// postponedMarker is what osc prints once it is caught up and waits for the
// flag file to go.
const postponedMarker = "cut-over postponed"

// runCases runs every case of the dialect as a parallel subtest.
func runCases(t *testing.T, d dialect) {
	cases, err := loadCases(d.dir())
	if err != nil {
		t.Fatal(err)
	}
	bin := requireOsc(t)
	admin := d.connectAdmin(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runCase(t, d, admin, bin, c)
		})
	}
}

// runCase sets up the case's namespace, runs it, and drops the namespace
// when the case passed (a failed case leaves it for inspection).
func runCase(t *testing.T, d dialect, admin *sql.DB, bin string, c *testCase) {
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	ns, db := setupCase(ctx, t, d, admin, c)
	// A leftover is what osc leaves that was not there before it ran (a slot
	// of a concurrent case's osc does not count).
	baseline, err := leftovers(ctx, d, db, ns, c.table, true)
	if err != nil {
		t.Fatal(err)
	}
	args := append(d.oscArgs(ns, c.table), "--alter", c.alter, "--execute", "--chunk-size", chunkSize)
	if c.expectFailure != nil {
		runFailure(ctx, t, d, db, ns, bin, append(args, c.extra...), c, baseline)
	} else {
		runMigration(ctx, t, d, db, ns, bin, args, c, baseline)
	}
	dropCase(ctx, t, d, admin, ns)
}

// setupCase creates the case's namespace afresh and runs its create.sql; it
// returns the namespace and a connection pool that uses it.
func setupCase(ctx context.Context, t *testing.T, d dialect, admin *sql.DB, c *testCase) (string, *sql.DB) {
	t.Helper()
	ns := "osct_" + c.name
	if err := d.resetNamespace(ctx, admin, ns); err != nil {
		t.Fatal(err)
	}
	db, err := d.open(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := execScript(ctx, db, splitSQL(c.create)); err != nil {
		t.Fatalf("create.sql: %v", err)
	}
	return ns, db
}

// dropCase drops the namespace of a passed case; a failed case keeps it for
// inspection.
func dropCase(ctx context.Context, t *testing.T, d dialect, admin *sql.DB, ns string) {
	if t.Failed() {
		t.Logf("kept %s for inspection", ns)
		return
	}
	if err := d.dropNamespace(ctx, admin, ns); err != nil {
		t.Error(err)
	}
}

// runMigration runs osc under load, postpones the cut-over until the
// writers have stopped, and then checks the result.
func runMigration(ctx context.Context, t *testing.T, d dialect, db *sql.DB, ns, bin string, args []string, c *testCase, baseline []string) {
	before, err := d.describe(ctx, db, ns, c.table)
	if err != nil {
		t.Fatal(err)
	}
	if before == nil {
		t.Fatalf("create.sql did not create table %s", c.table)
	}
	if len(before.key) == 0 {
		t.Fatalf("table %s has no PRIMARY KEY or NOT NULL UNIQUE key: nothing to compare rows by", c.table)
	}
	w, err := caseWorkload(ctx, d, db, c, before)
	if err != nil {
		t.Fatal(err)
	}

	flag := filepath.Join(t.TempDir(), "postpone-cut-over")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	args = append(args, "--postpone-cut-over-flag-file", flag)
	args = append(args, c.extra...)

	ws, err := w.start(ctx, db, d)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Stop() //nolint:errcheck // on an early exit; the checked Stop below reports the writers' errors
	okBefore := w.ok.Load()
	osc, err := startOsc(ctx, bin, args)
	if err != nil {
		t.Fatal(err)
	}
	defer osc.logOutput(t)
	defer osc.stop()

	select {
	case <-osc.postponed:
	case <-osc.done:
		t.Fatalf("osc exited before postponing the cut-over: %s", osc.failure())
	case err := <-ws.errs:
		t.Fatalf("a writer failed while osc ran: %v", err)
	case <-time.After(postponeTimeout):
		t.Fatalf("osc did not postpone the cut-over within %v", postponeTimeout)
	}
	copying := w.ok.Load() - okBefore
	if err := ws.keepWriting(w, okBefore, minWrites, writeAfterPostpone); err != nil {
		t.Fatalf("while osc was postponed: %v", err)
	}
	if err := ws.Stop(); err != nil {
		t.Fatalf("a writer failed while osc ran: %v", err)
	}
	during := w.ok.Load() - okBefore
	t.Logf("writes while osc ran: %d successful (%d before it was caught up), %d no-op", during, copying, w.noop.Load())
	if during < minWrites {
		t.Fatalf("only %d writes succeeded while osc ran (want at least %d): the case ran without load", during, minWrites)
	}

	if c.postponed != nil {
		if err := c.postponed(ctx, db, ns); err != nil {
			t.Fatalf("while postponed: %v", err)
		}
	}
	start := time.Now()
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	select {
	case <-osc.done:
	case <-time.After(cutOverTimeout):
		t.Fatalf("osc did not exit within %v of the flag file's removal", cutOverTimeout)
	}
	if osc.err != nil {
		t.Fatalf("osc failed after the flag file's removal: %s", osc.failure())
	}
	t.Logf("cut-over and exit: %v", time.Since(start).Round(time.Millisecond))
	for _, want := range c.wantLog {
		if !osc.logged(want) {
			t.Errorf("osc's log lacks %q", want)
		}
	}
	// The checksum's recopy repairs the shadow: a difference it found
	// would pass the row comparison below and hide a false mismatch of the
	// fingerprint, or a row the applier wrote otherwise than the copy.
	if osc.logged(diffChecksumDiffers) && !slices.Contains(c.wantLog, diffChecksumDiffers) {
		t.Errorf("osc's checksum found chunks that differ (%q in its log) in a run where the shadow was not corrupted", diffChecksumDiffers)
	}

	checkResult(ctx, t, d, db, ns, c, before, baseline)
}

// checkResult compares the old table with the new one and runs the case's
// after.sql and verify.sql.
func checkResult(ctx context.Context, t *testing.T, d dialect, db *sql.DB, ns string, c *testCase, before *tableInfo, baseline []string) {
	_, oldName := d.helperTables(c.table)
	after, err := d.describe(ctx, db, ns, c.table)
	if err != nil {
		t.Fatal(err)
	}
	if after == nil {
		t.Fatalf("table %s does not exist after the cut-over", c.table)
	}
	renamed := func(col string) string {
		if n, ok := c.renamed[col]; ok {
			return n
		}
		return col
	}
	var key, cols []colPair
	for _, k := range before.key {
		key = append(key, colPair{k, renamed(k)})
	}
	for _, col := range before.columns {
		p := colPair{col.name, renamed(col.name)}
		if c.ignore[p.old] || c.ignore[p.new] || after.column(p.new) == nil {
			continue
		}
		cols = append(cols, p)
	}
	for old, n := range c.renamed {
		if before.column(old) == nil || after.column(n) == nil {
			t.Errorf("renamed %s → %s: want the column in the old table and its new name in the new one", old, n)
		}
	}
	cmp, err := compareTables(ctx, db, d, oldName, c.table, key, cols, maxDiffs)
	if err != nil {
		t.Fatal(err)
	}
	for _, diff := range cmp.diffs {
		t.Error(diff)
	}
	if cmp.total > len(cmp.diffs) {
		t.Errorf("… %d differences in all", cmp.total)
	}
	t.Logf("compared %d old and %d new rows on %d columns", cmp.oldRows, cmp.newRows, len(cols))

	checkLeftovers(ctx, t, d, db, ns, c.table, false, baseline)
	if c.plainAlter {
		checkPlainAlter(ctx, t, d, db, ns, c)
	}

	if err := execScript(ctx, db, c.after); err != nil {
		t.Errorf("after.sql: %v", err)
	}
	for _, q := range c.verify {
		rows, err := queryRows(ctx, db, q, 3)
		switch {
		case err != nil:
			t.Errorf("verify.sql: %s: %v", q, err)
		case len(rows) > 0:
			t.Errorf("verify.sql: %s: returned rows, first %s", q, strings.Join(rows, "; "))
		}
	}
}

// runFailure runs osc on a case it must refuse, and checks that it named the
// reason and left everything as it was.
func runFailure(ctx context.Context, t *testing.T, d dialect, db *sql.DB, ns, bin string, args []string, c *testCase, baseline []string) {
	before, err := snapshot(ctx, d, db, ns, c.table)
	if err != nil {
		t.Fatal(err)
	}
	osc, err := startOsc(ctx, bin, args)
	if err != nil {
		t.Fatal(err)
	}
	defer osc.logOutput(t)
	defer osc.stop()
	select {
	case <-osc.done:
	case <-time.After(failureTimeout):
		t.Fatalf("osc did not exit within %v (it should have refused: %q)", failureTimeout, c.expectFailure)
	}
	if osc.err == nil {
		t.Fatalf("osc succeeded; want a failure mentioning one of %q", c.expectFailure)
	}
	if msg := osc.lastErrorLine(); !failureMatches(msg, c.expectFailure) {
		t.Errorf("osc error %q mentions none of %q", msg, c.expectFailure)
	}
	checkLeftovers(ctx, t, d, db, ns, c.table, true, baseline)
	after, err := snapshot(ctx, d, db, ns, c.table)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("osc failed but changed table %s:\nbefore: %s\n after: %s", c.table, before, after)
	}
}

// snapshot describes a table's columns and row count, or says it is absent.
func snapshot(ctx context.Context, d dialect, db *sql.DB, ns, table string) (string, error) {
	info, err := d.describe(ctx, db, ns, table)
	if err != nil || info == nil {
		return "absent", err
	}
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+d.quote(table)).Scan(&n); err != nil {
		return "", fmt.Errorf("count %s: %w", table, err)
	}
	var cols []string
	for _, c := range info.columns {
		cols = append(cols, c.name+" "+c.typ)
	}
	return fmt.Sprintf("%d rows; columns %s; key %v", n, strings.Join(cols, ", "), info.key), nil
}

func checkLeftovers(ctx context.Context, t *testing.T, d dialect, db *sql.DB, ns, table string, withOld bool, baseline []string) {
	t.Helper()
	found, err := leftovers(ctx, d, db, ns, table, withOld)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		if !slices.Contains(baseline, f) {
			t.Errorf("osc left %s behind", f)
		}
	}
}

// execScript runs statements in order on one connection.
func execScript(ctx context.Context, db *sql.DB, stmts []string) error {
	if len(stmts) == 0 {
		return nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", abbreviate(s, 300), err)
		}
	}
	return nil
}

// queryRows returns up to max rows of q, each rendered as one string.
func queryRows(ctx context.Context, db *sql.DB, q string, max int) ([]string, error) {
	return scanRows(ctx, db, q, max, func(v value) string { return v.String() })
}

// scanRows runs q and renders up to max rows (max < 0: all) as
// "column=value ...", each value rendered by render.
func scanRows(ctx context.Context, db *sql.DB, q string, max int, render func(value) string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	raw := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	var out []string
	for (max < 0 || len(out) < max) && rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		parts := make([]string, len(raw))
		for i, r := range raw {
			parts[i] = cols[i] + "=" + render(toValue(r))
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out, rows.Err()
}

// preflightSample caches, per osc binary, whether it has --preflight-sample
// (an OSC_BIN older than the flag has not).
var preflightSample sync.Map

func knowsPreflightSample(bin string) bool {
	if v, ok := preflightSample.Load(bin); ok {
		return v.(bool)
	}
	out, _ := exec.Command(bin, "--help").CombinedOutput()
	knows := bytes.Contains(out, []byte("--preflight-sample"))
	preflightSample.Store(bin, knows)
	return knows
}

// oscProcess is a running osc.
type oscProcess struct {
	args      []string
	out       *output
	postponed <-chan struct{} // closed when osc prints postponedMarker
	done      chan struct{}   // closed when osc has exited; err is then set
	err       error
	cancel    context.CancelFunc
	proc      *os.Process
}

func startOsc(ctx context.Context, bin string, args []string) (*oscProcess, error) {
	if !slices.Contains(args, "--strategy") {
		// The tests are of the copy; the native path's say so.
		args = append(slices.Clip(args), "--strategy", "copy")
	}
	if !slices.Contains(args, "--preflight-sample") && knowsPreflightSample(bin) {
		// The preflight report's write sample would add 2 s to every run.
		args = append(slices.Clip(args), "--preflight-sample", "0")
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, bin, args...)
	// Stopped early (a failed case), osc gets SIGTERM and time to clean up.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	out := &output{postponed: make(chan struct{})}
	cmd.Stdout = out.writer(&out.stdout)
	cmd.Stderr = out.writer(&out.stderr)
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start osc: %w", err)
	}
	p := &oscProcess{args: args, out: out, postponed: out.postponed, done: make(chan struct{}), cancel: cancel, proc: cmd.Process}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// signal sends sig to osc.
func (p *oscProcess) signal(sig os.Signal) error {
	return p.proc.Signal(sig)
}

// exitCode is osc's exit status once it has exited (-1 when a signal
// killed it).
func (p *oscProcess) exitCode() int {
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return exit.ExitCode()
	}
	if p.err != nil {
		return -1
	}
	return 0
}

// stop terminates osc if it still runs, and waits for it.
func (p *oscProcess) stop() {
	p.cancel()
	<-p.done
}

// lastErrorLine is the last non-empty line of osc's stderr: its error.
func (p *oscProcess) lastErrorLine() string {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	ls := lines(p.out.stderr.String())
	if len(ls) == 0 {
		return ""
	}
	return ls[len(ls)-1]
}

// logged reports whether osc's stderr contains s.
func (p *oscProcess) logged(s string) bool {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	return strings.Contains(p.out.stderr.String(), s)
}

func (p *oscProcess) failure() string {
	return fmt.Sprintf("%v: %s", p.err, p.lastErrorLine())
}

// logOutput logs the command line and the tail of osc's output when the
// test failed or runs with -v.
func (p *oscProcess) logOutput(t *testing.T) {
	if !t.Failed() && !testing.Verbose() {
		return
	}
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	quoted := make([]string, len(p.args))
	for i, a := range p.args {
		quoted[i] = a
		if strings.ContainsAny(a, " '\"") || a == "" {
			quoted[i] = strconv.Quote(a)
		}
	}
	t.Logf("osc %s\nstdout:%s\nstderr:%s", strings.Join(quoted, " "), tail(p.out.stdout.String(), logLines), tail(p.out.stderr.String(), logLines))
}

// tail returns the last n lines of s, indented, noting how many it left out.
func tail(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) == 1 && ls[0] == "" {
		return " (none)"
	}
	head := ""
	if len(ls) > n {
		head = fmt.Sprintf("\n  … %d lines", len(ls)-n)
		ls = ls[len(ls)-n:]
	}
	return head + "\n  " + strings.Join(ls, "\n  ")
}

// output collects osc's stdout and stderr and closes postponed at the first
// postponedMarker on either.
type output struct {
	mu             sync.Mutex
	stdout, stderr bytes.Buffer
	postponed      chan struct{}
	seen           bool
}

func (o *output) writer(b *bytes.Buffer) *streamWriter { return &streamWriter{o: o, b: b} }

type streamWriter struct {
	o *output
	b *bytes.Buffer
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.o.mu.Lock()
	defer w.o.mu.Unlock()
	from := max(0, w.b.Len()-len(postponedMarker))
	w.b.Write(p)
	if !w.o.seen && bytes.Contains(w.b.Bytes()[from:], []byte(postponedMarker)) {
		w.o.seen = true
		close(w.o.postponed)
	}
	return len(p), nil
}
