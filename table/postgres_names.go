package table

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The shadow is a table named _<t>_osc, so every name PostgreSQL derives from
// the table's name comes out derived from _<t>_osc: LIKE's copies of the
// indexes, identity sequences and extended statistics, and what the --alter
// adds without a name (constraints, indexes, serial and identity sequences).
// osc learns the names a plain ALTER TABLE would give from the server itself:
// it applies the --alter to an empty copy of the original named exactly like
// it, in a scratch schema created and dropped within a savepoint, whose
// copies carry the original's names, and reads the names back. Constraint
// names belong to their table and are set on the shadow at once; index,
// sequence and statistics names are unique in the schema: those still free
// are set on the shadow at once, those the original holds are taken at
// cut-over, once the original has given them up (PostgresRename).

// PostgresRename is an object of the shadow that takes a name the original
// holds at cut-over, after the original's object with that name was renamed
// out of the way.
type PostgresRename struct {
	Kind   string // "index", "sequence" or "statistics"
	Shadow string // its name on the shadow (in the table's schema)
	Name   string // the name it gets
}

// pgNamed is an object of a table that has a name of its own: a constraint
// not backed by an index, an index (with the constraint it backs), a
// sequence owned by a column, or an extended statistics object. key is its
// definition without any name, the same for the shadow's object and the
// scratch table's counterpart.
type pgNamed struct {
	kind, key, name string
}

// pgReadNamed reads the table's named objects, in creation (oid) order.
func pgReadNamed(ctx context.Context, q PostgresQuerier, oid uint32) ([]pgNamed, error) {
	rows, err := q.Query(ctx, `SELECT kind, key, name FROM (
		SELECT 'constraint' AS kind, c.contype::text || ' ' || regexp_replace(pg_get_constraintdef(c.oid), ' NOT VALID$', '') AS key, c.conname::text AS name, c.oid
			FROM pg_constraint c WHERE c.conrelid = $1 AND c.contype NOT IN ('p', 'u', 'x')
		UNION ALL
		SELECT 'index', concat_ws(' ', i.indisprimary, i.indisunique, i.indisexclusion, i.indimmediate,
				substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$'),
				(SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid LIMIT 1)),
			x.relname::text, x.oid
			FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid WHERE i.indrelid = $1
		UNION ALL
		SELECT 'sequence', d.deptype::text || ' ' || a.attname, q.relname::text, q.oid
			FROM pg_depend d JOIN pg_class q ON q.oid = d.objid AND q.relkind = 'S'
			JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
			WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND d.deptype IN ('a', 'i')
		UNION ALL
		SELECT 'statistics', array_to_string(s.stxkind, ',') || ' ' || pg_get_statisticsobjdef_columns(s.oid), s.stxname::text, s.oid
			FROM pg_statistic_ext s WHERE s.stxrelid = $1) o
		ORDER BY kind, key, oid`, oid)
	if err != nil {
		return nil, fmt.Errorf("read constraint, index, sequence and statistics names: %w", err)
	}
	named, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgNamed, error) {
		var n pgNamed
		return n, r.Scan(&n.kind, &n.key, &n.name)
	})
	if err != nil {
		return nil, fmt.Errorf("read constraint, index, sequence and statistics names: %w", err)
	}
	return named, nil
}

// pgMatchNamed pairs each object of a with the object of b of the same kind
// and definition, as a's object → b's name: one of the same name if there is
// one, else the n-th left of a kind and definition with the n-th left.
func pgMatchNamed(a, b []pgNamed) map[pgNamed]string {
	type group struct{ kind, key string }
	rest := map[group][]string{}
	for _, o := range b {
		g := group{o.kind, o.key}
		rest[g] = append(rest[g], o.name)
	}
	out := map[pgNamed]string{}
	var left []pgNamed
	for _, o := range a {
		g := group{o.kind, o.key}
		if i := slices.Index(rest[g], o.name); i >= 0 {
			out[o] = o.name
			rest[g] = slices.Delete(rest[g], i, i+1)
		} else {
			left = append(left, o)
		}
	}
	for _, o := range left {
		g := group{o.kind, o.key}
		if names := rest[g]; len(names) > 0 {
			out[o] = names[0]
			rest[g] = names[1:]
		}
	}
	return out
}

// pgNaming is what pgLearnNames found out: the named objects of an empty
// copy of the original, named like it, after the --alter.
type pgNaming struct {
	named []pgNamed
	// parts are a partitioned table's partitions' named objects, by the
	// partition's name.
	parts map[string][]pgNamed
}

// pgLearnNames applies the clauses to an empty copy of the original named
// like it, in a scratch schema, within a savepoint it rolls back, and
// returns the copy's named objects (the scratch schema needs the CREATE
// privilege on the database, which the inspection requires). An --alter that
// fails on the copy fails here, with messages naming the user's table; one
// that adds a foreign key referencing the table itself is refused (on the
// shadow it would reference the original).
//
// A new name the copy got that something else in the real schema holds (the
// scratch schema holds only the copy) is made unavailable in the scratch
// schema too, and the names are learned again.
func pgLearnNames(ctx context.Context, tx pgx.Tx, in *PostgresInspection, clauses []string) (*pgNaming, error) {
	var nsp uint32
	if err := tx.QueryRow(ctx, "SELECT relnamespace FROM pg_class WHERE oid = $1", in.OID).Scan(&nsp); err != nil {
		return nil, fmt.Errorf("learn names: %w", err)
	}
	orig, err := pgReadNamed(ctx, tx, in.OID)
	if err != nil {
		return nil, err
	}
	for _, p := range in.Partitions {
		named, err := pgReadNamed(ctx, tx, p.OID)
		if err != nil {
			return nil, err
		}
		orig = append(orig, named...)
	}
	origNames := map[string]bool{}
	for _, o := range orig {
		origNames[o.kind+" "+o.name] = true
	}
	var takenRels, takenCons []string
	for range 5 {
		named, parts, self, err := pgScratchNames(ctx, tx, in, clauses, takenRels, takenCons)
		if err != nil {
			return nil, err
		}
		if len(self) > 0 {
			return nil, fmt.Errorf("the --alter adds a self-referencing foreign key %s; osc does not carry those over yet: add it after the migration", strings.Join(self, ", "))
		}
		all := slices.Clone(named)
		for _, p := range parts {
			all = append(all, p...)
		}
		var rels, cons []string
		for _, o := range all {
			switch {
			case origNames[o.kind+" "+o.name], o.kind == "statistics":
			case o.kind == "constraint":
				cons = append(cons, o.name)
			default:
				rels = append(rels, o.name)
			}
		}
		// New names held in the real schema by objects other than the
		// original's (which the copy has too) and the shadow's.
		moreRels, err := pgStrings(ctx, tx, `SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = $1 AND c.relname = ANY($2)
			AND c.oid <> ALL($3) AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indexrelid = c.oid AND i.indrelid = ANY($3))
			AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
				AND d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY($3) AND d.deptype IN ('a', 'i'))`,
			nsp, rels, in.treeOIDs())
		if err != nil {
			return nil, fmt.Errorf("learn names: %w", err)
		}
		moreCons, err := pgStrings(ctx, tx, `SELECT conname::text FROM pg_constraint WHERE connamespace = $1 AND conname = ANY($2)
			AND conrelid <> ALL($3) AND conrelid <> coalesce(to_regclass($4)::oid, 0)
			AND NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = conrelid AND inhparent = coalesce(to_regclass($4)::oid, 0))`,
			nsp, cons, in.treeOIDs(), QuotePostgres(in.Names.Schema, in.Names.Shadow))
		if err != nil {
			return nil, fmt.Errorf("learn names: %w", err)
		}
		if len(moreRels) == 0 && len(moreCons) == 0 {
			return &pgNaming{named: named, parts: parts}, nil
		}
		takenRels, takenCons = append(takenRels, moreRels...), append(takenCons, moreCons...)
	}
	return nil, errors.New("learn names: the names a plain ALTER TABLE would choose keep meeting names taken in the schema")
}

// pgScratchNames builds the scratch copy of the original, applies the
// clauses to it and reads back its named objects and its self-referencing
// foreign keys, all within a savepoint it rolls back. takenRels and
// takenCons are relation and constraint names to hold in the scratch schema,
// as other objects hold them in the real one.
func pgScratchNames(ctx context.Context, tx pgx.Tx, in *PostgresInspection, clauses, takenRels, takenCons []string) (named []pgNamed, parts map[string][]pgNamed, selfFKs []string, err error) {
	if _, err := tx.Exec(ctx, "SAVEPOINT osc_names"); err != nil {
		return nil, nil, nil, fmt.Errorf("learn names: %w", err)
	}
	defer func() {
		_, rerr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT osc_names; RELEASE SAVEPOINT osc_names")
		if rerr != nil && err == nil {
			err = fmt.Errorf("learn names: %w", rerr)
		}
	}()
	var pid int32
	var path string
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid(), current_setting('search_path')").Scan(&pid, &path); err != nil {
		return nil, nil, nil, fmt.Errorf("learn names: %w", err)
	}
	schema := fmt.Sprintf("_osc_names_%d", pid)
	scratch := QuotePostgres(schema, in.Names.Table)
	stmts := []string{
		"CREATE SCHEMA " + QuotePostgres(schema),
		// The --alter's unqualified table names find the scratch table first:
		// a reference to the table itself is one to the scratch table.
		"SET LOCAL search_path = " + QuotePostgres(schema) + ", " + path,
		fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING ALL)%s", scratch, QuotePostgres(in.Names.Schema, in.Names.Table), in.pgPartitionBy()),
	}
	for _, p := range in.Partitions {
		parent := scratch
		if p.Parent != "" {
			parent = QuotePostgres(schema, p.Parent)
		}
		stmt := fmt.Sprintf("CREATE TABLE %s PARTITION OF %s %s", QuotePostgres(schema, p.Name), parent, p.Bound)
		if p.Key != "" {
			stmt += " PARTITION BY " + p.Key
		}
		stmts = append(stmts, stmt)
	}
	for _, name := range takenRels {
		stmts = append(stmts, "CREATE SEQUENCE "+QuotePostgres(schema, name))
	}
	if len(takenCons) > 0 {
		holder := QuotePostgres(schema, FitPostgresName("_"+in.Names.Table, "_osc_names"))
		stmts = append(stmts, "CREATE TABLE "+holder+" ()")
		for _, name := range takenCons {
			stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (true)", holder, QuotePostgres(name)))
		}
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return nil, nil, nil, fmt.Errorf("learn names: %s: %w", s, err)
		}
	}
	var scratchOID uint32
	if err := tx.QueryRow(ctx, "SELECT $1::regclass::oid", scratch).Scan(&scratchOID); err != nil {
		return nil, nil, nil, fmt.Errorf("learn names: %w", err)
	}
	if err := pgGiveOriginalNames(ctx, tx, in.OID, scratchOID, schema, in.Names.Table); err != nil {
		return nil, nil, nil, err
	}
	scratchParts := map[string]uint32{}
	for _, p := range in.Partitions {
		var oid uint32
		if err := tx.QueryRow(ctx, "SELECT $1::regclass::oid", QuotePostgres(schema, p.Name)).Scan(&oid); err != nil {
			return nil, nil, nil, fmt.Errorf("learn names: %w", err)
		}
		if err := pgGivePartitionNames(ctx, tx, p.OID, oid, schema, p.Name); err != nil {
			return nil, nil, nil, err
		}
		scratchParts[p.Name] = oid
	}
	for _, c := range clauses {
		// The copy is named like the original but lives in another schema.
		if _, err := tx.Conn().PgConn().ExecParams(ctx, "ALTER TABLE "+scratch+" "+pgUsingUnqualified(c, in.Names), nil, nil, nil, nil).Close(); err != nil {
			return nil, nil, nil, fmt.Errorf("the --alter fails on an empty copy of the table (ALTER TABLE %s %s): %w", QuotePostgres(in.Names.Table), c, err)
		}
	}
	if named, err = pgReadNamed(ctx, tx, scratchOID); err != nil {
		return nil, nil, nil, err
	}
	parts = map[string][]pgNamed{}
	for name, oid := range scratchParts {
		if parts[name], err = pgReadNamed(ctx, tx, oid); err != nil {
			return nil, nil, nil, err
		}
	}
	if selfFKs, err = pgStrings(ctx, tx, `SELECT conname::text FROM pg_constraint WHERE contype = 'f' AND conrelid = $1 AND confrelid = $1 ORDER BY 1`, scratchOID); err != nil {
		return nil, nil, nil, fmt.Errorf("learn names: read foreign keys: %w", err)
	}
	return named, parts, selfFKs, nil
}

// pgGiveOriginalNames gives the scratch table's copies of the original's
// indexes, identity sequences and statistics the original's names, and
// adds the original's foreign keys and triggers, so that the scratch table is named like
// the original throughout before the --alter runs on it.
func pgGiveOriginalNames(ctx context.Context, tx pgx.Tx, origOID, scratchOID uint32, schema, name string) error {
	if err := pgGivePartitionNames(ctx, tx, origOID, scratchOID, schema, name); err != nil {
		return err
	}
	fks, err := pgReadForeignKeys(ctx, tx, origOID)
	if err != nil {
		return err
	}
	for _, fk := range fks {
		if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s NOT VALID", QuotePostgres(schema, name), QuotePostgres(fk.Name), fk.Definition)); err != nil {
			return fmt.Errorf("learn names: copy foreign key %s: %w", fk.Name, err)
		}
	}
	// An --alter may name a trigger (ENABLE/DISABLE TRIGGER).
	if _, err := pgCopyTriggersTo(ctx, tx, origOID, schema, name); err != nil {
		return fmt.Errorf("learn names: %w", err)
	}
	return nil
}

// pgGivePartitionNames gives the scratch relation's copies of the original
// relation's indexes, identity sequences and statistics the original's names
// (a partition's, or the table's as the first step of pgGiveOriginalNames).
func pgGivePartitionNames(ctx context.Context, tx pgx.Tx, origOID, scratchOID uint32, schema, name string) error {
	orig, err := pgReadNamed(ctx, tx, origOID)
	if err != nil {
		return err
	}
	copies, err := pgReadNamed(ctx, tx, scratchOID)
	if err != nil {
		return err
	}
	var renames []PostgresRename
	for c, to := range pgMatchNamed(copies, orig) {
		if c.kind != "constraint" && to != c.name {
			renames = append(renames, PostgresRename{Kind: c.kind, Shadow: c.name, Name: to})
		}
	}
	if err := pgRenameInPlace(ctx, tx, schema, name, renames); err != nil {
		return fmt.Errorf("learn names: %w", err)
	}
	return nil
}

// pgRenameStatement renames one object of a schema (table: the relation
// whose constraint it is, for constraints).
func pgRenameStatement(kind, schema, table, from, to string) string {
	switch kind {
	case "constraint":
		return fmt.Sprintf("ALTER TABLE %s RENAME CONSTRAINT %s TO %s", QuotePostgres(schema, table), QuotePostgres(from), QuotePostgres(to))
	case "index":
		return fmt.Sprintf("ALTER INDEX %s RENAME TO %s", QuotePostgres(schema, from), QuotePostgres(to))
	case "sequence":
		return fmt.Sprintf("ALTER SEQUENCE %s RENAME TO %s", QuotePostgres(schema, from), QuotePostgres(to))
	default:
		return fmt.Sprintf("ALTER STATISTICS %s RENAME TO %s", QuotePostgres(schema, from), QuotePostgres(to))
	}
}

// PostgresRenameStatement is the statement that renames an object of a
// PostgresRename's kind in schema.
func PostgresRenameStatement(kind, schema, from, to string) string {
	return pgRenameStatement(kind, schema, "", from, to)
}

// pgRenameInPlace renames objects of one schema (constraints of table), first
// each to a temporary name and then to its own, so that names swapped among
// them do not collide.
func pgRenameInPlace(ctx context.Context, tx pgx.Tx, schema, table string, renames []PostgresRename) error {
	sort.Slice(renames, func(i, j int) bool { return renames[i].Shadow < renames[j].Shadow })
	for i, r := range renames {
		if _, err := tx.Exec(ctx, pgRenameStatement(r.Kind, schema, table, r.Shadow, fmt.Sprintf("_osc_rename_%d", i))); err != nil {
			return fmt.Errorf("rename %s %s: %w", r.Kind, r.Shadow, err)
		}
	}
	for i, r := range renames {
		if _, err := tx.Exec(ctx, pgRenameStatement(r.Kind, schema, table, fmt.Sprintf("_osc_rename_%d", i), r.Name)); err != nil {
			return fmt.Errorf("rename %s %s to %s: %w", r.Kind, r.Shadow, r.Name, err)
		}
	}
	return nil
}

// pgApplyNames gives the shadow's objects the names the scratch copy's
// counterparts got, which a plain ALTER gives: constraint names, and index and
// sequence names free in the schema, at once; it returns the renames left to
// the cut-over, of names the original holds.
func pgApplyNames(ctx context.Context, tx pgx.Tx, in *PostgresInspection, shadowOID uint32, naming *pgNaming) ([]PostgresRename, error) {
	deferred, err := pgApplyNamesTo(ctx, tx, in.Names.Schema, in.Names.Shadow, shadowOID, naming.named)
	if err != nil {
		return nil, err
	}
	// A shadow partition's objects get the names the partition's
	// counterpart got (the shadow partition takes the partition's name at
	// cut-over).
	for _, p := range in.Partitions {
		var oid uint32
		if err := tx.QueryRow(ctx, "SELECT $1::regclass::oid", QuotePostgres(in.Names.Schema, p.Shadow)).Scan(&oid); err != nil {
			return nil, fmt.Errorf("create shadow: %w", err)
		}
		more, err := pgApplyNamesTo(ctx, tx, in.Names.Schema, p.Shadow, oid, naming.parts[p.Name])
		if err != nil {
			return nil, err
		}
		deferred = append(deferred, more...)
	}
	sort.Slice(deferred, func(i, j int) bool { return deferred[i].Shadow < deferred[j].Shadow })
	return deferred, nil
}

// pgApplyNamesTo gives the named objects of one relation of the shadow (its
// root or a partition, named rel) the names of their counterparts in want,
// and returns the renames left to the cut-over.
func pgApplyNamesTo(ctx context.Context, tx pgx.Tx, schema, rel string, oid uint32, want []pgNamed) ([]PostgresRename, error) {
	shadowNamed, err := pgReadNamed(ctx, tx, oid)
	if err != nil {
		return nil, err
	}
	var now, cons, deferred []PostgresRename
	for sh, name := range pgMatchNamed(shadowNamed, want) {
		if name == sh.name {
			continue
		}
		r := PostgresRename{Kind: sh.kind, Shadow: sh.name, Name: name}
		switch sh.kind {
		case "constraint":
			cons = append(cons, r)
			continue
		case "statistics": // ALTER TABLE creates none: every one has an original's name
			deferred = append(deferred, r)
			continue
		}
		var free bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NULL", QuotePostgres(schema, name)).Scan(&free); err != nil {
			return nil, fmt.Errorf("create shadow: %w", err)
		}
		if free {
			now = append(now, r)
		} else {
			deferred = append(deferred, r)
		}
	}
	if err := pgRenameInPlace(ctx, tx, schema, rel, cons); err != nil {
		return nil, fmt.Errorf("create shadow: name constraints: %w", err)
	}
	if err := pgRenameInPlace(ctx, tx, schema, "", now); err != nil {
		return nil, fmt.Errorf("create shadow: name indexes and sequences: %w", err)
	}
	return deferred, nil
}

// pgDisplayNames gives the shadow's indexes, in messages, the names they get
// at cut-over.
func pgDisplayNames(idx []pgIndex, renames []PostgresRename) {
	for i := range idx {
		for _, r := range renames {
			if r.Kind == "index" && r.Shadow == idx[i].Name {
				idx[i].Name = r.Name
			}
		}
	}
}

// pgNewIndexConstraint matches an --alter clause adding a named constraint
// backed by an index (whose name is the constraint's).
var pgNewIndexConstraint = regexp.MustCompile(`(?i)\b(ADD\s+CONSTRAINT\s+)("(?:[^"]|"")+"|[A-Za-z_\x{80}-\x{10FFFF}][A-Za-z0-9_$\x{80}-\x{10FFFF}]*)(\s+(?:PRIMARY\s+KEY|UNIQUE|EXCLUDE)\b)`)

// pgMapNewIndexNames rewrites, in an --alter clause, the name of an index
// constraint it adds that an index of the original holds (as in DROP
// CONSTRAINT t_pkey, ADD CONSTRAINT t_pkey PRIMARY KEY (…)), which the
// shadow cannot take while the original holds it, to one derived from the
// shadow's name; the cut-over gives it the name the --alter chose.
func pgMapNewIndexNames(clause string, origIndexes map[string]string, shadow string) string {
	return pgNewIndexConstraint.ReplaceAllStringFunc(clause, func(m string) string {
		sub := pgNewIndexConstraint.FindStringSubmatch(m)
		name := sub[2]
		if strings.HasPrefix(name, `"`) {
			name = strings.ReplaceAll(name[1:len(name)-1], `""`, `"`)
		} else {
			name = strings.ToLower(name)
		}
		if _, ok := origIndexes[name]; !ok {
			return m
		}
		return sub[1] + QuotePostgres(FitPostgresName(shadow+"_"+name, "")) + sub[3]
	})
}
