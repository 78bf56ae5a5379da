package localtests

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	writerCount = 4
	// writerPause is the longest random pause between two writes of one
	// writer: enough load to overlap every phase of the copy, not so much that
	// the applier can never catch up on a shared 2-core machine.
	writerPause = 10 * time.Millisecond
)

// A workload is a set of SQL statement templates the writers pick from at
// random: first a group, uniformly, then a template of the group. Holes,
// each occurrence drawn anew:
//
//	{id}     an integer uniform over [lo, hi], the key range seen so far
//	{newid}  hi+1, and hi grows by one: a key no row has had yet
//	{rand}   a random integer in [0, 1e9)
//
// lo and hi start as the minimum and maximum of the table's first key column.
type workload struct {
	groups [][]string
	// pause is the longest random pause between two writes of one writer
	// (0: writerPause).
	pause time.Duration
	lo    int64
	hi    atomic.Int64

	ok   atomic.Int64 // writes that changed at least one row
	noop atomic.Int64 // no row matched, or a duplicate key
}

var holes = []string{"{id}", "{newid}", "{rand}"}

// checkTemplate rejects a template with an unknown {hole}; braces around
// anything but a lower-case name (as in JSON) are left alone.
func checkTemplate(tmpl string) error {
	for rest := tmpl; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return nil
		}
		rest = rest[i+1:]
		name, _, ok := strings.Cut(rest, "}")
		if ok && isHoleName(name) && !slices.Contains(holes, "{"+name+"}") {
			return fmt.Errorf("unknown hole {%s} in %q (holes: %s)", name, tmpl, strings.Join(holes, " "))
		}
	}
}

func isHoleName(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz_") == ""
}

// expand fills the holes of tmpl.
func (w *workload) expand(tmpl string, rng *rand.Rand) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		b.WriteString(tmpl[:i])
		tmpl = tmpl[i:]
		switch {
		case strings.HasPrefix(tmpl, "{id}"):
			id := w.lo
			if hi := w.hi.Load(); hi > w.lo {
				id += rng.Int64N(hi - w.lo + 1)
			}
			b.WriteString(strconv.FormatInt(id, 10))
			tmpl = tmpl[len("{id}"):]
		case strings.HasPrefix(tmpl, "{newid}"):
			b.WriteString(strconv.FormatInt(w.hi.Add(1), 10))
			tmpl = tmpl[len("{newid}"):]
		case strings.HasPrefix(tmpl, "{rand}"):
			b.WriteString(strconv.FormatInt(rng.Int64N(1e9), 10))
			tmpl = tmpl[len("{rand}"):]
		default:
			b.WriteByte('{')
			tmpl = tmpl[1:]
		}
	}
}

// genericWorkload writes to a table with a single integer key: inserts that
// copy another row's values under a new key, updates of one column to
// another row's value, key changes and deletes, one group each. Values are
// copied in SQL, so every type is exercised without client-side encoding.
func genericWorkload(d dialect, info *tableInfo) (*workload, error) {
	if len(info.key) != 1 || !info.column(info.key[0]).integer {
		return nil, fmt.Errorf("table %s: the generic writers need a single integer key column (have %v); write a workload file",
			info.name, info.key)
	}
	key := info.column(info.key[0])
	tbl, k := d.quote(info.name), d.quote(key.name)

	var cols, updates []string
	overriding := ""
	for _, c := range info.columns {
		if c.generated || c.name == key.name {
			continue
		}
		cols = append(cols, d.quote(c.name))
		if c.identityAlways {
			overriding = " OVERRIDING SYSTEM VALUE"
			continue // GENERATED ALWAYS: can only be updated to DEFAULT
		}
		updates = append(updates, d.updateFromRow(info.name, key.name, c.name))
	}
	if key.identityAlways {
		overriding = " OVERRIDING SYSTEM VALUE"
	}
	list := strings.Join(append([]string{k}, cols...), ", ")
	values := strings.Join(append([]string{"{newid}"}, cols...), ", ")
	groups := [][]string{
		{fmt.Sprintf("INSERT INTO %s (%s)%s SELECT %s FROM %s WHERE %s = {id}", tbl, list, overriding, values, tbl, k)},
		{fmt.Sprintf("DELETE FROM %s WHERE %s = {id}", tbl, k)},
	}
	if !key.identityAlways {
		groups = append(groups, []string{fmt.Sprintf("UPDATE %s SET %s = {newid} WHERE %s = {id}", tbl, k, k)})
	}
	if len(updates) > 0 {
		groups = append(groups, updates)
	}
	return &workload{groups: groups}, nil
}

// customWorkload is a case's workload file: one template per line, each its
// own group.
func customWorkload(templates []string) *workload {
	w := &workload{}
	for _, t := range templates {
		w.groups = append(w.groups, []string{t})
	}
	return w
}

// caseWorkload is the case's workload file, or else the generic writers for
// its table, ready to start.
func caseWorkload(ctx context.Context, d dialect, db *sql.DB, c *testCase, info *tableInfo) (*workload, error) {
	w := customWorkload(c.workload)
	if c.workload == nil {
		generic, err := genericWorkload(d, info)
		if err != nil {
			return nil, err
		}
		w = generic
	}
	w.pause = c.writerPause
	if err := w.initRange(ctx, db, d, info); err != nil {
		return nil, err
	}
	return w, nil
}

// initRange sets lo and hi from the table's first key column. A workload
// without {id} and {newid} holes needs neither (a table keyed by text).
func (w *workload) initRange(ctx context.Context, db *sql.DB, d dialect, info *tableInfo) error {
	if !w.usesKeyHoles() {
		return nil
	}
	if len(info.key) == 0 || !info.column(info.key[0]).integer {
		return fmt.Errorf("table %s: workload holes need an integer first key column (key: %v)", info.name, info.key)
	}
	k := d.quote(info.key[0])
	var lo, hi int64
	q := fmt.Sprintf("SELECT COALESCE(MIN(%s), 1), COALESCE(MAX(%s), 0) FROM %s", k, k, d.quote(info.name))
	if err := db.QueryRowContext(ctx, q).Scan(&lo, &hi); err != nil {
		return fmt.Errorf("key range: %w", err)
	}
	w.lo = lo
	w.hi.Store(hi)
	return nil
}

// usesKeyHoles reports whether a template has an {id} or {newid} hole.
func (w *workload) usesKeyHoles() bool {
	for _, g := range w.groups {
		for _, tmpl := range g {
			if strings.Contains(tmpl, "{id}") || strings.Contains(tmpl, "{newid}") {
				return true
			}
		}
	}
	return false
}

// writers is a running set of writer goroutines.
type writers struct {
	stop chan struct{}
	wg   sync.WaitGroup
	errs chan error // the first error of each writer that failed

	stopOnce sync.Once
	stopErr  error
}

// start runs writerCount writers, each on its own connection, until Stop.
// A write that matches no row or hits a duplicate key counts as a no-op;
// any other error stops that writer and is reported on errs.
func (w *workload) start(ctx context.Context, db *sql.DB, d dialect) (*writers, error) {
	ws := &writers{stop: make(chan struct{}), errs: make(chan error, writerCount)}
	conns := make([]*sql.Conn, 0, writerCount)
	for range writerCount {
		conn, err := db.Conn(ctx)
		if err == nil && d.writerInit() != "" {
			_, err = conn.ExecContext(ctx, d.writerInit())
		}
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("writer connection: %w", err)
		}
		conns = append(conns, conn)
	}
	for i, conn := range conns {
		ws.wg.Add(1)
		go func() {
			defer ws.wg.Done()
			defer conn.Close()
			if err := w.write(ctx, conn, d, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i))), ws.stop); err != nil {
				ws.errs <- err
			}
		}()
	}
	return ws, nil
}

// execOne runs one statement drawn from the workload on conn, never
// cancelled half-way, and returns it with the rows it affected.
func (w *workload) execOne(ctx context.Context, conn *sql.Conn, rng *rand.Rand) (q string, n int64, err error) {
	group := w.groups[rng.IntN(len(w.groups))]
	q = w.expand(group[rng.IntN(len(group))], rng)
	res, err := conn.ExecContext(context.WithoutCancel(ctx), q)
	if err == nil {
		n, err = res.RowsAffected()
	}
	return q, n, err
}

func (w *workload) write(ctx context.Context, conn *sql.Conn, d dialect, rng *rand.Rand, stop <-chan struct{}) error {
	for {
		// A statement is never cancelled half-way: it would still commit on
		// the server, possibly after the writers were declared stopped.
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return nil
		case <-time.After(time.Duration(rng.Int64N(int64(cmp.Or(w.pause, writerPause))))):
		}
		q, n, err := w.execOne(ctx, conn, rng)
		switch {
		case err != nil && d.duplicateKey(err):
			w.noop.Add(1)
		case err != nil:
			return fmt.Errorf("writer: %s: %w", abbreviate(q, 200), err)
		case n == 0:
			w.noop.Add(1)
		default:
			w.ok.Add(1)
		}
	}
}

// Stop stops the writers after their current statement and returns the
// errors they met and did not report on errs yet. Later calls return the
// same.
func (ws *writers) Stop() error {
	ws.stopOnce.Do(func() {
		close(ws.stop)
		ws.wg.Wait()
		close(ws.errs)
		var errs []error
		for err := range ws.errs {
			errs = append(errs, err)
		}
		ws.stopErr = errors.Join(errs...)
	})
	return ws.stopErr
}

// keepWriting lets the writers go on for at least d, and then until n writes
// have succeeded since the count was since (w.ok): on a busy machine osc may
// finish a phase before the writers made many writes, and a case must not
// pass, or fail, by how fast the machine is. It returns the first writer
// error, or an error if the writes do not come within postponeTimeout.
func (ws *writers) keepWriting(w *workload, since, n int64, d time.Duration) error {
	limit := time.After(postponeTimeout)
	for least := time.After(d); ; {
		select {
		case err := <-ws.errs:
			return err
		case <-limit:
			return fmt.Errorf("only %d writes succeeded (want at least %d) in %v: the writers hardly write", w.ok.Load()-since, n, postponeTimeout)
		case <-least:
			least = nil
		case <-time.After(10 * time.Millisecond):
		}
		if least == nil && w.ok.Load()-since >= n {
			return nil
		}
	}
}

// abbreviate shortens s to about n bytes for messages.
func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:n], len(s))
}

func TestExpand(t *testing.T) {
	w := &workload{lo: 5}
	w.hi.Store(5)
	rng := rand.New(rand.NewPCG(1, 2))
	got := w.expand(`UPDATE t SET j = '{"a": {id}}' WHERE id = {id} OR id = {newid} OR id = {newid} OR n = {rand} % 1`, rng)
	want := `UPDATE t SET j = '{"a": 5}' WHERE id = 5 OR id = 6 OR id = 7 OR n = `
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, " % 1") {
		t.Fatalf("expand:\n got %s\nwant %s<rand> %% 1", got, want)
	}
	if w.hi.Load() != 7 {
		t.Fatalf("hi after two {newid}: %d, want 7", w.hi.Load())
	}
	if err := checkTemplate(`SELECT '{"a":1}', {id}, {nope}`); err == nil {
		t.Fatal("checkTemplate accepted {nope}")
	}
	if err := checkTemplate(`SELECT '{"a":1}', {id}, {newid}, {rand}`); err != nil {
		t.Fatal(err)
	}
}

// TestWorkloads runs each migration case's create.sql and its writers for a
// moment, without osc: a case's own SQL must work before osc is blamed.
func TestWorkloads(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			cases, err := loadCases(d.dir())
			if err != nil {
				t.Fatal(err)
			}
			admin := d.connectAdmin(t)
			for _, c := range cases {
				if c.expectFailure != nil {
					continue
				}
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					ns, db := setupCase(ctx, t, d, admin, c)
					info, err := d.describe(ctx, db, ns, c.table)
					if err != nil || info == nil {
						t.Fatalf("describe %s: %v (exists: %t)", c.table, err, info != nil)
					}
					w, err := caseWorkload(ctx, d, db, c, info)
					if err != nil {
						t.Fatal(err)
					}
					ws, err := w.start(ctx, db, d)
					if err != nil {
						t.Fatal(err)
					}
					time.Sleep(300 * time.Millisecond)
					if err := ws.Stop(); err != nil {
						t.Fatal(err)
					}
					if w.ok.Load() == 0 {
						t.Fatalf("no write succeeded (%d no-ops)", w.noop.Load())
					}
					dropCase(ctx, t, d, admin, ns)
				})
			}
		})
	}
}
