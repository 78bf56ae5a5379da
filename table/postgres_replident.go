package table

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// pgReplicaIdentity is what the original's replica identity makes logical
// replication send of an updated or deleted row: the change capture needs the
// key osc copies and applies by among it.
type pgReplicaIdentity struct {
	Kind    string   // relreplident: d (the primary key), i (an index), f (every column); "" when unknown
	Index   string   // the index, for d and i
	Columns []string // its columns, for d and i
}

func pgReadReplicaIdentity(ctx context.Context, q PostgresQuerier, oid uint32) (pgReplicaIdentity, error) {
	var r pgReplicaIdentity
	err := q.QueryRow(ctx, `SELECT c.relreplident::text, coalesce(x.relname::text, ''),
			coalesce(ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) k JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k), '{}')
		FROM pg_class c LEFT JOIN pg_index i ON i.indrelid = c.oid
			AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident))
		LEFT JOIN pg_class x ON x.oid = i.indexrelid
		WHERE c.oid = $1`, oid).Scan(&r.Kind, &r.Index, &r.Columns)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("read replica identity: table %d is gone", oid)
	}
	if err != nil {
		return r, fmt.Errorf("read replica identity: %w", err)
	}
	return r, nil
}

// covers reports whether the replica identity carries every column of key.
func (r pgReplicaIdentity) covers(key []string) bool {
	if r.Kind == "" || r.Kind == "f" {
		return true
	}
	for _, k := range key {
		if !strings.Contains(","+strings.Join(r.Columns, ",")+",", ","+k+",") {
			return false
		}
	}
	return true
}

// refusal explains that the replica identity does not carry key, an index
// of the original usable as osc's key, and how to make it.
func (r pgReplicaIdentity) refusal(n PostgresNames, key pgIndex) error {
	fix := "USING INDEX " + QuotePostgres(key.Name)
	if key.Primary {
		fix = "DEFAULT"
	}
	what := map[string]string{"d": "DEFAULT (the primary key", "i": "USING INDEX " + r.Index + " ("}[r.Kind] + strings.Join(r.Columns, ", ") + ")"
	return fmt.Errorf("the replica identity of %s.%s is %s, which lacks columns of the key osc copies and applies rows by, %s: "+
		"logical replication would not say which row an UPDATE or DELETE changed; ALTER TABLE %s REPLICA IDENTITY %s (or FULL) first",
		n.Schema, n.Table, what, key.describe(), QuotePostgres(n.Schema, n.Table), fix)
}
