package copier

import (
	"context"
	"fmt"

	"osc/table"
)

// pgIndexSessions is how many of the shadow's set-aside indexes are built at
// once, each in its own session; each CREATE INDEX may also use the
// server's max_parallel_maintenance_workers.
const pgIndexSessions = 2

// WithIndexes has the copier leave the shadow's set-aside indexes
// (table.PostgresShadow.Indexes) to BuildIndexes.
func (c *Postgres) WithIndexes(idx []table.PostgresIndex) *Postgres {
	c.indexes = idx
	return c
}

// BuildIndexes builds the indexes set aside while rows were copied, once
// every row is copied (table.BuildPostgresIndexes), and returns how many
// there were.
func (c *Postgres) BuildIndexes(ctx context.Context) (int, error) {
	if len(c.indexes) == 0 {
		return 0, nil
	}
	schema := c.plan.Shadow.Schema
	if schema == "" {
		schema = c.plan.Source.Schema
	}
	if err := table.BuildPostgresIndexes(ctx, c.pool, schema, c.plan.Shadow.Name, c.indexes, pgIndexSessions); err != nil {
		return 0, fmt.Errorf("build the shadow's indexes: %w", err)
	}
	return len(c.indexes), nil
}
