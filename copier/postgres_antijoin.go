package copier

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"osc/table"
)

// The anti-join: a chunk's plain INSERT … SELECT leaves out the source rows
// whose key the shadow holds (the applier wrote them), instead of skipping
// them with ON CONFLICT (key) DO NOTHING, whose speculative insertion costs
// about 1.7 times the server's CPU of a plain insert (measured on 100,000-row
// chunks). The two skip the same rows when the key is exact (pgExactKey): a
// shadow row matches a source row under "=" exactly when the shadow's unique
// index on the key would find it. A row the applier commits after the
// INSERT's snapshot is not left out: the INSERT then fails whole on the
// duplicate and the chunk goes to ON CONFLICT, as before. The engine holds the
// applier off while a chunk is copied (the copier reports it with
// HoldsApplier), so that this stays rare.

// HoldsApplier marks the copier as one whose chunks the engine copies with
// the applier held off (see above).
func (c *Postgres) HoldsApplier() {}

// antiAlias returns the shadow's alias in the anti-join, other than the
// source's name, by which the condition names the source's columns: inside
// the subquery an alias of the same name would hide the source.
func antiAlias(source string) string {
	alias := "osc_s"
	for alias == source {
		alias += "_"
	}
	return alias
}

// initAntiJoin sets antiKeys and antiOn when the key is exact.
func (c *Postgres) initAntiJoin(ctx context.Context) error {
	exact, shadowKey, err := pgExactKey(ctx, c.pool, c.plan, c.sql)
	if err != nil {
		return fmt.Errorf("compare the shadow's key with the table's: %w", err)
	}
	if !exact {
		return nil
	}
	src := make([]string, len(c.sql.Keys))
	for i, k := range c.sql.Keys {
		src[i] = pgx.Identifier{c.plan.Source.Name}.Sanitize() + "." + k
	}
	c.alias = antiAlias(c.plan.Source.Name)
	c.antiKeys = make([]string, len(shadowKey))
	for i, k := range shadowKey {
		c.antiKeys[i] = pgx.Identifier{c.alias}.Sanitize() + "." + pgx.Identifier{k}.Sanitize()
	}
	c.antiOn = "(" + strings.Join(c.antiKeys, ", ") + ") = (" + strings.Join(src, ", ") + ")"
	return nil
}

// antiJoin is what follows the chunk's INSERT … SELECT … [WHERE conds] to
// leave out the keys the shadow holds: anti are the chunk's conds on the
// shadow's key, which bound the shadow rows read to the chunk's range.
func (c *Postgres) antiJoin(hasConds bool, anti []string) string {
	join := " WHERE "
	if hasConds {
		join = " AND "
	}
	cond := append(append([]string{}, anti...), c.antiOn)
	return join + "NOT EXISTS (SELECT FROM " + c.sql.Shadow + " AS " + pgx.Identifier{c.alias}.Sanitize() + " WHERE " + strings.Join(cond, " AND ") + ")"
}

// pgExactKey reports whether the shadow's key compares as the source's: each
// key column copied as itself (no USING), of the same type, type modifier
// and collation in both tables, and the shadow has a unique index over
// exactly those columns (immediate, not partial, no expressions) with their
// types' default operator classes and the columns' collations, the index
// ON CONFLICT (key) would arbitrate with. It returns the shadow's key
// columns.
func pgExactKey(ctx context.Context, q table.PostgresQuerier, p *table.Plan, s *PostgresStatements) (bool, []string, error) {
	shadowKey := make([]string, len(p.KeyIndex))
	for n, i := range p.KeyIndex {
		for _, m := range p.Mapping {
			if m.SourceIndex == i {
				if m.Expr != "" {
					return false, nil, nil
				}
				shadowKey[n] = m.Shadow
			}
		}
		if shadowKey[n] == "" {
			return false, nil, fmt.Errorf("key column %q is not copied to the shadow", p.Key[n])
		}
	}
	var exact bool
	err := q.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM unnest($3::text[], $4::text[]) AS k(src, dst)
			JOIN pg_attribute s ON s.attrelid = to_regclass($1) AND s.attname = k.src
			JOIN pg_attribute d ON d.attrelid = to_regclass($2) AND d.attname = k.dst
			WHERE s.atttypid = d.atttypid AND s.atttypmod = d.atttypmod AND s.attcollation = d.attcollation) = cardinality($3::text[])
		AND EXISTS (SELECT FROM pg_index i WHERE i.indrelid = to_regclass($2) AND i.indisunique AND i.indimmediate
			AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = cardinality($4::text[])
			AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM generate_series(0, i.indnkeyatts - 1) n
				JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[n]
				JOIN pg_opclass o ON o.oid = i.indclass[n]
				WHERE o.opcdefault AND i.indcollation[n] = a.attcollation) = (SELECT array_agg(x ORDER BY x) FROM unnest($4::text[]) x))`,
		s.Source, s.Shadow, p.Key, shadowKey).Scan(&exact)
	if err != nil {
		return false, nil, err
	}
	return exact, shadowKey, nil
}
