package change

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
