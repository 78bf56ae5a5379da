package cutover

import (
	"fmt"
	"slices"
	"strings"

	"osc/table"
)

// oldTree is the original's oid and its partitions' (the objects that give
// up their names at the swap belong to one of them).
func (s *pgSwap) oldTree() []uint32 {
	oids := []uint32{s.oldOID}
	for _, p := range s.opts.Partitions {
		oids = append(oids, p.OID)
	}
	return oids
}

// checkPartitions fails the cut-over when the original's partitions are no
// longer those the shadow tree was made from, one of them was attached again
// (its pg_inherits row is new: the writes it took while detached were not
// published through the root), or one of them got new storage since the
// inspection: rows that arrive with an ATTACH PARTITION or leave with a
// DETACH, and those a TRUNCATE of one partition removes, are not
// published through the root (pgoutput publishes a partition's TRUNCATE only
// as the partition's own), so the shadow would miss the change. A VACUUM FULL
// or CLUSTER of a partition gives it new storage too, and fails the cut-over
// as well: osc cannot tell it from a TRUNCATE.
func (s *pgSwap) checkPartitions() error {
	if len(s.opts.Partitions) == 0 {
		return nil
	}
	now, err := s.strings(`SELECT c.oid::text || ' ' || c.relname || ' ' || c.relfilenode::text || ' ' || tree.link FROM `+table.PostgresPartitionTree+`
		JOIN pg_class c ON c.oid = tree.relid ORDER BY c.relname`, s.oldOID)
	if err != nil {
		return fmt.Errorf("read the partitions of %s: %w", s.orig, err)
	}
	planned := table.PostgresPartitionFingerprints(s.opts.Partitions)
	slices.Sort(now)
	if !slices.Equal(now, planned) {
		return fmt.Errorf("the partitions of %s changed during the migration (a partition attached, detached (and attached again), renamed, truncated, or rewritten by VACUUM FULL or CLUSTER: "+
			"now %s; planned %s): rows that arrive or leave so are not published through the table, and the new table would miss them; run osc again",
			s.orig, strings.Join(now, ", "), strings.Join(planned, ", "))
	}
	return nil
}

// swapPartitions gives each shadow partition its partition's name, comment,
// replica identity, owner and privileges (defaultPartitionACL), the partition taking a free name with an _old suffix: a plain
// ALTER TABLE leaves the partitions' names as they were, and its OWNER TO
// changes the table's owner, not its partitions'. Their indexes' names
// follow with the table's (rename).
func (s *pgSwap) swapPartitions() error {
	for _, p := range s.opts.Partitions {
		var comment, owner string
		var sameOwner, full bool
		if err := s.tx.QueryRow(s.ctx, `SELECT coalesce(quote_literal(obj_description(o.oid, 'pg_class')), ''), quote_ident(pg_get_userbyid(o.relowner)),
			o.relowner = n.relowner, o.relreplident = 'f' AND n.relreplident <> 'f' FROM pg_class o, pg_class n WHERE o.oid = $1 AND n.oid = to_regclass($2)`,
			p.OID, table.QuotePostgres(s.schema, p.Shadow)).Scan(&comment, &owner, &sameOwner, &full); err != nil {
			return fmt.Errorf("read the comment, owner and replica identity of partition %s: %w", p.Name, err)
		}
		free, err := s.freeName("_" + p.Name)
		if err != nil {
			return err
		}
		if err := s.exec(fmt.Sprintf("ALTER TABLE %s RENAME TO %s", table.QuotePostgres(s.schema, p.Name), table.QuotePostgres(free))); err != nil {
			return err
		}
		if err := s.exec(fmt.Sprintf("ALTER TABLE %s RENAME TO %s", table.QuotePostgres(s.schema, p.Shadow), table.QuotePostgres(p.Name))); err != nil {
			return err
		}
		if comment != "" {
			if err := s.exec(fmt.Sprintf("COMMENT ON TABLE %s IS %s", table.QuotePostgres(s.schema, p.Name), comment)); err != nil {
				return err
			}
		}
		// The inspection refuses a partition's replica identity other than
		// its primary key or FULL.
		if full {
			if err := s.exec(fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY FULL", table.QuotePostgres(s.schema, p.Name))); err != nil {
				return err
			}
		}
		if !sameOwner {
			if err := s.exec(fmt.Sprintf("ALTER TABLE %s OWNER TO %s", table.QuotePostgres(s.schema, p.Name), owner)); err != nil {
				return err
			}
		}
		if err := s.defaultPartitionACL(table.QuotePostgres(s.schema, p.Name)); err != nil {
			return err
		}
	}
	return nil
}

// defaultPartitionACL gives a shadow partition, now named name, its owner's
// default privileges, those a partition of the original has (the inspection
// refuses a partition with privileges of its own), when CREATE TABLE gave it
// others: the schema's or the creating role's default privileges (ALTER
// DEFAULT PRIVILEGES … ON TABLES), which a plain ALTER TABLE never applies.
func (s *pgSwap) defaultPartitionACL(name string) error {
	stmts, err := s.strings(`SELECT x FROM (
		SELECT 1 AS o, format('REVOKE ALL ON TABLE %s FROM %s', $2::text, string_agg(DISTINCT
				CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, ', ')) AS x
			FROM pg_class n, aclexplode(n.relacl) a WHERE n.oid = $1::regclass
			HAVING count(*) > 0
		UNION ALL
		SELECT 2, format('GRANT %s ON TABLE %s TO %s', string_agg(a.privilege_type, ', '), $2::text, quote_ident(pg_get_userbyid(n.relowner)))
			FROM pg_class n, aclexplode(acldefault('r', n.relowner)) a WHERE n.oid = $1::regclass AND n.relacl IS NOT NULL
			GROUP BY n.relowner) s ORDER BY o`, name, name)
	if err != nil {
		return fmt.Errorf("read the privileges of partition %s: %w", name, err)
	}
	for _, st := range stmts {
		if err := s.exec(st); err != nil {
			return err
		}
	}
	return nil
}
