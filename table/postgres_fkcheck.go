package table

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresForeignKeyCheck is the query a plain ALTER TABLE runs to validate
// a foreign key (RI_Initial_Check in ri_triggers.c), over the shadow table:
// it returns the key of a row that violates it, or no row.
type PostgresForeignKeyCheck struct {
	Query   string // returns the violating row's key columns as text, at most one row
	Columns string // the key columns, as the server's message names them: "pid, qid"
	Table   string // the referenced table
}

// pgForeignKeyCheck returns the check of the shadow's foreign key name when a
// plain ALTER TABLE would validate it against rows the original did not
// already hold to it: one the --alter adds or validates, or one whose
// columns' values the --alter may change (a type change or USING). It
// returns nil for a NOT VALID key, and for one the original enforces validly
// on the same columns, whose values are copied unchanged.
func pgForeignKeyCheck(ctx context.Context, tx pgx.Tx, shadowOID uint32, fk pgForeignKey, origFKs []pgForeignKey, plan *Plan) (*PostgresForeignKeyCheck, error) {
	if !fk.Validate {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT fa.attname::text, quote_ident(fa.attname), quote_ident(pa.attname),
			fa.atttypid <> o.oprright, (SELECT quote_ident(n.nspname) || '.' || quote_ident(y.typname) FROM pg_type y JOIN pg_namespace n ON n.oid = y.typnamespace WHERE y.oid = o.oprright),
			pa.atttypid <> o.oprleft, (SELECT quote_ident(n.nspname) || '.' || quote_ident(y.typname) FROM pg_type y JOIN pg_namespace n ON n.oid = y.typnamespace WHERE y.oid = o.oprleft),
			'OPERATOR(' || quote_ident(onsp.nspname) || '.' || o.oprname || ')',
			CASE WHEN pa.attcollation <> fa.attcollation AND pa.attcollation <> 0
				THEN ' COLLATE ' || quote_ident(cnsp.nspname) || '.' || quote_ident(co.collname) ELSE '' END,
			c.confmatchtype::text, c.confrelid::regclass::text,
			(SELECT CASE WHEN r.relkind = 'p' THEN '' ELSE 'ONLY ' END || quote_ident(n.nspname) || '.' || quote_ident(r.relname)
				FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace WHERE r.oid = c.confrelid)
		FROM pg_constraint c
		CROSS JOIN LATERAL unnest(c.conkey, c.confkey, c.conpfeqop) WITH ORDINALITY AS k(fk, pk, op, i)
		JOIN pg_attribute fa ON fa.attrelid = c.conrelid AND fa.attnum = k.fk
		JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.pk
		JOIN pg_operator o ON o.oid = k.op
		JOIN pg_namespace onsp ON onsp.oid = o.oprnamespace
		LEFT JOIN pg_collation co ON co.oid = pa.attcollation
		LEFT JOIN pg_namespace cnsp ON cnsp.oid = co.collnamespace
		WHERE c.conrelid = $1 AND c.conname = $2 AND c.contype = 'f'
		ORDER BY k.i`, shadowOID, fk.Name)
	if err != nil {
		return nil, fmt.Errorf("read foreign key %s: %w", fk.Name, err)
	}
	type key struct {
		name, fk, pk, fkType, pkType, op, collate, match, ref, refFrom string
		castFK, castPK                                                 bool
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (key, error) {
		var k key
		return k, r.Scan(&k.name, &k.fk, &k.pk, &k.castFK, &k.fkType, &k.castPK, &k.pkType, &k.op, &k.collate, &k.match, &k.ref, &k.refFrom)
	})
	if err != nil {
		return nil, fmt.Errorf("read foreign key %s: %w", fk.Name, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("read foreign key %s: no key columns", fk.Name)
	}
	var cols []string
	for _, k := range keys {
		cols = append(cols, k.name)
	}
	if pgForeignKeyHeld(fk, cols, origFKs, plan) {
		return nil, nil
	}
	var sel, on, notNull []string
	for _, k := range keys {
		pk, fkCol := "pk."+k.pk, "fk."+k.fk
		if k.castPK {
			pk += "::" + k.pkType
		}
		if k.castFK {
			fkCol += "::" + k.fkType
		}
		sel = append(sel, "fk."+k.fk+"::text")
		// As ri_GenerateQual writes it: the types spelled out (no typmod,
		// which bit or character would take as a length), the collation
		// on the right operand.
		on = append(on, fmt.Sprintf("(%s %s %s%s)", pk, k.op, fkCol, k.collate))
		notNull = append(notNull, "fk."+k.fk+" IS NOT NULL")
	}
	sep := " AND "
	switch keys[0].match {
	case "s":
	case "f":
		sep = " OR "
	default:
		return nil, fmt.Errorf("foreign key %s: MATCH PARTIAL is not implemented", fk.Name)
	}
	// A partitioned referenced table is read with its partitions.
	q := fmt.Sprintf("SELECT %s FROM ONLY %s fk LEFT JOIN %s pk ON %s WHERE pk.%s IS NULL AND (%s) LIMIT 1",
		strings.Join(sel, ", "), QuotePostgres(plan.Shadow.Schema, plan.Shadow.Name), keys[0].refFrom,
		strings.Join(on, " AND "), keys[0].pk, strings.Join(notNull, sep))
	return &PostgresForeignKeyCheck{Query: q, Columns: strings.Join(cols, ", "), Table: keys[0].ref}, nil
}

// pgForeignKeyHeld reports whether the original holds its rows to fk
// already: it has a validated foreign key of the same name and definition
// on the same columns, which the copy writes unchanged (same type, no
// USING).
func pgForeignKeyHeld(fk pgForeignKey, cols []string, origFKs []pgForeignKey, plan *Plan) bool {
	held := false
	for _, o := range origFKs {
		if o.Name == fk.Name && o.Validate && o.Definition == fk.Definition && o.ReferencesOID == fk.ReferencesOID {
			held = true
		}
	}
	if !held {
		return false
	}
	for _, col := range cols {
		i := plan.Shadow.ColumnIndex(col)
		if i < 0 {
			return false
		}
		unchanged := false
		for _, m := range plan.Mapping {
			if m.Shadow == col {
				unchanged = m.Expr == "" && m.Source == col && plan.Source.Columns[m.SourceIndex].ColumnType == plan.Shadow.Columns[i].ColumnType
			}
		}
		if !unchanged {
			return false
		}
	}
	return true
}

// PostgresForeignKeyViolation is a row of the new table that a foreign key
// the --alter adds or validates does not accept.
type PostgresForeignKeyViolation struct {
	Name, Columns, Key, Table string
}

func (v *PostgresForeignKeyViolation) Error() string {
	return fmt.Sprintf("foreign key %s fails: key (%s)=(%s) is not present in table %s", v.Name, v.Columns, v.Key, v.Table)
}

// CheckPostgresForeignKey runs the check of foreign key name and returns a
// *PostgresForeignKeyViolation naming the first violating key it finds. It
// runs the query as the server's validation does, with maintenance_work_mem
// for work_mem.
func CheckPostgresForeignKey(ctx context.Context, pool *pgxpool.Pool, name string, c PostgresForeignKeyCheck) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("check foreign key %s: %w", name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SELECT set_config('work_mem', current_setting('maintenance_work_mem'), true), set_config('hash_mem_multiplier', '1', true)"); err != nil {
		return fmt.Errorf("check foreign key %s: %w", name, err)
	}
	rows, err := tx.Query(ctx, c.Query)
	if err != nil {
		return fmt.Errorf("check foreign key %s: %w", name, err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]*string, error) {
		vals := make([]*string, len(r.FieldDescriptions()))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		return vals, r.Scan(ptrs...)
	})
	if err != nil {
		return fmt.Errorf("check foreign key %s: %w", name, err)
	}
	if len(found) == 0 {
		return nil
	}
	var key []string
	for _, v := range found[0] {
		if v == nil {
			key = append(key, "null")
		} else {
			key = append(key, *v)
		}
	}
	return &PostgresForeignKeyViolation{Name: name, Columns: c.Columns, Key: strings.Join(key, ", "), Table: c.Table}
}
