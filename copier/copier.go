// Package copier copies the original table into the shadow table in
// key-ordered chunks, never overwriting a row already in the shadow.
package copier

// Chunk is the result of one CopyChunk. engine.Chunk is an alias of it: the
// type lives here because engine imports copier.
type Chunk struct {
	Last []any // the chunk's upper bound, the next call's after
	Rows int64 // rows the chunk covered
	Done bool  // no row remains past Last
}
