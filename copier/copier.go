package copier

import (
	"context"

	"osc/change"
)

// Chunk and Snapshot are defined in package change, which the engine
// imports without a database driver.
type (
	Chunk    = change.Chunk
	Snapshot = change.Snapshot
)

// ranger is a copier of ranges of keys (engine.Copier).
type ranger interface {
	Bound(ctx context.Context, after []any, size int) ([]any, error)
	CopyRange(ctx context.Context, after, upto []any) (Chunk, error)
}

// copyChunk copies the chunk of about size rows after after: Bound, then
// CopyRange (a range with a bound covered size rows).
func copyChunk(ctx context.Context, c ranger, after []any, size int) (Chunk, error) {
	upto, err := c.Bound(ctx, after, size)
	if err != nil {
		return Chunk{}, err
	}
	chunk, err := c.CopyRange(ctx, after, upto)
	if err == nil && upto != nil {
		chunk.Rows = int64(size)
	}
	return chunk, err
}
