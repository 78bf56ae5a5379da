package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"osc/cdc"
	"osc/change"
)

// Clashes on another unique index.
//
// The applier writes a row by its key (ON CONFLICT (key)); a unique index on
// other columns can still refuse the write. That happens when the change is
// older than a row the shadow already holds: a chunk read the source after
// the change committed (the applier lags behind the copy), a move read the
// source (see move), or a resumed run applies again, from its checkpoint, the
// changes a killed run had applied. Say row 1 held 'x', was deleted, and row 2
// took 'x': a chunk copies row 2 with 'x', then the applier applies the
// insert of row 1 with 'x'. The source held both values at different times,
// never together.
//
// The clashing shadow row is then newer than the change: at the change's
// commit the source's unique index held the change's value in the changed row
// only, so another row holds it in the shadow only in a state from after that
// commit. Its return to that state is a later change, still to be applied.
// MySQL's REPLACE deletes such rows before writing; the PostgreSQL applier
// does the same once a write has failed on a unique violation: it applies
// that batch again (in one transaction when it holds whole rows only, see
// applyClashingBatch; else one statement per transaction), deleting before
// each write the shadow rows of other keys that hold the written row's value
// in any unique index, and remembering their keys (cleared). While batches
// keep clashing, it sends those of whole rows there at once (clashFirst).
// The later change that restores such a row writes it whole (an insert or
// update: every column; a delete), except a partial update (an unchanged
// TOAST value not sent), which could only update a row the shadow holds: a
// partial update of a cleared key therefore reads the source as a move does
// (see move), which writes the row as that change left it or newer, and
// which deletes clashing rows too.
//
// A unique index is handled when its values can be compared by SQL equality:
// its operator classes are the types' defaults (with the index's collation),
// NULLs are distinct, and every column it reads is one the applier writes.
// A clash on any other unique index, or one that deleting did not resolve,
// fails the batch as before.

// pgUnique is a unique index of the shadow whose clashes the applier
// resolves.
type pgUnique struct {
	name  string
	exprs []string // its key columns' values, as SQL over the shadow's columns, with the index's collations
	pred  string   // partial index predicate, or ""
	// ops are an exclusion constraint's operators (OPERATOR(schema.op)),
	// one for each of exprs: two rows clash when each operator holds
	// between their values. nil for a unique index (equality).
	ops []string
	// aside marks a new unique key (table.Plan.NewUnique): the rows its
	// clashes delete are set aside (postgres_aside.go), not trusted to be
	// written again.
	aside bool
}

// loadUnique reads the shadow's unique indexes that clashes can be resolved
// on (see pgUnique).
func (a *Postgres) loadUnique(ctx context.Context) error {
	// The shadow's stored generated columns: an index over one is computed
	// over its expression (see stored).
	gen, err := a.pool.Query(ctx, `SELECT a.attname::text, pg_get_expr(d.adbin, d.adrelid)
		FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = to_regclass($1) AND a.attgenerated = 's' AND NOT a.attisdropped ORDER BY a.attnum`, a.shadow)
	if err != nil {
		return fmt.Errorf("generated columns of %s: %w", a.shadow, err)
	}
	a.generated = a.generated[:0]
	for gen.Next() {
		var g [2]string
		if err := gen.Scan(&g[0], &g[1]); err != nil {
			gen.Close()
			return fmt.Errorf("generated columns of %s: %w", a.shadow, err)
		}
		g[0] = pgx.Identifier{g[0]}.Sanitize()
		a.generated = append(a.generated, g)
	}
	if err := gen.Err(); err != nil {
		return fmt.Errorf("generated columns of %s: %w", a.shadow, err)
	}
	rows, err := a.pool.Query(ctx, `
		SELECT c.relname::text,
			array(SELECT '(' || pg_get_indexdef(i.indexrelid, k, false) || ')' ||
					CASE WHEN i.indcollation[k - 1] <> 0 THEN ' COLLATE ' || quote_ident(cn.nspname) || '.' || quote_ident(co.collname) ELSE '' END
				FROM generate_series(1, i.indnkeyatts) k
				LEFT JOIN pg_collation co ON co.oid = i.indcollation[k - 1]
				LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
				ORDER BY k),
			coalesce(pg_get_expr(i.indpred, i.indrelid, false), ''),
			array(SELECT a.attname::text FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
				WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid AND d.refclassid = 'pg_class'::regclass
					AND d.refobjid = i.indrelid AND d.refobjsubid > 0
				UNION SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])),
			coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::bool, false)
				OR EXISTS (SELECT 1 FROM generate_series(1, i.indnkeyatts) k JOIN pg_opclass o ON o.oid = i.indclass[k - 1] WHERE NOT o.opcdefault),
			CASE WHEN i.indexprs IS NULL AND i.indpred IS NULL AND i.indimmediate THEN
				array(SELECT a.attname::text FROM generate_series(1, i.indnkeyatts) k
					JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k - 1]
					WHERE i.indcollation[k - 1] = a.attcollation)
			END
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indisvalid AND i.indisready AND i.indislive
		ORDER BY c.relname`, a.shadow)
	if err != nil {
		return fmt.Errorf("unique indexes of %s: %w", a.shadow, err)
	}
	defer rows.Close()
	written := map[string]bool{}
	for _, c := range a.cols {
		written[c.name] = true
	}
	for _, f := range a.fillNames {
		written[f] = true
	}
	for _, g := range a.generated {
		written[g[0]] = true
	}
	a.unique = a.unique[:0]
	for rows.Next() {
		var (
			u        pgUnique
			cols     []string
			exotic   bool
			unknown  bool
			plainKey []string
		)
		if err := rows.Scan(&u.name, &u.exprs, &u.pred, &cols, &exotic, &plainKey); err != nil {
			return fmt.Errorf("unique indexes of %s: %w", a.shadow, err)
		}
		for _, c := range cols {
			if !written[pgx.Identifier{c}.Sanitize()] {
				unknown = true
			}
		}
		if !exotic && !unknown && !a.arbiter(plainKey) {
			a.unique = append(a.unique, u)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("unique indexes of %s: %w", a.shadow, err)
	}
	return a.loadExclusion(ctx, written)
}

// loadExclusion adds to unique the shadow's exclusion constraints whose
// columns the applier writes: their clashes are resolved as a unique
// index's, under the constraint's operators (README, "Why nothing is lost",
// step 5: the original never held two rows that clash in it, at least not
// at a commit, so a shadow row a written row clashes with under another key
// is newer than the change, and a later change writes it again).
func (a *Postgres) loadExclusion(ctx context.Context, written map[string]bool) error {
	rows, err := a.pool.Query(ctx, `
		SELECT c.relname::text,
			array(SELECT '(' || pg_get_indexdef(i.indexrelid, k, false) || ')' ||
					CASE WHEN i.indcollation[k - 1] <> 0 THEN ' COLLATE ' || quote_ident(cn.nspname) || '.' || quote_ident(co.collname) ELSE '' END
				FROM generate_series(1, i.indnkeyatts) k
				LEFT JOIN pg_collation co ON co.oid = i.indcollation[k - 1]
				LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
				ORDER BY k),
			array(SELECT format('OPERATOR(%I.%s)', o.oprnamespace::regnamespace::text, o.oprname)
				FROM generate_series(1, i.indnkeyatts) k JOIN pg_operator o ON o.oid = x.conexclop[k] ORDER BY k),
			coalesce(pg_get_expr(i.indpred, i.indrelid, false), ''),
			array(SELECT a.attname::text FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
				WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid AND d.refclassid = 'pg_class'::regclass
					AND d.refobjid = i.indrelid AND d.refobjsubid > 0
				UNION SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[]))
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_constraint x ON x.conindid = i.indexrelid AND x.conrelid = i.indrelid AND x.contype = 'x'
		WHERE i.indrelid = to_regclass($1) AND i.indisexclusion AND i.indisvalid AND i.indisready AND i.indislive
		ORDER BY c.relname`, a.shadow)
	if err != nil {
		return fmt.Errorf("exclusion constraints of %s: %w", a.shadow, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			u    pgUnique
			cols []string
		)
		if err := rows.Scan(&u.name, &u.exprs, &u.ops, &u.pred, &cols); err != nil {
			return fmt.Errorf("exclusion constraints of %s: %w", a.shadow, err)
		}
		unknown := len(u.ops) != len(u.exprs)
		for _, c := range cols {
			if !written[pgx.Identifier{c}.Sanitize()] {
				unknown = true
			}
		}
		if !unknown {
			a.unique = append(a.unique, u)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("exclusion constraints of %s: %w", a.shadow, err)
	}
	return nil
}

// arbiter reports whether a unique index is over the key columns alone, in
// any order (cols: its columns that it compares with their own collations;
// nil for an expression, partial or deferrable index): ON CONFLICT (key)
// infers every such index as an arbiter, so no write of the applier fails
// on it, and a row of another key never holds a written row's value in it.
// Its clash deletion would delete nothing; leaving it out saves its lookups,
// and a table whose only unique index is its key never takes the clash path.
func (a *Postgres) arbiter(cols []string) bool {
	if len(cols) != len(a.keys) {
		return false
	}
	key := map[string]bool{}
	for _, k := range a.keys {
		key[k.name] = true
	}
	for _, c := range cols {
		if !key[pgx.Identifier{c}.Sanitize()] {
			return false
		}
		delete(key, pgx.Identifier{c}.Sanitize())
	}
	return true
}

// clashCTEs returns WITH entries that delete, from the shadow, the rows that
// hold the value of one of rel's rows in a unique index under another key
// (rel: a relation with the shadow's mapped columns, by their names), and
// match except (a condition over the shadow's columns, "" for none); each
// entry of an index the original has returns the deleted rows' keys
// (keyTexts), and is named in cleared; the rows an entry of a new unique
// key deletes are inserted into the table of rows set aside by a further
// entry, named in asided, which returns a row for each (postgres_aside.go).
// deletes names every deleting entry. A row rel writes under its own key
// with its own value is not deleted; a row can match several entries and
// is deleted once.
func (a *Postgres) clashCTEs(rel, except string) (ctes, deletes, cleared, asided []string) {
	var keys []string
	for _, k := range a.keys {
		keys = append(keys, k.name)
	}
	keyList := strings.Join(keys, ", ")
	if except != "" {
		except = " AND " + except
	}
	for i, u := range a.unique {
		exprs := strings.Join(u.exprs, ", ")
		in, self := "SELECT "+exprs+" FROM "+rel, ""
		if u.pred != "" {
			in += " WHERE " + u.pred
			self = " AND (" + u.pred + ")"
		}
		name := fmt.Sprintf("osc_clash%d", i)
		deletes = append(deletes, name)
		ret := a.keyTexts()
		if u.aside {
			ret = strings.Join(a.asideCols, ", ")
		}
		if u.ops != nil {
			// An exclusion constraint: the rows under another key whose
			// values clash with one of rel's under its operators. rel's
			// values and keys are osc_r's columns, joined (USING) so that
			// the constraint's index can find the shadow's rows for each;
			// the unqualified names resolve to the shadow.
			var sel, cond, rkeys []string
			for j, e := range u.exprs {
				sel = append(sel, fmt.Sprintf("%s AS osc_x%d", e, j))
				cond = append(cond, fmt.Sprintf("%s %s osc_r.osc_x%d", e, u.ops[j], j))
			}
			for j, k := range keys {
				sel = append(sel, fmt.Sprintf("%s AS osc_k%d", k, j))
				rkeys = append(rkeys, fmt.Sprintf("osc_r.osc_k%d", j))
			}
			from := "SELECT " + strings.Join(sel, ", ") + " FROM " + rel
			if u.pred != "" {
				from += " WHERE " + u.pred
			}
			ctes = append(ctes, fmt.Sprintf("%s AS (DELETE FROM %s USING (%s) AS osc_r WHERE %s AND (%s) IS DISTINCT FROM (%s)%s%s RETURNING %s)",
				name, a.shadow, from, strings.Join(cond, " AND "), keyList, strings.Join(rkeys, ", "), self, except, ret))
			cleared = append(cleared, name)
			continue
		}
		// Unqualified column names resolve to the innermost relation: in the
		// subqueries rel's, outside them the shadow's, so that the first
		// condition can use the index. A NULL never clashes (and would make
		// NOT IN unknown).
		ctes = append(ctes, fmt.Sprintf("%s AS (DELETE FROM %s WHERE (%s) IN (%s)%s AND (%s, %s) NOT IN (SELECT %s, %s FROM %s WHERE ROW(%s) IS NOT NULL)%s RETURNING %s)",
			name, a.shadow, exprs, in, self, exprs, keyList, exprs, keyList, rel, exprs, except, ret))
		if !u.aside {
			cleared = append(cleared, name)
			continue
		}
		// A row of a key rel writes itself (giving the value up) is
		// deleted and written again, not set aside. The others' keys are
		// in the shadow, so not aside: the conflict cannot happen; should
		// it, the row deleted is the key's latest.
		set := make([]string, 0, len(a.asideCols))
		for _, c := range a.asideCols {
			set = append(set, c+" = EXCLUDED."+c)
		}
		put := fmt.Sprintf("osc_aside%d", i)
		asided = append(asided, put)
		ctes = append(ctes, fmt.Sprintf("%s AS (INSERT INTO %s (%s) SELECT %s FROM %s WHERE (%s) NOT IN (SELECT %s FROM %s) ON CONFLICT (%s) DO UPDATE SET %s RETURNING 1)",
			put, a.aside, strings.Join(a.asideCols, ", "), strings.Join(a.asideCols, ", "), name, keyList, keyList, rel, keyList, strings.Join(set, ", ")))
	}
	return ctes, deletes, cleared, asided
}

// clashDeletes is clashCTEs for a statement that writes rel's rows once
// their clashing rows are deleted: the WITH entries, each followed by ", ";
// the conditions (" AND …") by which the insert reads every deletion, so
// that they run before it (an unread data-modifying WITH runs last); the SQL
// of the keys deleted from the shadow and not set aside (keyTexts) as a
// jsonb array, and that of the number of rows set aside.
func (a *Postgres) clashDeletes(rel, except string) (with, after, cleared, asided string) {
	ctes, deletes, clearedNames, asideNames := a.clashCTEs(rel, except)
	for _, c := range ctes {
		with += c + ", "
	}
	for _, n := range deletes {
		after += " AND (SELECT count(*) FROM " + n + ") >= 0"
	}
	cleared = "'[]'::jsonb"
	if len(clearedNames) > 0 {
		sel := make([]string, len(clearedNames))
		for i, n := range clearedNames {
			sel[i] = "SELECT osc_key FROM " + n
		}
		cleared = "coalesce((SELECT jsonb_agg(osc_key) FROM (" + strings.Join(sel, " UNION ") + ") AS c), '[]'::jsonb)"
	}
	asided = "0::bigint"
	if len(asideNames) > 0 {
		sel := make([]string, len(asideNames))
		for i, n := range asideNames {
			sel[i] = "(SELECT count(*) FROM " + n + ")"
		}
		asided = "(" + strings.Join(sel, " + ") + ")"
	}
	return with, after, cleared, asided
}

// keyTexts is the SQL of a shadow row's key as text[]: each column's value of
// the source's type, as text, the form normKeys gives a change's key.
func (a *Postgres) keyTexts() string {
	var parts []string
	for _, k := range a.keys {
		parts = append(parts, "CAST("+k.name+" AS "+k.srcType+")::text")
	}
	return "ARRAY[" + strings.Join(parts, ", ") + "] AS osc_key"
}

// clashUpsertSQL is the upsert statement (upsertSQL, same parameters) with
// its clashes deleted first, in one statement: it returns the deleted rows'
// keys (keyTexts) as a jsonb array, and the number of rows it set aside. As
// in refreshSQL, the insert reads the deletions, so that they run before it;
// the values are computed once, into osc_new, and inserted from there (the
// assignment cast stores them), in the batch's order. With unaside it also
// takes the rows' keys out of the table of rows set aside.
func (a *Postgres) clashUpsertSQL(unaside bool) string {
	var conflict []string
	_, params, vars := a.unnestRow()
	names, _, set := a.upsertColumns()
	for _, k := range a.keys {
		conflict = append(conflict, k.name)
	}
	action := conflictAction(set)
	clashes, after, cleared, asided := a.clashDeletes("osc_cmp", "")
	with := "WITH "
	if unaside {
		with += a.unasideRows(params, vars) + ", "
	}
	return fmt.Sprintf("%s%s, "+
		"osc_cmp AS (%s), %s"+
		"ins AS (INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM osc_new WHERE true%s ORDER BY %s ON CONFLICT (%s) %s) "+
		"SELECT %s, %s",
		with, a.newRows(), a.stored("osc_new"), clashes,
		a.shadow, strings.Join(names, ", "), strings.Join(names, ", "), after, a.ord, strings.Join(conflict, ", "), action,
		cleared, asided)
}

// newRows is the WITH entry osc_new of an upsert statement's rows (its
// parameters as upsertSQL's), each shadow column's value by its name, and
// their order (ord), its values computed once.
func (a *Postgres) newRows() string {
	rowVals, params, vars := a.unnestRow()
	_, vals, _ := a.upsertColumns()
	return fmt.Sprintf("osc_new AS MATERIALIZED (SELECT %s, %s.%s FROM (SELECT %s, u.n AS %s FROM unnest(%s) WITH ORDINALITY AS u(%s, n)) AS %s)",
		strings.Join(vals, ", "), a.rowName, a.ord, strings.Join(rowVals, ", "), a.ord, strings.Join(params, ", "), strings.Join(vars, ", "), a.rowName)
}

// duplicatedSQL is the statement that finds, among an upsert statement's
// rows (same parameters), two that hold one value of a unique index the
// clash resolution covers (unique): it returns the position in unique of
// the first such index, or -1. Rows of one key are never two rows of a
// statement (collapse), so such rows are of two keys, and deleting no
// shadow row lets both be written: the source held the value twice, in the
// middle of a statement or transaction that a DEFERRABLE constraint checks
// only at its end (see upsertClashing).
func (a *Postgres) duplicatedSQL() string {
	found := make([]string, len(a.unique))
	for i, u := range a.unique {
		exprs := strings.Join(u.exprs, ", ")
		where := "ROW(" + exprs + ") IS NOT NULL"
		if u.pred != "" {
			where += " AND (" + u.pred + ")"
		}
		found[i] = fmt.Sprintf("(SELECT %d FROM osc_cmp WHERE %s GROUP BY %s HAVING count(*) > 1 LIMIT 1)", i, where, exprs)
	}
	return fmt.Sprintf("WITH %s, osc_cmp AS (%s) SELECT coalesce(%s, -1)", a.newRows(), a.stored("osc_new"), strings.Join(found, ", "))
}

// stored selects rel's rows (the shadow's mapped columns, by name) as the
// shadow stores them, for a unique index's expressions to be computed over:
// each value of its column's type (an ALTER … TYPE numeric(7,3) stores 1.50
// as 1.500, whose text differs), the fills, and the stored generated
// columns, computed over those. Only compared, never written: an explicit
// cast may truncate what the assignment cast of the write refuses. A key
// column's value is under the shadow column's collation: rel's may be the
// original's (a refresh reads the original), which an --alter may have
// changed, and the clash resolution compares rel's keys with the shadow's
// and the aside table's, which two collations would fail (SQLSTATE 42P22).
func (a *Postgres) stored(rel string) string {
	var cols []string
	for _, c := range a.cols {
		switch {
		case c.dstType == "":
			cols = append(cols, c.name)
		case c.collate != "":
			cols = append(cols, "CAST("+c.name+" AS "+c.dstType+")"+c.collate+" AS "+c.name)
		default:
			cols = append(cols, "CAST("+c.name+" AS "+c.dstType+") AS "+c.name)
		}
	}
	for i, f := range a.fillNames {
		cols = append(cols, a.fills[i]+" AS "+f)
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + rel
	if len(a.generated) == 0 {
		return q
	}
	gen := []string{"osc_s.*"}
	for _, g := range a.generated {
		gen = append(gen, "("+g[1]+") AS "+g[0])
	}
	return "SELECT " + strings.Join(gen, ", ") + " FROM (" + q + ") AS osc_s"
}

// isClash reports whether err is a unique violation or an exclusion
// constraint's (the applier resolves both: see pgUnique).
func isClash(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "23P01")
}

// clearedKey is the form of a key in cleared: its columns' texts.
func clearedKey(texts []string) string { return strings.Join(texts, "\x00") }

// normKeys returns the keys of rows, as keyTexts renders them in this
// session (pgoutput's texts may differ: its session's TimeZone, DateStyle).
// Keys of verbatim types (see loadVerbatim) are their texts already.
func (a *Postgres) normKeys(ctx context.Context, rows [][]*string) ([]string, error) {
	if a.verbatim {
		out := make([]string, len(rows))
		for i, r := range rows {
			texts := make([]string, len(r))
			for j, v := range r {
				texts[j] = *v
			}
			out[i] = clearedKey(texts)
		}
		return out, nil
	}
	var exprs, params, vars []string
	arrays := make([][]*string, len(a.keys))
	for _, r := range rows {
		for i := range a.keys {
			arrays[i] = append(arrays[i], r[i])
		}
	}
	for i, k := range a.keys {
		v := fmt.Sprintf("v%d", i)
		exprs = append(exprs, "CAST(u."+v+" AS "+k.srcType+")::text")
		params = append(params, fmt.Sprintf("$%d::text[]", i+1))
		vars = append(vars, v)
	}
	q := fmt.Sprintf("SELECT ARRAY[%s] FROM unnest(%s) WITH ORDINALITY AS u(%s, n) ORDER BY n",
		strings.Join(exprs, ", "), strings.Join(params, ", "), strings.Join(vars, ", "))
	res, err := a.pool.Query(ctx, q, arrayArgs(arrays)...)
	if err != nil {
		return nil, fmt.Errorf("keys of cleared rows: %w", err)
	}
	texts, err := pgx.CollectRows(res, pgx.RowTo[[]string])
	if err != nil {
		return nil, fmt.Errorf("keys of cleared rows: %w", err)
	}
	out := make([]string, len(texts))
	for i, t := range texts {
		out[i] = clearedKey(t)
	}
	return out, nil
}

// pgVerbatimTypes are the types whose values' texts are the same in every
// session (their output reads no setting) and read back unchanged by their
// input: a key of them, as pgoutput sends it, is its text in keyTexts.
// Not boolean ('t', but 'true' as text), character(n) (padded, but trimmed
// as text), nor the types whose text follows a setting: dates and times
// (TimeZone, DateStyle, IntervalStyle), floats (extra_float_digits), bytea
// (bytea_output), money (lc_monetary).
const pgVerbatimTypes = "'{smallint,integer,bigint,numeric,text,character varying,uuid}'::regtype[]"

// loadVerbatim sets verbatim when every key column's type, as the
// applier's casts resolve it, is one of pgVerbatimTypes: normKeys then
// needs no query.
func (a *Postgres) loadVerbatim(ctx context.Context) error {
	types := make([]string, len(a.keys))
	for i, k := range a.keys {
		types[i] = k.srcType
	}
	err := a.pool.QueryRow(ctx, "SELECT coalesce(bool_and(to_regtype(t) = ANY ("+pgVerbatimTypes+")), false) FROM unnest($1::text[]) AS t", types).Scan(&a.verbatim)
	if err != nil {
		return fmt.Errorf("key types of %s: %w", a.shadow, err)
	}
	return nil
}

// keyParams is the key of r as text parameters.
func (a *Postgres) keyParams(r []any) ([]*string, error) {
	out := make([]*string, len(a.keys))
	for i, k := range a.keys {
		v, err := textValue(r[k.index])
		if err != nil {
			return nil, fmt.Errorf("key column %s: %w", k.name, err)
		}
		if v == nil {
			return nil, fmt.Errorf("key column %s: no value", k.name)
		}
		out[i] = v
	}
	return out, nil
}

// redirect turns the partial updates of cleared keys among ops into moves
// to the same key, which read the source (see the comment at the top).
func (a *Postgres) redirect(ctx context.Context, ops []pgOp) error {
	if len(a.cleared) == 0 {
		return nil
	}
	var (
		idx  []int
		keys [][]*string
	)
	for i, op := range ops {
		if op.kind != pgUpdate {
			continue
		}
		k, err := a.keyParams(op.where)
		if err != nil {
			return err
		}
		idx, keys = append(idx, i), append(keys, k)
	}
	if len(idx) == 0 {
		return nil
	}
	norm, err := a.normKeys(ctx, keys)
	if err != nil {
		return err
	}
	for j, i := range idx {
		if a.cleared[norm[j]] {
			ops[i].kind = pgMove
		}
	}
	return nil
}

// written forgets, from cleared, the keys that ops wrote whole (inserts and
// updates) or deleted.
func (a *Postgres) written(ctx context.Context, ops []pgOp) error {
	if len(a.cleared) == 0 {
		return nil
	}
	keys, err := a.writtenKeys(ctx, ops)
	if err != nil {
		return err
	}
	for _, k := range keys {
		delete(a.cleared, k)
	}
	return nil
}

// writtenKeys is the keys (normKeys) of the upserts and deletes among ops,
// in order.
func (a *Postgres) writtenKeys(ctx context.Context, ops []pgOp) ([]string, error) {
	var keys [][]*string
	for _, op := range ops {
		if op.kind == pgUpsert || op.kind == pgDelete {
			k, err := a.keyParams(op.row)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	return a.normKeys(ctx, keys)
}

// clear remembers the keys of rows deleted for clashing.
func (a *Postgres) clear(keys [][]string) {
	if len(keys) == 0 {
		return
	}
	if a.cleared == nil {
		a.cleared = map[string]bool{}
	}
	for _, k := range keys {
		a.cleared[clearedKey(k)] = true
	}
}

// applyClashing applies ops, whose batch failed on a unique violation (or
// that clashFirst sends here at once), deleting clashing rows before each
// write (see the comment at the top): in one transaction when
// applyClashingBatch can, else one statement per transaction.
//
// With last, ops end the batch: rows of its last statement that hold one
// value of a unique index (the batch ends inside a source transaction, see
// upsertClashing) fail it with change.ErrMidTransaction wrapped.
func (a *Postgres) applyClashing(ctx context.Context, ops []pgOp, last bool) error {
	if done, err := a.applyClashingBatch(ctx, ops); done || err != nil {
		return err
	}
	inside := a.insideTransaction(ops)
	for start := 0; start < len(ops); {
		if err := a.redirect(ctx, ops[start:start+1]); err != nil {
			return err
		}
		op := ops[start]
		switch op.kind {
		case pgMove:
			if err := a.move(ctx, op); err != nil {
				return err
			}
			start++
			continue
		case pgUpdate:
			query, args, err := a.updateSQL(op)
			if err != nil {
				return err
			}
			if query == "" {
				start++
				continue
			}
			stmts := []pgStmt{{query: query, args: args, desc: "update 1 row", update: &ops[start], count: a.asideAny}}
			err = a.send(ctx, stmts)
			if err == nil {
				// No row to update: read it as a batch that did not clash
				// would (readMissing).
				err = a.readMissing(ctx, stmts, ops[start:])
			} else if isClash(err) {
				// The update's new values clash: the same update within the
				// shadow (a move to its own key), deleting, or setting
				// aside, the rows it clashes with first; it takes the
				// values the change lacks from the row as the update
				// would. No row there, or a clash it cannot resolve: read
				// the source, as for a cleared key.
				// Inside its transaction on a deferrable shadow, the
				// rows it clashes with may be older than it (see
				// insideTransaction), and deleting them could lose them.
				if inside(start, start+1) {
					return fmt.Errorf("update 1 row of %s inside a source transaction, on a shadow with a deferrable constraint: %w", a.shadow, err)
				}
				var done bool
				if done, err = a.moveInShadow(ctx, op); err == nil && !done {
					err = a.move(ctx, op)
				}
			}
			if err != nil {
				return err
			}
			start++
			continue
		}
		end, query, args, desc, err := a.statement(ops, start)
		if err != nil {
			return err
		}
		if op.kind == pgUpsert && len(a.unique) > 0 && inside(start, end) {
			// The rows it clashes with may be older than it (see
			// insideTransaction), and deleting them could lose them.
			if err := a.send(ctx, []pgStmt{{query: query, args: args, desc: desc}}); err != nil {
				return fmt.Errorf("%s into %s inside a source transaction, on a shadow with a deferrable constraint: %w", desc, a.shadow, err)
			}
			if err := a.written(ctx, ops[start:end]); err != nil {
				return err
			}
		} else if op.kind == pgUpsert && len(a.unique) > 0 {
			keys, err := a.upsertClashing(ctx, args, desc, last && end == len(ops))
			if err != nil {
				return err
			}
			a.clear(keys)
			if err := a.written(ctx, ops[start:end]); err != nil {
				return err
			}
		} else {
			if err := a.send(ctx, []pgStmt{{query: query, args: args, desc: desc}}); err != nil {
				return err
			}
			if err := a.written(ctx, ops[start:end]); err != nil {
				return err
			}
		}
		start = end
	}
	return nil
}

// insideTransaction returns, for a shadow with a deferrable unique or
// exclusion constraint, whether the statement of ops[start:end], written
// in a transaction of its own, ends inside a source transaction: one of its
// operations is of a transaction a later one of ops is of too. The source
// may hold a value of such a constraint in two rows there, one of them a
// row the transaction never writes again (a row given its value and then
// another): a clash there may be with an older row, not a newer one, which
// the clash resolution must not delete.
func (a *Postgres) insideTransaction(ops []pgOp) func(start, end int) bool {
	if !a.deferrable {
		return func(int, int) bool { return false }
	}
	lastOf := map[uint32]int{}
	for i, op := range ops {
		if op.xid != 0 {
			lastOf[op.xid] = i
		}
	}
	return func(start, end int) bool {
		for _, op := range ops[start:end] {
			if op.xid != 0 && lastOf[op.xid] >= end {
				return true
			}
		}
		return false
	}
}

// applyClashingBatch is applyClashing in one transaction, for ops of whole
// rows only (upserts and deletes): each upsert statement as clashUpsert, the
// deletion of its clashing rows and then the upsert. It reports whether it
// applied ops: not when they hold a partial update or a move (each needs a
// transaction of its own), nor when the transaction met a unique violation
// (a row a chunk was inserting meanwhile: see pgClashAttempts), which rolled
// it back whole. Under writers that move values between rows faster than
// the applier follows, most batches clash: this keeps their cost to one
// round trip.
func (a *Postgres) applyClashingBatch(ctx context.Context, ops []pgOp) (bool, error) {
	if !a.wholeRows(ops) {
		return false, nil
	}
	type run struct {
		start, end int
		upsert     bool
		desc       string
	}
	var (
		b    pgx.Batch
		runs []run
	)
	for start := 0; start < len(ops); {
		end, query, args, desc, err := a.statement(ops, start)
		if err != nil {
			return true, err
		}
		r := run{start: start, end: end, upsert: ops[start].kind == pgUpsert, desc: desc}
		if r.upsert {
			query = a.withAside(a.clashUpsert, a.clashUpsertAside)
		}
		b.Queue(query, args...)
		runs = append(runs, r)
		start = end
	}
	cleared := make([][][]string, len(runs))
	asided := make([]int64, len(runs))
	br := a.pool.SendBatch(ctx, &b)
	for i, r := range runs {
		var err error
		if r.upsert {
			err = br.QueryRow().Scan(&cleared[i], &asided[i])
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			br.Close()
			if isClash(err) {
				return false, nil
			}
			return true, fmt.Errorf("%s into %s: %w", r.desc, a.shadow, err)
		}
	}
	if err := br.Close(); err != nil {
		if isClash(err) {
			return false, nil
		}
		return true, fmt.Errorf("commit: %w", err)
	}
	// Each run's deletions, then its writes, in order: a key a later run
	// deletes for clashing stays cleared. One normKeys for all of them.
	clashed := false
	for i, c := range cleared {
		clashed = clashed || len(c) > 0 || asided[i] > 0
		a.setAside(asided[i])
	}
	a.clashed(clashed)
	need := clashed || len(a.cleared) > 0
	var keys []string
	if need {
		var err error
		if keys, err = a.writtenKeys(ctx, ops); err != nil {
			return true, err
		}
	}
	for i, r := range runs {
		a.clear(cleared[i])
		if need {
			for _, k := range keys[r.start:r.end] {
				delete(a.cleared, k)
			}
		}
	}
	return true, nil
}

// wholeRows reports whether applyClashingBatch can apply ops: the shadow
// has a unique index whose clashes the applier resolves, and ops are whole
// rows only (upserts and deletes).
func (a *Postgres) wholeRows(ops []pgOp) bool {
	if len(a.unique) == 0 {
		return false
	}
	for _, op := range ops {
		if op.kind != pgUpsert && op.kind != pgDelete {
			return false
		}
	}
	return true
}

// pgClashRecent is how many batches of whole rows after one that clashed go
// straight to applyClashingBatch (see clashFirst).
const pgClashRecent = 8

// clashFirst reports whether Apply sends ops straight to applyClashingBatch,
// without trying them as they are first: when it can (wholeRows) and one of
// the last pgClashRecent batches it could clashed. A batch that clashes costs
// a failed attempt first, about as much as the batch; applyClashingBatch
// costs its clash deletions (10–20% more, measured), which find nothing when
// nothing clashes. Clashes come in spells (the applier behind the copy,
// writers that move unique values between rows), and a table whose unique
// values stay put does not pay for them.
func (a *Postgres) clashFirst(ops []pgOp) bool {
	return a.clashRecent > 0 && a.wholeRows(ops)
}

// clashed notes whether a batch of whole rows clashed (see clashFirst).
func (a *Postgres) clashed(yes bool) {
	switch {
	case yes:
		a.clashRecent = pgClashRecent
	case a.clashRecent > 0:
		a.clashRecent--
	}
}

// pgClashAttempts bounds how often a write whose clashing rows were deleted
// first meets a clash again: a row of another key that a chunk was inserting
// meanwhile (not yet committed, so not seen by the deletion; the write then
// waits for it and fails once it commits) is seen by the next attempt. A
// clash that outlasts the attempts is one the deletion cannot resolve.
const pgClashAttempts = 5

// upsertClashing runs an upsert statement's arguments through clashUpsert
// (the deletion of its clashing rows, then the upsert) and returns the keys
// of the rows it deleted and did not set aside. Rows of the statement that
// hold one value of a new unique key (the original holds it twice, for a
// moment or for good) clash with each other, which no deletion before the
// statement resolves: once a plan with new unique keys meets a clash again,
// the rows are written one statement each, in order, in one transaction,
// each deleting the earlier ones it clashes with (and setting them aside).
//
// Two rows of the statement that hold one value of an index of the
// original's (the clash deletion leaves both: each is written under its own
// key) are a duplicate the source held for a moment: a DEFERRABLE unique
// constraint checks a statement (INITIALLY IMMEDIATE) or a transaction
// (DEFERRED) only at its end, and the batch ends, or this statement is
// followed by a partial update or a move, before the change that gives the
// value up. Which of the rows gives it up is in changes still to come:
// deleting either could lose a row that no later change writes. So the
// statement fails; with last (it ends the batch) its error wraps
// change.ErrMidTransaction, and the engine applies the batch again with the
// changes that follow it.
func (a *Postgres) upsertClashing(ctx context.Context, args []any, desc string, last bool) ([][]string, error) {
	for attempt := 1; ; attempt++ {
		var (
			keys   [][]string
			asided int64
			err    error
		)
		if attempt > 1 && a.aside != "" {
			keys, err = a.upsertClashingRows(ctx, args)
		} else if err = a.pool.QueryRow(ctx, a.withAside(a.clashUpsert, a.clashUpsertAside), args...).Scan(&keys, &asided); err == nil {
			a.setAside(asided)
		}
		if err == nil {
			return keys, nil
		}
		if !isClash(err) || attempt == pgClashAttempts {
			return nil, fmt.Errorf("%s into %s: %w", desc, a.shadow, err)
		}
		if attempt == 1 && a.aside == "" {
			var i int
			if err := a.pool.QueryRow(ctx, a.duplicated, args...).Scan(&i); err != nil {
				return nil, fmt.Errorf("%s into %s: look for rows holding one value twice: %w", desc, a.shadow, err)
			}
			if i >= 0 && last {
				return nil, fmt.Errorf("%s into %s: rows of two keys hold one value of %s: %w: %w", desc, a.shadow, a.unique[i].name, change.ErrMidTransaction, err)
			}
			if i >= 0 {
				return nil, fmt.Errorf("%s into %s: rows of two keys hold one value of %s, and a partial update or a move follows them in the batch: %w", desc, a.shadow, a.unique[i].name, err)
			}
		}
	}
}

// upsertClashingRows is upsertClashing one row per statement, in one
// transaction (see there). Each statement takes its key out of the table of
// rows set aside, where an earlier one may have put it.
func (a *Postgres) upsertClashingRows(ctx context.Context, args []any) ([][]string, error) {
	n := 0
	if len(args) > 0 {
		n = len(args[0].(pgTextArray))
	}
	var b pgx.Batch
	for r := range n {
		row := make([]any, len(args))
		for i, col := range args {
			row[i] = pgTextArray{col.(pgTextArray)[r]}
		}
		b.Queue(a.clashUpsertAside, row...)
	}
	br := a.pool.SendBatch(ctx, &b)
	var all [][]string
	for range n {
		var (
			keys   [][]string
			asided int64
		)
		if err := br.QueryRow().Scan(&keys, &asided); err != nil {
			br.Close()
			return nil, err
		}
		all = append(all, keys...)
		a.setAside(asided)
	}
	if err := br.Close(); err != nil {
		return nil, err
	}
	return all, nil
}

// Refresh writes the rows of keys (the source key columns' texts) as the
// source holds them now, deleting first the shadow rows of other keys that
// hold their values in a unique index (remembered as cleared; under a new
// unique key set aside, see postgres_aside.go), and writing nothing for a
// key the source no longer holds. It serves a chunk's stale
// rows (change.Chunk.Stale): rows the chunk read but skipped, because they
// clashed with a shadow row of another key, one of the two not the latest.
//
// The read is the newest state of every row it reads, so the row it writes
// is too, and what it deletes is older. It waits until every change the
// applier applied is visible (a transaction is decoded once its commit is
// flushed, before it is visible: a synchronous standby may not have
// acknowledged it), so that it sees what the shadow holds or newer. A row of
// another key holds the value in the shadow as the source held it at some
// earlier time, and the source gave that value to the read row since, so
// the deleted row has a change still to apply, which writes it again (or, a
// partial update, reads the source: its key is cleared). Changes the applier has yet to apply to a
// refreshed key write older states, then the latest, in commit order, as
// after a chunk's read. A refresh runs while the copy does, when moves
// always read the source: the read being ahead of the applier matters to no
// move (see move), and the marker the engine drains after the last chunk
// follows it.
//
// A clash on a unique index or exclusion constraint the applier does not
// resolve (see pgUnique) fails the refresh with change.ErrChunkClash
// wrapped: the engine drains the applier and refreshes again.
func (a *Postgres) Refresh(ctx context.Context, keys [][]string) (err error) {
	if len(keys) == 0 {
		return nil
	}
	defer a.unsure(&err)
	if err := a.init(ctx); err != nil {
		return err
	}
	args := make([]any, len(a.keys))
	for i := range a.keys {
		col := make([]string, len(keys))
		for j, k := range keys {
			if len(k) != len(a.keys) {
				return fmt.Errorf("refresh: a key of %d columns, want %d", len(k), len(a.keys))
			}
			col[j] = k[i]
		}
		args[i] = col
	}
	if err := a.waitApplied(ctx); err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	for attempt := 1; ; attempt++ {
		var (
			written, cleared [][]string
			asided           int64
		)
		err := a.pool.QueryRow(ctx, a.refresh, args...).Scan(&written, &cleared, &asided)
		if err == nil {
			a.setAside(asided)
			a.clear(cleared)
			for _, k := range written {
				delete(a.cleared, clearedKey(k))
			}
			return nil
		}
		// A row the applier is writing meanwhile cannot be (the engine holds
		// it off), so a clash that outlasts the deletion is one it cannot
		// resolve.
		if !isClash(err) {
			return fmt.Errorf("refresh %d rows of %s: %w", len(keys), a.shadow, err)
		}
		if a.aside != "" && len(keys) > 1 {
			// Rows read that hold one value of a new unique key clash with
			// each other (see upsertClashing): one at a time, each
			// setting aside the earlier ones it clashes with.
			for _, k := range keys {
				if err := a.Refresh(ctx, [][]string{k}); err != nil {
					return err
				}
			}
			return nil
		}
		if attempt == pgClashAttempts {
			return fmt.Errorf("refresh %d rows of %s: %w: %w", len(keys), a.shadow, change.ErrChunkClash, err)
		}
	}
}

// refreshSQL is Refresh's statement: one text[] parameter per key column.
// It returns the keys of the rows written and of the rows deleted for
// clashing and not set aside (keyTexts), and the number of rows set aside.
// The keys written leave the table of rows set aside.
func (a *Postgres) refreshSQL() string {
	var src, srcKeys, casts, params, vars, conflict []string
	for _, r := range a.row {
		src = append(src, r.name)
	}
	names, vals, set := a.upsertColumns()
	for i, k := range a.keys {
		v := fmt.Sprintf("k%d", i)
		srcKeys = append(srcKeys, k.srcName)
		casts = append(casts, "CAST(u."+v+" AS "+k.srcType+")")
		params = append(params, fmt.Sprintf("$%d::text[]", i+1))
		vars = append(vars, v)
		conflict = append(conflict, k.name)
	}
	action := conflictAction(set)
	clashes, after, cleared, asided := a.clashDeletes("osc_cmp", "")
	unaside := ""
	if a.aside != "" {
		// Its keys as osc_cmp holds them: under the shadow's collation.
		unaside = a.unaside("SELECT "+strings.Join(conflict, ", ")+" FROM osc_cmp") + ", "
	}
	// As in moveSourceSQL: every part of the statement reads one snapshot,
	// and the insert reads the clashes' deletions, so that they run first.
	return fmt.Sprintf("WITH osc_new AS MATERIALIZED (SELECT %s FROM (SELECT %s FROM %s WHERE (%s) IN (SELECT %s FROM unnest(%s) AS u(%s))) AS %s), "+
		"osc_cmp AS (%s), %s%s"+
		"ins AS (INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM osc_new WHERE true%s ON CONFLICT (%s) %s RETURNING %s) "+
		"SELECT coalesce((SELECT jsonb_agg(osc_key) FROM ins), '[]'::jsonb), %s, %s",
		strings.Join(vals, ", "), strings.Join(src, ", "), a.source, strings.Join(srcKeys, ", "), strings.Join(casts, ", "), strings.Join(params, ", "), strings.Join(vars, ", "), a.rowName,
		a.stored("osc_new"), unaside, clashes,
		a.shadow, strings.Join(names, ", "), strings.Join(names, ", "), after, strings.Join(conflict, ", "), action, a.keyTexts(), cleared, asided)
}

// pgUnseenPrune is how many transactions unseen holds before Apply forgets
// the visible ones.
const pgUnseenPrune = 4096

// applying notes the transactions of changes about to be applied (unseen).
func (a *Postgres) applying(ctx context.Context, changes []cdc.Change) error {
	if a.unseen == nil {
		a.unseen = map[uint32]bool{}
	}
	for _, c := range changes {
		if c.Xid != 0 {
			a.unseen[c.Xid] = true
		}
	}
	if len(a.unseen) < pgUnseenPrune {
		return nil
	}
	return a.pruneUnseen(ctx)
}

// pruneUnseen forgets the transactions in unseen that are visible now (then
// to every later snapshot too).
func (a *Postgres) pruneUnseen(ctx context.Context) error {
	if len(a.unseen) == 0 {
		return nil
	}
	xids := make([]int64, 0, len(a.unseen))
	for x := range a.unseen {
		xids = append(xids, int64(x))
	}
	var left []int64
	q := "WITH snap AS (SELECT pg_current_snapshot() AS s, pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax) " +
		"SELECT coalesce(array_agg(x), '{}') FROM snap, unnest($1::bigint[]) AS x WHERE NOT pg_visible_in_snapshot(" + pgFullXid("x", "xmax") + ", s)"
	if err := a.pool.QueryRow(ctx, q, xids).Scan(&left); err != nil {
		return fmt.Errorf("visibility of applied transactions: %w", err)
	}
	clear(a.unseen)
	for _, x := range left {
		a.unseen[uint32(x)] = true
	}
	return nil
}

// waitApplied waits until every transaction the applier applied changes of
// is visible.
func (a *Postgres) waitApplied(ctx context.Context) error {
	for poll := time.Millisecond; ; poll = min(2*poll, pgMovePoll) {
		if err := a.pruneUnseen(ctx); err != nil {
			return err
		}
		if len(a.unseen) == 0 {
			return nil
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for %d applied transactions to be visible: %w", len(a.unseen), ctx.Err())
		case <-t.C:
		}
	}
}

// upsertColumns returns, for a statement that upserts whole rows, the
// shadow's columns it inserts (the mapped columns, then the filled ones),
// each one's value AS its name, and the DO UPDATE SET of the non-key,
// non-generated ones.
func (a *Postgres) upsertColumns() (names, vals, set []string) {
	for _, c := range a.cols {
		names = append(names, c.name)
		vals = append(vals, c.value+" AS "+c.name)
		if !c.key && !c.always {
			set = append(set, c.name+" = EXCLUDED."+c.name)
		}
	}
	for i, f := range a.fillNames {
		names = append(names, f)
		vals = append(vals, a.fills[i]+" AS "+f)
	}
	return names, vals, set
}
