package engine

import (
	"context"
	"fmt"
	"time"
)

// count walks the table in key order, chunk by chunk, as the backfill's
// update does, counting the rows the --where selects, or with failing those
// that fail --verify, with the first VerifyMaxKeys of their keys: a count of
// a big table is no single long statement, and it is throttled, paced and
// steered (chunk-size=, throttle, panic) as the update is. Each chunk is
// counted in a statement of its own, so rows written meanwhile count as the
// chunk covering them finds them when it is read.
func (b *Backfill) count(ctx context.Context, failing bool) (n int64, keys []string, err error) {
	b.counted.Store(0)
	err = b.throttled(ctx, func(ctx context.Context) error {
		var after []any
		for {
			if err := b.ctl.waitThrottle(ctx); err != nil {
				return err
			}
			size := int(b.ctl.copySize.Load())
			most := 0
			if failing {
				most = b.cfg.VerifyMaxKeys - len(keys)
			}
			start := time.Now()
			var c BackfillCount
			if err := b.retry(ctx, func() (err error) {
				c, err = b.d.CountChunk(ctx, after, size, failing, most)
				return err
			}); err != nil {
				return err
			}
			took := time.Since(start)
			n += c.Counted
			keys = append(keys, c.Keys...)
			b.counted.Add(c.Scanned)
			if b.cfg.ChunkTarget > 0 {
				next := nextChunkSize(size, int(c.Scanned), took, b.cfg.ChunkTarget, maxChunkSize)
				b.ctl.copySize.CompareAndSwap(int64(size), int64(next)) // an operator's chunk-size= meanwhile wins
			}
			if c.Done {
				return nil
			}
			after = c.Last
			if err := b.ctl.niceSleep(ctx, took); err != nil {
				return err
			}
		}
	})
	if err != nil {
		return 0, nil, fmt.Errorf("count in chunks: %w", err)
	}
	return n, keys, nil
}
