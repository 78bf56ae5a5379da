package table

import (
	"errors"
	"fmt"
	"strings"
)

// A shared key. When the --alter widens or replaces the original's key
// (DROP PRIMARY KEY, ADD PRIMARY KEY (id, tenant_id)), no key is a key of
// both tables. osc then still copies in chunks of the original's key (Key,
// which only the original has), and tells rows of the shadow apart by a
// PRIMARY KEY or NOT NULL UNIQUE key of the shadow (RowKey) that:
//   - has every column copied from an original NOT NULL column whose
//     distinct values stay distinct (no USING other than a cast that keeps
//     them), so each change's row image gives the row's RowKey values in the
//     shadow;
//   - holds every column of Key: Key's values are unique in the original, so
//     RowKey's are too, and no row the copy or the applier writes can clash
//     on RowKey with another row of the original (a new unique key that does
//     not hold an old one could, and is refused).
//
// Everything that writes or deletes rows of the shadow by key (the copy's
// insert-if-absent, the applier's upsert and delete, the replay window)
// uses RowKey; an update that changes RowKey's values deletes the old row
// and writes the new one, as a key-changing update always did. Reading the
// original in key order (the copy's chunks, the checksum's) uses Key.

// Identity returns the key that identifies a row in the shadow (RowKey, or
// Key when the tables share it) and its positions in row images.
func (p *Plan) Identity() ([]string, []int) {
	if p.RowKey != nil {
		return p.RowKey, p.RowKeyIndex
	}
	return p.Key, p.KeyIndex
}

// identityUsable checks that RowKey, when set, has a known position for
// each of its columns.
func (p *Plan) identityUsable() error {
	if p.RowKey != nil && (len(p.RowKey) != len(p.RowKeyIndex) || len(p.RowKey) < len(p.Key)) {
		return errors.New("the plan's shadow key does not hold the original's key")
	}
	return nil
}

// RowKeyRevertRefusal refuses the revert window of a plan whose shadow has
// none of the original's keys: after the cut-over the old table would have
// to be kept current by a key the new table does not have.
func (p *Plan) RowKeyRevertRefusal() error {
	if p.RowKey == nil {
		return nil
	}
	return fmt.Errorf("--revert-window: the --alter changes the key (the original's (%s) is a key of the altered table only as part of (%s)), "+
		"and a revert would keep the old table current by a key the new table lacks; migrate without --revert-window, "+
		"or keep the old key as a UNIQUE key in the --alter",
		strings.Join(p.Key, ", "), strings.Join(p.RowKey, ", "))
}

// containsAll reports whether every name of sub is among names, as eq
// compares names.
func containsAll(names, sub []string, eq func(a, b string) bool) bool {
	for _, s := range sub {
		found := false
		for _, n := range names {
			if eq(n, s) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return len(sub) > 0
}
