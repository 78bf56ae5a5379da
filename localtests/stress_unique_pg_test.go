package localtests

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"
)

// The unique_transient variant: the original has no unique key on u, the
// --alter adds one, and the writers hold a value in two rows for a while
// (transient duplicates): a row takes another's value in one transaction,
// and one of the two gives it up in a later one (a fresh value or NULL,
// sometimes with a key change), a few transactions on. Every tenth row holds
// a big TOASTed value the writers never change, so an update or key change
// of such a row reaches osc as a partial update or a move. A row the applier
// meets holding a value another row takes must wait aside and come back
// (README, "Why nothing is lost", step 5): deleting it loses a row when the
// row that took the value has moved on by then and the deleted one changes
// no more. A duplicate the table holds when osc looks for them before the
// copy, or under the cut-over's lock, fails the run, as it must: so each
// writer makes them only once the copy has started (watchCopy) and for its
// next v.transient transactions, and the cut-over waits until every writer
// is done with them (stressLoad.transient).

// pgTransientVariants are the PostgreSQL variants with transient duplicates.
func pgTransientVariants() []stressVariant {
	return []stressVariant{{
		name: "unique_transient",
		create: `CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL, s text NOT NULL, d timestamptz, u text, big text);
ALTER TABLE t ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO t SELECT g, g % 1000, md5(g::text), CASE WHEN g % 7 <> 0 THEN '2026-01-01'::timestamptz + g * interval '1 second' END,
  CASE WHEN g % 11 <> 0 THEN 'u' || g END,
  CASE WHEN g % 10 = 0 THEN (SELECT string_agg(md5(random()::text || g || x), '') FROM generate_series(1, 200) x) END
FROM generate_series(1, 25000) g WHERE g % 5 <> 4;
CREATE TABLE t_ctl (LIKE t INCLUDING ALL);
INSERT INTO t_ctl SELECT * FROM t;`,
		alter: "ADD CONSTRAINT t_u UNIQUE (u), ALTER COLUMN n TYPE bigint",
		key:   "id", cols: []string{"n", "s", "d"}, unique: "u", big: "big",
		// One writer, paced more than unique_moves_toast's (during the copy
		// a key change of a big row is a source read, and so is a partial
		// update whose value clashes).
		writers: 1, pause: 3 * time.Millisecond,
		transient: 1000,
		extra:     []string{"--chunk-size", "50"},
	}}
}

// transientDup is a writer's duplicates.
type transientDup struct {
	tx      int    // the writer's transactions so far
	started int    // its transactions when the copy had started (0: not yet)
	made    int    // the transaction that made the one it holds
	value   string // the value it holds twice; "": none
	taker   int64  // the row that took the value
	// done is set once it makes no more and holds none (read by the
	// goroutine that postpones the cut-over).
	done atomic.Bool
}

// watchCopy notes, with v.transient or v.dupPairs, when the copy has
// started: the shadow has rows (osc looked for duplicates before). Until
// then it looks before each transaction.
func (w *stressWriter) watchCopy(ctx context.Context, conn *sql.Conn) error {
	if w.v.transient == 0 && !w.v.dupPairs || w.dup.started > 0 {
		return nil
	}
	var copying bool
	var err error
	if _, pg := w.target.d.(pgDialect); pg {
		err = conn.QueryRowContext(ctx, "SELECT coalesce((SELECT n_tup_ins > 0 FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = '_t_osc'), false)").Scan(&copying)
	} else {
		var shadow bool
		err = conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 't_osc_new')").Scan(&shadow)
		if err == nil && shadow {
			err = conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM t_osc_new)").Scan(&copying)
		}
	}
	if err != nil {
		return fmt.Errorf("writer %d: has the copy started: %w", w.id, err)
	}
	if copying {
		w.dup.started = w.dup.tx + 1
	}
	return nil
}

// transient reports whether a writer may still make or hold a duplicate.
func (s *stressLoad) transient() bool {
	for _, w := range s.writers {
		if w.v.transient > 0 && !w.dup.done.Load() {
			return true
		}
	}
	return false
}

// planTransient returns, with v.transient, a change that makes a duplicate
// (a row takes a value another row of the writer holds) or, in a later
// transaction, ends it (one of the rows holding it gives it up), and
// applies it to the writer's idea of the table; false when it has nothing
// to do. A duplicate ends after a few transactions, and at once after the
// writer's v.transient transactions since the copy started, after which it
// makes no more.
func (w *stressWriter) planTransient() (change, bool) {
	if w.v.transient == 0 || w.dup.started == 0 {
		return change{}, false
	}
	late := w.dup.tx >= w.dup.started+w.v.transient
	if late && w.dup.value == "" {
		w.dup.done.Store(true)
		return change{}, false
	}
	u := w.target.d.quote(w.v.unique)
	if w.dup.value != "" {
		if w.dup.tx == w.dup.made || (!late && w.rng.IntN(2) != 0) {
			return change{}, false
		}
		var holders []int64
		for k, v := range w.uniq {
			if v == w.dup.value && !w.touched[k] {
				holders = append(holders, k)
			}
		}
		if len(holders) < 2 {
			// Ended by another change (a swap, a delete), or one of its rows
			// is written in this transaction already: look again later.
			if len(holders) < 2 && !w.holdsTwice(w.dup.value) {
				w.dup.value = ""
			}
			return change{}, false
		}
		// Mostly the row that took the value gives it up: the row it took
		// it from then holds it alone, and changes no more.
		h := holders[w.rng.IntN(len(holders))]
		if w.uniq[w.dup.taker] == w.dup.value && !w.touched[w.dup.taker] && w.rng.IntN(4) != 0 {
			h = w.dup.taker
		}
		w.touched[h] = true
		if w.rng.IntN(3) == 0 {
			// A key change with it: a move when the row is big.
			k := w.newKey()
			big := w.big.has(h)
			w.remove(h)
			w.add(k, big)
			val := w.freshUnique(k)
			w.dup.value = ""
			return change{min(k, h), fmt.Sprintf("UPDATE {T} SET {K} = %d, %s = %s WHERE {K} = %d", k, u, val, h)}, true
		}
		val := w.freshUnique(h)
		w.dup.value = ""
		return change{h, fmt.Sprintf("UPDATE {T} SET %s = %s WHERE {K} = %d", u, val, h)}, true
	}
	if late || w.rng.IntN(4) != 0 {
		return change{}, false
	}
	a, ok := w.pickValued(anyRow)
	if !ok || w.touched[a] {
		return change{}, false
	}
	va, valued := w.uniq[a]
	b, ok := w.pickExisting(w.halfBig())
	if !valued || !ok || b == a || w.touched[b] {
		return change{}, false
	}
	w.touched[a], w.touched[b] = true, true
	w.uniq[b] = va
	w.dup.made, w.dup.value, w.dup.taker = w.dup.tx, va, b
	set := ""
	if w.rng.IntN(2) == 0 {
		set = ", n = n + 1"
	}
	return change{b, fmt.Sprintf("UPDATE {T} SET %s = '%s'%s WHERE {K} = %d", u, va, set, b)}, true
}

// holdsTwice reports whether two of the writer's rows hold v.
func (w *stressWriter) holdsTwice(v string) bool {
	n := 0
	for _, x := range w.uniq {
		if x == v {
			n++
		}
	}
	return n > 1
}
