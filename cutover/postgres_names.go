package cutover

import (
	"fmt"

	"osc/table"
)

// rename gives the new table's objects the names the shadow creation could
// not give them because the original held them (table.PostgresRename): each
// original object holding one is renamed out of the way first (to a free
// name with an _old suffix), then the new table's object takes the name. A
// name something else took meanwhile is left to it, with a warning.
func (s *pgSwap) rename() error {
	var take []table.PostgresRename
	for _, r := range s.opts.Renames {
		var holderOld, holderOther, present bool
		var holderKind string // an original's object of another kind may hold the name
		if err := s.tx.QueryRow(s.ctx, `
			WITH holder AS (
				SELECT c.oid, (EXISTS (SELECT 1 FROM pg_index i WHERE i.indexrelid = c.oid AND i.indrelid = ANY($3))
					OR EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
						AND d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY($3) AND d.deptype IN ('a', 'i'))) AS old,
					CASE WHEN c.relkind IN ('i', 'I') THEN 'index' ELSE 'sequence' END AS kind
				FROM pg_class c WHERE $4::text <> 'statistics' AND c.relnamespace = $1 AND c.relname = $2
				UNION ALL
				SELECT x.oid, x.stxrelid = ANY($3), 'statistics' FROM pg_statistic_ext x WHERE $4::text = 'statistics' AND x.stxnamespace = $1 AND x.stxname = $2)
			SELECT EXISTS (SELECT 1 FROM holder WHERE old), coalesce((SELECT kind FROM holder WHERE old LIMIT 1), ''), EXISTS (SELECT 1 FROM holder WHERE NOT old),
				EXISTS (SELECT 1 FROM pg_class WHERE $4::text <> 'statistics' AND relnamespace = $1 AND relname = $5)
				OR EXISTS (SELECT 1 FROM pg_statistic_ext WHERE $4::text = 'statistics' AND stxnamespace = $1 AND stxname = $5)`,
			s.nsp, r.Name, s.oldTree(), r.Kind, r.Shadow).Scan(&holderOld, &holderKind, &holderOther, &present); err != nil {
			return fmt.Errorf("find the holder of %s %s: %w", r.Kind, r.Name, err)
		}
		switch {
		case !present:
			s.opts.Log.Warn("cut-over: an object of the new table is gone; it cannot take the original's name", "kind", r.Kind, "name", r.Shadow, "original name", r.Name)
			continue
		case holderOther:
			s.opts.Log.Warn("cut-over: another object holds the name a plain ALTER TABLE gives; the new table's keeps its own", "kind", r.Kind, "name", r.Shadow, "wanted", r.Name)
			continue
		case holderOld:
			free, err := s.freeName(r.Name)
			if err != nil {
				return err
			}
			if err := s.exec(table.PostgresRenameStatement(holderKind, s.schema, r.Name, free)); err != nil {
				return err
			}
		}
		take = append(take, r)
	}
	for _, r := range take {
		if err := s.exec(table.PostgresRenameStatement(r.Kind, s.schema, r.Shadow, r.Name)); err != nil {
			return err
		}
	}
	return nil
}
