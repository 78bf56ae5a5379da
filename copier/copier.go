package copier

import "osc/change"

// Chunk and Snapshot are defined in package change, which the engine
// imports without a database driver.
type (
	Chunk    = change.Chunk
	Snapshot = change.Snapshot
)
