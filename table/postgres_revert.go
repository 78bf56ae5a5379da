package table

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresSwapPrefix is the prefix of the transactional logical decoding
// message the cut-over emits inside its swap transaction when a revert
// window follows (pg_logical_emit_message(true, 'osc-swap', id)): the
// reverse capture skips everything decoded up to and including that
// transaction.
const PostgresSwapPrefix = "osc-swap"

// ReverseCapture returns the name of the replication slot and of the
// publication of a revert window's reverse capture: the forward capture's
// (set by InDatabase) with osc_ turned into oscr_, cut to 63 bytes.
func (n PostgresNames) ReverseCapture() string {
	name := "oscr_" + strings.TrimPrefix(n.Slot, "osc_")
	if len(name) > pgMaxIdent {
		name = name[:5] + name[len(name)-(pgMaxIdent-5):] // keep the hash at the end
	}
	return name
}

// PostgresRevert is the reverse migration of a revert window: its plan, made
// before the swap, and the objects of the original whose names the altered
// table's objects took at the cut-over (to be given back at a revert).
type PostgresRevert struct {
	// Plan is the reverse migration's: Source is the altered table under the
	// table's name, Shadow the old table (the forward OldName), OldName the
	// forward shadow's name (the altered table's name after a revert).
	Plan *Plan
	// Capture is Plan with Source named as the shadow, as the reverse
	// capture starts before the swap.
	Capture *Plan
	// ForeignKeys are the original's foreign keys, which the cut-over drops
	// from the old table: a revert adds them back (NOT VALID, then
	// validated, as the forward cut-over adds the altered table's).
	ForeignKeys []PostgresForeignKey
	// held are the original's objects that gave their names up at the
	// cut-over: their kind, oid and name (PostgresRename.Name).
	held []pgHeld
	// partitions are, for a partitioned table, the altered table's
	// partitions (the shadow partitions) as the plan found them, each under
	// the name it takes at the cut-over, and oldOIDs their old partitions'
	// oids: the revert's cut-over checks the altered tree against them and
	// gives the old partitions their names back (Partitions).
	partitions []PostgresPartition
	oldOIDs    []uint32
}

type pgHeld struct {
	kind string
	oid  uint32
	name string
}

// PlanPostgresRevert plans the reverse migration that keeps the old table
// current after the cut-over (--revert-window), while the shadow and the
// original have their names, and refuses, naming why, a migration whose old
// table it could not keep exactly current or swap back as it was. It
// supports an --alter whose reverse is a plain column mapping: columns added
// (not written back), dropped (the old table keeps their values), renamed,
// or given a type whose values go back by the assignment cast to the old
// type.
func PlanPostgresRevert(ctx context.Context, pool *pgxpool.Pool, sh *PostgresShadow) (*PostgresRevert, error) {
	fwd := sh.Plan
	if err := fwd.Usable(); err != nil {
		return nil, err
	}
	if err := fwd.RowKeyRevertRefusal(); err != nil {
		return nil, err
	}
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("--revert-window: the old table could not be kept exactly current after the cut-over, or not swapped back as it was: "+format, args...)
	}
	for _, m := range fwd.Mapping {
		if m.Expr != "" {
			return nil, refuse("column %s gets its values from a USING expression, which has no inverse osc knows", m.Shadow)
		}
	}
	switch {
	case len(sh.Checks) > 0:
		return nil, refuse("the --alter adds NOT VALID constraints (%s), which a revert would have to carry back", sh.Checks[0].Name)
	case len(sh.RestartedIdentity) > 0:
		return nil, refuse("the --alter restarts the identity sequence of %s", sh.RestartedIdentity[0])
	case sh.OwnerSet:
		return nil, refuse("the --alter changes the table's owner, which a revert would have to carry back")
	}
	schema := fwd.Source.Schema
	orig := QuotePostgres(schema, fwd.Source.Name)
	shadow := QuotePostgres(schema, fwd.Shadow.Name)

	// The key: the same columns in both tables, of the same types, and the
	// altered table's primary key (its replica identity: the reverse capture
	// needs the key in every update's and delete's old row).
	shadowOf := map[string]string{}
	for _, m := range fwd.Mapping {
		shadowOf[m.Source] = m.Shadow
	}
	var key []string
	for _, k := range fwd.Key {
		n, ok := shadowOf[k]
		if !ok {
			return nil, refuse("key column %s is not in the altered table", k)
		}
		if st, nt := columnType(fwd.Source, k), columnType(fwd.Shadow, n); st != nt {
			return nil, refuse("the --alter changes the type of key column %s (%s to %s)", k, st, nt)
		}
		key = append(key, n)
	}
	var pk []string
	if err := pool.QueryRow(ctx, `SELECT coalesce((SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1])
		WHERE i.indrelid = to_regclass($1) AND i.indisprimary), '{}')`, shadow).Scan(&pk); err != nil {
		return nil, fmt.Errorf("read the primary key of %s: %w", shadow, err)
	}
	sortedKey := slices.Clone(key)
	slices.Sort(sortedKey)
	if !slices.Equal(pk, sortedKey) {
		return nil, refuse("the altered table's primary key is not on the key columns (%s)", strings.Join(key, ", "))
	}
	// The shadow has the replica identity the --alter left it (NOTHING, or
	// USING INDEX of an index without the key, or none left): the reverse
	// capture must find the key in every update's and delete's old row,
	// and PostgreSQL refuses updates and deletes of a published table
	// without a replica identity.
	var replident string
	var identCols []string
	if err := pool.QueryRow(ctx, `SELECT c.relreplident::text, coalesce((SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1])
			WHERE i.indrelid = c.oid AND i.indisreplident), '{}')
		FROM pg_class c WHERE c.oid = to_regclass($1)`, shadow).Scan(&replident, &identCols); err != nil {
		return nil, fmt.Errorf("read the replica identity of %s: %w", shadow, err)
	}
	switch {
	case replident == "n", replident == "i" && len(identCols) == 0:
		return nil, refuse("the altered table would have no replica identity, and its updates and deletes must be captured during the window (PostgreSQL would refuse them)")
	case replident == "i" && !pgCoversAll(identCols, key):
		return nil, refuse("the altered table's replica identity (USING INDEX on %s) lacks key columns (%s)", strings.Join(identCols, ", "), strings.Join(key, ", "))
	}

	// The old table's unique indexes and exclusion constraints other than
	// the key's: a row the reverse applier writes could meet another row in
	// them where the altered table's rows, changed in one transaction, did
	// not (a swap of two values), and it resolves no such clash.
	var others []string
	if err := pool.QueryRow(ctx, `SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}') FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = to_regclass($1) AND (i.indisunique OR i.indisexclusion)
		AND NOT (i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
			AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a
				WHERE a.attrelid = i.indrelid AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1])) = $2::text[])`, orig, sortedOf(fwd.Key)).Scan(&others); err != nil {
		return nil, fmt.Errorf("read the unique indexes of %s: %w", orig, err)
	}
	if len(others) > 0 {
		return nil, refuse("the table has unique indexes or exclusion constraints besides its key (%s), whose clashes the reverse applier does not resolve", strings.Join(others, ", "))
	}

	// Identity columns: unchanged, or the revert would have to carry the
	// change back.
	rows, err := pool.Query(ctx, `SELECT o.attname::text, o.attidentity::text, coalesce(n.attidentity::text, '')
		FROM pg_attribute o LEFT JOIN pg_attribute n ON n.attrelid = to_regclass($2) AND n.attname = ($3::text[])[array_position($4::text[], o.attname::text)]
		WHERE o.attrelid = to_regclass($1) AND o.attnum > 0 AND NOT o.attisdropped`, orig, shadow, mappedShadow(fwd), mappedSource(fwd))
	if err != nil {
		return nil, fmt.Errorf("read the identity columns: %w", err)
	}
	type ident struct{ col, old, new string }
	idents, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ident, error) {
		var i ident
		return i, r.Scan(&i.col, &i.old, &i.new)
	})
	if err != nil {
		return nil, fmt.Errorf("read the identity columns: %w", err)
	}
	for _, i := range idents {
		if i.new == "d" && slices.Contains(sh.AlwaysIdentity, shadowOf[i.col]) {
			i.new = "a" // BY DEFAULT while rows are copied and applied, ALWAYS again at the cut-over
		}
		if i.old != i.new && shadowOf[i.col] != "" {
			return nil, refuse("the --alter changes the identity of column %s", i.col)
		}
	}
	if err := pgRevertCasts(ctx, pool, fwd, refuse); err != nil {
		return nil, err
	}
	fks, err := pgRevertForeignKeys(ctx, pool, orig, sh.ForeignKeys, refuse)
	if err != nil {
		return nil, err
	}

	// The reverse plan.
	src := *fwd.Shadow
	src.Columns = slices.Clone(fwd.Shadow.Columns)
	src.Name = fwd.Source.Name
	dst := *fwd.Source
	dst.Columns = slices.Clone(fwd.Source.Columns)
	dst.Name = fwd.OldName
	p := &Plan{Source: &src, Shadow: &dst, OldName: fwd.Shadow.Name, Key: key, EstimatedRows: fwd.EstimatedRows}
	for _, k := range key {
		p.KeyIndex = append(p.KeyIndex, src.ColumnIndex(k))
	}
	for _, m := range fwd.Mapping {
		i := src.ColumnIndex(m.Shadow)
		if i < 0 || src.Columns[i].Generated {
			continue
		}
		p.Mapping = append(p.Mapping, ColumnMap{Source: m.Shadow, Shadow: m.Source, SourceIndex: i})
	}
	if err := p.Usable(); err != nil {
		return nil, refuse("%v", err)
	}
	if len(sh.Partitions) > 0 {
		// A row that an UPDATE moves to another partition is published as
		// a delete and an insert (publish_via_partition_root): the insert
		// has only the altered table's columns, so the values of one that
		// only the old table has would be lost with the delete.
		for _, c := range dst.Columns {
			if !slices.ContainsFunc(p.Mapping, func(m ColumnMap) bool { return m.Shadow == c.Name }) && !c.Generated {
				return nil, refuse("the --alter drops column %s, whose values the old table keeps during the window, but %s is partitioned: "+
					"an UPDATE that moves a row to another partition reaches osc as a delete and an insert, which cannot carry them", c.Name, orig)
			}
		}
	}
	capture := *p
	csrc := src
	csrc.Name = fwd.Shadow.Name
	capture.Source = &csrc

	// The original's objects whose names the shadow's take at the cut-over.
	r := &PostgresRevert{Plan: p, Capture: &capture, ForeignKeys: fks}
	if err := r.readPartitions(ctx, pool, sh); err != nil {
		return nil, err
	}
	for _, rn := range sh.Renames {
		var oid uint32
		q := `SELECT coalesce((SELECT c.oid FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relname = $2), 0)`
		if rn.Kind == "statistics" {
			q = `SELECT coalesce((SELECT x.oid FROM pg_statistic_ext x WHERE x.stxnamespace = $1::regnamespace AND x.stxname = $2), 0)`
		}
		if err := pool.QueryRow(ctx, q, QuotePostgres(schema), rn.Name).Scan(&oid); err != nil {
			return nil, fmt.Errorf("find %s %s: %w", rn.Kind, rn.Name, err)
		}
		if oid != 0 {
			r.held = append(r.held, pgHeld{kind: rn.Kind, oid: oid, name: rn.Name})
		}
	}
	return r, nil
}

// readPartitions reads the shadow partitions of a partitioned table as the
// revert's cut-over will compare them: oid, storage and the transaction
// that attached each, under the name it takes at the cut-over. A TRUNCATE
// of one of them during the window (not published through the root, so not
// in the old table) then fails the revert's cut-over, as a TRUNCATE of a
// partition fails the forward one.
func (r *PostgresRevert) readPartitions(ctx context.Context, pool *pgxpool.Pool, sh *PostgresShadow) error {
	if len(sh.Partitions) == 0 {
		return nil
	}
	type part struct {
		oid  uint32
		file int64
		link string
	}
	var shadowOID uint32
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1)::oid", QuotePostgres(sh.Plan.Shadow.Schema, sh.Plan.Shadow.Name)).Scan(&shadowOID); err != nil {
		return fmt.Errorf("read the shadow partitions: %w", err)
	}
	rows, err := pool.Query(ctx, `SELECT c.relname::text, c.oid, c.relfilenode::int8, tree.link FROM `+PostgresPartitionTree+`
		JOIN pg_class c ON c.oid = tree.relid`, shadowOID)
	if err != nil {
		return fmt.Errorf("read the shadow partitions: %w", err)
	}
	byName := map[string]part{}
	for rows.Next() {
		var name string
		var p part
		if err := rows.Scan(&name, &p.oid, &p.file, &p.link); err != nil {
			rows.Close()
			return fmt.Errorf("read the shadow partitions: %w", err)
		}
		byName[name] = p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the shadow partitions: %w", err)
	}
	for _, old := range sh.Partitions {
		p, ok := byName[old.Shadow]
		if !ok {
			return fmt.Errorf("shadow partition %s of %s is gone", old.Shadow, old.Name)
		}
		np := old
		np.OID, np.File, np.Link, np.Shadow = p.oid, p.file, p.link, ""
		r.partitions = append(r.partitions, np)
		r.oldOIDs = append(r.oldOIDs, old.OID)
	}
	return nil
}

// Partitions returns, after the cut-over, the altered table's partitions
// for the revert's cut-over, each with the name its old partition has now
// (taken at the cut-over) as its Shadow: the old partition takes the name
// back.
func (r *PostgresRevert) Partitions(ctx context.Context, pool *pgxpool.Pool) ([]PostgresPartition, error) {
	out := make([]PostgresPartition, len(r.partitions))
	for i, p := range r.partitions {
		if err := pool.QueryRow(ctx, "SELECT relname::text FROM pg_class WHERE oid = $1", r.oldOIDs[i]).Scan(&p.Shadow); err != nil {
			return nil, fmt.Errorf("read the name of the old partition of %s: %w", p.Name, err)
		}
		out[i] = p
	}
	return out, nil
}

// Renames returns, after the cut-over, what the revert's cut-over renames:
// each object of the old table that gave its name up takes it back from the
// altered table's.
func (r *PostgresRevert) Renames(ctx context.Context, pool *pgxpool.Pool) ([]PostgresRename, error) {
	var out []PostgresRename
	for _, h := range r.held {
		q := `SELECT coalesce((SELECT relname::text FROM pg_class WHERE oid = $1), '')`
		if h.kind == "statistics" {
			q = `SELECT coalesce((SELECT stxname::text FROM pg_statistic_ext WHERE oid = $1), '')`
		}
		var now string
		if err := pool.QueryRow(ctx, q, h.oid).Scan(&now); err != nil {
			return nil, fmt.Errorf("read the name of the old table's %s %s: %w", h.kind, h.name, err)
		}
		if now != "" && now != h.name {
			out = append(out, PostgresRename{Kind: h.kind, Shadow: now, Name: h.name})
		}
	}
	return out, nil
}

// pgRevertCasts refuses a type change whose values do not go back to the old
// type by the assignment cast the reverse applier's INSERT and UPDATE make:
// the server says, on a temporary table of the old types.
func pgRevertCasts(ctx context.Context, pool *pgxpool.Pool, fwd *Plan, refuse func(string, ...any) error) error {
	var cols, vals []string
	var changed []string
	for _, m := range fwd.Mapping {
		st, nt := columnType(fwd.Source, m.Source), columnType(fwd.Shadow, m.Shadow)
		if st == nt {
			continue
		}
		if !pgRevertExact(st, nt) {
			return refuse("the type change of %s (%s to %s) may round or reformat its values: a row written during the window would go back "+
				"changed also in that column when a write left it alone", m.Shadow, st, nt)
		}
		cols = append(cols, fmt.Sprintf("c%d %s", len(cols), st))
		vals = append(vals, "CAST(NULL AS "+nt+")")
		changed = append(changed, fmt.Sprintf("%s (%s back to %s)", m.Shadow, nt, st))
	}
	if len(cols) == 0 {
		return nil
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("check the type changes: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "CREATE TEMPORARY TABLE osc_revert_probe ("+strings.Join(cols, ", ")+") ON COMMIT DROP"); err != nil {
		return fmt.Errorf("check the type changes: %w", err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO osc_revert_probe SELECT "+strings.Join(vals, ", ")+" WHERE false"); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42804" { // datatype_mismatch: no assignment cast
			return refuse("a value of the altered column does not go back to the old type by a plain cast, among %s: %s", strings.Join(changed, ", "), pgErr.Message)
		}
		return fmt.Errorf("check the type changes: %w", err)
	}
	return nil
}

// pgRevertExact reports whether a column's change from type from to type to
// keeps every value that survives it as it was, so that writing a row back
// in full leaves a column the write did not touch as it was: integers and
// text-like types within their kind, whose narrowings fail on a value that
// does not fit rather than change it, and a numeric whose scale does not
// shrink (a smaller precision fails too). Anything else may round or
// reformat (a numeric's scale, floats, a time's precision or zone, a text
// rendering).
func pgRevertExact(from, to string) bool {
	ints := map[string]bool{"smallint": true, "integer": true, "bigint": true}
	if ints[from] && ints[to] {
		return true
	}
	isText := func(t string) bool {
		return t == "text" || t == "character varying" || strings.HasPrefix(t, "character varying(")
	}
	if isText(from) && isText(to) {
		return true
	}
	var p1, s1, p2, s2 int
	if _, err := fmt.Sscanf(from, "numeric(%d,%d)", &p1, &s1); err == nil {
		if to == "numeric" {
			return true
		}
		if _, err := fmt.Sscanf(to, "numeric(%d,%d)", &p2, &s2); err == nil {
			return s2 >= s1
		}
	}
	return false
}

// pgRevertForeignKeys returns the original's foreign keys, for the revert to
// add back, and refuses an --alter that changes them (the revert would have
// to carry the change back) or a key referencing the table itself.
func pgRevertForeignKeys(ctx context.Context, pool *pgxpool.Pool, orig string, altered []PostgresForeignKey, refuse func(string, ...any) error) ([]PostgresForeignKey, error) {
	rows, err := pool.Query(ctx, `SELECT conname::text, regexp_replace(pg_get_constraintdef(oid), ' NOT VALID$', ''), confrelid::regclass::text,
		convalidated, confrelid = conrelid FROM pg_constraint
		WHERE conrelid = to_regclass($1) AND contype = 'f' AND conparentid = 0 ORDER BY conname`, orig)
	if err != nil {
		return nil, fmt.Errorf("read the foreign keys of %s: %w", orig, err)
	}
	var fks []PostgresForeignKey
	var self []string
	for rows.Next() {
		var fk PostgresForeignKey
		var isSelf bool
		if err := rows.Scan(&fk.Name, &fk.Definition, &fk.References, &fk.Validate, &isSelf); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the foreign keys of %s: %w", orig, err)
		}
		if isSelf {
			self = append(self, fk.Name)
		}
		fks = append(fks, fk)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the foreign keys of %s: %w", orig, err)
	}
	if len(self) > 0 {
		return nil, refuse("foreign key %s references the table itself, which a revert does not carry back", self[0])
	}
	same := len(fks) == len(altered)
	for _, a := range altered {
		found := false
		for _, fk := range fks {
			found = found || (fk.Name == a.Name && fk.Definition == a.Definition && fk.Validate == a.Validate && a.Check == nil)
		}
		if !found {
			return nil, refuse("the --alter changes foreign key %s, which a revert would have to carry back", a.Name)
		}
	}
	if !same {
		return nil, refuse("the --alter drops a foreign key, which a revert would have to carry back")
	}
	return fks, nil
}

// PostgresUnfit reports whether err is the server's refusal of a row's
// values: a data exception (a value out of the type's range or too long), a
// NULL into a NOT NULL column, a CHECK constraint.
func PostgresUnfit(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return strings.HasPrefix(pgErr.Code, "22") || pgErr.Code == "23502" || pgErr.Code == "23514"
}

func columnType(t *Table, name string) string {
	if i := t.ColumnIndex(name); i >= 0 {
		return t.Columns[i].ColumnType
	}
	return ""
}

func sortedOf(names []string) []string {
	s := slices.Clone(names)
	slices.Sort(s)
	return s
}

func mappedSource(p *Plan) []string {
	out := make([]string, len(p.Mapping))
	for i, m := range p.Mapping {
		out[i] = m.Source
	}
	return out
}

func mappedShadow(p *Plan) []string {
	out := make([]string, len(p.Mapping))
	for i, m := range p.Mapping {
		out[i] = m.Shadow
	}
	return out
}

// pgCoversAll reports whether have holds every name of want.
func pgCoversAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
