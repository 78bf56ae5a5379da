package engine

import "time"

// While a backlog lasts, apply batches grow beyond --dml-batch-size: each
// batch costs the applier round trips and a commit whatever its size, so
// small batches cap the rate at which a backlog drains. The limit is only a
// cap: the source returns the changes it has ready, never waiting for more,
// so a caught-up applier applies what arrives at once, in small batches,
// whatever the limit. The limit doubles after a batch the source filled to
// it that took at most maxBatchTime, up to maxBatchGrowth times the set
// size, and halves (down to the set size) after one that took longer: a
// batch holds the applier's lock, which a chunk's replay and refresh and the
// cut-over's drain wait for, and a failed batch is applied again whole.
const (
	maxBatchGrowth = 64
	maxBatchTime   = 100 * time.Millisecond
)

// batchLimit is the number of changes the next batch asks the source for.
type batchLimit struct{ n int }

// next returns the limit of the next batch, given the set size and the last
// batch: how many changes the source returned for the limit in force (got)
// and how long applying them took.
func (b *batchLimit) next(set, got int, took time.Duration) int {
	switch {
	case took > maxBatchTime:
		b.n /= 2
	case got >= b.n:
		b.n *= 2
	}
	b.n = min(max(b.n, set), set*maxBatchGrowth)
	return b.n
}
