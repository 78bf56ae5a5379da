// Package copier copies the original table into the shadow table in
// key-ordered chunks, never overwriting a row already in the shadow.
package copier

// Chunk is the result of one CopyChunk. engine.Chunk is an alias of it: the
// type lives here because engine imports copier.
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
	// Sees reports whether the changes of transaction xid (cdc.Change.Xid)
	// were visible to the read. An unknown xid (0) is not seen.
	Sees(xid uint32) bool
}
