package change

import "errors"

// ErrChunkClash is the error (wrapped) of a chunk whose row clashed, in a
// unique index other than the key, with a row of another key the applier
// wrote: one of the two is not the latest. A fresh read settles a stale
// read; a row the applier has not yet brought up to the chunk's read needs
// the applier to pass every commit the read saw (the engine drains, then
// copies the chunk again); a real duplicate fails every time.
var ErrChunkClash = errors.New("a row the chunk read clashes in a unique index with a row of another key in the shadow")

// Chunk is the result of one chunk of the copy (engine.Copier.CopyChunk;
// engine.Chunk is an alias of it).
type Chunk struct {
	Last []any // the chunk's upper bound, the next call's after
	Rows int64 // rows the chunk covered
	Done bool  // no row remains past Last
	// Snapshot is what the chunk's read saw, for copiers that can tell
	// (PostgreSQL); nil otherwise.
	Snapshot Snapshot
}

// Snapshot tells which transactions a chunk's read saw.
type Snapshot interface {
	// Sees reports whether the changes of transaction xid (Change.Xid) were
	// visible to the read. An unknown xid (0) is not seen.
	Sees(xid uint32) bool
}
