package table

import (
	"context"
	"fmt"
	"strings"
)

// PostgresTrigger is one of the table's triggers (not a foreign key's
// internal ones) as the new table gets it at the cut-over.
type PostgresTrigger struct {
	Name string
	// Source is the original's trigger definition when the shadow was
	// made (pg_get_triggerdef): the cut-over refuses to swap if the table's
	// triggers changed since.
	Source string
	// Def makes it on the shadow, as the --alter left it (a renamed column
	// renamed in it too).
	Def string
	// Enabled is pg_trigger.tgenabled: O (origin and local), D (disabled),
	// R (replica), A (always).
	Enabled string
	// Comment is its comment as a quoted literal ("" for none).
	Comment string
}

// EnableClause is the ALTER TABLE clause that gives the trigger its
// enabled state, or "" for the default (O) that CREATE TRIGGER gives.
func (t PostgresTrigger) EnableClause() string {
	switch t.Enabled {
	case "D":
		return "DISABLE TRIGGER " + QuotePostgres(t.Name)
	case "R":
		return "ENABLE REPLICA TRIGGER " + QuotePostgres(t.Name)
	case "A":
		return "ENABLE ALWAYS TRIGGER " + QuotePostgres(t.Name)
	}
	return ""
}

// pgTriggerQuery lists a table's triggers (but a constraint's internal
// ones) by name: name, definition, enabled state, comment.
const pgTriggerQuery = `SELECT tgname, pg_get_triggerdef(oid), tgenabled::text, coalesce(quote_literal(obj_description(oid, 'pg_trigger')), '')
	FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal ORDER BY tgname`

// ReadPostgresTriggers returns the table's triggers (Def and Source alike).
func ReadPostgresTriggers(ctx context.Context, q PostgresQuerier, oid uint32) ([]PostgresTrigger, error) {
	rows, err := q.Query(ctx, pgTriggerQuery, oid)
	if err != nil {
		return nil, fmt.Errorf("read triggers: %w", err)
	}
	defer rows.Close()
	var out []PostgresTrigger
	for rows.Next() {
		var t PostgresTrigger
		if err := rows.Scan(&t.Name, &t.Def, &t.Enabled, &t.Comment); err != nil {
			return nil, fmt.Errorf("read triggers: %w", err)
		}
		t.Source = t.Def
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read triggers: %w", err)
	}
	return out, nil
}

// pgTriggerOn rewrites a trigger definition of pg_get_triggerdef, which
// names its table schema-qualified ("… ON schema.table FOR EACH …"), to make
// it on the table qualified to instead. A constraint trigger's FROM naming
// the table itself (self: as pg_get_triggerdef names it there, qualified
// only where the search_path does not find it) names to too: left as it
// is, it would bind the new table's trigger to the old table, and the old
// table's drop would drop the trigger with it.
func pgTriggerOn(def, from, self, to string) (string, error) {
	i := strings.Index(def, " ON "+from+" ")
	if i < 0 {
		return "", fmt.Errorf("trigger definition %q does not name %s", def, from)
	}
	rest := def[i+len(" ON "+from+" "):]
	if r, ok := strings.CutPrefix(rest, "FROM "+self+" "); ok {
		rest = "FROM " + to + " " + r
	}
	return def[:i] + " ON " + to + " " + rest, nil
}

// pgCopyTriggers makes the original's triggers on the shadow before the
// --alter runs on it, so that the --alter treats them as the plain ALTER
// treats the original's (a renamed column renamed in them, a dropped one
// they use refused); pgSetAsideTriggers reads them back.
func pgCopyTriggers(ctx context.Context, tx PostgresQuerier, origOID uint32, n PostgresNames) ([]PostgresTrigger, error) {
	return pgCopyTriggersTo(ctx, tx, origOID, n.Schema, n.Shadow)
}

// pgCopyTriggersTo makes the triggers of the table origOID on schema.table,
// in their enabled states, and returns them.
func pgCopyTriggersTo(ctx context.Context, tx PostgresQuerier, origOID uint32, schema, table string) ([]PostgresTrigger, error) {
	trgs, err := ReadPostgresTriggers(ctx, tx, origOID)
	if err != nil || len(trgs) == 0 {
		return nil, err
	}
	// pg_get_triggerdef qualifies the table as quote_qualified_identifier
	// does: each part quoted only where it must be.
	// Its FROM clause, as generate_relation_name does: qualified only
	// where the search_path does not find the table.
	var from, self, to string
	if err := tx.QueryRow(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),
		CASE WHEN pg_table_is_visible(c.oid) THEN quote_ident(c.relname) ELSE quote_ident(n.nspname) || '.' || quote_ident(c.relname) END,
		quote_ident($2) || '.' || quote_ident($3)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`, origOID, schema, table).Scan(&from, &self, &to); err != nil {
		return nil, fmt.Errorf("copy triggers: %w", err)
	}
	for _, t := range trgs {
		def, err := pgTriggerOn(t.Def, from, self, to)
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, def); err != nil {
			return nil, fmt.Errorf("copy trigger %s: %w", t.Name, err)
		}
		if c := t.EnableClause(); c != "" {
			if _, err := tx.Exec(ctx, "ALTER TABLE "+to+" "+c); err != nil {
				return nil, fmt.Errorf("copy trigger %s: %w", t.Name, err)
			}
		}
	}
	return trgs, nil
}

// pgSetAsideTriggers reads the shadow's triggers back after the --alter and
// drops them: a trigger must not fire for the copy and the applier; the
// cut-over makes them on the shadow again once nothing more is applied to it,
// in the transaction that swaps the tables.
func pgSetAsideTriggers(ctx context.Context, tx PostgresQuerier, shadowOID uint32, shadow string, orig []PostgresTrigger) ([]PostgresTrigger, error) {
	trgs, err := ReadPostgresTriggers(ctx, tx, shadowOID)
	if err != nil {
		return nil, err
	}
	for i := range trgs {
		t := &trgs[i]
		t.Source = ""
		for _, o := range orig {
			if o.Name == t.Name {
				t.Source, t.Comment = o.Source, o.Comment
			}
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf("DROP TRIGGER %s ON %s", QuotePostgres(t.Name), shadow)); err != nil {
			return nil, fmt.Errorf("create shadow: set trigger %s aside: %w", t.Name, err)
		}
	}
	return trgs, nil
}
