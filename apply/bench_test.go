package apply

import (
	"context"
	"fmt"
	"testing"
	"time"

	"osc/cdc"
)

// BenchBatches times an applier (a new one per batch size) on changes,
// applied in batches of 100, 1,000 and 6,400 (a sub-benchmark each), and
// reports changes/s. Exported for the external test package's benchmarks.
func BenchBatches(b *testing.B, changes []cdc.Change, applier func() interface {
	Apply(context.Context, []cdc.Change) error
}) {
	ctx := context.Background()
	for _, size := range []int{100, 1000, 6400} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			a := applier()
			start := time.Now()
			for range b.N {
				for i := 0; i < len(changes); i += size {
					if err := a.Apply(ctx, changes[i:min(i+size, len(changes))]); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*len(changes))/time.Since(start).Seconds(), "changes/s")
		})
	}
}
