package table

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Pair is the plan of osc verify: two existing tables compared as the
// checksum compares the original and the shadow, with no DDL. The table
// compared against plays the original (Plan.Source), the table verified the
// altered one (Plan.Shadow); their columns are paired by name, and the key
// is one both tables have on the same columns.
type Pair struct {
	Plan *Plan
	// OnlyAgainst and OnlyTable are the columns one table has and the
	// other lacks: they are not compared.
	OnlyAgainst, OnlyTable []string
	// Generated are the columns both tables have that either computes:
	// the checksum skips them.
	Generated []string
}

// generated lists the plan's paired columns that either table computes.
func (p *Pair) generated() {
	for _, c := range p.Plan.Shadow.Columns {
		if i := columnIndexFold(p.Plan.Source, c.Name); i >= 0 && (c.Generated || p.Plan.Source.Columns[i].Generated) {
			p.Generated = append(p.Generated, c.Name)
		}
	}
}

// errPairKey refuses a pair of tables with no key in common.
func errPairKey(against, tbl string, key []string) error {
	if key == nil {
		return fmt.Errorf("table %s has no PRIMARY KEY and no UNIQUE key on NOT NULL columns; verify compares rows by key", tbl)
	}
	return fmt.Errorf("table %s has no PRIMARY KEY or UNIQUE key on NOT NULL columns (%s), the key of %s; verify compares rows by key",
		against, strings.Join(key, ", "), tbl)
}

// PairMySQL reads schema.tbl and schema.against and pairs them: columns by
// name (apart from the case of ASCII letters, as the server compares
// them), the key the migration would choose with against as the original.
func PairMySQL(ctx context.Context, db *sql.DB, schema, tbl, against string) (*Pair, error) {
	src, scolls, err := readMySQLColumns(ctx, db, schema, against)
	if err != nil {
		return nil, err
	}
	sidx, err := readMySQLIndexes(ctx, db, schema, against)
	if err != nil {
		return nil, err
	}
	dst, dcolls, err := readMySQLColumns(ctx, db, schema, tbl)
	if err != nil {
		return nil, err
	}
	didx, err := readMySQLIndexes(ctx, db, schema, tbl)
	if err != nil {
		return nil, err
	}
	zone, err := ReadMySQLTimeZone(ctx, db)
	if err != nil {
		return nil, err
	}
	pair := &Pair{}
	// Columns of against only: "dropped". Columns of tbl only: left out of
	// its table, with the indexes over them.
	alter := &MySQLAlter{Dropped: map[string]bool{}}
	for _, c := range src.Columns {
		if columnIndexFold(dst, c.Name) < 0 {
			alter.Dropped[foldName(c.Name)] = true
			pair.OnlyAgainst = append(pair.OnlyAgainst, c.Name)
		}
	}
	shared := &Table{Schema: dst.Schema, Name: dst.Name}
	for _, c := range dst.Columns {
		if columnIndexFold(src, c.Name) < 0 {
			pair.OnlyTable = append(pair.OnlyTable, c.Name)
			continue
		}
		shared.Columns = append(shared.Columns, c)
	}
	// The key of tbl (its PRIMARY KEY first), which against must have.
	var key *MySQLIndex
	for i, ix := range didx {
		if ix.keyUsable() && !ix.Ignored {
			key = &didx[i]
			break
		}
	}
	if key == nil {
		return nil, errPairKey(schema+"."+against, schema+"."+tbl, nil)
	}
	var srcKeys []MySQLIndex
	for _, ix := range sidx {
		if ix.keyUsable() && !ix.Ignored && sameParts(ix, *key) {
			srcKeys = append(srcKeys, ix)
		}
	}
	if len(srcKeys) == 0 {
		return nil, errPairKey(schema+"."+against, schema+"."+tbl, key.Columns)
	}
	p, err := BuildMySQLPlan(MySQLPlanInput{
		Source: src, Shadow: shared, SourceIndexes: srcKeys, ShadowIndexes: []MySQLIndex{*key}, Alter: alter,
		SourceCollations: scolls, ShadowCollations: dcolls, TimeZone: zone,
	})
	if err != nil {
		return nil, fmt.Errorf("pair %s with %s: %w", tbl, against, err)
	}
	pair.Plan = p
	pair.generated()
	return pair, nil
}

// PairPostgres reads schema.tbl and againstSchema.against and pairs them:
// columns by name (exactly, as PostgreSQL compares them), the key the
// migration would choose with against as the original.
func PairPostgres(ctx context.Context, q PostgresQuerier, schema, tbl, againstSchema, against string) (*Pair, error) {
	srv, err := ReadPostgresServer(ctx, q)
	if err != nil {
		return nil, err
	}
	read := func(schema, name string) ([]pgColumn, []pgIndex, error) {
		var oid uint32
		err := q.QueryRow(ctx, `SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, schema, name).Scan(&oid)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil, fmt.Errorf("table %s.%s does not exist", schema, name)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read table %s.%s: %w", schema, name, err)
		}
		cols, err := pgReadColumns(ctx, q, oid)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.%s: %w", schema, name, err)
		}
		idx, err := pgReadIndexes(ctx, q, oid, srv.Version)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.%s: %w", schema, name, err)
		}
		return cols, idx, nil
	}
	src, sidx, err := read(againstSchema, against)
	if err != nil {
		return nil, err
	}
	dst, didx, err := read(schema, tbl)
	if err != nil {
		return nil, err
	}
	pair := &Pair{}
	var shared []pgColumn
	pre := map[int16]string{}
	for _, c := range dst {
		if pgFindColumn(src, c.Name) == nil {
			pair.OnlyTable = append(pair.OnlyTable, c.Name)
			continue
		}
		shared = append(shared, c)
		pre[c.Num] = c.Name
	}
	for _, c := range src {
		if pgFindColumn(dst, c.Name) == nil {
			pair.OnlyAgainst = append(pair.OnlyAgainst, c.Name)
		}
	}
	// The key of tbl (its PRIMARY KEY first), which against must have.
	var key *pgIndex
	for i, ix := range didx {
		if ix.keyUsable(dst) && (key == nil || ix.Primary && !key.Primary) {
			key = &didx[i]
		}
	}
	if key == nil {
		return nil, errPairKey(againstSchema+"."+against, schema+"."+tbl, nil)
	}
	var srcKeys []pgIndex
	for _, ix := range sidx {
		if ix.keyUsable(src) && pgSameSet(ix.Columns, key.Columns) {
			srcKeys = append(srcKeys, ix)
		}
	}
	if len(srcKeys) == 0 {
		return nil, errPairKey(againstSchema+"."+against, schema+"."+tbl, key.Columns)
	}
	p, _, err := pgBuildPlan(pgPlanInput{
		Names:  PostgresNames{Schema: againstSchema, Table: against, Shadow: tbl},
		Source: src, Shadow: shared, PreAlter: pre,
		SourceIndexes: srcKeys, ShadowIndexes: []pgIndex{*key},
	})
	if err != nil {
		return nil, fmt.Errorf("pair %s with %s: %w", tbl, against, err)
	}
	p.Shadow.Schema = schema
	pair.Plan = p
	pair.generated()
	return pair, nil
}
