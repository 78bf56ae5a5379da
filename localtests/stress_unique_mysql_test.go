package localtests

import (
	"fmt"
	"strings"
)

// mysqlTransientVariant is unique_new whose writers also hold values twice
// for a moment (issue #15): one transaction gives row b the value row a
// holds, and commits; the next moves one of the two on to a fresh value or
// NULL. The original has no unique key on u, so it holds the value twice
// between the two commits. A shadow write of b's value displaces a's row
// (or a's, b's), and when the applier is behind, the original is already
// past the second commit: the row displaced may never change again, and
// must come back from the aside table (README, "Why nothing is lost", step
// 5). The migration must cut over with every row. The duplicates end before
// the cut-over may come (stressLoad.calm): after it, the table's new unique
// key refuses them, and one held when the cut-over blocks writes rightly
// fails the migration.
func mysqlTransientVariant() stressVariant {
	return stressVariant{
		name:   "unique_new_transient",
		create: strings.Replace(mysqlUniqueMovesCreate, "UNIQUE KEY uq_u (u)", "KEY idx_u (u)", 1),
		alter:  "ADD UNIQUE KEY uq_u (u), ADD COLUMN extra INT NULL",
		key:    "id", cols: []string{"n", "s", "d"}, unique: "u",
		dupPairs: true,
		writers:  1,
		extra:    []string{"--chunk-size", "50", "--target-chunk-time", "20ms"},
	}
}

// planDupPair returns a change that makes a duplicate of the unique
// column and, after a commit, resolves it (see mysqlTransientVariant), and
// applies it to the writer's idea of the table; false when it found
// nothing to do.
func (w *stressWriter) planDupPair() (change, bool) {
	if w.dup.started == 0 {
		// osc looks for duplicates before the copy (watchCopy): one held
		// then rightly fails the migration.
		return change{}, false
	}
	if w.calm {
		// The cut-over may come: a duplicate held when it blocks writes
		// is one the table holds, and fails the migration.
		return change{}, false
	}
	u := w.target.d.quote(w.v.unique)
	a, ok := w.pickValued(w.halfBig())
	if !ok {
		return change{}, false
	}
	v, valued := w.uniq[a]
	if !valued {
		return change{}, false
	}
	w.touched[a] = true
	b, ok := w.pickExisting(w.halfBig())
	if !ok {
		return change{}, false
	}
	w.touched[b] = true
	w.uniq[b] = v
	mover := a
	if w.rng.IntN(2) == 0 {
		mover = b
	}
	fresh := w.freshUnique(mover)
	// The first statement commits the duplicate (and the changes before it
	// in the transaction); the second starts the next transaction, which
	// the changes after it join.
	return change{min(a, b), fmt.Sprintf("UPDATE {T} SET %s = '%s', n = n + 1 WHERE {K} = %d;\nCOMMIT;\nSTART TRANSACTION;\nUPDATE {T} SET %s = %s WHERE {K} = %d",
		u, v, b, u, fresh, mover)}, true
}
