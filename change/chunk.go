package change

import "errors"

// ErrChunkClash is the error (wrapped) of a refresh of a chunk's stale rows
// (Chunk.Stale) that met a clash the applier cannot resolve by deleting the
// clashing row (a unique index whose equality SQL cannot state): the source
// row it read clashes with a shadow row of another key that the applier has
// not yet brought up to the read. The engine drains the applier and
// refreshes again; a real duplicate fails every time.
var ErrChunkClash = errors.New("a row read from the source clashes in a unique index with a row of another key in the shadow")

// Chunk is the result of one chunk of the copy (engine.Copier.CopyRange;
// engine.Chunk is an alias of it).
type Chunk struct {
	Last []any // the chunk's upper bound, the next call's after
	Rows int64 // rows the chunk covered
	Done bool  // no row remains past Last
	// Snapshot is what the chunk's read saw, for copiers that can tell
	// (PostgreSQL); nil otherwise.
	Snapshot Snapshot
	// Stale is the keys (source key columns' texts) of rows the chunk read
	// but did not write because they clashed, in a unique index other than
	// the key, with a shadow row of another key: one of the two is not the
	// latest, and which one the copier cannot tell. The engine has the
	// applier write these keys' rows as the source holds them now
	// (PostgreSQL; the MySQL copier leaves them to the changes that follow,
	// which carry whole rows).
	Stale [][]string
}

// Snapshot tells which transactions a chunk's read saw.
type Snapshot interface {
	// Sees reports whether the changes of transaction xid (Change.Xid) were
	// visible to the read. An unknown xid (0) is not seen.
	Sees(xid uint32) bool
}
