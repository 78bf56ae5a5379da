package table

import (
	"fmt"
	"strings"
)

// mysqlSharedKey is the key choice when no key of the original stays a key
// of the shadow (see sharedkey.go): the first of the shadow's PRIMARY KEY
// and NOT NULL UNIQUE keys (the PRIMARY KEY first) whose columns, whole, come
// from NOT NULL columns of the original with their values kept and hold all
// the columns of one of the original's usable keys (candidates, the PRIMARY
// KEY first). It returns that original key, which the copy reads through,
// and the shadow key's columns as the original names them.
func mysqlSharedKey(in MySQLPlanInput, mapping []ColumnMap, candidates []MySQLIndex) (MySQLIndex, []string, error) {
	sourceOf := map[string]string{}
	for _, m := range mapping {
		sourceOf[foldName(m.Shadow)] = m.Source
	}
	var shadowKeys []MySQLIndex
	for _, six := range in.ShadowIndexes {
		if !six.keyUsable() {
			continue
		}
		if six.Primary {
			shadowKeys = append([]MySQLIndex{six}, shadowKeys...)
		} else {
			shadowKeys = append(shadowKeys, six)
		}
	}
	for _, six := range shadowKeys {
		rowKey := mysqlRowKey(in, sourceOf, six)
		if rowKey == nil {
			continue
		}
		for _, ix := range candidates {
			if wholeColumns(ix) && containsAll(rowKey, ix.Columns, sameName) {
				return ix, rowKey, nil
			}
		}
	}
	return MySQLIndex{}, nil, fmt.Errorf("no key is usable in both tables: osc needs the original's %s to keep its columns "+
		"and stay a PRIMARY KEY or a UNIQUE key on NOT NULL columns in the altered table, or else a PRIMARY KEY or UNIQUE key of the altered table "+
		"over whole NOT NULL columns of the original, their values kept, that holds every column of one of the original's keys (as (id, tenant_id) holds (id)); "+
		"the --alter leaves neither. A new key that holds no old one may find duplicates among the rows: keep an old key as a UNIQUE key in the --alter "+
		"(for example ADD UNIQUE (%s)), or add the new key once the rows are known to be unique",
		candidates[0].describe(), strings.Join(quoteAllMySQL(candidates[0].Columns), ", "))
}

// mysqlRowKey returns the columns of the shadow key six as the original
// names them, or nil when six cannot identify rows by values of the
// original: a column prefix, an added column, a column that may be NULL in
// the original, or one whose distinct values may merge.
func mysqlRowKey(in MySQLPlanInput, sourceOf map[string]string, six MySQLIndex) []string {
	if !wholeColumns(six) {
		return nil
	}
	var rowKey []string
	for _, c := range six.Columns {
		src, ok := sourceOf[foldName(c)]
		if !ok || !in.equalityKept(src) {
			return nil
		}
		i := columnIndexFold(in.Source, src)
		if i < 0 || in.Source.Columns[i].Nullable {
			return nil
		}
		rowKey = append(rowKey, in.Source.Columns[i].Name)
	}
	return rowKey
}

// wholeColumns reports whether no part of the index is a column prefix.
func wholeColumns(ix MySQLIndex) bool {
	for _, n := range ix.SubParts {
		if n != 0 {
			return false
		}
	}
	return true
}

func quoteAllMySQL(names []string) []string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = QuoteMySQL(n)
	}
	return q
}
