package table

import (
	"fmt"
	"strings"
)

// pgSharedKey is the key choice when no key of the original stays a key of
// the shadow (see sharedkey.go): the first of the shadow's primary key and
// usable unique indexes (the primary key first) whose columns come from NOT
// NULL columns of the original with their values kept (typeSafe) and hold
// all the columns of one of the original's usable keys (cands, in
// pgChooseKey's order). It returns that original key, which the copy reads
// by, and the shadow key's columns as the original names them. The
// original's replica identity must carry the shadow key's columns: an
// update that changes one of them must say which row of the shadow it
// leaves.
func pgSharedKey(in pgPlanInput, shadowOf map[string]*pgColumn, typeSafe func(string) bool, cands []pgIndex) (pgIndex, []string, error) {
	sourceOf := map[string]string{}
	for orig, sc := range shadowOf {
		sourceOf[sc.Name] = orig
	}
	var shadowKeys []pgIndex
	for _, u := range in.ShadowIndexes {
		if !u.keyUsable(in.Shadow) {
			continue
		}
		if u.Primary {
			shadowKeys = append([]pgIndex{u}, shadowKeys...)
		} else {
			shadowKeys = append(shadowKeys, u)
		}
	}
	same := func(a, b string) bool { return a == b }
	for _, u := range shadowKeys {
		rowKey := pgRowKey(in, sourceOf, shadowOf, typeSafe, u)
		if rowKey == nil {
			continue
		}
		for _, ix := range cands {
			if !containsAll(rowKey, ix.Columns, same) {
				continue
			}
			if l := in.ReplIdent.lacking(rowKey); l != nil {
				whose := "the original's"
				if l.Table != "" {
					// ALTER TABLE … REPLICA IDENTITY on the root does
					// not recurse to its partitions, which log the rows.
					whose = "its partition " + l.Table + "'s"
				}
				return pgIndex{}, nil, fmt.Errorf("the --alter changes the key: osc would copy by the original's %s and tell rows of the altered table apart by its %s, "+
					"but %s replica identity (%s) does not carry all of (%s): logical replication would not say which row an UPDATE of them left; "+
					"ALTER TABLE %s REPLICA IDENTITY FULL first (it makes every UPDATE and DELETE log the whole old row), or keep the old key as a UNIQUE constraint in the --alter",
					ix.describe(), u.describe(), whose, pgReplicaIdentityText(*l), strings.Join(rowKey, ", "), l.tableName(in.Names))
			}
			return ix, rowKey, nil
		}
	}
	return pgIndex{}, nil, fmt.Errorf("no key is usable in both tables: osc needs the original's %s to keep its columns (their types, and their values: no USING other than a cast) "+
		"and stay a PRIMARY KEY or a UNIQUE index on NOT NULL columns in the altered table, or else a primary key or unique index of the altered table over NOT NULL columns "+
		"of the original, their values kept, that holds every column of one of the original's keys (as (id, tenant_id) holds (id)); the --alter leaves neither. "+
		"A new key that holds no old one may find duplicates among the rows: keep an old key as a UNIQUE constraint in the --alter, or add the new key once the rows are known to be unique",
		cands[0].describe())
}

// pgRowKey returns the columns of the shadow key u as the original names
// them, or nil when u cannot identify rows by values of the original: an
// added or generated column, one that may be NULL in the original, or one
// whose distinct values may merge.
func pgRowKey(in pgPlanInput, sourceOf map[string]string, shadowOf map[string]*pgColumn, typeSafe func(string) bool, u pgIndex) []string {
	var rowKey []string
	for _, c := range u.Columns {
		orig, ok := sourceOf[c]
		if !ok || shadowOf[orig].Generated || !typeSafe(c) {
			return nil
		}
		src := pgFindColumn(in.Source, orig)
		if src == nil || src.Nullable || src.Generated {
			return nil
		}
		rowKey = append(rowKey, orig)
	}
	return rowKey
}

// pgReplicaIdentityText names a replica identity and its columns.
func pgReplicaIdentityText(r pgReplicaIdentity) string {
	switch r.Kind {
	case "d":
		return "DEFAULT, the primary key (" + strings.Join(r.Columns, ", ") + ")"
	case "i":
		return "USING INDEX " + r.Index + " (" + strings.Join(r.Columns, ", ") + ")"
	case "n":
		return "NOTHING"
	}
	return r.Kind
}
