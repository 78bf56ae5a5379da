package engine

import (
	"math"
	"time"
)

// The copy's chunk size is dynamic when Config.ChunkTarget is set: each
// chunk aims at that duration (Spirit's --target-chunk-time), so that the
// fixed cost of a chunk (its transaction, its marker, its replay) is spread
// over as many rows as the target allows, and a chunk of wide or slow rows
// still ends soon. The checksum's chunks follow the same rule (checksum.go),
// from checksumChunkFactor times --chunk-size; the parts it recopies keep
// --chunk-size. Neither database holds locks that writers wait for on
// the rows a chunk reads: MySQL copies under READ COMMITTED, a consistent
// read, and PostgreSQL's reads take no row locks. What a longer chunk holds
// longer are the shadow rows it inserts, which only the applier writes.
const (
	// minChunkSize and maxChunkSize bound the dynamic size.
	minChunkSize = 10
	maxChunkSize = 100_000
	// chunkGrowth bounds how far one chunk moves the size, either way: a
	// chunk slowed by a passing stall does not collapse it.
	chunkGrowth = 2.0
)

// nextChunkSize is the size after a chunk of rows rows, asked for size,
// took took, aiming at target: the rows the chunk's rate handles in target,
// at most chunkGrowth times more or fewer than size, from minChunkSize to
// most. A chunk that had no rows, or was too fast to time, leaves the size
// as it is (the last chunk, a range of deleted keys).
func nextChunkSize(size, rows int, took, target time.Duration, most int) int {
	if rows <= 0 || took < time.Millisecond || target <= 0 {
		return size
	}
	want := float64(rows) * float64(target) / float64(took)
	want = math.Min(math.Max(want, float64(size)/chunkGrowth), float64(size)*chunkGrowth)
	return min(max(int(want), minChunkSize), most)
}

// copyChunkSize is the size of the copy's next chunk.
func (m *Migration) copyChunkSize() int { return int(m.ctl.copySize.Load()) }

// chunkCopied adapts the copy's chunk size to a chunk's duration when the
// size is dynamic.
func (m *Migration) chunkCopied(size int, rows int64, took time.Duration) {
	if m.cfg.ChunkTarget <= 0 {
		return
	}
	next := nextChunkSize(size, int(rows), took, m.cfg.ChunkTarget, maxChunkSize)
	// An operator's chunk-size= meanwhile wins.
	m.ctl.copySize.CompareAndSwap(int64(size), int64(next))
}
