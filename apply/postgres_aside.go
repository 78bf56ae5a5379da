package apply

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"osc/table"
)

// Rows set aside (a new unique key, table.Plan.NewUnique).
//
// A new unique key is one the original does not have: it may hold a value
// in two rows, for a moment (a row takes the value, another gives it up
// later) or for good. When the clash resolution (postgres_clash.go) meets a
// shadow row of another key holding a written row's value in such an index,
// it cannot trust a later change to write that row again, as it can under
// the original's own unique keys: the row may hold the value in the original
// too, and change no more. So the row goes, whole, into the table of rows
// set aside (table.PostgresAside), in the statement that deletes it from the
// shadow (a data-modifying WITH: DELETE … RETURNING, then INSERT INTO the
// aside table). For every other step a row set aside is a row of the shadow:
// a key is in one of the two tables, never both, and
//   - every change applied for a key takes it out of the aside table in the
//     same statement or transaction (an upsert's and a delete's statements
//     delete it there first, a move deletes its old key and its new one, a
//     refresh the keys it writes), once the table may hold rows (asideAny);
//   - a partial update (an unchanged TOAST value) of a key set aside updates
//     its row there (updateSQL), which holds every column; a move within the
//     shadow (moveSQL) takes the values the change lacks from the row set
//     aside as from the shadow's;
//   - the copy skips the keys set aside, as those the shadow holds
//     (copier.Postgres).
// Restore moves the rows set aside back into the shadow where they clash
// with nothing any more. Under the cut-over's lock (final), every change is
// applied and the original's writes are blocked, so the shadow and the rows
// set aside are the original: a row still aside duplicates a row of the
// original under a new unique key, and the run fails naming them
// (*table.DuplicateError). Restore reads neither the original nor anything
// the cut-over's lock blocks.

// initAside sets up the table of rows set aside when the plan has new
// unique keys, after loadUnique.
func (a *Postgres) initAside(ctx context.Context) error {
	a.aside = table.PostgresAside(a.plan)
	if a.aside == "" {
		return nil
	}
	a.asideCols = a.asideCols[:0]
	for _, c := range a.cols {
		a.asideCols = append(a.asideCols, c.name)
	}
	a.asideCols = append(a.asideCols, a.fillNames...)
	for _, k := range a.plan.NewUnique {
		found := false
		for i := range a.unique {
			if a.unique[i].name == k.Name {
				a.unique[i].aside, found = true, true
			}
		}
		if !found {
			return fmt.Errorf("the new unique key %s is not one whose clashes the applier resolves", k.Describe())
		}
	}
	var exists bool
	if err := a.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", a.aside).Scan(&exists); err != nil {
		return fmt.Errorf("look for the table of rows set aside %s: %w", a.aside, err)
	}
	if !exists {
		return fmt.Errorf("the table of rows set aside %s is gone (a killed run's rows there would be lost): run again with --initially-drop-ghost-table, without --resume", a.aside)
	}
	if err := a.pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM "+a.aside+")").Scan(&a.asideAny); err != nil {
		return fmt.Errorf("read the table of rows set aside %s: %w", a.aside, err)
	}
	return nil
}

// withAside is plain, or withAside (the same statement taking its keys out
// of the table of rows set aside) while that table may hold rows.
func (a *Postgres) withAside(plain, withAside string) string {
	if a.asideAny {
		return withAside
	}
	return plain
}

// setAside notes that a statement set n rows aside.
func (a *Postgres) setAside(n int64) {
	if n > 0 {
		a.asideAny = true
	}
}

// unsure, deferred by the calls that may set rows aside, notes that the
// table of rows set aside may hold rows when the call failed: a statement
// that set rows aside may have committed and lost its result (the
// connection lost after the commit), and the engine's retry of the call
// must then take its keys out of that table as it writes them (withAside),
// or a key would be in both tables.
func (a *Postgres) unsure(err *error) {
	if *err != nil && a.aside != "" {
		a.asideAny = true
	}
}

// unaside is a WITH entry deleting from the table of rows set aside the
// keys in (a query of the key's values, in key order).
func (a *Postgres) unaside(in string) string {
	keys := make([]string, len(a.keys))
	for i, k := range a.keys {
		keys[i] = k.name
	}
	return fmt.Sprintf("osc_unaside AS (DELETE FROM %s WHERE (%s) IN (%s))", a.aside, strings.Join(keys, ", "), in)
}

// unasideRows is unaside for the keys of the rows an upsert's parameters
// hold (see unnestRow).
func (a *Postgres) unasideRows(params, vars []string) string {
	casts := make([]string, len(a.keys))
	for i, k := range a.keys {
		casts[i] = k.expr("u." + vars[a.keyRow[i]])
	}
	return a.unaside(fmt.Sprintf("SELECT %s FROM unnest(%s) AS u(%s)", strings.Join(casts, ", "), strings.Join(params, ", "), strings.Join(vars, ", ")))
}

// Restore moves the rows set aside that clash with no row of the shadow any
// more back into it, in one statement (one transaction): the insert skips
// those that still clash (ON CONFLICT DO NOTHING, every unique index an
// arbiter, rows inserted earlier in the statement included), and what it
// inserted leaves the aside table. With final (the original's writes
// blocked and every change applied: see the comment at the top) a row left
// aside is a duplicate of the original, returned as a *table.DuplicateError.
// The final restore reads the table whatever asideAny says: the flag comes
// from the results the applier read, and a statement that set rows aside
// and committed may have lost its result (the connection lost after the
// commit); the rows it left there are rows of the original.
func (a *Postgres) Restore(ctx context.Context, final bool) error {
	if err := a.init(ctx); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if a.aside == "" || !a.asideAny && !final {
		return nil
	}
	keys := make([]string, len(a.keys))
	for i, k := range a.keys {
		keys[i] = k.name
	}
	key := strings.Join(keys, ", ")
	cols := strings.Join(a.asideCols, ", ")
	q := fmt.Sprintf("WITH r AS (INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s ORDER BY %s ON CONFLICT DO NOTHING RETURNING %s), "+
		"d AS (DELETE FROM %s WHERE (%s) IN (SELECT %s FROM r) RETURNING 1) "+
		"SELECT (SELECT count(*) FROM %s) - (SELECT count(*) FROM d)",
		a.shadow, cols, cols, a.aside, key, key, a.aside, key, key, a.aside)
	var left int64
	if err := a.pool.QueryRow(ctx, q).Scan(&left); err != nil {
		return fmt.Errorf("restore the rows set aside in %s into %s: %w", a.aside, a.shadow, table.PostgresShadowRefusal(err, a.plan))
	}
	a.asideAny = left > 0
	if !final || left == 0 {
		return nil
	}
	return a.duplicates(ctx, left)
}

// pgDuplicatesShown bounds the values and keys a duplicate error names.
const pgDuplicatesShown = 10

// duplicates returns the *table.DuplicateError of the rows left aside by a
// final Restore: for the first new unique key under which one clashes, the
// values that rows of the shadow and rows set aside hold together, how many
// rows hold each, and their keys. It reads the shadow and the aside table
// only. The aside table lacks the shadow's stored generated columns, which
// a new unique key may be over: they are computed over its rows.
func (a *Postgres) duplicates(ctx context.Context, left int64) error {
	aside := a.aside
	if len(a.generated) > 0 {
		gen := []string{"osc_x.*"}
		for _, g := range a.generated {
			gen = append(gen, "("+g[1]+") AS "+g[0])
		}
		aside = "(SELECT " + strings.Join(gen, ", ") + " FROM " + a.aside + " AS osc_x) AS osc_a"
	}
	for _, u := range a.plan.NewUnique {
		cols := make([]string, len(u.Shadow))
		texts := make([]string, len(u.Shadow))
		for i, c := range u.Shadow {
			cols[i] = pgx.Identifier{c}.Sanitize()
			texts[i] = "coalesce(" + cols[i] + "::text, 'NULL')"
		}
		list := strings.Join(cols, ", ")
		q := fmt.Sprintf("WITH held AS (SELECT %s, %s FROM %s WHERE (%s) IN (SELECT %s FROM %s) UNION ALL SELECT %s, %s FROM %s) "+
			"SELECT ARRAY[%s], count(*), array_agg(osc_key ORDER BY osc_key) FROM held WHERE ROW(%s) IS NOT NULL "+
			"GROUP BY %s HAVING count(*) > 1 ORDER BY %s LIMIT %d",
			list, a.keyTexts(), a.shadow, list, list, aside, list, a.keyTexts(), aside,
			strings.Join(texts, ", "), list, list, list, pgDuplicatesShown)
		rows, err := a.pool.Query(ctx, q)
		if err != nil {
			return fmt.Errorf("restore: read the rows left aside in %s: %w", a.aside, err)
		}
		var dups []table.Duplicate
		for rows.Next() {
			var d table.Duplicate
			if err := rows.Scan(&d.Values, &d.Rows, &d.Keys); err != nil {
				rows.Close()
				return fmt.Errorf("restore: read the rows left aside in %s: %w", a.aside, err)
			}
			dups = append(dups, d)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("restore: read the rows left aside in %s: %w", a.aside, err)
		}
		if len(dups) > 0 {
			return fmt.Errorf("apply: %w", &table.DuplicateError{Key: u, Duplicates: dups, When: table.DuplicateAtCutOver})
		}
	}
	return fmt.Errorf("restore: %d rows set aside in %s still clash with the shadow %s, on no new unique key", left, a.aside, a.shadow)
}
