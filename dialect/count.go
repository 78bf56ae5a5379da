package dialect

import (
	"context"
	"log/slog"
	"time"
)

// countStopEvery is how often stopCountOnServer asks the server again to
// stop a count.
const countStopEvery = 100 * time.Millisecond

// countStopTimeout bounds one request to stop a count.
const countStopTimeout = 10 * time.Second

// stopCountOnServer waits until done is closed (the count's statement
// returned). Once ctx ends first, it calls stop (KILL QUERY,
// pg_cancel_backend), and again every countStopEvery until done: a stop
// that reaches the count's session before the count's statement does finds
// it idle, and the server drops it (MariaDB, MySQL and PostgreSQL alike),
// so the count that follows would run to its end while CountRows, and the
// migration behind it, waited.
func stopCountOnServer(ctx context.Context, done <-chan struct{}, stop func(context.Context) error, log *slog.Logger, session any) {
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	warned := false
	for {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), countStopTimeout)
		err := stop(sctx)
		cancel()
		if err != nil && !warned {
			log.Warn("stop the row count", "session", session, "err", err)
			warned = true
		}
		select {
		case <-done:
			return
		case <-time.After(countStopEvery):
		}
	}
}
