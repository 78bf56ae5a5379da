// Package checksum compares the shadow table with the original before the
// cut-over, one implementation per database of engine.Checksum: a brief
// write lock on the original while the engine drains the applier, snapshot
// readers opened on both tables at that moment, and chunk fingerprints
// computed by the server (each mapped column converted as the copy converts
// it), so that the engine can recopy a chunk that differs and check it again.
package checksum

import (
	"log/slog"
	"time"
)

// Options are the checksum's lock settings, the cut-over's.
type Options struct {
	// LockTimeout bounds each attempt's wait for the write lock on the
	// original; Retries is the number of attempts in all.
	LockTimeout time.Duration
	Retries     int
	Log         *slog.Logger
}
