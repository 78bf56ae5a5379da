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

// changeSize estimates the memory a queued change holds.
func changeSize(c *Change) int {
	n := 64 + len(c.Marker)
	for _, r := range []Row{c.Before, c.After} {
		for _, v := range r {
			n += 16
			switch x := v.(type) {
			case string:
				n += len(x)
			case []byte:
				n += len(x)
			}
		}
	}
	return n
}
