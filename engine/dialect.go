package engine

import (
	"context"
	"time"

	"osc/change"
	"osc/throttle"
)

// Dialect is everything that differs between MySQL and PostgreSQL. The engine
// drives one migration through it: Inspect, CreateShadow, then a Source,
// a Copier and an Applier running concurrently, then CutOver, then Cleanup.
// The dialect keeps the plan CreateShadow made (columns, mapping, what only
// its database needs) to itself; the methods after CreateShadow work on it.
type Dialect interface {
	// Inspect connects, checks every precondition and takes the per-table
	// advisory lock (held until Close). A refusal is an error whose message
	// names the fix.
	Inspect(ctx context.Context) error
	// CreateShadow creates the shadow table (and any bookkeeping table) with
	// the --alter applied and returns what the engine needs to know of the
	// plan. It refuses a plan that would lose data silently. On error it
	// drops whatever it created itself.
	CreateShadow(ctx context.Context) (*Plan, error)
	// Resume, in place of CreateShadow when the user asked to --resume,
	// takes up the shadow and bookkeeping a killed run of the same
	// migration left and returns the plan and the last checkpoint that run
	// saved; NewSource's Start then continues from the checkpoint's
	// Position. It refuses with an error that names the fix, and drops
	// nothing, when the run cannot be resumed exactly: nothing to resume,
	// no checkpoint, the shadow's or the original's definition changed
	// since the checkpoint, the capture cannot restart at its position
	// (binlog purged, slot gone). When the killed run had already swapped
	// the tables it returns a checkpoint with CutOver set (the engine then
	// only cleans up). The engine checks the version, the --alter and the
	// age itself.
	Resume(ctx context.Context) (*Plan, *Checkpoint, error)
	// SaveCheckpoint stores ck in the migration's bookkeeping, replacing
	// the last one, with what the dialect needs to check a resume (the
	// definitions of both tables). CreateShadow makes what it needs; it is
	// not called when checkpoints are off.
	SaveCheckpoint(ctx context.Context, ck *Checkpoint) error
	// NewSource returns the change capture for the original table.
	NewSource() (Source, error)
	// NewCopier returns the chunk copier from the original into the shadow.
	NewCopier() (Copier, error)
	// NewApplier returns the writer of captured changes into the shadow.
	NewApplier() (Applier, error)
	// NewChecksum returns the comparison of the shadow with the original
	// that precedes the cut-over.
	NewChecksum() (Checksum, error)
	// CutOver swaps the tables atomically. Before each attempt at the lock it
	// calls ready, which returns once the applier is close enough behind
	// the original that the drain under the lock is short. While writes to
	// the original are blocked it calls drain, which returns once every
	// change committed before the call has been applied to the shadow. It
	// retries lock timeouts itself. After each attempt, swapped or not, it
	// calls attempted with how long the attempt took from its request for
	// the lock to the lock's release: the longest any writer waited on it.
	CutOver(ctx context.Context, ready, drain func(context.Context) error, attempted func(time.Duration)) error
	// Cleanup drops what the migration made that must not outlive it: the
	// shadow unless cutOver succeeded, bookkeeping tables, and the old table
	// when the user asked for it. It is called once CreateShadow succeeded,
	// and must work on a fresh context after the migration's context was
	// cancelled.
	Cleanup(ctx context.Context, cutOver bool) error
	// Throttle returns the probe the throttler measures the server and its
	// replicas with (heartbeat, replica lag, load, retained WAL). It is
	// called after NewSource and Start, once per start of the migration (startOverDialect).
	Throttle() (throttle.Probe, error)
	// Retryable reports whether err is transient (a deadlock, a lock wait
	// timeout): the statement rolled back whole and may simply run again.
	Retryable(err error) bool
	// Driver names the database for hooks (OSC_DRIVER): "mysql" or
	// "postgres".
	Driver() string
	// CountRows counts the original's rows (--exact-rowcount), after
	// CreateShadow or Resume.
	CountRows(ctx context.Context) (int64, error)
	// ParseReplicas checks a comma-separated list of replicas to watch
	// (--throttle-control-replicas, and the socket command of that name) and
	// returns its entries: host:port, and for PostgreSQL also connection
	// strings.
	ParseReplicas(list string) ([]string, error)
	// DisplayReplica shows a replica entry as the status and the logs do:
	// a connection string, which may hold a password, as its host:port.
	DisplayReplica(entry string) string
	// Close releases the advisory lock and every connection.
	Close() error
}

// Plan is what the engine knows of the migration's plan: the tables' names,
// where the key is in a row image, the size estimate and the notes.
type Plan struct {
	Schema string // the original's database (MySQL) or schema, as the server names it
	Table  string // the original table, as the server names it
	Shadow string // the shadow table, in Schema
	Old    string // the name the original gets at the cut-over
	// KeyIndex holds the positions of the key's columns in row images
	// (change.Row): the replay window tells rows apart by them.
	KeyIndex      []int
	EstimatedRows int64
	// Notes are lines the dry run reports (added/dropped columns, renames,
	// locks to be taken, long transactions...).
	Notes []string
}

// throttleSettingsDialect is a Dialect with throttle thresholds of its own,
// which only it can measure and which it takes as its own options
// (PostgreSQL: --max-retained-wal). The engine adds them to the operator's
// settings when the migration is made, and lists them with the settings the
// status command prints. They do not change while the migration runs.
type throttleSettingsDialect interface {
	Dialect
	// ThrottleSettings sets the dialect's thresholds in s and returns them
	// as the status command lists them, in order.
	ThrottleSettings(s *throttle.Settings) []Setting
}

// startOverDialect is a Dialect some of whose failures before the cut-over
// a new start of the same migration would not meet (PostgreSQL: a decoding
// bug that only a slot made at a bad moment meets). The engine then drops
// what the migration made, as after any failure, and starts it over from
// CreateShadow, a few times at most (maxStartOvers).
type startOverDialect interface {
	Dialect
	// StartOver reports whether the migration, failed with err, is to
	// start over; the dialect is then ready for Cleanup and CreateShadow
	// again. It says no to a failure that left the tables swapped.
	StartOver(err error) bool
}

// Setting is one line of the settings the status command lists: "# Name: Value".
type Setting struct{ Name, Value string }

// Source captures committed changes to the original table in commit order.
type Source interface {
	// Start fixes the capture position: every change committed after Start
	// returns is delivered by Next. It is called before the copy starts.
	Start(ctx context.Context) error
	// Next blocks until at least one change is available (or ctx ends) and
	// returns the available changes in commit order, at most max of them.
	// A change the migration cannot survive (TRUNCATE, DDL on the table)
	// is an error.
	Next(ctx context.Context, max int) ([]change.Change, error)
	// EmitMarker commits a marker into the change stream; Next later returns
	// it as a change.Marker change with the same id, after every change that was
	// committed before EmitMarker was called.
	EmitMarker(ctx context.Context, id string) error
	// Ack reports that every change Next returned before this call, up to
	// and including pos, has been applied to the shadow and committed
	// (PostgreSQL confirms it to the slot).
	Ack(pos change.Position)
	// Checkpoint returns where a resumed run's capture can restart: a
	// source started there (Dialect.Resume) delivers again every change
	// not yet acknowledged through Ack, from a transaction's start (MySQL:
	// the binlog position after the last transaction acked whole;
	// PostgreSQL: the LSN confirmed to the slot). When oldest is not nil it
	// is the position of an applied change that a later read of the source
	// may still not see; a source whose reads can miss an applied change
	// (PostgreSQL: a transaction decoded before it is visible) restarts at
	// or before its transaction then. MySQL ignores it: a change in the
	// binlog before a chunk's marker is visible to the chunk.
	Checkpoint(oldest change.Position) string
	// Saved reports that a checkpoint whose Position is position (from
	// Checkpoint) has been saved. A source whose server forgets what it was
	// told was applied (a PostgreSQL slot's confirmed position, from which
	// alone it can stream again) must, while checkpoints are on, confirm no
	// further than the last position saved: a resumed run restarts there,
	// and a change between it and a later confirmation would be lost.
	Saved(position string)
	// Lag reports how far the reader is behind the server, as a position
	// description for status lines.
	Lag() string
	// Close stops the reader and drops what it created (slot, publication).
	Close(ctx context.Context) error
}

// Copier copies the original table into the shadow in key-ordered chunks,
// several at once when --copy-threads asks for it: the engine hands out
// disjoint ranges of keys, each (after, Bound(after, size)].
type Copier interface {
	// Bound returns the key of the size-th row whose key is greater than
	// after (nil: counting from the first row), or nil when fewer rows
	// remain up to the highest key the table had at the copier's first
	// call (made after change capture started): rows above it arrive as
	// captured changes.
	Bound(ctx context.Context, after []any, size int) ([]any, error)
	// CopyRange copies the rows whose key is greater than after (nil: from
	// the first row) and at most upto (nil: up to that highest key; the
	// chunk is then Done) into the shadow without overwriting rows already
	// there, in one short transaction. Ranges that do not overlap may be
	// copied at once.
	CopyRange(ctx context.Context, after, upto []any) (Chunk, error)
}

// indexBuildingCopier is a Copier that leaves some of the shadow's indexes
// out while it copies (PostgreSQL's non-unique ones): BuildIndexes builds
// them once every row is copied, and returns how many it built.
type indexBuildingCopier interface {
	Copier
	BuildIndexes(ctx context.Context) (int, error)
}

// Chunk is the result of one CopyRange. It is defined in package change,
// which the copiers import, so that they implement Copier directly.
type Chunk = change.Chunk

// Applier writes captured changes into the shadow table.
type Applier interface {
	// Apply writes the changes, in order, in one transaction: insert and
	// update become an upsert of the mapped columns (a key-changing update
	// also deletes the old key), delete deletes by key. A Partial change
	// updates only the columns it carries.
	Apply(ctx context.Context, changes []change.Change) error
}

// refreshingApplier is an Applier that can write rows as the source holds
// them now (PostgreSQL), for a chunk's stale rows (Chunk.Stale).
type refreshingApplier interface {
	Applier
	Refresh(ctx context.Context, keys [][]string) error
}

// settlingApplier is an Applier that may need to read the source for some
// changes (PostgreSQL moves after an earlier read ran ahead of it): the
// cut-over, which locks the source, waits until it is Settled — nothing it
// holds needs such a read once every change before pos has been applied.
type settlingApplier interface {
	Applier
	Settled(pos change.Position) bool
}

// writeBlockingDialect is a Dialect that can block writes to the original
// while reads of it go on (PostgreSQL: LOCK … IN SHARE MODE). A
// settlingApplier may not settle while writes go on, each drain bringing
// more changes that need a read of the source; with writes blocked it
// does, and the cut-over, whose lock blocks reads too, follows at once
// (settleBlocked).
type writeBlockingDialect interface {
	// BlockWrites blocks writes to the original, waiting for its lock at
	// most the cut-over's lock timeout per attempt and retrying like the
	// cut-over, calls hold with a context that ends after the lock
	// timeout, and lets the writers go.
	BlockWrites(ctx context.Context, hold func(context.Context) error) error
}

// copyDoneApplier is an Applier told when the copy is over and it has applied
// every change the chunks' reads saw: the shadow then equals the source as of
// the change being applied (PostgreSQL moves rely on it).
type copyDoneApplier interface {
	Applier
	CopyDone()
}

// restoringApplier is an Applier for a plan that adds a unique key the
// original does not imply (table.Plan.NewUnique). Where the shadow's new
// unique index turns a row away (the copy's insert skips it, or an applied
// write displaces the shadow row that held its value), the row waits aside,
// in the migration's bookkeeping, until Restore moves it back: the two rows
// may both be the original's now, or one of them may have a change still to
// apply. Rows waiting aside are rows of the shadow for every other step
// (the copy skips their keys, a change to their key takes them back).
type restoringApplier interface {
	Applier
	// Restore moves the rows waiting aside that no longer clash back into
	// the shadow. With final, every change to the original is applied and
	// its writes are blocked, so the shadow and the rows aside are the
	// original: a row that still clashes is one the original duplicates
	// under the new key, returned as a *table.DuplicateError.
	Restore(ctx context.Context, final bool) error
}

// Checksum proves the shadow equal to the original before the cut-over. The
// engine opens consistent views of both tables, compares them chunk by chunk
// in key order, recopies the chunks that differ and checks them again.
// With a new unique key (restoringApplier) the rows waiting aside are rows of
// the shadow: the readers compare the original with both, and a recopy
// replaces the chunk's rows in both.
type Checksum interface {
	// Open blocks writes to the original table (waiting for its lock at
	// most the cut-over lock timeout per attempt, and retrying like the
	// cut-over), calls blocked while they are blocked, opens n readers that
	// all see both tables as they are at that moment, and lets the writers
	// go. Before each attempt at the lock it calls ready (when not nil),
	// which returns once the applier is close enough behind the original.
	// The engine's blocked drains the applier (every change committed
	// before the lock is then in the shadow) and recopies chunks.
	// Readers are closed by the caller. On error nothing stays open.
	Open(ctx context.Context, n int, ready, blocked func(context.Context) error) ([]ChecksumReader, error)
	// Recopy replaces the shadow's rows whose key is in the chunks with the
	// original's, converted as the copy converts them, in one transaction:
	// first it deletes the shadow's rows of every chunk, then copies the
	// original's (a stray row in a later chunk must not clash with a row
	// copied into an earlier one on another unique index). It is called
	// only from Open's blocked: writes to the original are blocked and every
	// change committed before them is in the shadow, so no change races
	// with it.
	Recopy(ctx context.Context, chunks []ChecksumChunk) error
	// Close releases what the checksum holds (connections).
	Close() error
}

// ChecksumChunk is a range of keys: those after After (nil: from the first)
// up to and including Upto (nil: to the last). Chunks are compared on both
// tables by the same range, so a row of the shadow that is not in the
// original is found by the chunk its key falls in.
type ChecksumChunk struct {
	After, Upto []any
}

// ChecksumReader reads both tables in one snapshot (Checksum.Open). A reader
// is used by one goroutine at a time.
type ChecksumReader interface {
	// Bound returns the key of the size-th row of the original after
	// after (nil: counting from the first row), or nil when fewer rows
	// remain: the next chunk is (after, Bound]. A dialect that cannot
	// compare ranges of the shadow in the original's key order (the ALTER
	// changes the key's order) returns nil at once: one chunk, the whole
	// table.
	Bound(ctx context.Context, after []any, size int) ([]any, error)
	// Sum fingerprints the chunk's rows in the original, each mapped column
	// converted as the copy converts it, and in the shadow.
	Sum(ctx context.Context, c ChecksumChunk) (original, shadow ChecksumSum, err error)
	// Diff describes the chunk's first difference in key order: the key and
	// the first differing column, or the row missing from one side ("" when
	// the chunk's rows are equal).
	Diff(ctx context.Context, c ChecksumChunk) (string, error)
	// Close ends the reader's snapshot.
	Close() error
}

// ChecksumSum is a chunk's fingerprint: the number of rows and an
// order-independent hash of them, NULL distinct from every value.
type ChecksumSum struct {
	Rows int64
	Hash uint64
}
