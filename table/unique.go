package table

import (
	"database/sql"
	"fmt"
	"strings"
)

// UniqueKey is a unique key the shadow has and no unique key of the
// original implies: a new unique key (an --alter's ADD UNIQUE). The original
// may hold rows that duplicate each other under it, for a moment or for
// good. A row the shadow's index turns away waits aside (MySQLAside,
// PostgresAside) until it fits again, and one that still does not fit once
// every change is applied with writes blocked is a duplicate of the
// original: the migration fails with a *DuplicateError instead of dropping
// it (README, "Why nothing is lost", step 5). Its columns are columns of
// the original that reach the shadow with their type, collation and values
// unchanged, so the original compares them as the shadow's index does.
type UniqueKey struct {
	Name    string   // the shadow's index (PostgreSQL: also its constraint's) name
	Columns []string // the original's columns, in the key's order
	Shadow  []string // the same columns as the shadow names them; NULLs are distinct
	// Collations (MySQL) are the shadow columns' collations ("" for a
	// column without one), under which the index compares their values.
	Collations []string
}

// Describe is the key as messages name it: "email_u (email)".
func (u UniqueKey) Describe() string {
	return u.Name + " (" + strings.Join(u.Shadow, ", ") + ")"
}

// Duplicate is one value of a new unique key that several rows of the
// original hold.
type Duplicate struct {
	Values []string // the key's columns' values as text ("NULL" for a NULL)
	Rows   int64    // how many rows of the original hold it
	// Keys, when known, are the keys of the rows holding it (each the
	// row identity's values as text, in its columns' order), in key order;
	// the message shows them as "(keys (3000), (4000))".
	Keys [][]string
}

// DuplicateAtCutOver is where the final restore met a duplicate (When of a
// DuplicateError), on either database.
const DuplicateAtCutOver = "with the table's writes blocked and every change applied, before the cut-over"

// DuplicateError is the original holding rows that a new unique key of the
// shadow refuses: the migration cannot copy them both, and fails rather than
// drop one. When is where osc met them ("before the copy", "the copy of a
// chunk", "a captured change").
type DuplicateError struct {
	Key        UniqueKey
	Duplicates []Duplicate
	When       string
}

func (e *DuplicateError) Error() string {
	vals := make([]string, len(e.Duplicates))
	for i, d := range e.Duplicates {
		q := make([]string, len(d.Values))
		for j, v := range d.Values {
			q[j] = v
			if v != "NULL" {
				q[j] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
			}
		}
		vals[i] = fmt.Sprintf("(%s) in %d rows", strings.Join(q, ", "), d.Rows)
		if len(d.Keys) > 0 {
			keys := make([]string, len(d.Keys))
			for j, k := range d.Keys {
				keys[j] = "(" + strings.Join(k, ", ") + ")"
			}
			vals[i] += " (keys " + strings.Join(keys, ", ") + ")"
		}
	}
	return fmt.Sprintf("the original holds rows that duplicate the new unique key %s (met %s): %s; "+
		"the migration stops rather than drop one of them: remove the duplicates and run osc again",
		e.Key.Describe(), e.When, strings.Join(vals, "; "))
}

// uniqueDuplicatesLimit bounds the duplicated values a duplicate check
// returns.
const uniqueDuplicatesLimit = 10

// duplicateScanQuery is the query listing the values of u that several rows
// of the table from (quoted, with any FORCE INDEX) hold, with their count,
// at most uniqueDuplicatesLimit of them, among the rows matching where (""
// for all). quote quotes a column; text renders one as text. Rows with a
// NULL in the key duplicate none.
func duplicateScanQuery(u UniqueKey, from, where string, quote func(string) string, text func(string) string) string {
	sel := make([]string, len(u.Columns))
	group := make([]string, len(u.Columns))
	var conds []string
	if where != "" {
		conds = append(conds, "("+where+")")
	}
	for i, c := range u.Columns {
		q := quote(c)
		sel[i], group[i] = text(q), q
		conds = append(conds, q+" IS NOT NULL")
	}
	q := "SELECT " + strings.Join(sel, ", ") + ", COUNT(*) FROM " + from
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	return q + " GROUP BY " + strings.Join(group, ", ") + fmt.Sprintf(" HAVING COUNT(*) > 1 LIMIT %d", uniqueDuplicatesLimit)
}

// DuplicatesNote is the plan's line for a dry run's duplicate check: what
// the check found under each new unique key.
func DuplicatesNote(err error, keys []UniqueKey) string {
	if err != nil {
		return "warning: " + err.Error() + "; --execute refuses it"
	}
	names := make([]string, len(keys))
	for i, u := range keys {
		names[i] = u.Describe()
	}
	return "new unique key " + strings.Join(names, ", ") + ": the original holds no duplicates now; " +
		"one still held when the cut-over blocks writes stops the migration (a row the new key turns away meanwhile waits aside)"
}

// duplicateRows is a query's rows: *sql.Rows or pgx.Rows.
type duplicateRows interface {
	Next() bool
	Scan(dest ...any) error
}

// scanDuplicates reads rows of n values and a count as duplicates; the
// caller checks the rows' Err.
func scanDuplicates(rows duplicateRows, n int) ([]Duplicate, error) {
	var out []Duplicate
	for rows.Next() {
		vals := make([]sql.NullString, n)
		ptrs := make([]any, n+1)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		var d Duplicate
		ptrs[n] = &d.Rows
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for _, v := range vals {
			if v.Valid {
				d.Values = append(d.Values, v.String)
			} else {
				d.Values = append(d.Values, "NULL")
			}
		}
		out = append(out, d)
	}
	return out, nil
}
