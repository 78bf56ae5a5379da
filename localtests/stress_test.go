package localtests

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The stress cases: writers at full speed (no pause between transactions)
// that keep writing through the cut-over and after osc exits, and a control
// table that every transaction changes exactly as it changes the migrated
// table. See README.md, "Stress cases".
const (
	// stressWriters is the number of writer connections: on 2 cores, more
	// full-speed writers make changes faster than osc's single applier
	// session applies them, and osc never catches up (a variant can ask for
	// fewer: stressVariant.writers).
	stressWriters   = 2
	stressChunkSize = "200"
	// stressAfterExit: the writers go on this long after osc exited, on the
	// new table.
	stressAfterExit = 2 * time.Second
	// stressOscTimeout is the longest osc may take, from its start to its exit.
	stressOscTimeout = 2 * time.Minute
	// stressLockTimeout is the writers' lock wait timeout: a writer that waits
	// this long fails the run (osc may hold writers for milliseconds).
	stressLockTimeout = 10
	// stressMinTx is the least number of writer transactions that must commit
	// while osc runs: a run without load proves nothing.
	stressMinTx  = 500
	controlTable = "t_ctl"
)

// The int_pk variants' table t, 20,000 rows, and its control table t_ctl.
const (
	mysqlIntPKTable = `CREATE TABLE t (id INT NOT NULL PRIMARY KEY, n INT NOT NULL, s VARCHAR(100) NOT NULL, d DATETIME(6) NULL, KEY idx_n (n)) ENGINE=InnoDB;
INSERT INTO t SELECT seq, seq % 1000, MD5(seq), IF(seq % 7 = 0, NULL, '2026-01-01' + INTERVAL seq SECOND) FROM seq_1_to_25000 WHERE seq % 5 <> 0;
CREATE TABLE t_ctl LIKE t;
INSERT INTO t_ctl SELECT * FROM t;`
	pgIntPKTable = `CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL, s text NOT NULL, d timestamptz);
CREATE INDEX t_n_idx ON t (n);
INSERT INTO t SELECT g, g % 1000, md5(g::text), CASE WHEN g % 7 <> 0 THEN '2026-01-01'::timestamptz + g * interval '1 second' END FROM generate_series(1, 25000) g WHERE g % 5 <> 0;
CREATE TABLE t_ctl (LIKE t INCLUDING ALL);
INSERT INTO t_ctl SELECT * FROM t;`
)

// stressVariant is one table shape under the stress load.
type stressVariant struct {
	name   string
	create string // creates and seeds t, then the control table t_ctl with the same rows
	alter  string
	key    string   // the chunking key: the primary key, or a NOT NULL UNIQUE key
	cols   []string // the other columns the writers set: n int, s string, d time
	// big is a column the writers never change: in a key change or an
	// update it reaches osc as an unchanged (PostgreSQL: TOASTed) value.
	big string
	// unique, if set, is a nullable column with a UNIQUE index of its own
	// whose values the writers move between rows (see stress_unique_test.go).
	unique string
	// dupPairs: the writers also hold a value of unique twice for a
	// moment, between two commits (see stress_unique_mysql_test.go).
	dupPairs bool
	// writers, if set, replaces stressWriters.
	writers int
	// pause, if set, is a pause after each writer transaction: for a load
	// osc applies more slowly than a writer at full speed makes it.
	pause time.Duration
	extra []string // more osc flags, after the database's
	// transient, if set, is for how many of its transactions after the copy
	// started each writer makes transient duplicates in the unique column
	// (see stress_unique_pg_test.go).
	transient int
}

// stressTarget is a database the stress cases run on.
type stressTarget struct {
	d dialect
	// open connects to ns on a pool whose connections accept several
	// statements in one Exec (one round trip per writer transaction).
	open func(ns string) (*sql.DB, error)
	// writerInit is run once on each writer connection.
	writerInit []string
	// copyRow is an UPDATE that sets cols of row dst to their values in row
	// src; {T} is the table, {K} the key column.
	copyRow  func(cols []string, src, dst int64) string
	extra    []string // more osc flags
	variants []stressVariant
}

// stressCopyThreads is the --copy-threads of the variants named
// <variant>_threads, which run these variants with chunks copied at once:
// OSC_STRESS_COPY_THREADS, else 2.
func stressCopyThreads() string {
	return cmp.Or(os.Getenv("OSC_STRESS_COPY_THREADS"), "2")
}

// threadedVariants returns the variants of vs named in names, renamed
// <name>_threads and run with --copy-threads stressCopyThreads().
func threadedVariants(vs []stressVariant, names ...string) []stressVariant {
	var out []stressVariant
	for _, v := range vs {
		if slices.Contains(names, v.name) {
			v.name += "_threads"
			v.extra = append(slices.Clip(v.extra), "--copy-threads", stressCopyThreads())
			out = append(out, v)
		}
	}
	return out
}

// stressTargets returns the variants with their <variant>_threads twins:
// in the suite (OSC_STRESS_RUNS unset) the twins of the key-changing and
// clashing ones only, which keeps the suite within its time; in stress runs
// (make stress) those of every variant below.
func stressTargets() []stressTarget {
	threaded := []string{"int_pk", "unique_moves"}
	if os.Getenv("OSC_STRESS_RUNS") != "" {
		threaded = append(threaded, "widen_pk", "toast", "unique_new")
	}
	ts := stressBaseTargets()
	for i := range ts {
		ts[i].variants = append(ts[i].variants, threadedVariants(ts[i].variants, threaded...)...)
	}
	return ts
}

func stressBaseTargets() []stressTarget {
	my := mysqlDialect{}
	pg := pgDialect{dsn: pgDSN()}
	return []stressTarget{
		{
			d: my,
			open: func(ns string) (*sql.DB, error) {
				cfg := mysqlConfig(ns)
				cfg.MultiStatements = true
				return sql.Open("mysql", cfg.FormatDSN())
			},
			writerInit: []string{
				"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
				fmt.Sprintf("SET SESSION innodb_lock_wait_timeout = %d, lock_wait_timeout = %d", stressLockTimeout, stressLockTimeout),
			},
			copyRow: func(cols []string, src, dst int64) string {
				set := make([]string, len(cols))
				for i, c := range cols {
					set[i] = fmt.Sprintf("dst.%s = src.%s", c, c)
				}
				return fmt.Sprintf("UPDATE {T} AS dst JOIN {T} AS src ON src.{K} = %d SET %s WHERE dst.{K} = %d", src, strings.Join(set, ", "), dst)
			},
			extra: []string{"--max-lag-millis", "0"},
			variants: append([]stressVariant{
				{
					name:   "int_pk",
					create: mysqlIntPKTable,
					alter:  "ADD COLUMN extra INT NULL, ENGINE=InnoDB",
					key:    "id", cols: []string{"n", "s", "d"},
				},
				{
					name: "unique_key",
					create: `CREATE TABLE t (uk INT NOT NULL, n INT NOT NULL, s VARCHAR(100) NOT NULL, d DATETIME(6) NULL, UNIQUE KEY uk (uk)) ENGINE=InnoDB;
INSERT INTO t SELECT seq, seq % 1000, MD5(seq), IF(seq % 7 = 0, NULL, '2026-01-01' + INTERVAL seq SECOND) FROM seq_1_to_25000 WHERE seq % 5 <> 0;
CREATE TABLE t_ctl LIKE t;
INSERT INTO t_ctl SELECT * FROM t;`,
					alter: "MODIFY n BIGINT NOT NULL, MODIFY s VARCHAR(200) NOT NULL",
					key:   "uk", cols: []string{"n", "s", "d"},
				},
				{
					// The key widened: osc copies by id and tells the new
					// table's rows apart by (id, n), whose n the writers
					// change all the time.
					name:   "widen_pk",
					create: mysqlIntPKTable,
					alter:  "DROP PRIMARY KEY, ADD PRIMARY KEY (id, n)",
					key:    "id", cols: []string{"n", "s", "d"},
				},
			}, mysqlUniqueVariants()...),
		},
		{
			d:    pg,
			open: pg.open,
			writerInit: []string{
				fmt.Sprintf("SET lock_timeout = '%ds'", stressLockTimeout),
			},
			copyRow: func(cols []string, src, dst int64) string {
				set := make([]string, len(cols))
				for i, c := range cols {
					set[i] = fmt.Sprintf("%s = src.%s", c, c)
				}
				return fmt.Sprintf("UPDATE {T} AS dst SET %s FROM {T} AS src WHERE src.{K} = %d AND dst.{K} = %d", strings.Join(set, ", "), src, dst)
			},
			// The slot retains all the server's WAL since osc's last
			// acknowledgement, including what concurrent tests write.
			extra: []string{"--max-lag-millis", "0", "--max-retained-wal", "64GB"},
			variants: append([]stressVariant{
				{
					name:   "int_pk",
					create: pgIntPKTable,
					alter:  "ADD COLUMN extra int",
					key:    "id", cols: []string{"n", "s", "d"},
				},
				{
					name: "unique_key",
					create: `CREATE TABLE t (uk int NOT NULL, n int NOT NULL, s varchar(100) NOT NULL, d timestamptz, CONSTRAINT t_uk UNIQUE (uk));
ALTER TABLE t REPLICA IDENTITY USING INDEX t_uk;
INSERT INTO t SELECT g, g % 1000, md5(g::text), CASE WHEN g % 7 <> 0 THEN '2026-01-01'::timestamptz + g * interval '1 second' END FROM generate_series(1, 25000) g WHERE g % 5 <> 0;
CREATE TABLE t_ctl (LIKE t INCLUDING ALL);
INSERT INTO t_ctl SELECT * FROM t;`,
					alter: "ALTER COLUMN n TYPE bigint, ALTER COLUMN s TYPE text",
					key:   "uk", cols: []string{"n", "s", "d"},
				},
				{
					// The key widened: osc copies by id and tells the new
					// table's rows apart by (id, n), whose n the writers
					// change all the time; the replica identity (FULL)
					// carries n in every old row.
					name:   "widen_pk",
					create: pgIntPKTable + "\nALTER TABLE t REPLICA IDENTITY FULL;",
					alter:  "DROP CONSTRAINT t_pkey, ADD PRIMARY KEY (id, n)",
					key:    "id", cols: []string{"n", "s", "d"},
				},
				{
					// Every 20th row holds 12,800 bytes of hex digits (md5
					// concatenations: incompressible for pglz), stored out of line.
					name: "toast",
					create: `CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL, s text NOT NULL, d timestamptz, big text);
ALTER TABLE t ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO t SELECT g, g % 1000, md5(g::text), CASE WHEN g % 7 <> 0 THEN '2026-01-01'::timestamptz + g * interval '1 second' END,
  CASE WHEN g % 20 = 0 THEN (SELECT string_agg(md5(random()::text || g || x), '') FROM generate_series(1, 400) x) END
FROM generate_series(1, 25000) g WHERE g % 5 <> 4;
CREATE TABLE t_ctl (LIKE t INCLUDING ALL);
INSERT INTO t_ctl SELECT * FROM t;`,
					alter: "ADD COLUMN extra int",
					key:   "id", cols: []string{"n", "s", "d"}, big: "big",
					// osc applies a key change of a row whose big value arrives
					// "unchanged" (one transaction each, after reading the
					// source) more slowly than a writer at full speed makes
					// them: the cut-over then blocks writes until the applier
					// has settled (engine settleBlocked). Unpaced, 3 runs of 3
					// passed under CPU contention (1,850-2,400 transactions/s,
					// osc 5-55 s, the longest write 2 s).
					writers: 1,
					// Smaller chunks: the copy lasts long enough for the
					// writer to race it.
					extra: []string{"--chunk-size", "50"},
				},
			}, append(pgUniqueVariants(), pgTransientVariants()...)...),
		},
	}
}

// stressTally counts the runs of one database and variant.
type stressTally struct {
	name          string
	runs, failed  int
	failures      []string // one line per failed run
	transactions  int64
	oscDurations  time.Duration
	longestWriter time.Duration
}

// TestStress runs every stress variant on both databases: once in the normal
// suite, OSC_STRESS_RUNS times each with that variable set, under CPU
// contention (busy loops on every core) with OSC_STRESS_CPU=1. It ends with
// the number of runs and failed runs per database and variant.
func TestStress(t *testing.T) {
	runs := 1
	if v := os.Getenv("OSC_STRESS_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("OSC_STRESS_RUNS=%q: want a positive number", v)
		}
		runs = n
	}
	if os.Getenv("OSC_STRESS_CPU") == "1" {
		stopBusy := busyLoops(t, runtime.NumCPU())
		defer stopBusy()
	}
	var tallies []*stressTally
	defer func() {
		var b strings.Builder
		for _, ty := range tallies {
			if ty.runs == 0 {
				continue
			}
			fmt.Fprintf(&b, "\n  %-20s %3d runs, %3d failed", ty.name, ty.runs, ty.failed)
			if ok := ty.runs - ty.failed; ok > 0 {
				fmt.Fprintf(&b, "  (per run: %d writer transactions, osc %v; longest writer transaction %v)",
					ty.transactions/int64(ty.runs), (ty.oscDurations / time.Duration(ty.runs)).Round(time.Millisecond),
					ty.longestWriter.Round(time.Millisecond))
			}
			for _, f := range ty.failures {
				b.WriteString("\n      " + f)
			}
		}
		if b.Len() > 0 {
			t.Logf("stress runs / failed runs:%s", b.String())
		}
	}()
	for _, target := range stressTargets() {
		t.Run(target.d.dir(), func(t *testing.T) {
			bin := requireOsc(t)
			admin := target.d.connectAdmin(t)
			for _, v := range target.variants {
				ty := &stressTally{name: target.d.dir() + "/" + v.name}
				tallies = append(tallies, ty)
				t.Run(v.name, func(t *testing.T) {
					for i := 1; i <= runs; i++ {
						ns := "osct_stress_" + v.name
						name := "run"
						if runs > 1 {
							ns += fmt.Sprintf("_r%d", i)
							name = fmt.Sprintf("run_%03d", i)
						}
						var res stressResult
						ok := t.Run(name, func(t *testing.T) {
							res = runStress(t, target, v, admin, bin, ns)
						})
						ty.runs++
						ty.transactions += res.transactions
						ty.oscDurations += res.oscDuration
						ty.longestWriter = max(ty.longestWriter, res.longest)
						if !ok {
							ty.failed++
							ty.failures = append(ty.failures, fmt.Sprintf("%s: %s (kept %s)", name, res.summary(), ns))
						}
					}
				})
			}
		})
	}
}

// stressResult is what one run measured and what was wrong.
type stressResult struct {
	transactions int64
	oscDuration  time.Duration
	longest      time.Duration // the longest writer transaction
	problems     []string
}

// summary is the first line of each problem (the log has the rest).
func (r stressResult) summary() string {
	if len(r.problems) == 0 {
		return "failed before the comparison (see its log)"
	}
	firsts := make([]string, len(r.problems))
	for i, p := range r.problems {
		firsts[i], _, _ = strings.Cut(p, "\n")
	}
	return strings.Join(firsts, "; ")
}

// runStress runs one stress case in namespace ns and reports what went wrong
// as test errors (and in the result's problems).
func runStress(t *testing.T, target stressTarget, v stressVariant, admin *sql.DB, bin, ns string) (res stressResult) {
	d := target.d
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	problem := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		res.problems = append(res.problems, msg)
		t.Error(msg)
	}

	if err := d.resetNamespace(ctx, admin, ns); err != nil {
		t.Fatal(err)
	}
	db, err := target.open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxIdleConns(8)
	if err := execScript(ctx, db, splitSQL(v.create)); err != nil {
		t.Fatalf("create: %v", err)
	}
	info, err := d.describe(ctx, db, ns, controlTable)
	if err != nil || info == nil {
		t.Fatalf("describe %s: %v (exists: %t)", controlTable, err, info != nil)
	}
	baseline, err := leftovers(ctx, d, db, ns, "t", true)
	if err != nil {
		t.Fatal(err)
	}

	ws, err := startStressWriters(ctx, target, v, db)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.stop()
	time.Sleep(200 * time.Millisecond) // the load is running when osc starts
	txBefore := ws.committed.Load()

	// The cut-over waits until the writers have committed stressMinTx
	// transactions while osc ran: a fast osc would otherwise finish before
	// the load it is tested under.
	postpone := filepath.Join(t.TempDir(), "postpone-cut-over")
	if err := os.WriteFile(postpone, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		for (ws.committed.Load()-txBefore < stressMinTx || ws.transient()) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		// A variant's transient duplicates end before the cut-over may
		// come: one still held when it blocks writes is one the table holds.
		ws.calm.Store(true)
		for ws.calmed.Load() < int64(len(ws.writers)) && ctx.Err() == nil && !ws.failed() {
			time.Sleep(10 * time.Millisecond)
		}
		_ = os.Remove(postpone) // a failure leaves osc postponed: the run times out, named
	}()
	args := append(d.oscArgs(ns, "t"), "--alter", v.alter, "--execute", "--chunk-size", stressChunkSize,
		"--postpone-cut-over-flag-file", postpone)
	args = append(args, target.extra...)
	args = append(args, v.extra...)
	start := time.Now()
	osc, err := startOsc(ctx, bin, args)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			osc.logOutput(t)
		}
	}()
	defer osc.stop()
	oscOK := false
	select {
	case <-osc.done:
		res.oscDuration = time.Since(start)
		if osc.err != nil {
			problem("osc failed: %s", osc.failure())
		} else {
			oscOK = true
		}
	case <-time.After(stressOscTimeout):
		res.oscDuration = stressOscTimeout
		problem("osc did not finish within %v", stressOscTimeout)
		osc.stop()
	}
	during := ws.committed.Load() - txBefore
	if oscOK {
		time.Sleep(stressAfterExit)
	}
	for _, e := range ws.stop() {
		when := fmt.Sprintf("%v after osc started", e.at.Sub(start).Round(time.Millisecond))
		if oscOK && e.at.Sub(start) > res.oscDuration {
			when = fmt.Sprintf("%v after osc exited", (e.at.Sub(start) - res.oscDuration).Round(time.Millisecond))
		}
		problem("writer error %s: %v", when, e.err)
	}
	res.transactions = ws.committed.Load()
	res.longest = ws.longest()
	t.Logf("osc %v; writer transactions: %d in all, %d while osc ran (%.0f/s), longest %v",
		res.oscDuration.Round(time.Millisecond), res.transactions, during, float64(during)/max(res.oscDuration, time.Millisecond).Seconds(),
		res.longest.Round(time.Millisecond))
	if during < stressMinTx {
		problem("only %d writer transactions committed while osc ran (want at least %d): the run had no load", during, stressMinTx)
	}
	if !oscOK {
		return res
	}
	// Under full-speed writes the checksum must find no difference: its
	// recopy would repair the shadow before the comparison below.
	if osc.logged(diffChecksumDiffers) {
		problem("osc's checksum found chunks that differ (%q in its log): a false mismatch, or a row the applier or the copy wrote otherwise", diffChecksumDiffers)
	}

	// The control table is the "old" side: missing in new means a row the
	// migrated table lost, extra in new one it should not have.
	var key, cols []colPair
	for _, c := range info.columns {
		if c.name == v.key {
			key = append(key, colPair{c.name, c.name})
		} else {
			cols = append(cols, colPair{c.name, c.name})
		}
	}
	c, err := compareTables(ctx, db, d, controlTable, "t", key, cols, maxDiffs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compared %d control rows with %d rows of the migrated table", c.oldRows, c.newRows)
	if c.total > 0 {
		t.Errorf("the migrated table t (new) differs from the control table %s (old):", controlTable)
		for _, diff := range c.diffs {
			t.Error("  " + diff)
		}
		problem("%d differences (%s)", c.total, diffKinds(c.diffs))
	}
	checkLeftovers(ctx, t, d, db, ns, "t", false, baseline)
	if !t.Failed() {
		if err := d.dropNamespace(ctx, admin, ns); err != nil {
			t.Error(err)
		}
	}
	return res
}

// diffKinds counts the comparer's differences by kind.
func diffKinds(diffs []string) string {
	var missing, extra, differs int
	for _, d := range diffs {
		switch {
		case strings.HasPrefix(d, "missing"):
			missing++
		case strings.HasPrefix(d, "extra"):
			extra++
		default:
			differs++
		}
	}
	return fmt.Sprintf("of the first %d: %d missing, %d extra, %d with other values", len(diffs), missing, extra, differs)
}

// busyLoops starts n processes that spin on the CPU and returns a function
// that kills them.
func busyLoops(t *testing.T, n int) func() {
	var procs []*exec.Cmd
	stop := func() {
		for _, p := range procs {
			// Killed, the loop exits with an error; a loop that already
			// died has nothing left to stop.
			_ = p.Process.Kill()
			_ = p.Wait()
		}
		procs = nil
	}
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		dieWithTest(cmd)
		if err := cmd.Start(); err != nil {
			stop()
			t.Fatalf("start a busy loop: %v", err)
		}
		procs = append(procs, cmd)
	}
	return stop
}

// keySet is a set of keys with a uniform random pick.
type keySet struct {
	keys []int64
	pos  map[int64]int
}

func newKeySet() *keySet { return &keySet{pos: map[int64]int{}} }

func (s *keySet) has(k int64) bool { _, ok := s.pos[k]; return ok }
func (s *keySet) len() int         { return len(s.keys) }

func (s *keySet) add(k int64) {
	if !s.has(k) {
		s.pos[k] = len(s.keys)
		s.keys = append(s.keys, k)
	}
}

func (s *keySet) remove(k int64) {
	i, ok := s.pos[k]
	if !ok {
		return
	}
	last := s.keys[len(s.keys)-1]
	s.keys[i] = last
	s.pos[last] = i
	s.keys = s.keys[:len(s.keys)-1]
	delete(s.pos, k)
}

func (s *keySet) random(rng *rand.Rand) int64 { return s.keys[rng.IntN(len(s.keys))] }

// stressWriter owns the keys k with k mod of = id: it alone
// inserts, changes and deletes them, so it knows which exist and can pick a
// free key that no other writer can take. A duplicate key is therefore never
// the writers' doing, and neither is a row that changes between the
// statement on t and the same statement on t_ctl.
type stressWriter struct {
	id, of  int64 // this writer's number, of that many
	v       stressVariant
	target  stressTarget
	rng     *rand.Rand
	own     *keySet // keys of rows that exist
	big     *keySet // those that hold a big value
	lo, hi  int64   // bounds of the keys this writer has used
	size    int     // the number of rows to hover around
	touched map[int64]bool
	uniq    uniqueValues // with v.unique: the value each of its rows holds there
	useq    int          // the number of fresh unique values it made
	calm    bool         // it makes no transient duplicates (stressLoad.calm)
	// With v.transient: its duplicates (see stress_unique_pg_test.go).
	dup transientDup
}

// change is one statement of a transaction, {T} standing for the table.
type change struct {
	order int64 // the smallest key it writes
	stmt  string
}

func (w *stressWriter) owns(k int64) bool {
	return ((k%w.of)+w.of)%w.of == w.id
}

// align returns the key this writer owns nearest to k, at or above it.
func (w *stressWriter) align(k int64) int64 {
	for !w.owns(k) {
		k++
	}
	return k
}

// free reports whether k can be written in this transaction as a new key.
func (w *stressWriter) free(k int64) bool { return !w.own.has(k) && !w.touched[k] }

// Which rows pickExisting picks from.
const (
	anyRow    = iota
	bigRow    // a row with a big value, if there are some
	notBigRow // a row without (one that may be deleted)
)

// halfBig picks a big row half the time.
func (w *stressWriter) halfBig() int {
	if w.rng.IntN(2) == 0 {
		return bigRow
	}
	return anyRow
}

// pickExisting returns an existing key not yet touched by this transaction.
func (w *stressWriter) pickExisting(which int) (int64, bool) {
	set := w.own
	if which == bigRow && w.big.len() > 0 {
		set = w.big
	}
	for range 5 {
		if set.len() == 0 {
			return 0, false
		}
		if k := set.random(w.rng); !w.touched[k] && !(which == notBigRow && w.big.has(k)) {
			return k, true
		}
	}
	return 0, false
}

// newKey picks a free key: below the lowest (a quarter of the time), in a
// hole between the lowest and the highest (half), or above the highest.
func (w *stressWriter) newKey() int64 {
	switch w.rng.IntN(4) {
	case 0:
		w.lo = w.align(w.lo - w.of*(1+w.rng.Int64N(3)))
		for !w.free(w.lo) {
			w.lo -= w.of
		}
		return w.lo
	case 1, 2:
		for range 10 {
			k := w.align(w.lo + w.rng.Int64N(w.hi-w.lo+1))
			if k <= w.hi && w.free(k) {
				return k
			}
		}
	}
	w.hi = w.align(w.hi + 1 + w.rng.Int64N(3*w.of))
	for !w.free(w.hi) {
		w.hi += w.of
	}
	return w.hi
}

// run returns the next consecutive existing keys from k on (k included),
// at most n, none touched by this transaction, and without the big rows
// when notBig is set.
func (w *stressWriter) run(k int64, n int, notBig bool) []int64 {
	var keys []int64
	for step := 0; len(keys) < n && step < 4*n; step++ {
		c := k + int64(step)*w.of
		if w.touched[c] {
			break
		}
		if w.own.has(c) && !(notBig && w.big.has(c)) {
			keys = append(keys, c)
		}
	}
	return keys
}

func (w *stressWriter) literal(col string) string {
	switch col {
	case "n":
		return strconv.Itoa(w.rng.IntN(1_000_000))
	case "s":
		return fmt.Sprintf("'w%d-%x'", w.id, w.rng.Uint64())
	default: // d
		if w.rng.IntN(5) == 0 {
			return "NULL"
		}
		return fmt.Sprintf("'2026-%02d-%02d %02d:%02d:%02d.%06d'", 1+w.rng.IntN(12), 1+w.rng.IntN(28), w.rng.IntN(24), w.rng.IntN(60), w.rng.IntN(60), w.rng.IntN(1_000_000))
	}
}

func inList(keys []int64) string {
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = strconv.FormatInt(k, 10)
	}
	return strings.Join(s, ", ")
}

// plan returns one change and applies it to the writer's idea of the table,
// or false when it found nothing to do.
func (w *stressWriter) plan() (change, bool) {
	if c, ok := w.planTransient(); ok {
		return c, true
	}
	if w.v.unique != "" && w.rng.IntN(2) == 0 {
		return w.planUnique()
	}
	kind := w.rng.IntN(16)
	switch {
	case kind < 5 && w.own.len() > w.size*11/10:
		kind = 12 // deletes instead of inserts when the table grew
	case kind >= 12 && w.own.len() < w.size*9/10:
		kind = w.rng.IntN(3) // inserts instead of deletes when it shrank
	}
	switch {
	case kind < 2: // insert of fresh values (never a big one)
		k := w.newKey()
		cols, vals := w.insertValues(k)
		w.add(k, false)
		return change{k, fmt.Sprintf("INSERT INTO {T} ({K}, %s) VALUES (%d, %s)", strings.Join(cols, ", "), k, strings.Join(vals, ", "))}, true
	case kind < 5: // insert of a copy of another row's values (not the big one)
		src, ok := w.pickExisting(anyRow)
		if !ok {
			return change{}, false
		}
		k := w.newKey()
		w.touched[src] = true
		w.add(k, false)
		cols := strings.Join(w.v.cols, ", ")
		return change{min(k, src), fmt.Sprintf("INSERT INTO {T} ({K}, %s) SELECT %d, %s FROM {T} WHERE {K} = %d", cols, k, cols, src)}, true
	case kind < 7: // update that copies another row's values (not the big one)
		src, ok1 := w.pickExisting(anyRow)
		if ok1 {
			w.touched[src] = true
		}
		dst, ok2 := w.pickExisting(w.halfBig())
		if !ok1 || !ok2 {
			return change{}, false
		}
		w.touched[dst] = true
		return change{min(src, dst), w.target.copyRow(w.v.cols, src, dst)}, true
	case kind < 8: // range update
		from, ok := w.pickExisting(anyRow)
		if !ok {
			return change{}, false
		}
		keys := w.run(from, 2+w.rng.IntN(9), false)
		for _, k := range keys {
			w.touched[k] = true
		}
		return change{from, fmt.Sprintf("UPDATE {T} SET n = n + 1, s = CONCAT(LEFT(s, 16), '-r%d') WHERE {K} IN (%s)", w.rng.IntN(1000), inList(keys))}, true
	case kind < 12: // key change, of a big row half the time
		old, ok := w.pickExisting(w.halfBig())
		if !ok {
			return change{}, false
		}
		w.touched[old] = true
		k := w.newKey()
		big := w.big.has(old)
		w.uniq.move(old, k)
		w.remove(old)
		w.add(k, big)
		set := ""
		if w.rng.IntN(2) == 0 {
			set = ", n = n + 1"
		}
		return change{min(k, old), fmt.Sprintf("UPDATE {T} SET {K} = %d%s WHERE {K} = %d", k, set, old)}, true
	case kind < 15: // single delete (never of a big row: their number stays)
		k, ok := w.pickExisting(notBigRow)
		if !ok {
			return change{}, false
		}
		w.touched[k] = true
		w.remove(k)
		return change{k, fmt.Sprintf("DELETE FROM {T} WHERE {K} = %d", k)}, true
	default: // range delete
		from, ok := w.pickExisting(notBigRow)
		if !ok {
			return change{}, false
		}
		keys := w.run(from, 2+w.rng.IntN(5), true)
		for _, k := range keys {
			w.touched[k] = true
			w.remove(k)
		}
		return change{from, fmt.Sprintf("DELETE FROM {T} WHERE {K} IN (%s)", inList(keys))}, true
	}
}

func (w *stressWriter) add(k int64, big bool) {
	w.touched[k] = true
	w.own.add(k)
	if big {
		w.big.add(k)
	}
	w.lo, w.hi = min(w.lo, k), max(w.hi, k)
}

func (w *stressWriter) remove(k int64) {
	w.own.remove(k)
	w.big.remove(k)
	w.uniq.drop(k)
}

// transaction returns the SQL of the next transaction: 1–3 changes, in the
// order of the keys they write (so that a copy that locks rows in key order
// cannot deadlock with it), each applied to t and then to the control table.
func (w *stressWriter) transaction() string {
	clear(w.touched)
	w.dup.tx++
	var changes []change
	for range 1 + w.rng.IntN(3) {
		if c, ok := w.plan(); ok {
			changes = append(changes, c)
		}
	}
	slices.SortStableFunc(changes, func(a, b change) int { return cmp.Compare(a.order, b.order) })
	var b strings.Builder
	b.WriteString("START TRANSACTION;\n")
	for _, c := range changes {
		stmt := strings.ReplaceAll(c.stmt, "{K}", w.target.d.quote(w.v.key))
		for _, table := range []string{"t", controlTable} {
			b.WriteString(strings.ReplaceAll(stmt, "{T}", w.target.d.quote(table)))
			b.WriteString(";\n")
		}
	}
	b.WriteString("COMMIT")
	return b.String()
}

// stressLoad is the running load.
type stressLoad struct {
	done      chan struct{}
	wg        sync.WaitGroup
	committed atomic.Int64
	errs      []writerError
	mu        sync.Mutex
	maxTx     time.Duration
	stopOnce  sync.Once
	writers   []*stressWriter
	// calm: the writers make no more transient duplicates
	// (stressVariant.dupPairs); calmed counts those that committed a
	// transaction planned after it, of writers.
	calm   atomic.Bool
	calmed atomic.Int64
}

// failed reports whether a writer met an error.
func (s *stressLoad) failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.errs) > 0
}

// startStressWriters reads the table's keys, hands them to the variant's
// writers by key, and starts them, each on its own connection.
func startStressWriters(ctx context.Context, target stressTarget, v stressVariant, db *sql.DB) (*stressLoad, error) {
	d := target.d
	bigExpr := "0"
	if v.big != "" {
		bigExpr = "CASE WHEN " + d.quote(v.big) + " IS NULL THEN 0 ELSE 1 END"
	}
	uniqueExpr := "NULL"
	if v.unique != "" {
		uniqueExpr = d.quote(v.unique)
	}
	rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT %s, %s, %s FROM t", d.quote(v.key), bigExpr, uniqueExpr))
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	n := int64(stressWriters)
	if v.writers > 0 {
		n = int64(v.writers)
	}
	ws := make([]*stressWriter, n)
	for i := range ws {
		ws[i] = &stressWriter{id: int64(i), of: n, v: v, target: target, own: newKeySet(), big: newKeySet(), touched: map[int64]bool{}, uniq: uniqueValues{},
			rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i))), lo: 1 << 40, hi: -(1 << 40)}
	}
	for rows.Next() {
		var (
			k, big int64
			u      sql.NullString
		)
		if err := rows.Scan(&k, &big, &u); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read keys: %w", err)
		}
		w := ws[((k%n)+n)%n]
		w.add(k, big == 1)
		if u.Valid {
			w.uniq[k] = u.String
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}

	s := &stressLoad{done: make(chan struct{})}
	conns := make([]*sql.Conn, 0, n)
	for _, w := range ws {
		s.writers = append(s.writers, w)
		w.size = w.own.len()
		if w.size == 0 {
			return nil, errors.New("the table has no rows to write to")
		}
		conn, err := db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("writer connection: %w", err)
		}
		conns = append(conns, conn)
		for _, q := range target.writerInit {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				for _, c := range conns {
					c.Close()
				}
				return nil, fmt.Errorf("writer connection: %s: %w", q, err)
			}
		}
	}
	for i, w := range ws {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conns[i].Close()
			if err := s.write(ctx, conns[i], w); err != nil {
				s.mu.Lock()
				s.errs = append(s.errs, writerError{err, time.Now()})
				s.mu.Unlock()
			}
		}()
	}
	return s, nil
}

// write commits transactions until stopped; it stops at the first error,
// which it returns.
func (s *stressLoad) write(ctx context.Context, conn *sql.Conn, w *stressWriter) error {
	// A transaction is never cancelled half-way: it would still commit on the
	// server, possibly after the writers were declared stopped.
	ctx = context.WithoutCancel(ctx)
	calmed := false
	for {
		select {
		case <-s.done:
			return nil
		default:
		}
		w.calm = s.calm.Load()
		if err := w.watchCopy(ctx, conn); err != nil {
			return err
		}
		q := w.transaction()
		start := time.Now()
		if _, err := conn.ExecContext(ctx, q); err != nil {
			_, _ = conn.ExecContext(ctx, "ROLLBACK") // the statement's error is the one to report
			return fmt.Errorf("writer %d after %v: %w\n  transaction: %s", w.id, time.Since(start).Round(time.Millisecond), err,
				abbreviate(strings.ReplaceAll(q, "\n", " "), 600))
		}
		elapsed := time.Since(start)
		s.committed.Add(1)
		if w.calm && !calmed {
			calmed = true
			s.calmed.Add(1)
		}
		s.mu.Lock()
		s.maxTx = max(s.maxTx, elapsed)
		s.mu.Unlock()
		if w.v.pause > 0 {
			time.Sleep(w.v.pause)
		}
	}
}

func (s *stressLoad) longest() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxTx
}

// writerError is the error that stopped a writer, and when.
type writerError struct {
	err error
	at  time.Time
}

// stop stops the writers after their current transaction and returns the
// errors they met.
func (s *stressLoad) stop() []writerError {
	s.stopOnce.Do(func() { close(s.done) })
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errs
}
