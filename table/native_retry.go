package table

import (
	"context"
	"fmt"
	"time"
)

// retryNative runs attempt until it succeeds, fails in a way retryable does
// not accept, or retries attempts have run; between attempts it waits a
// little longer each time (at most 2 s), so that whatever held the table is
// given a moment before the next attempt queues writers again. The native
// paths of both databases use it (mysql_native.go, postgres_native.go).
func retryNative(ctx context.Context, retries int, attempt func() error, retryable func(error) bool) error {
	for n := 1; ; n++ {
		err := attempt()
		if err == nil || n >= retries || !retryable(err) || ctx.Err() != nil {
			if err != nil && n > 1 {
				err = fmt.Errorf("attempt %d: %w", n, err)
			}
			return err
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(min(time.Duration(n)*100*time.Millisecond, 2*time.Second)):
		}
	}
}
