package copier

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"osc/table"
)

// PostgresStatements is the SQL a plan's copy is made of: the INSERT …
// SELECT that converts the original's rows into the shadow's, and the key
// ranges both tables are read by. The copier and the checksum's repair
// (package checksum) share it, so that a recopied chunk is converted exactly
// as the copy converts it.
type PostgresStatements struct {
	Source string   // quoted source table
	Shadow string   // quoted shadow table
	Keys   []string // quoted source key columns
	SKeys  []string // the same columns in the shadow (renamed by the ALTER, maybe)
	Types  []string // the source key columns' types
	// RowKeys are the shadow's columns of the key its rows are told apart
	// by (Plan.Identity): SKeys, or a wider key of the shadow that holds
	// them when the --alter widens the key. ON CONFLICT names them, and the
	// keys of rows a chunk skipped are theirs (the applier refreshes rows
	// by them). RowKeySrc and RowKeyTypes are the same columns in the source
	// and their types there.
	RowKeys, RowKeySrc, RowKeyTypes []string
	// Insert is "INSERT INTO shadow (cols) OVERRIDING SYSTEM VALUE SELECT
	// values FROM source": each value the source column, or the expression
	// the plan computes it with (ALTER … TYPE … USING), over the source row,
	// then the plan's fills.
	// A WHERE over the source's unqualified columns may follow.
	Insert string
}

// NewPostgresStatements builds the statements of a usable plan.
func NewPostgresStatements(p *table.Plan) (*PostgresStatements, error) {
	if err := p.Usable(); err != nil {
		return nil, err
	}
	schema := p.Shadow.Schema
	if schema == "" {
		schema = p.Source.Schema
	}
	s := &PostgresStatements{
		Shadow: pgx.Identifier{schema, p.Shadow.Name}.Sanitize(),
		Source: pgx.Identifier{p.Source.Schema, p.Source.Name}.Sanitize(),
	}
	shadowOf := map[int]string{}
	var src, dst []string
	for _, m := range p.Mapping {
		shadowOf[m.SourceIndex] = m.Shadow
		src = append(src, m.PostgresValue())
		dst = append(dst, pgx.Identifier{m.Shadow}.Sanitize())
	}
	for n, i := range p.KeyIndex {
		if i < 0 || i >= len(p.Source.Columns) || p.Source.Columns[i].Name != p.Key[n] {
			return nil, fmt.Errorf("key column %q is not at position %d of the source", p.Key[n], i)
		}
		name, ok := shadowOf[i]
		if !ok {
			return nil, fmt.Errorf("key column %q is not copied to the shadow", p.Key[n])
		}
		if p.Source.Columns[i].ColumnType == "" {
			return nil, fmt.Errorf("key column %q: the plan has no type for it", p.Key[n])
		}
		s.Keys = append(s.Keys, pgx.Identifier{p.Key[n]}.Sanitize())
		s.Types = append(s.Types, p.Source.Columns[i].ColumnType)
		s.SKeys = append(s.SKeys, pgx.Identifier{name}.Sanitize())
	}
	rowKey, rowKeyIndex := p.Identity()
	for n, i := range rowKeyIndex {
		if i < 0 || i >= len(p.Source.Columns) || p.Source.Columns[i].Name != rowKey[n] {
			return nil, fmt.Errorf("key column %q is not at position %d of the source", rowKey[n], i)
		}
		name, ok := shadowOf[i]
		if !ok {
			return nil, fmt.Errorf("key column %q is not copied to the shadow", rowKey[n])
		}
		s.RowKeys = append(s.RowKeys, pgx.Identifier{name}.Sanitize())
		s.RowKeySrc = append(s.RowKeySrc, pgx.Identifier{rowKey[n]}.Sanitize())
		s.RowKeyTypes = append(s.RowKeyTypes, p.Source.Columns[i].ColumnType)
	}
	for _, f := range p.Fills {
		src = append(src, f.Expr)
		dst = append(dst, pgx.Identifier{f.Shadow}.Sanitize())
	}
	s.Insert = fmt.Sprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s",
		s.Shadow, strings.Join(dst, ", "), strings.Join(src, ", "), s.Source)
	return s, nil
}

// Edge returns the source's key, as text values, of the row matching conds
// at offset in key order (dir "" ascending, "DESC" descending), or nil when
// there is none. conds are over the source's unqualified columns.
func (s *PostgresStatements) Edge(ctx context.Context, q table.PostgresQuerier, conds []string, args []any, dir string, offset int) ([]any, error) {
	// ORDER BY names the table's columns qualified: unqualified, they would
	// be the text output columns, ordered as text.
	sel := make([]string, len(s.Keys))
	order := make([]string, len(s.Keys))
	for i, k := range s.Keys {
		sel[i] = "o." + k + "::text"
		order[i] = "o." + k + " " + dir
	}
	query := "SELECT " + strings.Join(sel, ", ") + " FROM " + s.Source + " AS o"
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	query += fmt.Sprintf(" ORDER BY %s LIMIT 1 OFFSET %d", strings.Join(order, ", "), offset)
	vals := make([]*string, len(s.Keys))
	dest := make([]any, len(s.Keys))
	for i := range vals {
		dest[i] = &vals[i]
	}
	err := q.QueryRow(ctx, query, args...).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]any, len(vals))
	for i, v := range vals {
		if v == nil {
			return nil, fmt.Errorf("key column %s is NULL", s.Keys[i])
		}
		out[i] = *v
	}
	return out, nil
}

// Compare returns "(k1, k2) op (CAST($n AS t1), CAST($n+1 AS t2))", with
// cols the source's key columns (Keys) or the shadow's (SKeys) and the bound
// the key's text values (Edge) read back as the source key's types, and
// appends the bound's values to args.
func (s *PostgresStatements) Compare(cols []string, op string, bound []any, args *[]any) (string, error) {
	if len(bound) != len(cols) || len(cols) != len(s.Types) {
		return "", fmt.Errorf("%d values for a key of %d columns", len(bound), len(s.Types))
	}
	vals := make([]string, len(bound))
	for i, v := range bound {
		var t string
		switch x := v.(type) {
		case string:
			t = x
		case []byte:
			t = string(x)
		default:
			return "", fmt.Errorf("key column %s: unexpected value type %T (want the text form)", cols[i], v)
		}
		*args = append(*args, t)
		vals[i] = fmt.Sprintf("CAST($%d::text AS %s)", len(*args), s.Types[i])
	}
	return "(" + strings.Join(cols, ", ") + ") " + op + " (" + strings.Join(vals, ", ") + ")", nil
}
