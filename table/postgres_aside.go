package table

import (
	"context"
	"fmt"
	"strings"
)

// The rows a new unique key turned away (README, "Why nothing is lost",
// step 5). A plan with new unique keys (Plan.NewUnique) has, beside the
// shadow, a table of the same schema holding rows of the shadow that wait
// aside: a row the applier's clash resolution displaced from the shadow
// because a written row holds its value in a new unique index, where the
// original may hold both. Its columns are those the copy and the applier
// write (the mapped columns and the fills, of the shadow's types; no
// generated or identity column), its primary key the shadow's row identity
// (Plan.Identity), and it has no other unique index. A key is in the shadow
// or aside, never both; the applier moves the rows back (apply.Postgres
// Restore). It is created with the shadow, in the same transaction, and
// dropped with it.

// PostgresAside returns the quoted table of rows set aside of the plan's
// migration, "" when the plan adds no unique key.
func PostgresAside(p *Plan) string {
	if len(p.NewUnique) == 0 {
		return ""
	}
	n := NewPostgresNames(p.Source.Schema, p.Source.Name)
	return QuotePostgres(n.Schema, n.Aside)
}

// CreatePostgresAside creates the table of rows set aside of a plan with new
// unique keys (see above), after its shadow (CreatePostgresShadow does, in
// the shadow's transaction).
func CreatePostgresAside(ctx context.Context, q PostgresQuerier, p *Plan) error {
	aside := PostgresAside(p)
	if aside == "" {
		return nil
	}
	shadowOf := map[int]string{}
	var cols []string
	for _, m := range p.Mapping {
		shadowOf[m.SourceIndex] = m.Shadow
		cols = append(cols, QuotePostgres(m.Shadow))
	}
	for _, f := range p.Fills {
		cols = append(cols, QuotePostgres(f.Shadow))
	}
	keyNames, keyIndex := p.Identity()
	keys := make([]string, len(keyIndex))
	for i, k := range keyIndex {
		name, ok := shadowOf[k]
		if !ok {
			return fmt.Errorf("create the table of rows set aside: key column %q is not copied to the shadow", keyNames[i])
		}
		keys[i] = QuotePostgres(name)
	}
	// CREATE TABLE AS gives each column its expression's type, type
	// modifier and collation: the shadow column's, without its default,
	// identity or constraints.
	for _, stmt := range []string{
		fmt.Sprintf("CREATE TABLE %s AS SELECT %s FROM %s WITH NO DATA", aside, strings.Join(cols, ", "), QuotePostgres(p.Source.Schema, p.Shadow.Name)),
		fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (%s)", aside, strings.Join(keys, ", ")),
	} {
		if _, err := q.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("create the table of rows set aside %s: %w", aside, err)
		}
	}
	if _, err := UndoPostgresEventTriggers(ctx, q, aside); err != nil {
		return err
	}
	p.Notes = append(p.Notes, fmt.Sprintf("rows the new unique key turns away from the shadow while the copy and the applier run wait in %s, and go back before the cut-over; "+
		"one that still clashes under the cut-over's lock is a duplicate the table holds, and fails the run", aside))
	return nil
}
