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
//
// A partitioned table's rows are logged by its partitions, each under its
// own replica identity (published through the root, the old row is the
// partition's, converted), and ALTER TABLE … REPLICA IDENTITY on the root
// does not recurse: every partition's must carry the key too.
type pgReplicaIdentity struct {
	Kind    string   // relreplident: d (the primary key), i (an index), f (every column); "" when unknown
	Index   string   // the index, for d and i
	Columns []string // its key columns, for d and i (not its INCLUDE columns, which are not logged)
	// Table is the partition this identity is of ("": the table's own).
	Table string
	// Partitions are the partitions' identities, for a partitioned table.
	Partitions []pgReplicaIdentity
}

func pgReadReplicaIdentity(ctx context.Context, q PostgresQuerier, oid uint32) (pgReplicaIdentity, error) {
	r, err := pgReadOneReplicaIdentity(ctx, q, oid)
	if err != nil {
		return r, err
	}
	rows, err := q.Query(ctx, `SELECT t.relid::oid, c.relname::text FROM pg_partition_tree($1::oid) t JOIN pg_class c ON c.oid = t.relid
		WHERE t.level > 0 ORDER BY c.relname`, oid)
	if err != nil {
		return r, fmt.Errorf("read replica identity: partitions: %w", err)
	}
	type part struct {
		oid  uint32
		name string
	}
	parts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (part, error) {
		var p part
		return p, row.Scan(&p.oid, &p.name)
	})
	if err != nil {
		return r, fmt.Errorf("read replica identity: partitions: %w", err)
	}
	for _, p := range parts {
		pr, err := pgReadOneReplicaIdentity(ctx, q, p.oid)
		if err != nil {
			return r, err
		}
		pr.Table = p.name
		r.Partitions = append(r.Partitions, pr)
	}
	return r, nil
}

func pgReadOneReplicaIdentity(ctx context.Context, q PostgresQuerier, oid uint32) (pgReplicaIdentity, error) {
	var r pgReplicaIdentity
	err := q.QueryRow(ctx, `SELECT c.relreplident::text, coalesce(x.relname::text, ''),
			coalesce(ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(num, ord) JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.num
				WHERE k.ord <= i.indnkeyatts ORDER BY k.ord), '{}')
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

// covers reports whether the replica identity, the table's and each
// partition's, carries every column of key.
func (r pgReplicaIdentity) covers(key []string) bool { return r.lacking(key) == nil }

// lacking returns the replica identity, the table's or a partition's, that
// does not carry every column of key (nil: none).
func (r pgReplicaIdentity) lacking(key []string) *pgReplicaIdentity {
	if !r.carries(key) {
		return &r
	}
	for i := range r.Partitions {
		if !r.Partitions[i].carries(key) {
			return &r.Partitions[i]
		}
	}
	return nil
}

// carries reports whether this one identity carries every column of key.
func (r pgReplicaIdentity) carries(key []string) bool {
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
	if l := r.lacking(key.Columns); l != nil {
		r = *l
	}
	fix := "USING INDEX " + QuotePostgres(key.Name)
	if key.Primary {
		fix = "DEFAULT"
	}
	what := map[string]string{"d": "DEFAULT (the primary key ", "i": "USING INDEX " + r.Index + " ("}[r.Kind] + strings.Join(r.Columns, ", ") + ")"
	return fmt.Errorf("the replica identity of %s is %s, which lacks columns of the key osc copies and applies rows by, %s: "+
		"logical replication would not say which row an UPDATE or DELETE changed; ALTER TABLE %s REPLICA IDENTITY %s (or FULL) first",
		r.tableText(n), what, key.describe(), r.tableName(n), fix)
}

// tableText names the table (or partition) the identity is of.
func (r pgReplicaIdentity) tableText(n PostgresNames) string {
	if r.Table != "" {
		return n.Schema + "." + r.Table + " (a partition of " + n.Schema + "." + n.Table + ")"
	}
	return n.Schema + "." + n.Table
}

// tableName quotes the name of the table (or partition) the identity is of.
func (r pgReplicaIdentity) tableName(n PostgresNames) string {
	if r.Table != "" {
		return QuotePostgres(n.Schema, r.Table)
	}
	return QuotePostgres(n.Schema, n.Table)
}
