// Package checksum compares the shadow table with the original before the
// cut-over, one implementation per database of engine.Checksum: a brief
// write lock on the original while the engine drains the applier, snapshot
// readers opened on both tables at that moment, and chunk fingerprints
// computed by the server (each mapped column converted as the copy converts
// it), so that the engine can recopy a chunk that differs and check it again.
package checksum

import (
	"fmt"
	"log/slog"
	"time"
)

// Options are the checksum's lock settings, the cut-over's.
type Options struct {
	// LockTimeout bounds each attempt's wait for the write lock on the
	// original, and then how long the engine may keep writes blocked
	// (draining, recopying); Retries is the number of attempts in all.
	LockTimeout time.Duration
	Retries     int
	Log         *slog.Logger
	// Unlocked opens the readers without the lock and without calling
	// Open's blocked, for two tables no migration is writing (osc verify):
	// PostgreSQL's readers still share one snapshot; MySQL's each start
	// their own consistent snapshot of both tables, at moments apart by
	// the time it takes to open them.
	Unlocked bool
	// PanicOnWarnings (MySQL) fails a recopy that made the server warn
	// (--panic-on-warnings, table.MySQLWarnings).
	PanicOnWarnings bool
}

// defaults fills what was left zero: the cut-over's defaults, one attempt,
// no log.
func (o Options) defaults() Options {
	if o.LockTimeout <= 0 {
		o.LockTimeout = 3 * time.Second
	}
	o.Retries = max(o.Retries, 1)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// readers returns how many of the n readers asked for the pool can hold at
// once besides the lock's connection and one for the applier and the drain
// (which run while writes are blocked and must not wait for a connection),
// and logs when it is fewer. The engine needs two: one bounds chunks, one
// compares them.
func readers(n, pool int, log *slog.Logger) (int, error) {
	most := pool - 2
	if most < 2 {
		return 0, fmt.Errorf("checksum: a pool of %d connections cannot hold two snapshot readers besides the lock and the applier", pool)
	}
	if n > most {
		log.Warn("checksum: fewer threads than asked for: the connection pool holds no more readers", "readers asked", n, "readers", most, "pool", pool)
		return most, nil
	}
	return n, nil
}
