package cdc

import "osc/change"

// The change types are defined in package change, which the engine imports
// without a database driver.
type (
	Op       = change.Op
	Row      = change.Row
	Position = change.Position
	Change   = change.Change
)

// The kinds of a Change.
const (
	Insert = change.Insert
	Update = change.Update
	Delete = change.Delete
	Marker = change.Marker
)
