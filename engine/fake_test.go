package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"osc/change"
	"osc/throttle"
)

// fakeDB is an in-memory database holding one table (id → v), its shadow and
// a change stream. A write and its change stream entry are one atomic step,
// so commit order, visibility order and stream order agree, as they do for
// the MySQL binlog (see replayWindow). The copy reads a chunk and writes it
// into the shadow in two steps, like INSERT … SELECT under concurrent
// writes: a change can land in between (between, below).
type fakeDB struct {
	mu     sync.Mutex
	rows   map[int64]int64 // the table the application writes
	shadow map[int64]int64 // nil until CreateShadow, and once dropped
	stream []change.Change
	notify chan struct{} // closed and replaced on every append to stream
	// blocked holds writes (the cut-over's lock); unblock wakes them.
	blocked bool
	unblock chan struct{}
	nextID  int64
	applied int // row changes the applier wrote

	// swapped: the cut-over renamed the shadow into place. oldAtSwap and
	// newAtSwap are both tables as they were at that instant.
	swapped              bool
	oldAtSwap, newAtSwap map[int64]int64
	swapLen              int // the stream's length at the swap

	// store is the bookkeeping table: the checkpoint runs save.
	store fakeStore
}

func newFakeDB(rows int) *fakeDB {
	db := &fakeDB{rows: map[int64]int64{}, notify: make(chan struct{}), unblock: make(chan struct{})}
	for i := range rows {
		db.nextID++
		db.rows[db.nextID] = int64(i)
	}
	return db
}

// appendLocked adds changes to the stream; the caller holds mu.
func (db *fakeDB) appendLocked(cs ...change.Change) {
	for _, c := range cs {
		c.Pos = fakePos(len(db.stream) + 1)
		db.stream = append(db.stream, c)
	}
	close(db.notify)
	db.notify = make(chan struct{})
}

// write runs fn on the table and streams the changes it returns, waiting
// while the cut-over blocks writes.
func (db *fakeDB) write(ctx context.Context, fn func(rows map[int64]int64) []change.Change) error {
	db.mu.Lock()
	for db.blocked {
		ch := db.unblock
		db.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
		db.mu.Lock()
	}
	defer db.mu.Unlock()
	if cs := fn(db.rows); len(cs) > 0 {
		db.appendLocked(cs...)
	}
	return nil
}

// block holds writes (the cut-over's or the checksum's lock) until the
// returned function is called.
func (db *fakeDB) block() (unblock func()) {
	db.mu.Lock()
	db.blocked = true
	db.mu.Unlock()
	return func() {
		db.mu.Lock()
		db.blocked = false
		close(db.unblock)
		db.unblock = make(chan struct{})
		db.mu.Unlock()
	}
}

func row(id, v int64) change.Row { return change.Row{id, v} }

// insert adds a row with a new id.
func (db *fakeDB) insert(ctx context.Context, v int64) error {
	return db.write(ctx, func(rows map[int64]int64) []change.Change {
		db.nextID++
		rows[db.nextID] = v
		return []change.Change{{Op: change.Insert, After: row(db.nextID, v)}}
	})
}

// update sets v of row id, if there is one.
func (db *fakeDB) update(ctx context.Context, id, v int64) error {
	return db.write(ctx, func(rows map[int64]int64) []change.Change {
		old, ok := rows[id]
		if !ok {
			return nil
		}
		rows[id] = v
		return []change.Change{{Op: change.Update, Before: row(id, old), After: row(id, v)}}
	})
}

// del deletes row id, if there is one.
func (db *fakeDB) del(ctx context.Context, id int64) error {
	return db.write(ctx, func(rows map[int64]int64) []change.Change {
		old, ok := rows[id]
		if !ok {
			return nil
		}
		delete(rows, id)
		return []change.Change{{Op: change.Delete, Before: row(id, old)}}
	})
}

// move gives row id a new key (a key-changing update), if there is one.
func (db *fakeDB) move(ctx context.Context, id int64) error {
	return db.write(ctx, func(rows map[int64]int64) []change.Change {
		v, ok := rows[id]
		if !ok {
			return nil
		}
		db.nextID++
		delete(rows, id)
		rows[db.nextID] = v
		return []change.Change{{Op: change.Update, Before: row(id, v), After: row(db.nextID, v)}}
	})
}

// table returns a copy of the table the application writes.
func (db *fakeDB) table() map[int64]int64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	return maps.Clone(db.rows)
}

type fakePos int

func (p fakePos) String() string { return "fake:" + strconv.Itoa(int(p)) }

// errFakeKilled is what a killed run's writes get: they never happen.
var errFakeKilled = errors.New("fake: killed")

// errTransient is the fake's deadlock: Retryable says yes.
var errTransient = errors.New("fake deadlock")

// fakeDialect drives a fakeDB. Its fields are what a test sets (failures
// to inject) and what it checks afterwards (calls made).
type fakeDialect struct {
	db *fakeDB
	// queue, when set, is the most changes the source's Next returns,
	// whatever its limit, marking the last Cut when it ends inside a
	// transaction: PostgreSQL's source returns at most what its queue
	// holds, a transaction larger than it in parts.
	queue int

	inspectErr error
	// copyFault, applyFault and cutOverErr, when set, are asked before each
	// chunk (n counts calls from 1), apply and cut-over; an error fails it.
	copyFault  func(n int) error
	applyFault func(changes []change.Change) error
	// settled, when set, says whether the applier is settled
	// (settlingApplier); unset, it always is.
	settled    func() bool
	cutOverErr error
	// between runs after a chunk's read and before its write into the
	// shadow, with the keys read.
	between func(keys []int64)
	// holdsApplier makes the copier one the engine holds the applier off
	// for (applierHoldingCopier).
	holdsApplier bool
	// blocked, when set, runs at each checksum Open while writes are
	// blocked, after the engine drained and recopied: a test corrupts the
	// shadow there.
	blocked func(shadow map[int64]int64)
	// summing, when set, runs at the start of each checksum Sum, in the
	// checksum's worker.
	summing func()
	// restore, when set, answers the applier's Restore (restoringApplier),
	// told whether the original's writes are blocked.
	restore func(final, blocked bool) error
	// counting, when set, answers CountRows (--exact-rowcount).
	counting func(ctx context.Context) (int64, error)

	// killAfterChunk, when set, kills the run right after that chunk's
	// write (n counts CopyRange calls from 1).
	killAfterChunk int
	// killed makes every later write fail (errFakeKilled) and Cleanup
	// leave everything, as a kill -9 would.
	killed atomic.Bool

	mu           sync.Mutex
	calls        []string // Inspect, CreateShadow, NewSource, …, in order
	cleanups     []bool   // the cutOver argument of each Cleanup
	closed       int      // Close calls
	sourceClosed bool
	copyCalls    int
	copySizes    []int           // the size of each Bound call (a range)
	recopied     []ChecksumChunk // Recopy calls
	opens        int             // checksum Open calls
	// locked holds how long each checksum Open's blocked and the
	// cut-over's drain took, with writes blocked.
	locked   []time.Duration
	resumeAt string // the position Resume found
}

var _ Dialect = (*fakeDialect)(nil)

func (d *fakeDialect) call(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, name)
}

func (d *fakeDialect) lockedFor(took time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.locked = append(d.locked, took)
}

func (d *fakeDialect) called() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

func (d *fakeDialect) Inspect(context.Context) error {
	d.call("Inspect")
	return d.inspectErr
}

func (d *fakeDialect) CreateShadow(context.Context) (*Plan, error) {
	d.call("CreateShadow")
	d.db.mu.Lock()
	d.db.shadow = map[int64]int64{}
	n := len(d.db.rows)
	d.db.mu.Unlock()
	return &Plan{Schema: "fake", Table: "t", Shadow: "t_osc_new", Old: "t_osc_old", KeyIndex: []int{0},
		EstimatedRows: int64(n)}, nil
}

// fakeStore is the fake's bookkeeping table: the last checkpoint saved.
type fakeStore struct {
	mu    sync.Mutex
	ck    *Checkpoint
	saves int
}

func (st *fakeStore) last() *Checkpoint {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ck == nil {
		return nil
	}
	ck := *st.ck
	return &ck
}

// Resume takes up the shadow a killed run left, from the last checkpoint.
func (d *fakeDialect) Resume(context.Context) (*Plan, *Checkpoint, error) {
	d.call("Resume")
	ck := d.db.store.last()
	d.db.mu.Lock()
	defer d.db.mu.Unlock()
	plan := &Plan{Schema: "fake", Table: "t", Shadow: "t_osc_new", Old: "t_osc_old", KeyIndex: []int{0},
		EstimatedRows: int64(len(d.db.rows))}
	switch {
	case ck != nil && d.db.swapped:
		ck.CutOver = true
		return plan, ck, nil
	case d.db.shadow == nil || ck == nil:
		return nil, nil, errors.New("fake: nothing to resume")
	}
	d.resumeAt = ck.Position
	return plan, ck, nil
}

// SaveCheckpoint keeps ck; a copy, as a table row would be.
func (d *fakeDialect) SaveCheckpoint(_ context.Context, ck *Checkpoint) error {
	c := *ck
	c.After = slices.Clone(ck.After)
	d.db.store.mu.Lock()
	defer d.db.store.mu.Unlock()
	if d.killed.Load() {
		return errFakeKilled
	}
	d.db.store.ck = &c
	d.db.store.saves++
	return nil
}

func (d *fakeDialect) NewSource() (Source, error) {
	d.call("NewSource")
	return &fakeSource{d: d, resumeAt: d.resumeAt}, nil
}

func (d *fakeDialect) NewCopier() (Copier, error) {
	d.call("NewCopier")
	if d.holdsApplier {
		return &fakeHoldingCopier{fakeCopier{d: d}}, nil
	}
	return &fakeCopier{d: d}, nil
}

// fakeHoldingCopier is a fakeCopier the engine holds the applier off for.
type fakeHoldingCopier struct{ fakeCopier }

func (*fakeHoldingCopier) HoldsApplier() {}

func (d *fakeDialect) NewApplier() (Applier, error) {
	d.call("NewApplier")
	return &fakeApplier{d: d}, nil
}

// CutOver blocks writes, drains, and swaps the tables.
func (d *fakeDialect) CutOver(ctx context.Context, ready, drain func(context.Context) error, attempted func(time.Duration)) error {
	d.call("CutOver")
	if d.cutOverErr != nil {
		return d.cutOverErr
	}
	if err := ready(ctx); err != nil {
		return err
	}
	db := d.db
	defer db.block()()
	start := time.Now()
	defer func() { attempted(time.Since(start)) }()
	if err := drain(ctx); err != nil {
		return err
	}
	d.lockedFor(time.Since(start))
	db.mu.Lock()
	defer db.mu.Unlock()
	if d.killed.Load() {
		return errFakeKilled
	}
	db.oldAtSwap, db.newAtSwap = maps.Clone(db.rows), maps.Clone(db.shadow)
	db.rows, db.shadow = db.shadow, nil
	db.swapped, db.swapLen = true, len(db.stream)
	return nil
}

func (d *fakeDialect) NewChecksum() (Checksum, error) {
	d.call("NewChecksum")
	return &fakeChecksum{d: d}, nil
}

// Cleanup drops the shadow unless the cut-over swapped it into place.
func (d *fakeDialect) Cleanup(_ context.Context, cutOver bool) error {
	d.call("Cleanup")
	if d.killed.Load() {
		return nil
	}
	d.mu.Lock()
	d.cleanups = append(d.cleanups, cutOver)
	d.mu.Unlock()
	if !cutOver {
		d.db.mu.Lock()
		d.db.shadow = nil
		d.db.mu.Unlock()
	}
	return nil
}

func (d *fakeDialect) Throttle() (throttle.Probe, error) { return fakeProbe{}, nil }

func (d *fakeDialect) Retryable(err error) bool { return errors.Is(err, errTransient) }

func (d *fakeDialect) Driver() string { return "fake" }

func (d *fakeDialect) CountRows(ctx context.Context) (int64, error) {
	if d.counting != nil {
		return d.counting(ctx)
	}
	d.db.mu.Lock()
	defer d.db.mu.Unlock()
	return int64(len(d.db.rows)), nil
}

func (d *fakeDialect) ParseReplicas(list string) ([]string, error) {
	return throttle.ParseReplicas(list, false)
}

func (d *fakeDialect) DisplayReplica(entry string) string { return entry }

func (d *fakeDialect) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed++
	return nil
}

// fakeSource reads the fakeDB's change stream from where Start found it, or
// from the checkpoint's position when resuming.
type fakeSource struct {
	d        *fakeDialect
	resumeAt string // "" unless resuming
	pos      int
	acked    atomic.Int64 // the stream's length up to the last change acked
}

func (s *fakeSource) Start(context.Context) error {
	s.d.db.mu.Lock()
	defer s.d.db.mu.Unlock()
	s.pos = len(s.d.db.stream)
	if s.resumeAt != "" {
		n, err := strconv.Atoi(s.resumeAt)
		if err != nil || n > len(s.d.db.stream) {
			return fmt.Errorf("fake: bad position %q", s.resumeAt)
		}
		s.pos = n
	}
	s.acked.Store(int64(s.pos))
	return nil
}

func (s *fakeSource) Next(ctx context.Context, max int) ([]change.Change, error) {
	db := s.d.db
	for {
		db.mu.Lock()
		if n := min(len(db.stream)-s.pos, max); n > 0 {
			if q := s.d.queue; q > 0 {
				n = min(n, q)
			}
			out := slices.Clone(db.stream[s.pos : s.pos+n])
			s.pos += n
			if last := &out[n-1]; s.d.queue > 0 && last.Xid != 0 && s.pos < len(db.stream) && db.stream[s.pos].Xid == last.Xid {
				last.Cut = true
			}
			db.mu.Unlock()
			return out, nil
		}
		ch := db.notify
		db.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		}
	}
}

// EmitMarker is never blocked by the cut-over: like osc's changelog table,
// the marker is not written to the table being swapped.
func (s *fakeSource) EmitMarker(_ context.Context, id string) error {
	s.d.db.mu.Lock()
	defer s.d.db.mu.Unlock()
	s.d.db.appendLocked(change.Change{Op: change.Marker, Marker: id})
	return nil
}

// Ack: a fakePos is the stream's length up to and including the change.
func (s *fakeSource) Ack(pos change.Position) {
	if p, ok := pos.(fakePos); ok {
		s.acked.Store(max(s.acked.Load(), int64(p)))
	}
}

// Checkpoint ignores oldest: in the fake, as in the binlog, a change is
// visible once it is in the stream.
func (s *fakeSource) Checkpoint(change.Position) string { return strconv.FormatInt(s.acked.Load(), 10) }

// Saved: the fake restarts at any position, as the binlog does.
func (s *fakeSource) Saved(string) {}

func (s *fakeSource) Lag() string { return "fake stream" }

func (s *fakeSource) Close(context.Context) error {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.d.sourceClosed = true
	return nil
}

// fakeCopier copies key-ordered chunks, inserting only rows the shadow does
// not hold, up to the highest key the table had at the first call.
type fakeCopier struct {
	d     *fakeDialect
	hi    int64
	fixed bool
}

// Bound returns the size-th key after after, up to the highest key the
// table had at the first call; nil when fewer remain.
func (c *fakeCopier) Bound(_ context.Context, after []any, size int) ([]any, error) {
	c.d.mu.Lock()
	c.d.copySizes = append(c.d.copySizes, size)
	c.d.mu.Unlock()
	c.d.db.mu.Lock()
	keys := c.keys(after, nil)
	c.d.db.mu.Unlock()
	if len(keys) < size {
		return nil, nil
	}
	return []any{keys[size-1]}, nil
}

// keys returns the table's keys in (after, upto], upto nil: up to the
// highest key it had at the first call, in order; db.mu is held.
func (c *fakeCopier) keys(after, upto []any) []int64 {
	db := c.d.db
	if !c.fixed {
		for id := range db.rows {
			c.hi = max(c.hi, id)
		}
		c.fixed = true
	}
	lo, hi := int64(0), c.hi
	if after != nil {
		lo = after[0].(int64)
	}
	if upto != nil {
		hi = upto[0].(int64)
	}
	var keys []int64
	for id := range db.rows {
		if id > lo && id <= hi {
			keys = append(keys, id)
		}
	}
	slices.Sort(keys)
	return keys
}

func (c *fakeCopier) CopyRange(ctx context.Context, after, upto []any) (Chunk, error) {
	c.d.mu.Lock()
	c.d.copyCalls++
	n := c.d.copyCalls
	c.d.mu.Unlock()
	if c.d.copyFault != nil {
		if err := c.d.copyFault(n); err != nil {
			return Chunk{}, err
		}
	}
	db := c.d.db
	db.mu.Lock()
	keys := c.keys(after, upto)
	read := map[int64]int64{}
	for _, id := range keys {
		read[id] = db.rows[id]
	}
	db.mu.Unlock()

	if c.d.between != nil {
		c.d.between(keys)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if c.d.killed.Load() {
		return Chunk{}, errFakeKilled
	}
	if db.shadow == nil {
		return Chunk{}, errors.New("fake: copy into a dropped shadow")
	}
	for id, v := range read {
		if _, ok := db.shadow[id]; !ok {
			db.shadow[id] = v
		}
	}
	if c.d.killAfterChunk == n {
		c.d.killed.Store(true) // before the engine replays after the chunk
	}
	return Chunk{Last: upto, Rows: int64(len(keys)), Done: upto == nil}, nil
}

// fakeApplier writes changes into the shadow: upsert, delete, and a
// key-changing update as delete then upsert.
type fakeApplier struct{ d *fakeDialect }

// Settled asks the dialect's settled when set (a settlingApplier), else
// reports the applier settled.
func (a *fakeApplier) Settled(change.Position) bool {
	return a.d.settled == nil || a.d.settled()
}

// Restore asks the dialect's restore when set.
func (a *fakeApplier) Restore(_ context.Context, final bool) error {
	if a.d.restore == nil {
		return nil
	}
	a.d.db.mu.Lock()
	blocked := a.d.db.blocked
	a.d.db.mu.Unlock()
	return a.d.restore(final, blocked)
}

func (a *fakeApplier) Apply(ctx context.Context, changes []change.Change) error {
	if a.d.applyFault != nil {
		if err := a.d.applyFault(changes); err != nil {
			return err
		}
	}
	db := a.d.db
	db.mu.Lock()
	defer db.mu.Unlock()
	if a.d.killed.Load() {
		return errFakeKilled
	}
	if db.shadow == nil {
		return errors.New("fake: apply to a dropped shadow")
	}
	for _, c := range changes {
		switch c.Op {
		case change.Insert, change.Update:
			if c.Before != nil {
				delete(db.shadow, c.Before[0].(int64))
			}
			db.shadow[c.After[0].(int64)] = c.After[1].(int64)
		case change.Delete:
			delete(db.shadow, c.Before[0].(int64))
		default:
			return fmt.Errorf("fake: cannot apply %s", c.Op)
		}
	}
	db.applied += len(changes)
	return nil
}

// fakeProbe measures an idle server without replicas.
type fakeProbe struct{}

func (fakeProbe) Heartbeat(context.Context, time.Time) error                  { return nil }
func (fakeProbe) ReplicaLags(context.Context, []string) []throttle.ReplicaLag { return nil }
func (fakeProbe) Load(_ context.Context, names []string) ([]int64, error) {
	return make([]int64, len(names)), nil
}
func (fakeProbe) Query(context.Context, string) (int64, error)     { return 0, nil }
func (fakeProbe) RetainedWAL(context.Context) (int64, bool, error) { return 0, false, nil }
func (fakeProbe) Close() error                                     { return nil }

// fakeChecksum compares copies of both tables taken while writes are blocked.
type fakeChecksum struct{ d *fakeDialect }

func (c *fakeChecksum) Open(ctx context.Context, n int, ready, blocked func(context.Context) error) ([]ChecksumReader, error) {
	if err := ready(ctx); err != nil {
		return nil, err
	}
	db := c.d.db
	defer db.block()()
	start := time.Now()
	if err := blocked(ctx); err != nil {
		return nil, err
	}
	c.d.lockedFor(time.Since(start))
	db.mu.Lock()
	defer db.mu.Unlock()
	c.d.mu.Lock()
	c.d.opens++
	c.d.mu.Unlock()
	if c.d.blocked != nil {
		c.d.blocked(db.shadow)
	}
	snap := &fakeSnapshot{rows: maps.Clone(db.rows), shadow: maps.Clone(db.shadow), summing: c.d.summing}
	readers := make([]ChecksumReader, n)
	for i := range readers {
		readers[i] = snap
	}
	return readers, nil
}

// inChunk reports whether key id is in the chunk.
func inChunk(c ChecksumChunk, id int64) bool {
	return (c.After == nil || id > c.After[0].(int64)) && (c.Upto == nil || id <= c.Upto[0].(int64))
}

func (c *fakeChecksum) Recopy(_ context.Context, chunks []ChecksumChunk) error {
	db := c.d.db
	db.mu.Lock()
	defer db.mu.Unlock()
	if c.d.killed.Load() {
		return errFakeKilled
	}
	if !db.blocked {
		return errors.New("fake: recopy while writes are not blocked")
	}
	c.d.mu.Lock()
	c.d.recopied = append(c.d.recopied, chunks...)
	c.d.mu.Unlock()
	for _, ch := range chunks {
		for id := range db.shadow {
			if inChunk(ch, id) {
				delete(db.shadow, id)
			}
		}
	}
	for _, ch := range chunks {
		for id, v := range db.rows {
			if inChunk(ch, id) {
				db.shadow[id] = v
			}
		}
	}
	return nil
}

func (c *fakeChecksum) Close() error { return nil }

// fakeSnapshot is both tables as Open found them; it only reads, so its
// readers share it. summing, when set, runs at the start of each Sum.
type fakeSnapshot struct {
	rows, shadow map[int64]int64
	summing      func()
}

func (s *fakeSnapshot) Bound(_ context.Context, after []any, size int) ([]any, error) {
	var keys []int64
	for id := range s.rows {
		if after == nil || id > after[0].(int64) {
			keys = append(keys, id)
		}
	}
	if len(keys) < size {
		return nil, nil
	}
	slices.Sort(keys)
	return []any{keys[size-1]}, nil
}

func fakeSum(rows map[int64]int64, c ChecksumChunk) ChecksumSum {
	var sum ChecksumSum
	for id, v := range rows {
		if inChunk(c, id) {
			sum.Rows++
			sum.Hash ^= uint64(id)*0x9e3779b97f4a7c15 ^ uint64(v+1)*0xc2b2ae3d27d4eb4f
		}
	}
	return sum
}

func (s *fakeSnapshot) Sum(_ context.Context, c ChecksumChunk) (ChecksumSum, ChecksumSum, error) {
	if s.summing != nil {
		s.summing()
	}
	return fakeSum(s.rows, c), fakeSum(s.shadow, c), nil
}

func (s *fakeSnapshot) Diff(_ context.Context, c ChecksumChunk) (string, error) {
	keys := map[int64]bool{}
	for _, m := range []map[int64]int64{s.rows, s.shadow} {
		for id := range m {
			if inChunk(c, id) {
				keys[id] = true
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(keys)) {
		o, inO := s.rows[id]
		n, inS := s.shadow[id]
		switch {
		case !inS:
			return fmt.Sprintf("key (id=%d) is missing from the shadow", id), nil
		case !inO:
			return fmt.Sprintf("key (id=%d) is in the shadow but not in the original", id), nil
		case o != n:
			return fmt.Sprintf("key (id=%d): column \"v\" differs: original %d, shadow %d", id, o, n), nil
		}
	}
	return "", nil
}

func (s *fakeSnapshot) Close() error { return nil }
