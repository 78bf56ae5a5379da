package table

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// A declaratively partitioned table (RANGE, LIST or HASH, with or without a
// DEFAULT partition, its partitions themselves partitioned or not, to any
// depth) is migrated as a shadow partition tree: the shadow is made LIKE the
// original's root and PARTITION BY its partition key, with one shadow
// partition per partition of the original at every level, bounded (and
// partitioned) as it is, under its parent's shadow, and named
// _<partition>_osc, before the --alter runs on the shadow's
// root (which recurses to the partitions, as the plain ALTER does). Rows are
// copied, changes applied and the two trees compared through their roots:
// the capture's publication publishes the changes of every partition as the
// root's (publish_via_partition_root), the root routes what osc writes to the
// partition its bound chooses. At cut-over each original partition gives up
// its name (to _<partition>_old) and its indexes' names to its shadow
// partition, in the transaction that swaps the roots.

// PostgresPartition is one partition of the original and its shadow
// partition.
type PostgresPartition struct {
	OID    uint32
	Name   string // in the table's schema
	Bound  string // pg_get_expr(relpartbound): FOR VALUES … or DEFAULT
	Shadow string // the shadow partition's name, in the table's schema
	// File is the partition's relfilenode at the inspection. A TRUNCATE of
	// a partition alone is not published through the root, and it gives
	// the partition a new relfilenode: the cut-over refuses one that
	// changed.
	File int64
	// Link is the transaction that attached the partition (its pg_inherits
	// row's xmin): a partition detached and attached again keeps its oid,
	// name and storage, but not this, and the writes it took while detached
	// were not published through the root.
	Link string
	// Tablespace is the partition's, when not the database's default.
	Tablespace string
	// Parent is the partition's parent: "" for the table itself, else the
	// Name of another partition, itself partitioned (a sub-partition).
	Parent string
	// Key is the partition key of a partition that is itself partitioned
	// (pg_get_partkeydef), "" for a leaf.
	Key string
}

// PostgresPartitionFingerprints returns the fingerprints of ps, sorted.
func PostgresPartitionFingerprints(ps []PostgresPartition) []string {
	var f []string
	for _, p := range ps {
		f = append(f, p.Fingerprint())
	}
	slices.Sort(f)
	return f
}

// PostgresPartitionTree is a FROM item, tree(relid, parentrelid, level,
// link), over every partition in the tree of the partitioned table $1 at
// every level (the table itself left out), each with its pg_inherits row's
// xmin (link).
const PostgresPartitionTree = `(SELECT t.relid::oid AS relid, t.parentrelid::oid AS parentrelid, t.level, i.xmin::text AS link
	FROM pg_partition_tree($1::oid) t JOIN pg_inherits i ON i.inhrelid = t.relid AND i.inhparent = t.parentrelid WHERE t.level > 0) tree`

// Fingerprint is what the cut-over compares of the partition with the
// inspection's, and a resume with the killed run's: its oid, name, storage
// and the transaction that attached it.
func (p PostgresPartition) Fingerprint() string {
	return fmt.Sprintf("%d %s %d %s", p.OID, p.Name, p.File, p.Link)
}

// pgPartitioning is what the inspection reads of a partitioned table.
type pgPartitioning struct {
	Key        string // pg_get_partkeydef
	Partitions []PostgresPartition
	Problems   []string // what osc does not migrate in the tree, each naming why and the way out
}

// pgReadPartitioning reads a partitioned table's key, its partitions and
// what in them osc does not carry to the shadow tree.
func pgReadPartitioning(ctx context.Context, q PostgresQuerier, oid uint32) (*pgPartitioning, error) {
	p := &pgPartitioning{}
	if err := q.QueryRow(ctx, "SELECT pg_get_partkeydef($1)", oid).Scan(&p.Key); err != nil {
		return nil, fmt.Errorf("read the partition key: %w", err)
	}
	// Parents before their partitions: the shadow tree is made in this
	// order.
	rows, err := q.Query(ctx, `SELECT c.oid, c.relname::text, pg_get_expr(c.relpartbound, c.oid), c.relfilenode::int8, tree.link,
			coalesce((SELECT spcname::text FROM pg_tablespace WHERE oid = c.reltablespace), ''),
			c.relkind::text, c.relpersistence::text, c.relnamespace = r.relnamespace,
			CASE WHEN tree.level > 1 THEN p.relname::text ELSE '' END, CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) ELSE '' END,
			r.relname::text, pg_get_userbyid(c.relowner), pg_has_role(c.relowner, 'USAGE'),
			CASE WHEN c.relkind = 'p' AND c.reltablespace = 0 THEN coalesce((SELECT spcname::text FROM pg_tablespace WHERE oid = p.reltablespace), '') ELSE '' END
		FROM `+PostgresPartitionTree+` JOIN pg_class c ON c.oid = tree.relid JOIN pg_class p ON p.oid = tree.parentrelid JOIN pg_class r ON r.oid = $1
		ORDER BY tree.level, c.relname`, oid)
	if err != nil {
		return nil, fmt.Errorf("read the partitions: %w", err)
	}
	var root string
	for rows.Next() {
		var part PostgresPartition
		var kind, persistence, owner, parentSpace string
		var sameSchema, owns bool
		if err := rows.Scan(&part.OID, &part.Name, &part.Bound, &part.File, &part.Link, &part.Tablespace, &kind, &persistence, &sameSchema,
			&part.Parent, &part.Key, &root, &owner, &owns, &parentSpace); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the partitions: %w", err)
		}
		switch {
		case kind == "f":
			p.Problems = append(p.Problems, fmt.Sprintf("partition %s is a foreign table, whose rows live on another server: osc cannot copy it; alter the tree with ALTER TABLE directly", part.Name))
		case kind != "r" && kind != "p":
			p.Problems = append(p.Problems, fmt.Sprintf("partition %s is not an ordinary table (relkind %q)", part.Name, kind))
		}
		if persistence != "p" {
			p.Problems = append(p.Problems, fmt.Sprintf("partition %s is unlogged: its changes are not written to the WAL, so logical decoding cannot capture them; ALTER TABLE %s SET LOGGED first", part.Name, QuotePostgres(part.Name)))
		}
		if !sameSchema {
			p.Problems = append(p.Problems, fmt.Sprintf("partition %s is in another schema than the table: osc does not migrate such a tree yet; alter it with ALTER TABLE directly", part.Name))
		}
		if parentSpace != "" {
			// A partitioned table made under a parent in a tablespace is
			// in it too, and PostgreSQL refuses to name the database's
			// default for one.
			p.Problems = append(p.Problems, fmt.Sprintf("partition %s is partitioned and in the database's default tablespace, its parent in tablespace %s, "+
				"and osc cannot make its shadow partition so: ALTER TABLE %s SET TABLESPACE %s (it holds no rows: only where its new partitions go), or alter the tree with ALTER TABLE directly",
				part.Name, parentSpace, QuotePostgres(part.Name), QuotePostgres(parentSpace)))
		}
		if !owns {
			// The cut-over gives each new partition its partition's owner
			// (the table's OWNER TO does not reach its partitions).
			p.Problems = append(p.Problems, fmt.Sprintf("partition %s is owned by %s: run osc as a member of its role, as the cut-over gives the new partition its owner", part.Name, owner))
		}
		p.Partitions = append(p.Partitions, part)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the partitions: %w", err)
	}
	// The shadow partitions' names: _<partition>_osc, cut to fit; one that
	// another partition has, that the table's shadow, bookkeeping or old
	// table has, or that two long names alike in their first 58 bytes cut
	// to, takes a number instead.
	n := NewPostgresNames("", root)
	taken := map[string]bool{root: true, n.Shadow: true, n.Checkpoint: true, n.Old: true}
	for _, part := range p.Partitions {
		taken[part.Name] = true
	}
	for i := range p.Partitions {
		part := &p.Partitions[i]
		part.Shadow = FitPostgresName("_"+part.Name, "_osc")
		for i := 2; taken[part.Shadow]; i++ {
			part.Shadow = FitPostgresName("_"+part.Name, fmt.Sprintf("_osc%d", i))
		}
		taken[part.Shadow] = true
	}
	if !slices.ContainsFunc(p.Partitions, func(part PostgresPartition) bool { return part.Key == "" }) {
		p.Problems = append(p.Problems, "it has no partitions that hold rows: run the ALTER TABLE directly")
	}
	oids := make([]uint32, len(p.Partitions))
	for i, part := range p.Partitions {
		oids[i] = part.OID
	}
	// What a partition has of its own, beyond what it inherits from the
	// root: the shadow partitions get only what the root gives them.
	local, err := pgStrings(ctx, q, `SELECT x FROM (
		SELECT c.relname || ': its columns are not the table''s, in its order (' ||
				(SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped) ||
				'): the shadow partition would be laid out as the table; a plain ALTER TABLE keeps the partition''s layout' AS x, c.relname AS r, 1 AS o
			FROM pg_class c WHERE c.oid = ANY($1)
			AND (SELECT array_agg(attname ORDER BY attnum) FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped)
				IS DISTINCT FROM (SELECT array_agg(attname ORDER BY attnum) FROM pg_attribute WHERE attrelid = $2 AND attnum > 0 AND NOT attisdropped)
		UNION ALL
		SELECT c.relname || ': index ' || x.relname || ' is its own, not the table''s (CREATE INDEX it on the table, or drop it)', c.relname, 2
			FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class x ON x.oid = i.indexrelid
			WHERE i.indrelid = ANY($1) AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
		UNION ALL
		SELECT c.relname || ': constraint ' || k.conname || ' is its own, not the table''s (add it to the table, or drop it)', c.relname, 3
			FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
			WHERE k.conrelid = ANY($1) AND k.conislocal AND k.contype IN ('c', 'f', 'x', 't')
		UNION ALL
		SELECT c.relname || ': trigger ' || t.tgname || ' is its own, not the table''s (create it on the table, or drop it)', c.relname, 4
			FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
			WHERE t.tgrelid = ANY($1) AND NOT t.tgisinternal AND t.tgparentid = 0
		UNION ALL
		SELECT c.relname || ': its row type is used by ' || pg_describe_object(d.classid, d.objid, d.objsubid) ||
				', which would stay bound to the old partition: drop it first', c.relname, 6
			FROM pg_class c JOIN pg_type rt ON rt.oid = c.reltype
			JOIN pg_depend d ON d.refclassid = 'pg_type'::regclass AND d.refobjid IN (rt.oid, rt.typarray) AND d.deptype = 'n'
			WHERE c.oid = ANY($1)
		UNION ALL
		SELECT c.relname || ': ' || pg_describe_object(d.classid, d.objid, 0) ||
				' is bound to it by oid and would stay on the old partition, or be dropped with it: drop it first and re-create it after the migration', c.relname, 7
			FROM pg_class c JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid AND d.deptype IN ('n', 'a')
			WHERE c.oid = ANY($1) AND (d.classid = 'pg_proc'::regclass
				OR d.classid = 'pg_trigger'::regclass AND d.objid NOT IN (SELECT oid FROM pg_trigger WHERE tgrelid = c.oid)
				OR d.classid = 'pg_attrdef'::regclass AND d.objid NOT IN (SELECT oid FROM pg_attrdef WHERE adrelid = c.oid)
				OR d.classid = 'pg_policy'::regclass AND d.objid NOT IN (SELECT oid FROM pg_policy WHERE polrelid = c.oid)
				OR d.classid = 'pg_constraint'::regclass AND d.objid IN (SELECT oid FROM pg_constraint WHERE contype <> 'f' AND conrelid <> c.oid))
		UNION ALL
		SELECT w.relname || ': ' || w.what || ' of its own, which osc does not carry to the shadow partition yet (remove them, or alter the tree with ALTER TABLE directly)', w.relname, 5
			FROM (SELECT c.relname, concat_ws(', ',
				CASE WHEN c.relacl IS NOT NULL THEN 'privileges granted on it' END,
				CASE WHEN c.reloptions IS NOT NULL THEN 'storage parameters' END,
				CASE WHEN c.relrowsecurity OR c.relforcerowsecurity THEN 'row level security' END,
				CASE WHEN EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = c.oid) THEN 'policies' END,
				CASE WHEN EXISTS (SELECT 1 FROM pg_rewrite WHERE ev_class = c.oid) THEN 'rules' END,
				CASE WHEN c.relreplident NOT IN ('d', 'f') OR c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = c.oid AND indisprimary)
					THEN 'a replica identity that is not its primary key' END,
				CASE WHEN EXISTS (SELECT 1 FROM pg_statistic_ext WHERE stxrelid = c.oid) THEN 'extended statistics' END,
				CASE WHEN EXISTS (SELECT 1 FROM pg_depend d JOIN pg_rewrite w ON d.classid = 'pg_rewrite'::regclass AND w.oid = d.objid
					WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid AND w.ev_class <> c.oid) THEN 'views reading it' END,
				CASE WHEN EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'f' AND confrelid = c.oid AND conparentid = 0) THEN 'foreign keys referencing it' END,
				CASE WHEN EXISTS (SELECT 1 FROM pg_publication_rel WHERE prrelid = c.oid) THEN 'publications listing it' END,
				CASE WHEN EXISTS (SELECT 1 FROM pg_subscription_rel WHERE srrelid = c.oid) THEN 'subscriptions applying into it' END,
				CASE WHEN EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped AND (attacl IS NOT NULL OR attstattarget >= 0 OR attoptions IS NOT NULL AND attoptions::text NOT LIKE '{pg_attver=%}'))
					THEN 'column privileges or settings' END,
				CASE WHEN EXISTS (SELECT 1 FROM pg_description WHERE classoid = 'pg_class'::regclass AND objoid = c.oid AND objsubid > 0) THEN 'column comments' END,
				CASE WHEN EXISTS (SELECT 1 FROM pg_constraint k JOIN pg_description d ON d.classoid = 'pg_constraint'::regclass AND d.objoid = k.oid WHERE k.conrelid = c.oid)
					OR EXISTS (SELECT 1 FROM pg_index i JOIN pg_description d ON d.classoid = 'pg_class'::regclass AND d.objoid = i.indexrelid WHERE i.indrelid = c.oid)
					THEN 'comments on its indexes or constraints' END,
				CASE WHEN EXISTS (SELECT 1 FROM pg_index WHERE indrelid = c.oid AND indisclustered) THEN 'a CLUSTER ON index' END,
				CASE WHEN EXISTS (SELECT 1 FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_inherits h ON h.inhrelid = i.indexrelid
					JOIN pg_class px ON px.oid = h.inhparent WHERE i.indrelid = c.oid AND x.reloptions IS DISTINCT FROM px.reloptions)
					THEN 'index storage parameters' END) AS what
				FROM pg_class c WHERE c.oid = ANY($1)) w
			WHERE w.what <> ''
		) l ORDER BY r, o, x`, oids, oid)
	if err != nil {
		return nil, fmt.Errorf("read what the partitions have of their own: %w", err)
	}
	for _, l := range local {
		p.Problems = append(p.Problems, "partition "+l)
	}
	fks, err := pgStrings(ctx, q, `SELECT conname::text FROM pg_constraint WHERE contype = 'f' AND conrelid = $1 ORDER BY 1`, oid)
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	if len(fks) > 0 {
		p.Problems = append(p.Problems, fmt.Sprintf("it has foreign keys (%s), which PostgreSQL cannot add NOT VALID to a partitioned table, as the cut-over adds them: drop them first and add them back after the migration",
			strings.Join(fks, ", ")))
	}
	in, err := pgStrings(ctx, q, `SELECT conname || ' on ' || conrelid::regclass::text FROM pg_constraint
		WHERE contype = 'f' AND confrelid = $1 AND conparentid = 0 ORDER BY 1`, oid)
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	if len(in) > 0 {
		p.Problems = append(p.Problems, fmt.Sprintf("foreign keys reference it (%s), which osc does not move to a new partition tree yet: drop them first and add them back after the migration",
			strings.Join(in, ", ")))
	}
	return p, nil
}

// Partitioned reports whether the original is a partitioned table.
func (in *PostgresInspection) Partitioned() bool { return in.PartitionKey != "" }

// pgCreateShadowPartitions makes the shadow partitioned by the original's
// key, with a shadow partition per partition of the original, bounded as it
// is (DEFAULT included), in its tablespace.
func pgCreateShadowPartitions(ctx context.Context, tx pgx.Tx, in *PostgresInspection) error {
	shadowOf := map[string]string{"": in.Names.Shadow}
	for _, p := range in.Partitions {
		shadowOf[p.Name] = p.Shadow
	}
	// A partition made without TABLESPACE is made in its parent's, which
	// a partition in the database's default one (reltablespace 0) under a
	// parent in another need not be: a leaf is given the default by name
	// (stored as 0). PostgreSQL refuses to name the default for a
	// partitioned table; the inspection refuses one that needs it.
	var dbDefault string
	if err := tx.QueryRow(ctx, `SELECT spcname::text FROM pg_tablespace WHERE oid = (SELECT dattablespace FROM pg_database WHERE datname = current_database())`).Scan(&dbDefault); err != nil {
		return fmt.Errorf("create shadow partitions: read the database's tablespace: %w", err)
	}
	for _, p := range in.Partitions {
		stmt := fmt.Sprintf("CREATE TABLE %s PARTITION OF %s %s", QuotePostgres(in.Names.Schema, p.Shadow), QuotePostgres(in.Names.Schema, shadowOf[p.Parent]), p.Bound)
		if p.Key != "" {
			stmt += " PARTITION BY " + p.Key
		}
		// A leaf's access method, which PARTITION OF does not take from
		// anywhere but default_table_access_method.
		var method string
		if err := tx.QueryRow(ctx, "SELECT coalesce((SELECT amname::text FROM pg_am WHERE oid = c.relam), '') FROM pg_class c WHERE c.oid = $1", p.OID).Scan(&method); err != nil {
			return fmt.Errorf("create shadow partition %s for %s: read its access method: %w", p.Shadow, p.Name, err)
		}
		if method != "" {
			stmt += " USING " + QuotePostgres(method)
		}
		switch {
		case p.Tablespace != "":
			stmt += " TABLESPACE " + QuotePostgres(p.Tablespace)
		case p.Key == "":
			stmt += " TABLESPACE " + QuotePostgres(dbDefault)
		}
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("create shadow partition %s for %s: %w", p.Shadow, p.Name, err)
		}
		if err := pgCarryPartitionColumns(ctx, tx, in.Names.Schema, p); err != nil {
			return err
		}
	}
	return nil
}

// pgCarryPartitionColumns gives a new shadow partition what the partition
// has of its own on its columns (its parent's, which PARTITION OF gives the
// shadow partition, may differ: a table made otherwise and attached, or
// ALTER TABLE run on the partition): DEFAULT, NOT NULL, storage and
// compression. A plain ALTER TABLE keeps them, and changes them where its
// subcommands recurse to the partitions, as the --alter, run on the shadow
// after this, does. The shadow partition has no partitions yet: those made
// after it under it get what it has, and then their own.
func pgCarryPartitionColumns(ctx context.Context, tx pgx.Tx, schema string, p PostgresPartition) error {
	stmts, err := pgStrings(ctx, tx, `SELECT concat_ws(', ',
			CASE WHEN od.adbin IS NULL AND nd.adbin IS NOT NULL THEN 'ALTER COLUMN ' || quote_ident(o.attname) || ' DROP DEFAULT'
				WHEN od.adbin IS NOT NULL AND pg_get_expr(od.adbin, od.adrelid) IS DISTINCT FROM pg_get_expr(nd.adbin, nd.adrelid)
				THEN 'ALTER COLUMN ' || quote_ident(o.attname) || ' SET DEFAULT ' || pg_get_expr(od.adbin, od.adrelid) END,
			CASE WHEN o.attnotnull AND NOT n.attnotnull THEN 'ALTER COLUMN ' || quote_ident(o.attname) || ' SET NOT NULL' END,
			CASE WHEN o.attstorage <> n.attstorage THEN 'ALTER COLUMN ' || quote_ident(o.attname) || ' SET STORAGE ' ||
				CASE o.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END END,
			CASE WHEN o.attcompression <> n.attcompression THEN 'ALTER COLUMN ' || quote_ident(o.attname) || ' SET COMPRESSION ' ||
				CASE o.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' ELSE 'default' END END)
		FROM pg_attribute o JOIN pg_attribute n ON n.attrelid = to_regclass($2) AND n.attname = o.attname AND NOT n.attisdropped
		LEFT JOIN pg_attrdef od ON od.adrelid = o.attrelid AND od.adnum = o.attnum
		LEFT JOIN pg_attrdef nd ON nd.adrelid = n.attrelid AND nd.adnum = n.attnum
		WHERE o.attrelid = $1 AND o.attnum > 0 AND NOT o.attisdropped AND o.attgenerated = '' ORDER BY o.attnum`, p.OID, QuotePostgres(schema, p.Shadow))
	if err != nil {
		return fmt.Errorf("read the columns of partition %s: %w", p.Name, err)
	}
	var subs []string
	for _, s := range stmts {
		if s != "" {
			subs = append(subs, s)
		}
	}
	if len(subs) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, "ALTER TABLE "+QuotePostgres(schema, p.Shadow)+" "+strings.Join(subs, ", ")); err != nil {
		return fmt.Errorf("create shadow partition %s for %s: its columns as the partition's: %w", p.Shadow, p.Name, err)
	}
	return nil
}

// pgPartitionBy is the clause that makes a table made LIKE the original
// partitioned as it is ("" for an ordinary table).
func (in *PostgresInspection) pgPartitionBy() string {
	if in.PartitionKey == "" {
		return ""
	}
	return " PARTITION BY " + in.PartitionKey
}

// pgPartitionClause returns the first --alter subcommand that attaches or
// detaches a partition ("" if none): on the shadow it would move a table of
// the user's into the shadow tree, or find no such partition; and the copy
// cannot follow rows that arrive or leave with a partition.
func pgPartitionClause(clauses []string) string {
	for _, c := range clauses {
		for _, sub := range pgSubcommands(pgLex(c)) {
			if len(sub) >= 2 && (sub[0].is("attach") || sub[0].is("detach")) && sub[1].is("partition") {
				return sub[0].Text + " " + sub[1].Text
			}
		}
	}
	return ""
}

// treeOIDs are the original's oid and its partitions'.
func (in *PostgresInspection) treeOIDs() []uint32 {
	oids := []uint32{in.OID}
	for _, p := range in.Partitions {
		oids = append(oids, p.OID)
	}
	return oids
}
