package table

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// A column the --alter adds gets, from a plain ALTER TABLE, a value in every
// row that exists then: the value of the DEFAULT its ADD COLUMN gives
// (without one, its domain's DEFAULT, or NULL), whatever DEFAULT a later
// subcommand or clause sets. PostgreSQL
// (tablecmds.c, ATExecAddColumn) evaluates a DEFAULT that is not volatile
// once and keeps that value as the column's missing value (atthasmissing,
// attmissingval); a volatile one (contain_volatile_functions), an identity,
// a generated column or a domain with constraints makes it rewrite the table
// instead, evaluating the DEFAULT for each row. A rewrite anywhere in the
// same statement (a type change, a volatile DEFAULT or a generated column
// added next to it), or in a later one, then clears the missing value
// (RelationClearMissing): the existing rows hold it, but osc's shadow is
// empty and keeps nothing. The copy's INSERT, which leaves the column to the
// shadow's DEFAULT, would then evaluate that DEFAULT in each chunk's
// transaction (and a later SET DEFAULT's, not the ADD's).
//
// So osc follows the --alter clause by clause (pgAddedTracker): right after
// the clause that adds a column, it reads what that clause left, and, when the
// shadow has no missing value for the column at the end, asks the server
// again on a table where nothing rewrites: osc's bookkeeping table (the
// checkpoint table, created for this when checkpoints are off) gets a column
// osc_fill_<attnum> of the column's type (a domain's base type, whose
// constraints would make it rewrite) with that DEFAULT. The server keeps a
// missing value there exactly when the DEFAULT is not volatile, and the copy
// and the applier write it (pgMissingValueOf), read from the catalog, so a
// resumed run, which plans again against the same bookkeeping table, writes
// the same value. The bookkeeping column's DEFAULT is dropped at once (the
// missing value stays), so saving a checkpoint evaluates nothing of the user's.

// pgAdded is a column one clause of the --alter adds, as that clause left it.
type pgAdded struct {
	num  int16
	name string
	// scratchType is the column's type after its clause, a domain's base
	// type; domainDefault is the DEFAULT of its type when that is a domain
	// with one, which an ADD COLUMN without a DEFAULT gives the rows.
	scratchType   string
	domainDefault string
	// missing is the missing value the clause left on the shadow, as the
	// text of its one-element array; "" when it left none.
	missing string
	// def is the column's DEFAULT after its clause ("" none), defOID its
	// pg_attrdef row, which a later SET DEFAULT replaces and a rename of
	// what it names leaves.
	def    string
	defOID uint32
	// changed: the clause changes the column's DEFAULT after adding it;
	// noDefault: its ADD COLUMN gives no DEFAULT.
	changed, noDefault bool
	// kept: the bookkeeping table keeps the value of def, or of the
	// domain's DEFAULT for a column added without one (pgKeepMissing).
	kept bool
}

// pgAddedTracker follows the columns the --alter's clauses add to the shadow.
type pgAddedTracker struct {
	shadow uint32
	seen   map[int16]bool
	added  []*pgAdded
}

// pgNewAddedTracker starts following the shadow's columns before the --alter.
func pgNewAddedTracker(shadowOID uint32, pre []pgColumn) *pgAddedTracker {
	t := &pgAddedTracker{shadow: shadowOID, seen: map[int16]bool{}}
	for _, c := range pre {
		t.seen[c.Num] = true
	}
	return t
}

// applied records the columns the clause just applied to the shadow added
// (identity and generated ones aside: the server computes those).
func (t *pgAddedTracker) applied(ctx context.Context, tx pgx.Tx, n PostgresNames, clause string) error {
	rows, err := tx.Query(ctx, `SELECT a.attnum, a.attname, a.attgenerated <> '' OR a.attidentity <> '',
		(WITH RECURSIVE b(typ, mod, depth) AS (SELECT a.atttypid, a.atttypmod, 0
			UNION ALL SELECT t.typbasetype, t.typtypmod, b.depth + 1 FROM b JOIN pg_type t ON t.oid = b.typ WHERE t.typtype = 'd')
		SELECT format_type(typ, mod) FROM b ORDER BY depth DESC LIMIT 1),
		coalesce((SELECT pg_get_expr(t.typdefaultbin, 0) FROM pg_type t WHERE t.oid = a.atttypid AND t.typtype = 'd'), ''),
		CASE WHEN a.atthasmissing THEN a.attmissingval::text ELSE '' END,
		coalesce(pg_get_expr(d.adbin, d.adrelid), ''), coalesce(d.oid, 0)
		FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, t.shadow)
	if err != nil {
		return fmt.Errorf("read the columns the --alter adds: %w", err)
	}
	type col struct {
		pgAdded
		computed bool
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (col, error) {
		var c col
		err := r.Scan(&c.num, &c.name, &c.computed, &c.scratchType, &c.domainDefault, &c.missing, &c.def, &c.defOID)
		return c, err
	})
	if err != nil {
		return fmt.Errorf("read the columns the --alter adds: %w", err)
	}
	var subs pgDefaultSubcommands
	parsed := false
	for _, c := range cols {
		if t.seen[c.num] {
			continue
		}
		t.seen[c.num] = true
		if c.computed {
			continue
		}
		if !parsed {
			subs, parsed = pgParseDefaultSubcommands(clause), true
		}
		a := c.pgAdded
		a.changed = subs.changed[a.name]
		if has, ok := subs.added[a.name]; ok {
			a.noDefault = !has
		} else {
			a.noDefault = a.def == ""
		}
		// Now, while the DEFAULT's text names what it names (osc renames
		// the shadow's sequences after the --alter).
		switch {
		case a.missing != "":
		case !a.changed && a.def != "":
			a.kept, err = pgKeepMissing(ctx, tx, n, &a, a.def)
		case a.noDefault && a.domainDefault != "":
			a.kept, err = pgKeepMissing(ctx, tx, n, &a, a.domainDefault)
		}
		if err != nil {
			return err
		}
		// A value evaluated once, in osc's session: the ADD's DEFAULT (as
		// the clause gives it when the clause replaces it), or its
		// domain's without one.
		if a.missing != "" || a.kept {
			what, once := "the DEFAULT", a.def
			if a.noDefault {
				what, once = "its domain's DEFAULT", a.domainDefault
			} else if a.changed {
				once = subs.exprs[a.name]
			}
			if once != "" {
				if err := pgCheckOnceDefault(ctx, tx, n, a.name, what, once); err != nil {
					return err
				}
			}
		}
		t.added = append(t.added, &a)
	}
	return nil
}

// fills returns, by shadow attnum, the expression osc writes into each
// column the --alter adds whose value the copy's INSERT would otherwise get
// wrong: one the shadow keeps no missing value for (pgBuildPlan reads the
// shadow's own), post being the shadow's columns after the whole --alter;
// and the plan's notes saying so.
func (t *pgAddedTracker) fills(ctx context.Context, tx pgx.Tx, n PostgresNames, post []pgColumn) (out map[int16]string, notes []string, err error) {
	out = map[int16]string{}
	once := func(a *pgAdded) string {
		return fmt.Sprintf("column %s: the existing rows get the one value its DEFAULT gave when osc made the shadow, as the plain ALTER evaluates it once; "+
			"kept in %s.%s (%s), where a resumed run reads it too", a.name, n.Schema, n.Checkpoint, a.keptName())
	}
	for _, a := range t.added {
		sc := pgFindColumnNum(post, a.num)
		if sc == nil || sc.Generated || sc.Identity || sc.Missing {
			continue
		}
		kept := pgMissingValueOf(QuotePostgres(n.Schema, n.Checkpoint), a.keptName(), a.scratchType, sc.Default)
		switch {
		case a.missing != "":
			// A later clause rewrote the shadow: the value this clause's
			// ALTER kept, as a constant.
			stored, err := pgKeepMissing(ctx, tx, n, a, pgMissingElement(pgLiteral(a.missing), a.scratchType))
			if err != nil {
				return nil, nil, err
			}
			if !stored {
				return nil, nil, fmt.Errorf("the --alter adds column %s: the server keeps no copy of its value %s", a.name, a.missing)
			}
			out[a.num] = kept
			notes = append(notes, once(a))
		case a.changed && !a.noDefault:
			return nil, nil, fmt.Errorf("the --alter adds column %s with a DEFAULT and changes that DEFAULT in the same ALTER TABLE statement, "+
				"which keeps no value of the first DEFAULT (the statement rewrites the table, or that DEFAULT is volatile): osc cannot tell the value the existing rows get; "+
				"change the DEFAULT in a clause of its own, after a ';'", a.name)
		case a.changed || a.def == "":
			// Existing rows get NULL, or the domain's DEFAULT.
			switch {
			case a.kept:
				out[a.num] = kept
				notes = append(notes, once(a))
			case a.domainDefault != "" && (a.changed || sc.Default != ""):
				// Volatile: evaluated for each row.
				if err := pgCheckPerRowDefault(ctx, tx, n, a.name, a.domainDefault); err != nil {
					return nil, nil, err
				}
				out[a.num] = a.domainDefault
				notes = append(notes, fmt.Sprintf("column %s: the existing rows get its domain's volatile DEFAULT %s, evaluated for each row; new rows get the column's DEFAULT", a.name, a.domainDefault))
			case a.domainDefault != "":
				// Volatile: the copy's INSERT evaluates it for each row.
				if err := pgCheckPerRowDefault(ctx, tx, n, a.name, a.domainDefault); err != nil {
					return nil, nil, err
				}
			case sc.Default != "":
				out[a.num] = "CAST(NULL AS " + sc.ColumnType + ")"
				notes = append(notes, fmt.Sprintf("column %s: the existing rows get NULL, as its ADD COLUMN has no DEFAULT; new rows get the DEFAULT set after it", a.name))
			}
		case a.kept:
			out[a.num] = kept
			notes = append(notes, once(a))
		default:
			// Volatile: evaluated for each row, by the INSERT's DEFAULT
			// unless a later clause replaced it; then the ADD's is, if its
			// text still names what it named (osc renames the shadow's
			// sequences after the --alter).
			if err := pgCheckPerRowDefault(ctx, tx, n, a.name, a.def); err != nil {
				return nil, nil, err
			}
			var same bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_attrdef WHERE oid = $1 AND adrelid = $2 AND adnum = $3)",
				a.defOID, t.shadow, a.num).Scan(&same); err != nil {
				return nil, nil, fmt.Errorf("check the DEFAULT of column %s: %w", a.name, err)
			}
			if same {
				continue
			}
			sp, err := tx.Begin(ctx)
			if err != nil {
				return nil, nil, fmt.Errorf("check the DEFAULT of column %s: %w", a.name, err)
			}
			_, err = sp.Exec(ctx, "EXPLAIN SELECT "+a.def)
			if rerr := sp.Rollback(ctx); err == nil && rerr != nil {
				return nil, nil, fmt.Errorf("check the DEFAULT of column %s: %w", a.name, rerr)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("the --alter adds column %s with the volatile DEFAULT %s, which the existing rows get, and sets another DEFAULT later: "+
					"osc cannot evaluate the first one (%v); set the other DEFAULT after the migration", a.name, a.def, err)
			}
			out[a.num] = a.def
			notes = append(notes, fmt.Sprintf("column %s: the existing rows get its ADD COLUMN's volatile DEFAULT %s, evaluated for each row; new rows get the DEFAULT set after it", a.name, a.def))
		}
	}
	return out, notes, nil
}

// pgCheckPerRowDefault refuses a volatile DEFAULT def, which the existing
// rows get evaluated for each row, that also calls a built-in whose value
// depends on the transaction or the session evaluating it (the
// transaction's time or id, a backend's pid, a setting, the user…): the
// plain ALTER evaluates it in one transaction of the user's session, the
// copy and the applier in each chunk's transaction and at each change, in
// osc's sessions.
func pgCheckPerRowDefault(ctx context.Context, tx pgx.Tx, n PostgresNames, column, def string) error {
	found, err := pgDefaultSessionCalls(ctx, tx, n, column, def, true)
	if err != nil || len(found) == 0 {
		return err
	}
	return fmt.Errorf("the --alter adds column %s, whose existing rows get the volatile DEFAULT %s evaluated for each row, and it calls %s, whose value depends on "+
		"the transaction or session evaluating it: a plain ALTER evaluates it in one transaction of your session, osc in each chunk's transaction and at each "+
		"change, in its own sessions, so the values would differ; add the column without that DEFAULT and fill it after the migration (UPDATE), or give a DEFAULT "+
		"that is not volatile (evaluated once)", column, def, strings.Join(found, ", "))
}

// pgCheckOnceDefault refuses a DEFAULT def that is not volatile, which the
// server evaluates once for the existing rows, when it calls a built-in
// whose value depends on the session evaluating it (its backend, client,
// settings, user): the plain ALTER gives every row the value in the user's
// session, osc the value in its own, where it made the shadow or its
// bookkeeping column (application_name 'osc', osc's backend pid). The
// transaction's time or id is not refused: any session's transaction gives
// one value, as the ALTER's does, only another one.
func pgCheckOnceDefault(ctx context.Context, tx pgx.Tx, n PostgresNames, column, what, def string) error {
	found, err := pgDefaultSessionCalls(ctx, tx, n, column, def, false)
	if err != nil || len(found) == 0 {
		return err
	}
	return fmt.Errorf("the --alter adds column %s with %s %s, which the existing rows get evaluated once, and it calls %s, whose value depends on "+
		"the session evaluating it (its process, client, settings, user): a plain ALTER gives every row your session's value, osc would give its own "+
		"session's; run the ALTER TABLE directly, or add the column without that DEFAULT and fill it after the migration (UPDATE, then SET DEFAULT)",
		column, what, def, strings.Join(found, ", "))
}

// pgUserFunctions are the built-ins, as PostgreSQL 16 and later parse
// CURRENT_USER, SESSION_USER, CURRENT_ROLE, USER and CURRENT_SCHEMA, whose
// value is the session's user or search_path (older servers parse the
// keywords as SQLValueFunctions, ops 9 to 12 and 14).
var pgUserFunctions = []string{"current_user", "session_user", "current_schema", "current_schemas"}

// pgDefaultSessionCalls returns the built-ins the DEFAULT def of column
// calls whose value depends on the session evaluating it
// (pgSessionFunctions, the user and search_path) and, with transaction, on
// its transaction's time or id (those pgCheckUsing refuses as changing from
// one transaction to the next). It reads them from a view of def (named as
// pgCheckUsing's) made in a savepoint it rolls back.
func pgDefaultSessionCalls(ctx context.Context, tx pgx.Tx, n PostgresNames, column, def string, transaction bool) ([]string, error) {
	view := QuotePostgres(n.Schema, FitPostgresName("_"+n.Table, "_osc_using"))
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("check the DEFAULT of column %s: %w", column, err)
	}
	defer sp.Rollback(context.WithoutCancel(ctx))
	if _, err := sp.Exec(ctx, "CREATE VIEW "+view+" AS SELECT ("+def+") AS v"); err != nil {
		// Text that no longer parses here (a sequence the shadow's
		// renamed): what evaluates it (fills) tells.
		return nil, nil
	}
	rows, err := sp.Query(ctx, `SELECT DISTINCT p.oid::regprocedure::text
		FROM pg_rewrite r, regexp_matches(r.ev_action::text, ':(?:funcid|opfuncid) (\d+)', 'g') AS f(m)
		JOIN pg_proc p ON p.oid = f.m[1]::oid
		WHERE r.ev_class = $2::regclass AND p.oid < 16384 AND p.provolatile = 's' AND (p.proname = ANY($1::text[]) OR p.proname = ANY($3::text[])
			OR $4 AND (p.proname IN ('now', 'statement_timestamp', 'transaction_timestamp', 'txid_current', 'txid_current_if_assigned', 'pg_current_xact_id', 'pg_current_xact_id_if_assigned')
				OR p.proname = 'age' AND p.pronargs = 1))
		UNION
		SELECT 'CURRENT_DATE, CURRENT_TIME, CURRENT_TIMESTAMP, LOCALTIME or LOCALTIMESTAMP'
		FROM pg_rewrite r WHERE $4 AND r.ev_class = $2::regclass AND r.ev_action::text ~ 'SQLVALUEFUNCTION :op [0-8] '
		UNION
		SELECT 'CURRENT_USER, CURRENT_ROLE, SESSION_USER or USER'
		FROM pg_rewrite r WHERE r.ev_class = $2::regclass AND r.ev_action::text ~ 'SQLVALUEFUNCTION :op (9|1[0-2]) '
		UNION
		SELECT 'CURRENT_SCHEMA'
		FROM pg_rewrite r WHERE r.ev_class = $2::regclass AND r.ev_action::text ~ 'SQLVALUEFUNCTION :op 14 '
		ORDER BY 1`, pgSessionFunctions, view, pgUserFunctions, transaction)
	if err != nil {
		return nil, fmt.Errorf("check the DEFAULT of column %s: %w", column, err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("check the DEFAULT of column %s: %w", column, err)
	}
	return found, nil
}

// keptName is the bookkeeping table's column that keeps a's value.
func (a *pgAdded) keptName() string { return fmt.Sprintf("osc_fill_%d", a.num) }

// pgKeepMissing adds the column keptName() of a's type with DEFAULT def to
// the bookkeeping table, where nothing rewrites, and reports whether the
// server kept a missing value for it. A column already there is the one a
// killed run added, whose value a resumed run writes too. Otherwise the
// column, and the table when this made it, are rolled back.
func pgKeepMissing(ctx context.Context, tx pgx.Tx, n PostgresNames, a *pgAdded, def string) (stored bool, err error) {
	book, name := QuotePostgres(n.Schema, n.Checkpoint), a.keptName()
	err = tx.QueryRow(ctx, `SELECT coalesce((SELECT atthasmissing FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped), false)`,
		book, name).Scan(&stored)
	if err != nil || stored {
		return stored, err
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("evaluate the DEFAULT of column %s: %w", a.name, err)
	}
	defer sp.Rollback(context.WithoutCancel(ctx))
	if _, err := sp.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+book+" "+pgCheckpointColumns); err != nil {
		return false, fmt.Errorf("create checkpoint table %s.%s: %w", n.Schema, n.Checkpoint, err)
	}
	col := QuotePostgres(name)
	if _, err := sp.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s DEFAULT %s", book, col, a.scratchType, def)); err != nil {
		return false, fmt.Errorf("evaluate the DEFAULT of column %s (%s) on %s.%s: %w", a.name, def, n.Schema, n.Checkpoint, err)
	}
	if err := sp.QueryRow(ctx, "SELECT atthasmissing FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2", book, name).Scan(&stored); err != nil {
		return false, fmt.Errorf("evaluate the DEFAULT of column %s: %w", a.name, err)
	}
	if !stored {
		return false, nil // rolled back
	}
	if _, err := sp.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", book, col)); err != nil {
		return false, fmt.Errorf("evaluate the DEFAULT of column %s: %w", a.name, err)
	}
	if err := sp.Commit(ctx); err != nil {
		return false, fmt.Errorf("evaluate the DEFAULT of column %s: %w", a.name, err)
	}
	return true, nil
}

// pgFindColumnNum returns the column with attnum num, or nil.
func pgFindColumnNum(cols []pgColumn, num int16) *pgColumn {
	for i := range cols {
		if cols[i].Num == num {
			return &cols[i]
		}
	}
	return nil
}

// pgLiteral quotes s as an SQL string constant.
func pgLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// pgDefaultSubcommands is what one clause's subcommands do to DEFAULTs:
// added maps each column an ADD [COLUMN] adds to whether it gives a DEFAULT,
// and exprs to that DEFAULT's text; changed holds the columns an ALTER
// [COLUMN] … SET DEFAULT or DROP DEFAULT names. Names are as PostgreSQL
// folds them.
type pgDefaultSubcommands struct {
	added   map[string]bool
	exprs   map[string]string
	changed map[string]bool
}

// pgParseDefaultSubcommands reads a clause's ADD COLUMN and ALTER COLUMN …
// SET/DROP DEFAULT subcommands. An ADD followed by a table constraint
// (CONSTRAINT, PRIMARY KEY, UNIQUE, CHECK, FOREIGN KEY, EXCLUDE) adds no
// column; a column definition gives a DEFAULT when a DEFAULT keyword stands
// in it outside parentheses, other than in GENERATED BY DEFAULT.
func pgParseDefaultSubcommands(clause string) pgDefaultSubcommands {
	out := pgDefaultSubcommands{added: map[string]bool{}, exprs: map[string]string{}, changed: map[string]bool{}}
	for _, sub := range pgSubcommands(pgLex(clause)) {
		if len(sub) < 2 {
			continue
		}
		i := 1
		switch {
		case sub[0].is("add"):
			if sub[i].is("column") {
				i++
			} else if slices.ContainsFunc([]string{"constraint", "primary", "unique", "check", "foreign", "exclude"}, sub[i].is) {
				continue
			}
			if i+2 < len(sub) && sub[i].is("if") && sub[i+1].is("not") && sub[i+2].is("exists") {
				i += 3
			}
			if i >= len(sub) {
				continue
			}
			name, ok := sub[i].name()
			if !ok {
				continue
			}
			has, depth := false, 0
			for j := i + 1; j < len(sub); j++ {
				t := sub[j]
				switch {
				case t.Kind == pgPunct && (t.Text == "(" || t.Text == "["):
					depth++
				case t.Kind == pgPunct && (t.Text == ")" || t.Text == "]"):
					depth--
				case depth == 0 && t.is("default") && !sub[j-1].is("by"):
					has = true
					if e := pgDefaultExpr(clause, sub[j+1:]); e != "" {
						out.exprs[name] = e
					}
				}
			}
			out.added[name] = has
		case sub[0].is("alter"):
			if sub[i].is("column") {
				i++
			}
			if i+2 >= len(sub) || sub[i].is("constraint") || !(sub[i+1].is("set") || sub[i+1].is("drop")) || !sub[i+2].is("default") {
				continue
			}
			if name, ok := sub[i].name(); ok {
				out.changed[name] = true
			}
		}
	}
	return out
}

// pgDefaultExpr is the text, in clause, of the DEFAULT expression toks
// start with: up to the column constraint that follows it (NOT NULL, NULL,
// CHECK…, COLLATE) or the subcommand's end. A DEFAULT is a b_expr, which
// holds NOT only after IS, and NULL only as itself or after IS [NOT]
// DISTINCT FROM.
func pgDefaultExpr(clause string, toks []pgToken) string {
	end, depth := len(toks), 0
	for i, t := range toks {
		switch {
		case t.Kind == pgPunct && (t.Text == "(" || t.Text == "["):
			depth++
		case t.Kind == pgPunct && (t.Text == ")" || t.Text == "]"):
			depth--
		case depth == 0 && i > 0 && (t.is("not") && !toks[i-1].is("is") || t.is("null") && !toks[i-1].is("from") ||
			slices.ContainsFunc([]string{"constraint", "check", "unique", "primary", "references", "generated", "default", "collate", "deferrable", "initially"}, t.is)):
			end = i
		}
		if end < len(toks) {
			break
		}
	}
	if end == 0 {
		return ""
	}
	return clause[toks[0].Start:toks[end-1].End]
}
