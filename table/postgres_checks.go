package table

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A NOT VALID CHECK constraint holds for rows written after it was added, not
// for the rows already there. A plain ALTER adds it (or keeps the original's)
// at one instant; osc's equivalent instant is the cut-over: rows the original
// held or accepted until then are the "existing rows", which the copy and the
// applier bring to the shadow. So the shadow goes without its NOT VALID CHECKs
// while rows are copied and applied, and the new table gets them NOT VALID at
// cut-over, where they check every write after it.

// PostgresCheck is a NOT VALID CHECK constraint the new table gets at
// cut-over.
type PostgresCheck struct {
	Name       string
	Definition string // pg_get_constraintdef text, without NOT VALID
	Comment    string // a quoted literal, "" for none
}

// pgCopyCheckValidity makes the shadow's copies of the original's NOT VALID
// CHECK constraints NOT VALID too (LIKE copies every CHECK as valid), so that
// after the --alter the shadow's CHECKs are valid exactly where a plain
// ALTER leaves them valid (VALIDATE CONSTRAINT validates one).
func pgCopyCheckValidity(ctx context.Context, tx pgx.Tx, origOID uint32, shadow string) error {
	checks, err := pgReadNotValidChecks(ctx, tx, origOID)
	if err != nil {
		return err
	}
	for _, c := range checks {
		stmt := fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s %s NOT VALID", shadow, QuotePostgres(c.Name), QuotePostgres(c.Name), c.Definition)
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("create shadow: copy NOT VALID check constraint %s: %w", c.Name, err)
		}
		if c.Comment != "" {
			if _, err := tx.Exec(ctx, fmt.Sprintf("COMMENT ON CONSTRAINT %s ON %s IS %s", QuotePostgres(c.Name), shadow, c.Comment)); err != nil {
				return fmt.Errorf("create shadow: copy the comment of check constraint %s: %w", c.Name, err)
			}
		}
	}
	return nil
}

// pgSetAsideChecks takes the shadow's NOT VALID CHECK constraints off it and
// returns them, for the cut-over to add.
func pgSetAsideChecks(ctx context.Context, tx pgx.Tx, shadowOID uint32, shadow string) ([]PostgresCheck, error) {
	checks, err := pgReadNotValidChecks(ctx, tx, shadowOID)
	if err != nil {
		return nil, err
	}
	for _, c := range checks {
		if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", shadow, QuotePostgres(c.Name))); err != nil {
			return nil, fmt.Errorf("create shadow: set NOT VALID check constraint %s aside: %w", c.Name, err)
		}
	}
	return checks, nil
}

// pgReadNotValidChecks reads the table's NOT VALID CHECK constraints.
func pgReadNotValidChecks(ctx context.Context, q PostgresQuerier, oid uint32) ([]PostgresCheck, error) {
	rows, err := q.Query(ctx, `SELECT conname, pg_get_constraintdef(oid), coalesce(quote_literal(obj_description(oid, 'pg_constraint')), '')
		FROM pg_constraint WHERE conrelid = $1 AND contype = 'c' AND NOT convalidated ORDER BY conname`, oid)
	if err != nil {
		return nil, fmt.Errorf("read check constraints: %w", err)
	}
	checks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PostgresCheck, error) {
		var c PostgresCheck
		err := r.Scan(&c.Name, &c.Definition, &c.Comment)
		c.Definition = strings.TrimSuffix(c.Definition, " NOT VALID")
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("read check constraints: %w", err)
	}
	return checks, nil
}

// PostgresShadowRefusal explains a check or NOT NULL violation the shadow
// raised on a row the copy or the applier wrote: the row, which the original
// holds, breaks a constraint the --alter adds (a CHECK, a NOT NULL, a
// domain's CHECK), so a plain ALTER TABLE would fail too. Other errors are
// returned as they are.
func PostgresShadowRefusal(err error, plan *Plan) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23514" && pgErr.Code != "23502" {
		return err
	}
	onShadow := pgErr.TableName == plan.Shadow.Name && pgErr.SchemaName == plan.Shadow.Schema
	if !onShadow && (pgErr.TableName != "" || pgErr.DataTypeName == "") {
		return err
	}
	detail := ""
	if pgErr.Detail != "" {
		detail = " (" + strings.TrimSuffix(pgErr.Detail, ".") + ")"
	}
	return fmt.Errorf("a row of %s does not fit the altered table%s, so a plain ALTER TABLE would fail too; %s is unchanged: %w",
		QuotePostgres(plan.Source.Schema, plan.Source.Name), detail, QuotePostgres(plan.Source.Schema, plan.Source.Name), err)
}
