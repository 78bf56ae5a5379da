package localtests

import (
	"fmt"
	"strings"
	"time"
)

// The unique_moves stress variants: besides the key, the table has a nullable
// column u with a UNIQUE index of its own, and the writers move u's values
// between rows all the time (an account deleted and re-created under a new
// key, two rows swapping their values). A change the applier applies after a
// chunk copied a newer row then meets that row in u's index (row 1 inserted
// with 'x' is applied after a chunk copied row 2, which took 'x' once row 1
// was deleted): MySQL's REPLACE deletes the newer row, the PostgreSQL applier
// resolves the clash the same way (README, "Why nothing is lost", step 5).
//
// Each writer knows the value every row it owns holds in u, and uses values
// no other writer uses: the seeded 'u<key>' of the keys it owns, which stay
// with the writer when its rows move, and fresh 'w<writer>-<n>' ones. So the
// source never refuses a writer's change, and a clash can only be osc's.

// mysqlUniqueVariants are the MySQL unique_moves variants.
func mysqlUniqueVariants() []stressVariant {
	return []stressVariant{{
		name:   "unique_moves",
		create: mysqlUniqueMovesCreate,
		alter:  "ADD COLUMN extra INT NULL",
		key:    "id", cols: []string{"n", "s", "d"}, unique: "u",
		// One writer: InnoDB's checks of the unique index take gap locks, so
		// two writers moving values can deadlock each other (a CI run saw
		// it); a writer's deadlock must be one with osc. Smaller chunks: the
		// copy lasts long enough for the one writer to race it. Their size is
		// dynamic (from 50 rows, aiming at 20 ms), as osc's default is, so
		// chunks of changing sizes race the writer too.
		writers: 1,
		extra:   []string{"--chunk-size", "50", "--target-chunk-time", "20ms"},
	}, {
		// unique_moves with u a TEXT, whose unique key MariaDB keeps as a
		// hash (a long unique key): the applier's REPLACE there runs under
		// REPEATABLE READ (apply.MySQL's isolation), whose gap locks meet
		// the chunks' inserts.
		name:   "unique_moves_hash",
		create: strings.Replace(mysqlUniqueMovesCreate, "u VARCHAR(40) NULL", "u TEXT NULL", 1),
		alter:  "ADD COLUMN extra INT NULL",
		key:    "id", cols: []string{"n", "s", "d"}, unique: "u",
		writers: 1,
		extra:   []string{"--chunk-size", "50", "--target-chunk-time", "20ms"},
	}, {
		// unique_moves where the original does not keep u unique (the
		// writers still never duplicate a value) and the --alter adds the
		// unique key: every clash the copy or the applier meets under it is
		// asked of the original, which never holds a value twice, so the
		// migration must succeed with every row.
		name:   "unique_new",
		create: strings.Replace(mysqlUniqueMovesCreate, "UNIQUE KEY uq_u (u)", "KEY idx_u (u)", 1),
		alter:  "ADD UNIQUE KEY uq_u (u), ADD COLUMN extra INT NULL",
		key:    "id", cols: []string{"n", "s", "d"}, unique: "u",
		writers: 1,
		extra:   []string{"--chunk-size", "50", "--target-chunk-time", "20ms"},
	}, mysqlTransientVariant()}
}

// mysqlUniqueMovesCreate creates the MySQL unique_moves table.
const mysqlUniqueMovesCreate = `CREATE TABLE t (id INT NOT NULL PRIMARY KEY, n INT NOT NULL, s VARCHAR(100) NOT NULL, d DATETIME(6) NULL, u VARCHAR(40) NULL, UNIQUE KEY uq_u (u)) ENGINE=InnoDB;
INSERT INTO t SELECT seq, seq % 1000, MD5(seq), IF(seq % 7 = 0, NULL, '2026-01-01' + INTERVAL seq SECOND), IF(seq % 11 = 0, NULL, CONCAT('u', seq)) FROM seq_1_to_25000 WHERE seq % 5 <> 0;
CREATE TABLE t_ctl LIKE t;
INSERT INTO t_ctl SELECT * FROM t;`

// pgUniqueMovesCreate creates the PostgreSQL unique_moves table.
const pgUniqueMovesCreate = `CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL, s text NOT NULL, d timestamptz, u text, CONSTRAINT t_u UNIQUE (u));
INSERT INTO t SELECT g, g % 1000, md5(g::text), CASE WHEN g % 7 <> 0 THEN '2026-01-01'::timestamptz + g * interval '1 second' END,
  CASE WHEN g % 11 <> 0 THEN 'u' || g END
FROM generate_series(1, 25000) g WHERE g % 5 <> 0;
CREATE TABLE t_ctl (LIKE t INCLUDING ALL);
INSERT INTO t_ctl SELECT * FROM t;`

// pgUniqueVariants are the PostgreSQL unique_moves variants.
func pgUniqueVariants() []stressVariant {
	return []stressVariant{
		{
			name:   "unique_moves",
			create: pgUniqueMovesCreate,
			alter:  "ALTER COLUMN n TYPE bigint",
			key:    "id", cols: []string{"n", "s", "d"}, unique: "u",
			// Paced (unique_moves_fast is not): the applier still lags
			// behind the copy, and without the clash resolution every run
			// failed within a second.
			writers: 2, pause: time.Millisecond,
			// Smaller chunks: the copy lasts long enough for the paced
			// writers to race it (osc can finish within a second).
			extra: []string{"--chunk-size", "50"},
		},
		{
			// unique_moves with its two writers at full speed: the applier
			// stays further behind the copy, chunks meet its older rows all
			// the time, and most batches clash.
			name:   "unique_moves_fast",
			create: pgUniqueMovesCreate,
			alter:  "ALTER COLUMN n TYPE bigint",
			key:    "id", cols: []string{"n", "s", "d"}, unique: "u",
			writers: 2,
			// Chunks of dynamic size (from 50 rows, aiming at 20 ms), as
			// osc's default is, so chunks of changing sizes clash too.
			extra: []string{"--chunk-size", "50", "--target-chunk-time", "20ms"},
		},
		{
			// unique_moves where the original does not keep u unique (the
			// writers still never duplicate a value) and the --alter adds
			// the constraint (see the MySQL unique_new); its writers at full
			// speed, as unique_moves_fast's.
			name:   "unique_new",
			create: strings.Replace(pgUniqueMovesCreate, ", CONSTRAINT t_u UNIQUE (u)", "", 1),
			alter:  "ADD CONSTRAINT t_u UNIQUE (u), ALTER COLUMN n TYPE bigint",
			key:    "id", cols: []string{"n", "s", "d"}, unique: "u",
			writers: 2,
			extra:   []string{"--chunk-size", "50", "--target-chunk-time", "20ms"},
		},
		{
			// Every 10th row holds 6,400 bytes of hex digits, stored out of
			// line, that the writers never change: an update of u (or of
			// another column) of such a row reaches osc as a partial update,
			// its big value "unchanged TOAST". When a clash resolution
			// deleted the row from the shadow, the applier reads the source.
			name: "unique_moves_toast",
			create: `CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL, s text NOT NULL, d timestamptz, u text, big text, CONSTRAINT t_u UNIQUE (u));
ALTER TABLE t ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO t SELECT g, g % 1000, md5(g::text), CASE WHEN g % 7 <> 0 THEN '2026-01-01'::timestamptz + g * interval '1 second' END,
  CASE WHEN g % 11 <> 0 THEN 'u' || g END,
  CASE WHEN g % 10 = 0 THEN (SELECT string_agg(md5(random()::text || g || x), '') FROM generate_series(1, 200) x) END
FROM generate_series(1, 25000) g WHERE g % 5 <> 4;
CREATE TABLE t_ctl (LIKE t INCLUDING ALL);
INSERT INTO t_ctl SELECT * FROM t;`,
			alter: "ADD COLUMN extra int",
			key:   "id", cols: []string{"n", "s", "d"}, unique: "u", big: "big",
			// As toast: one writer, paced (a key change of a big row is a
			// source read).
			writers: 1, pause: time.Millisecond,
			extra: []string{"--chunk-size", "50"},
		},
	}
}

// uniqueValues is the value each of a writer's rows holds in the unique
// column, by key; a row without an entry holds NULL.
type uniqueValues map[int64]string

// literal is the SQL of k's value.
func (u uniqueValues) literal(k int64) string {
	if v, ok := u[k]; ok {
		return "'" + v + "'"
	}
	return "NULL"
}

// move gives the value of from to to (a key change: the row keeps it).
func (u uniqueValues) move(from, to int64) {
	if v, ok := u[from]; ok {
		u[to] = v
		delete(u, from)
	}
}

func (u uniqueValues) drop(k int64) { delete(u, k) }

// swap exchanges the values of a and b.
func (u uniqueValues) swap(a, b int64) {
	va, oka := u[a]
	vb, okb := u[b]
	delete(u, a)
	delete(u, b)
	if oka {
		u[b] = va
	}
	if okb {
		u[a] = vb
	}
}

// freshUnique gives k a value no row has held (or NULL, a quarter of the
// time) and returns its SQL.
func (w *stressWriter) freshUnique(k int64) string {
	if w.rng.IntN(4) == 0 {
		w.uniq.drop(k)
		return "NULL"
	}
	w.useq++
	w.uniq[k] = fmt.Sprintf("w%d-%d", w.id, w.useq)
	return w.uniq.literal(k)
}

// insertValues returns the columns and values of an insert of fresh values
// under key k (with a unique column, a fresh value or NULL there).
func (w *stressWriter) insertValues(k int64) (cols, vals []string) {
	cols = append(cols, w.v.cols...)
	for _, c := range w.v.cols {
		vals = append(vals, w.literal(c))
	}
	if w.v.unique != "" {
		cols = append(cols, w.target.d.quote(w.v.unique))
		vals = append(vals, w.freshUnique(k))
	}
	return cols, vals
}

// pickValued is pickExisting that prefers a row holding a value in the
// unique column.
func (w *stressWriter) pickValued(which int) (int64, bool) {
	for range 5 {
		k, ok := w.pickExisting(which)
		if !ok {
			return 0, false
		}
		if _, valued := w.uniq[k]; valued {
			return k, true
		}
	}
	return w.pickExisting(which)
}

// planUnique returns a change that moves values of the unique column between
// rows, and applies it to the writer's idea of the table, or false when it
// found nothing to do.
func (w *stressWriter) planUnique() (change, bool) {
	if w.v.dupPairs && w.rng.IntN(4) == 0 {
		return w.planDupPair()
	}
	u := w.target.d.quote(w.v.unique)
	switch kind := w.rng.IntN(8); {
	case kind < 3: // a and b swap their values, via NULL, in key order
		a, ok1 := w.pickValued(w.halfBig())
		if ok1 {
			w.touched[a] = true
		}
		b, ok2 := w.pickValued(w.halfBig())
		if !ok1 || !ok2 {
			return change{}, false
		}
		w.touched[b] = true
		a, b = min(a, b), max(a, b)
		// Each row is first written with the value it gives up: when a
		// chunk copies the other row after the swap and before the applier
		// applies it, that write meets the copied row.
		stmts := []string{
			fmt.Sprintf("UPDATE {T} SET n = n + 1 WHERE {K} = %d", a),
			fmt.Sprintf("UPDATE {T} SET %s = NULL WHERE {K} = %d", u, a),
			fmt.Sprintf("UPDATE {T} SET n = n + 1 WHERE {K} = %d", b),
			fmt.Sprintf("UPDATE {T} SET %s = %s WHERE {K} = %d", u, w.uniq.literal(a), b),
			fmt.Sprintf("UPDATE {T} SET %s = %s WHERE {K} = %d", u, w.uniq.literal(b), a),
		}
		w.uniq.swap(a, b)
		return change{a, strings.Join(stmts, ";\n")}, true
	case kind < 6: // re-created: a row deleted, a new key inserted with its value
		old, ok := w.pickValued(notBigRow)
		if !ok {
			return change{}, false
		}
		w.touched[old] = true
		// Above the old key: the transaction then locks its rows in key
		// order, as the copy's locking read does, and cannot deadlock with it.
		k := w.newKey()
		for tries := 0; k < old && tries < 10; tries++ {
			k = w.newKey()
		}
		if k < old {
			return change{}, false
		}
		vals := make([]string, len(w.v.cols))
		for i, c := range w.v.cols {
			vals[i] = w.literal(c)
		}
		val := w.uniq.literal(old)
		w.uniq.move(old, k)
		w.remove(old)
		w.add(k, false)
		// The row is written (with its value) before it is deleted, as a
		// swap's rows are.
		return change{old, fmt.Sprintf("UPDATE {T} SET n = n + 1 WHERE {K} = %d;\nDELETE FROM {T} WHERE {K} = %d;\nINSERT INTO {T} ({K}, %s, %s) VALUES (%d, %s, %s)",
			old, old, strings.Join(w.v.cols, ", "), u, k, strings.Join(vals, ", "), val)}, true
	default: // a row gives up its value for a fresh one or NULL
		k, ok := w.pickValued(w.halfBig())
		if !ok {
			return change{}, false
		}
		w.touched[k] = true
		set := ""
		if w.rng.IntN(2) == 0 {
			set = ", n = n + 1"
		}
		return change{k, fmt.Sprintf("UPDATE {T} SET %s = %s%s WHERE {K} = %d", u, w.freshUnique(k), set, k)}, true
	}
}
