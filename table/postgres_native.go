package table

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The native path on PostgreSQL: many ALTER TABLE clauses change only the
// catalog (add a column without a volatile DEFAULT, drop or rename one, set
// or drop a DEFAULT or a NOT NULL, widen a varchar, add a CHECK NOT VALID,
// change storage parameters...), in milliseconds whatever the table's size,
// and osc runs them as the plain ALTER they are. Which ones qualify the
// server decides, not a list of clauses: in a transaction it rolls back, osc
// runs the --alter on a scratch table made LIKE the original (INCLUDING ALL:
// its indexes and constraints) and refuses the native path when the server
// rewrote the table, its TOAST table or an index (a new relfilenode), built
// an index, added a constraint it validated (by scanning the rows), or
// validated one or set NOT NULL on an existing column (both scan the table).
// What is left neither copies nor reads the rows.
//
// Every clause holds the ACCESS EXCLUSIVE lock until the transaction
// commits; while it waits for the lock, every later query of the table
// queues behind it. So each attempt waits at most the cut-over's lock
// timeout (lock_timeout) and the attempts are retried, as the cut-over's
// are.

// pgNativeState is what the probe compares before and after the --alter.
type pgNativeState struct {
	file, toast int64            // relfilenodes (toast 0: none)
	indexes     map[string]int64 // index name → relfilenode
	// indexDefs is each index's definition from its USING on, with its
	// tablespace when not the default.
	indexDefs   map[string]string
	constraints map[uint32]pgNativeConstraint
	notNull     map[int16]bool   // attnum → attnotnull
	columns     map[int16]string // attnum → its name, quoted
}

type pgNativeConstraint struct {
	name                 string
	kind                 string // contype
	validated            bool
	def                  string // pg_get_constraintdef
	index                string // the index it uses (unique, primary key), else ""
	deferrable, deferred bool
}

func readPgNativeState(ctx context.Context, tx pgx.Tx, rel string) (*pgNativeState, error) {
	s := &pgNativeState{indexes: map[string]int64{}, indexDefs: map[string]string{}, constraints: map[uint32]pgNativeConstraint{},
		notNull: map[int16]bool{}, columns: map[int16]string{}}
	if err := tx.QueryRow(ctx, `SELECT c.relfilenode::bigint, coalesce(t.relfilenode, 0)::bigint FROM pg_class c
		LEFT JOIN pg_class t ON t.oid = c.reltoastrelid WHERE c.oid = $1::regclass`, rel).Scan(&s.file, &s.toast); err != nil {
		return nil, fmt.Errorf("read %s: %w", rel, err)
	}
	rows, err := tx.Query(ctx, `SELECT ic.relname::text, ic.relfilenode::bigint,
			substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$')
			|| coalesce(' TABLESPACE ' || quote_ident((SELECT spcname FROM pg_tablespace WHERE oid = ic.reltablespace)), '')
		FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
		WHERE i.indrelid = $1::regclass`, rel)
	if err != nil {
		return nil, fmt.Errorf("read the indexes of %s: %w", rel, err)
	}
	for rows.Next() {
		var n, def string
		var f int64
		if err := rows.Scan(&n, &f, &def); err != nil {
			return nil, fmt.Errorf("read the indexes of %s: %w", rel, err)
		}
		s.indexes[n], s.indexDefs[n] = f, def
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the indexes of %s: %w", rel, err)
	}
	rows, err = tx.Query(ctx, `SELECT c.oid, c.conname::text, c.contype::text, c.convalidated, pg_get_constraintdef(c.oid),
			coalesce(ic.relname::text, ''), c.condeferrable, c.condeferred
		FROM pg_constraint c LEFT JOIN pg_class ic ON ic.oid = c.conindid AND c.contype IN ('p', 'u')
		WHERE c.conrelid = $1::regclass`, rel)
	if err != nil {
		return nil, fmt.Errorf("read the constraints of %s: %w", rel, err)
	}
	for rows.Next() {
		var oid uint32
		var c pgNativeConstraint
		if err := rows.Scan(&oid, &c.name, &c.kind, &c.validated, &c.def, &c.index, &c.deferrable, &c.deferred); err != nil {
			return nil, fmt.Errorf("read the constraints of %s: %w", rel, err)
		}
		s.constraints[oid] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the constraints of %s: %w", rel, err)
	}
	rows, err = tx.Query(ctx, `SELECT attnum, attnotnull, quote_ident(attname) FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, rel)
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", rel, err)
	}
	for rows.Next() {
		var n int16
		var nn bool
		var name string
		if err := rows.Scan(&n, &nn, &name); err != nil {
			return nil, fmt.Errorf("read the columns of %s: %w", rel, err)
		}
		s.notNull[n], s.columns[n] = nn, name
	}
	return s, rows.Err()
}

// pgNativeWhy says why the --alter that turned before into after is not
// metadata only, or "" when it is; rename gives a name the server derived
// from the scratch table's the one it would derive from the table's.
func pgNativeWhy(before, after *pgNativeState, rename func(string) string) string {
	if after.file != before.file {
		return "it rewrites the table"
	}
	var why []string
	if before.toast != 0 && after.toast != before.toast {
		why = append(why, "it rewrites the table's TOAST table")
	}
	for _, n := range slices.Sorted(maps.Keys(after.indexes)) {
		switch f, ok := before.indexes[n]; {
		case !ok:
			why = append(why, "it builds index "+rename(n))
		case f != after.indexes[n]:
			why = append(why, "it rebuilds index "+rename(n))
		}
	}
	var cons []string
	for oid, c := range after.constraints {
		b, ok := before.constraints[oid]
		switch {
		case !ok && (c.kind == "c" || c.kind == "f") && !c.validated:
			// CHECK or FOREIGN KEY … NOT VALID: checked on later writes only.
		case !ok:
			cons = append(cons, "it adds constraint "+rename(c.name)+", which reads the table (or another) to validate it")
		case c.validated && !b.validated:
			cons = append(cons, "it validates constraint "+rename(c.name)+", reading the table")
		}
	}
	slices.Sort(cons)
	why = append(why, cons...)
	for n, nn := range after.notNull {
		if was, ok := before.notNull[n]; ok && nn && !was {
			why = append(why, "it sets NOT NULL on an existing column, reading the table to check it")
			break
		}
	}
	return strings.Join(why, "; ")
}
