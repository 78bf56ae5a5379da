package testplan

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/table"
)

// PostgresTable reads schema.name's columns and its primary key (names and
// positions among the columns).
func PostgresTable(t testing.TB, pool *pgxpool.Pool, schema, name string) (*table.Table, []string, []int) {
	t.Helper()
	ctx := context.Background()
	tb := &table.Table{Schema: schema, Name: name}
	rows, err := pool.Query(ctx, `
		SELECT attname::text, format_type(atttypid, NULL), format_type(atttypid, atttypmod), NOT attnotnull, attgenerated <> ''
		FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
		schema+"."+name)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c table.Column
		if err := rows.Scan(&c.Name, &c.DataType, &c.ColumnType, &c.Nullable, &c.Generated); err != nil {
			t.Fatal(err)
		}
		tb.Columns = append(tb.Columns, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var key []string
	err = pool.QueryRow(ctx, `
		SELECT coalesce(array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum)), '{}')
		FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		WHERE i.indrelid = to_regclass($1) AND i.indisprimary`, schema+"."+name).Scan(&key)
	if err != nil {
		t.Fatal(err)
	}
	var idx []int
	for _, k := range key {
		idx = append(idx, tb.ColumnIndex(k))
	}
	return tb, key, idx
}
