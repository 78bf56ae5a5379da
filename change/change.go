package change

import (
	"errors"
	"fmt"
)

// Op is the kind of a Change.
type Op uint8

const (
	// Insert carries After.
	Insert Op = iota + 1
	// Update carries After, and Before when the source knows the old row
	// (always for MySQL; for PostgreSQL only when the key changed).
	Update
	// Delete carries Before (at least the key columns).
	Delete
	// Marker is a barrier the engine emitted through Source.EmitMarker; it
	// carries no row, only Marker.
	Marker
)

func (o Op) String() string {
	switch o {
	case Insert:
		return "insert"
	case Update:
		return "update"
	case Delete:
		return "delete"
	case Marker:
		return "marker"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Row is one row image in the source table's column order (table.Table.Columns).
// A nil element is SQL NULL. Element types are the dialect's own (go-mysql's
// decoded values for MySQL, pgoutput text values for PostgreSQL); only the
// dialect's applier interprets them.
type Row []any

// Position is a place in the change stream (binlog file:pos, an LSN).
type Position interface {
	String() string
}

// Change is one row change committed to the source table, or a marker.
type Change struct {
	Op     Op
	Before Row // old image; nil when the source does not send it
	After  Row // new image
	// Unchanged, when non-nil, has len(After) entries; true means the column's
	// new value was not sent (PostgreSQL unchanged TOAST) and keeps its old value.
	// The corresponding After entry is meaningless and must not be written.
	Unchanged []bool
	Marker    string   // Op == Marker: the id given to EmitMarker
	Pos       Position // position of the event (or of its transaction's commit)
	// Xid is the PostgreSQL transaction that made the change (0 for MySQL):
	// the engine asks a chunk's snapshot whether the chunk saw the change.
	Xid uint32
	// Replay marks a change the engine applies again after a chunk (its
	// replay window). A replayed delete must remove only a row whose key has
	// exactly the bytes of Before's key, not one merely equal under the
	// column's collation (case-insensitive, PAD SPACE): the row it guards
	// against is a byte-exact copy of the old row made by the chunk copy,
	// while a collation-equal row is a live row with a new key. The MySQL
	// applier compares text key columns byte for byte; the PostgreSQL applier
	// ignores it, since its deterministic collations compare equal only equal
	// bytes.
	Replay bool
	// Cut marks the last change of a batch that a PostgreSQL source returned
	// while the change's transaction was still being read (one larger than
	// the capture's queue): the transaction may go on after it, so the
	// batch may end in a state the source never committed.
	Cut bool
}

// Partial reports whether the change leaves some columns unwritten.
func (c *Change) Partial() bool {
	for _, u := range c.Unchanged {
		if u {
			return true
		}
	}
	return false
}

// ErrMidTransaction is the error (wrapped) of an Apply whose changes end
// inside a source transaction, at a point where rows of the batch hold one
// value of a unique key twice: a PostgreSQL DEFERRABLE unique constraint
// lets a statement (INITIALLY IMMEDIATE) or a transaction (DEFERRED) hold a
// value in two rows until it ends, and the shadow, whose constraint is
// checked at its commit at the latest, cannot hold that state. The batch
// applies once it reaches a point where the duplicate is resolved: the
// engine applies it again with the changes that follow it, which the source
// has since it sends only committed transactions, each whole.
var ErrMidTransaction = errors.New("the changes end inside a transaction, where rows of the batch hold one value of a unique key twice")
