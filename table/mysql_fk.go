package table

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// MySQLForeignKey is a foreign key of a child table, as the server describes
// it (information_schema.REFERENTIAL_CONSTRAINTS and KEY_COLUMN_USAGE).
type MySQLForeignKey struct {
	Schema, Table       string // the child
	Name                string
	Columns             []string // the child's, in order
	RefSchema, RefTable string   // the parent
	RefColumns          []string
	OnUpdate, OnDelete  string // RESTRICT, NO ACTION, CASCADE, SET NULL, SET DEFAULT
	// Shadow is the name it is carried under to the new table (a carried
	// foreign key only): InnoDB's names are schema-wide, and the table
	// keeps its own until it is the old table. The new table takes the own
	// name back once the old table's is dropped (cutover.MySQLOwnNames).
	Shadow string
}

// Definition is the constraint's clause of an ALTER TABLE (or CREATE
// TABLE): CONSTRAINT name FOREIGN KEY (…) REFERENCES parent (…) [ON DELETE …]
// [ON UPDATE …].
func (f MySQLForeignKey) Definition() string {
	quote := func(cols []string) string {
		q := make([]string, len(cols))
		for i, c := range cols {
			q[i] = QuoteMySQL(c)
		}
		return strings.Join(q, ", ")
	}
	def := fmt.Sprintf("CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)", QuoteMySQL(f.Name), quote(f.Columns),
		QuoteMySQL(f.RefSchema, f.RefTable), quote(f.RefColumns))
	// RESTRICT is the default, and left out: MariaDB stores an explicit
	// RESTRICT added under foreign_key_checks = 0 as NO ACTION.
	if f.OnDelete != "RESTRICT" {
		def += " ON DELETE " + f.OnDelete
	}
	if f.OnUpdate != "RESTRICT" {
		def += " ON UPDATE " + f.OnUpdate
	}
	return def
}

// cascades reports whether a change to the parent changes the child's rows:
// InnoDB makes those changes inside the storage engine, and the binlog has
// no row event for them (only the parent's), so a migration of the child
// would never see them.
func (f MySQLForeignKey) cascades() bool {
	inert := func(rule string) bool { return rule == "RESTRICT" || rule == "NO ACTION" }
	return !inert(f.OnDelete) || !inert(f.OnUpdate)
}

// ReadMySQLForeignKeys returns the foreign keys of schema.name, as a child,
// by name.
func ReadMySQLForeignKeys(ctx context.Context, db MySQLQuerier, schema, name string) ([]MySQLForeignKey, error) {
	return readMySQLForeignKeys(ctx, db, schema, name, false)
}

// readMySQLForeignKeys returns the foreign keys of schema.name (referencing
// false: the table's own, as a child) or those that reference it
// (referencing true: its children's), by child and name.
func readMySQLForeignKeys(ctx context.Context, db MySQLQuerier, schema, name string, referencing bool) ([]MySQLForeignKey, error) {
	where := "rc.CONSTRAINT_SCHEMA = ? AND rc.TABLE_NAME = ?"
	if referencing {
		where = "rc.UNIQUE_CONSTRAINT_SCHEMA = ? AND rc.REFERENCED_TABLE_NAME = ?"
	}
	rows, err := db.QueryContext(ctx, `SELECT rc.CONSTRAINT_SCHEMA, rc.TABLE_NAME, rc.CONSTRAINT_NAME,
			rc.UNIQUE_CONSTRAINT_SCHEMA, rc.REFERENCED_TABLE_NAME, rc.UPDATE_RULE, rc.DELETE_RULE,
			k.COLUMN_NAME, k.REFERENCED_COLUMN_NAME
		FROM information_schema.REFERENTIAL_CONSTRAINTS rc
		JOIN information_schema.KEY_COLUMN_USAGE k ON k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA
			AND k.TABLE_NAME = rc.TABLE_NAME AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME
			AND k.REFERENCED_TABLE_NAME IS NOT NULL
		WHERE `+where+`
		ORDER BY rc.CONSTRAINT_SCHEMA, rc.TABLE_NAME, rc.CONSTRAINT_NAME, k.ORDINAL_POSITION`, schema, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var fks []MySQLForeignKey
	for rows.Next() {
		var f MySQLForeignKey
		var col, ref string
		if err := rows.Scan(&f.Schema, &f.Table, &f.Name, &f.RefSchema, &f.RefTable, &f.OnUpdate, &f.OnDelete, &col, &ref); err != nil {
			return nil, err
		}
		if n := len(fks); n > 0 && fks[n-1].Schema == f.Schema && fks[n-1].Table == f.Table && fks[n-1].Name == f.Name {
			fks[n-1].Columns = append(fks[n-1].Columns, col)
			fks[n-1].RefColumns = append(fks[n-1].RefColumns, ref)
			continue
		}
		f.Columns, f.RefColumns = []string{col}, []string{ref}
		fks = append(fks, f)
	}
	return fks, rows.Err()
}

// mysqlForeignKeyCheck is what checkMySQLForeignKeys found: what the
// migration does with the table's own foreign keys, for the preflight report
// ("" for none), those it carries to the new table, and why the table cannot
// be copied (MySQLInspection.CopyRefusal; nil when it can).
type mysqlForeignKeyCheck struct {
	report  string
	carried []MySQLForeignKey
	refusal error
}

// checkMySQLForeignKeys refuses a table that foreign keys reference (after
// the swap they would reference the old table, renamed: InnoDB follows a
// RENAME), naming the statements that drop those keys first and add them
// back after; and a table with foreign keys of its own that the --alter does
// not drop, unless discard (--discard-foreign-keys: the new table has none),
// or, whatever the --alter and discard say, when one of them cascades: a
// refusal of the copy (mysqlForeignKeyCheck.refusal), not an error, which
// only a failure to read them is.
func checkMySQLForeignKeys(ctx context.Context, db *sql.DB, schema, name string, dropped []MySQLDroppedForeignKey, discard bool) (mysqlForeignKeyCheck, error) {
	own, err := readMySQLForeignKeys(ctx, db, schema, name, false)
	if err != nil {
		return mysqlForeignKeyCheck{}, fmt.Errorf("read foreign keys of %s.%s: %w", schema, name, err)
	}
	children, err := readMySQLForeignKeys(ctx, db, schema, name, true)
	if err != nil {
		return mysqlForeignKeyCheck{}, fmt.Errorf("read foreign keys referencing %s.%s: %w", schema, name, err)
	}
	refusal := func(err error) (mysqlForeignKeyCheck, error) { return mysqlForeignKeyCheck{refusal: err}, nil }
	var ext []MySQLForeignKey // a self-reference is the table's own
	for _, f := range children {
		if f.Schema != schema || f.Table != name {
			ext = append(ext, f)
		}
	}
	if len(ext) > 0 {
		var names, drop, add []string
		for _, f := range ext {
			child := QuoteMySQL(f.Schema, f.Table)
			names = append(names, fmt.Sprintf("%s of %s.%s", f.Name, f.Schema, f.Table))
			drop = append(drop, fmt.Sprintf("ALTER TABLE %s DROP FOREIGN KEY %s;", child, QuoteMySQL(f.Name)))
			add = append(add, fmt.Sprintf("ALTER TABLE %s ADD %s;", child, f.Definition()))
		}
		return refusal(fmt.Errorf("table %s.%s is referenced by foreign keys (%s); after the cut-over they would reference the old table "+
			"(InnoDB moves a foreign key with the table it references when that is renamed), and osc cannot move them to the new one "+
			"without rebuilding the child tables: drop them first, %s then migrate, and add them back, %s (an ADD checks every row of "+
			"its table under a lock, unless run after SET SESSION foreign_key_checks = 0); or run a plain ALTER TABLE",
			schema, name, strings.Join(names, ", "), strings.Join(drop, " "), strings.Join(add, " ")))
	}
	for _, d := range dropped {
		if !d.IfExists && !slices.ContainsFunc(own, func(f MySQLForeignKey) bool { return strings.EqualFold(f.Name, d.Name) }) {
			return refusal(fmt.Errorf("the --alter drops foreign key %s, which table %s.%s does not have (a plain ALTER TABLE fails on it)", d.Name, schema, name))
		}
	}
	if len(own) == 0 {
		return mysqlForeignKeyCheck{}, nil
	}
	var gone, cascading []string
	var kept []MySQLForeignKey
	for _, f := range own {
		desc := fmt.Sprintf("%s referencing %s.%s", f.Name, f.RefSchema, f.RefTable)
		if slices.ContainsFunc(dropped, func(d MySQLDroppedForeignKey) bool { return strings.EqualFold(f.Name, d.Name) }) {
			gone = append(gone, desc+" (dropped by the --alter)")
		} else {
			kept = append(kept, f)
		}
		if f.cascades() {
			cascading = append(cascading, fmt.Sprintf("%s (ON DELETE %s ON UPDATE %s)", desc, f.OnDelete, f.OnUpdate))
		}
	}
	if len(cascading) > 0 {
		return refusal(fmt.Errorf("table %s.%s has foreign keys that change its rows when their parent changes (%s): InnoDB makes those changes "+
			"without a row event in the binlog, so osc would never see them, and the new table would keep rows the table lost; "+
			"run a plain ALTER TABLE, or make them RESTRICT first", schema, name, strings.Join(cascading, ", ")))
	}
	if discard {
		for _, f := range kept {
			gone = append(gone, fmt.Sprintf("%s referencing %s.%s (--discard-foreign-keys)", f.Name, f.RefSchema, f.RefTable))
		}
		kept = nil
	}
	var parts []string
	if len(kept) > 0 {
		var carried []string
		for i := range kept {
			f := &kept[i]
			if f.RefSchema == schema && f.RefTable == name {
				return refusal(fmt.Errorf("table %s.%s has a foreign key that references itself (%s); osc does not carry those yet: "+
					"drop it in the --alter (DROP FOREIGN KEY %s) or run with --discard-foreign-keys, and add it back after; or run a plain ALTER TABLE",
					schema, name, f.Name, QuoteMySQL(f.Name)))
			}
			if f.Shadow, err = planMySQLForeignKeyName(ctx, db, schema, name, f.Name); err != nil {
				return refusal(err)
			}
			carried = append(carried, fmt.Sprintf("%s as %s", f.Name, f.Shadow))
		}
		parts = append(parts, fmt.Sprintf("carried: %s (InnoDB's names are schema-wide), added to the new table at the cut-over while "+
			"writes are blocked, after the last change is applied, without checking its rows (foreign_key_checks = 0: they are the table's, "+
			"which holds to them)", strings.Join(carried, ", ")))
	}
	if len(gone) > 0 {
		parts = append(parts, "the new table has none of "+strings.Join(gone, ", "))
	}
	parents := map[string]bool{}
	var parentNames []string
	for _, f := range own {
		if p := f.RefSchema + "." + f.RefTable; !parents[p] {
			parents[p] = true
			parentNames = append(parentNames, p)
		}
	}
	parts = append(parts, "those of the old table are dropped after the cut-over (metadata only, each attempt waiting at most the "+
		"cut-over's lock timeout for the parent's lock)")
	if len(kept) > 0 {
		parts = append(parts, "then the new table's take their own names back (one ALTER TABLE, metadata only, under a LOCK TABLES of the "+
			"table that writers wait for, as for the cut-over's)")
	}
	parts = append(parts,
		fmt.Sprintf("while the checksum and the cut-over lock the table, writes to %s wait too (LOCK TABLES on a child locks the tables its foreign keys reference)",
			strings.Join(parentNames, ", ")))
	return mysqlForeignKeyCheck{report: strings.Join(parts, "; "), carried: kept}, nil
}

// planMySQLForeignKeyName returns the name a carried foreign key gets on the
// new table, as pt-online-schema-change names it: with a leading underscore
// added, or removed when it has one; refused when that name is taken in the
// schema (but on table's shadow, where a killed run's cut-over may have left
// it) or too long.
func planMySQLForeignKeyName(ctx context.Context, db *sql.DB, schema, table, name string) (string, error) {
	planned := PlannedMySQLName(name)
	if utf8.RuneCountInString(planned) > mysqlMaxIdent {
		return "", fmt.Errorf("foreign key %s: the name osc would carry it under to the new table, %s, exceeds MySQL's %d characters "+
			"(foreign key names are schema-wide, so the new table cannot have the table's own): rename it first, or run with --discard-foreign-keys",
			name, planned, mysqlMaxIdent)
	}
	shadow, _, _ := MySQLNames(table)
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = ? AND CONSTRAINT_TYPE = 'FOREIGN KEY' AND CONSTRAINT_NAME = ? AND TABLE_NAME <> ?`,
		schema, planned, shadow).Scan(&n); err != nil {
		return "", fmt.Errorf("foreign key %s: look up the name %s: %w", name, planned, err)
	}
	if n > 0 {
		return "", fmt.Errorf("foreign key %s: osc carries it to the new table as %s (foreign key names are schema-wide), "+
			"and schema %s has a foreign key of that name: rename one of them first, or run with --discard-foreign-keys", name, planned, schema)
	}
	return planned, nil
}

// ShadowForeignKeys returns the clauses that add the carried foreign keys to
// the shadow (CarriedForeignKeys, under their planned names, on the columns
// the --alter gives their columns), and their names. A foreign key whose
// column the --alter drops is refused: the plain ALTER fails there too.
func (in *MySQLInspection) ShadowForeignKeys() (clauses, names []string, err error) {
	for _, f := range in.CarriedForeignKeys {
		g := f
		g.Name = f.Shadow
		g.Columns = make([]string, len(f.Columns))
		for i, c := range f.Columns {
			if g.Columns[i] = in.Alter.ShadowName(c); g.Columns[i] == "" {
				return nil, nil, fmt.Errorf("the --alter drops column %s, which foreign key %s uses (a plain ALTER TABLE fails on it): "+
					"drop the foreign key too (DROP FOREIGN KEY %s)", c, f.Name, QuoteMySQL(f.Name))
			}
		}
		clauses = append(clauses, "ADD "+g.Definition())
		names = append(names, f.Shadow)
	}
	return clauses, names, nil
}

// DropMySQLForeignKeys drops every foreign key of schema.name: after a
// cut-over with --discard-foreign-keys, those of the old table, which would
// otherwise go on checking the parent's deletes and updates against the old
// table's rows (a parent row the new table no longer refers to could not be
// deleted). Dropping a foreign key changes only metadata but waits for the
// parent's metadata lock: each attempt waits at most lockTimeout, and
// attempts stopped by a lock wait or a deadlock are retried up to retries
// times in all. It returns the names it dropped.
func DropMySQLForeignKeys(ctx context.Context, db *sql.DB, schema, name string, lockTimeout time.Duration, retries int) ([]string, error) {
	fks, err := readMySQLForeignKeys(ctx, db, schema, name, false)
	if err != nil {
		return nil, fmt.Errorf("read foreign keys of %s.%s: %w", schema, name, err)
	}
	if len(fks) == 0 {
		return nil, nil
	}
	names := make([]string, len(fks))
	drops := make([]string, len(fks))
	for i, f := range fks {
		names[i] = f.Name
		drops[i] = "DROP FOREIGN KEY " + QuoteMySQL(f.Name)
	}
	stmt := "ALTER TABLE " + QuoteMySQL(schema, name) + " " + strings.Join(drops, ", ") //nolint:gosec // G202: quoted names only
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("drop the foreign keys of %s.%s: %w", schema, name, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d", max(1, int(lockTimeout.Round(time.Second).Seconds())))); err != nil {
		return nil, fmt.Errorf("drop the foreign keys of %s.%s: set lock_wait_timeout: %w", schema, name, err)
	}
	err = retryNative(ctx, retries, func() error {
		_, err := conn.ExecContext(ctx, stmt)
		return err
	}, MySQLTransient)
	if err != nil {
		return nil, fmt.Errorf("drop the foreign keys of %s.%s (%s): %w; run it yourself: %s", schema, name, strings.Join(names, ", "), err, stmt)
	}
	return names, nil
}

// MySQLDroppedForeignKey is a DROP FOREIGN KEY [IF EXISTS] name clause.
type MySQLDroppedForeignKey struct {
	Name     string
	IfExists bool
}

// droppedForeignKey reads a DROP FOREIGN KEY [IF EXISTS] name clause.
func droppedForeignKey(c sqlClause) (MySQLDroppedForeignKey, bool) {
	t := c.toks
	if len(t) < 4 || !t[0].is("DROP") || !t[1].is("FOREIGN") || !t[2].is("KEY") {
		return MySQLDroppedForeignKey{}, false
	}
	var d MySQLDroppedForeignKey
	i := 3
	if len(t) > 5 && t[3].is("IF") && t[4].is("EXISTS") {
		i, d.IfExists = 5, true
	}
	if len(t) != i+1 {
		return MySQLDroppedForeignKey{}, false
	}
	name, ok := t[i].ident()
	d.Name = name
	return d, ok
}

// trialMySQLForeignKeys adds the carried foreign keys to the freshly altered
// shadow and drops them again, so that one the --alter breaks (a column whose
// type no longer matches the parent's, an index it needs dropped) fails now,
// with the server's error, as the plain ALTER would, and not at the
// cut-over. The shadow keeps no foreign key while rows are copied: a parent's
// delete would be checked against shadow rows the applier has not yet
// deleted. An index the server makes for a foreign key (the --alter dropped
// the one it used) would outlive the trial, and the plain ALTER refuses to
// drop it: refused too.
func trialMySQLForeignKeys(ctx context.Context, db *sql.DB, ddl *mysqlDDLSession, schema, shadow string, in *MySQLInspection) error {
	clauses, names, err := in.ShadowForeignKeys()
	if err != nil || len(clauses) == 0 {
		return err
	}
	if err := recreateMySQLForeignKeyIndexes(ctx, db, ddl, schema, shadow, in); err != nil {
		return err
	}
	before, err := readMySQLIndexes(ctx, db, schema, shadow)
	if err != nil {
		return err
	}
	if err := ddl.exec(ctx, "SET SESSION foreign_key_checks = 0"); err != nil {
		return fmt.Errorf("carry foreign keys: %w", err)
	}
	q := QuoteMySQL(schema, shadow)
	if err := ddl.exec(ctx, "ALTER TABLE "+q+" "+strings.Join(clauses, ", ")); err != nil {
		return fmt.Errorf("the table's foreign keys do not fit the altered table (%s): %w", strings.Join(names, ", "), err)
	}
	drops := make([]string, len(names))
	for i, n := range names {
		drops[i] = "DROP FOREIGN KEY " + QuoteMySQL(n)
	}
	if err := ddl.exec(ctx, "ALTER TABLE "+q+" "+strings.Join(drops, ", ")); err != nil {
		return fmt.Errorf("carry foreign keys: drop them from the shadow again: %w", err)
	}
	after, err := readMySQLIndexes(ctx, db, schema, shadow)
	if err != nil {
		return err
	}
	for _, ix := range after {
		if !slices.ContainsFunc(before, func(b MySQLIndex) bool { return b.Name == ix.Name }) {
			return fmt.Errorf("the --alter drops the index one of the table's foreign keys needs (the server would make %s for it; "+
				"a plain ALTER TABLE refuses to drop it): drop the foreign key too, or keep the index", ix.Name)
		}
	}
	return nil
}

// recreateMySQLForeignKeyIndexes makes again, on the empty shadow, each plain
// index (not unique, B-tree, whole columns, no comment, not ignored) on
// exactly a carried foreign key's columns. The index the server made for a
// foreign key is marked as made for it, and CREATE TABLE … LIKE keeps the
// mark: MariaDB then replaces such an index by a new one named after the
// next foreign key added on those columns, which at the cut-over would build
// an index on the whole table while writes are blocked, and would rename it.
// An index made by ADD INDEX carries no mark, and is used as it is. On
// MariaDB, RENAME INDEX to its own name takes the mark off and leaves the
// index where it is among the table's (10.11); DROP INDEX, ADD INDEX would
// list it after those the --alter added, where the plain ALTER keeps it
// before them. Should the mark stay, trialMySQLForeignKeys sees the index
// replaced and refuses.
func recreateMySQLForeignKeyIndexes(ctx context.Context, db *sql.DB, ddl *mysqlDDLSession, schema, shadow string, in *MySQLInspection) error {
	indexes, err := readMySQLIndexes(ctx, db, schema, shadow)
	if err != nil {
		return err
	}
	mariadb := in.Flavor == "mariadb"
	var redo []string
	for _, f := range in.CarriedForeignKeys {
		cols := make([]string, len(f.Columns))
		for i, c := range f.Columns {
			cols[i] = in.Alter.ShadowName(c)
		}
		for _, ix := range indexes {
			if ix.Primary || ix.Unique || ix.Ignored || len(ix.Columns) != len(cols) || slices.ContainsFunc(ix.SubParts, func(n int) bool { return n != 0 }) ||
				!slices.EqualFunc(ix.Columns, cols, strings.EqualFold) || slices.Contains(redo, ix.Name) {
				continue
			}
			var typ, comment string
			if err := db.QueryRowContext(ctx, `SELECT MAX(INDEX_TYPE), MAX(INDEX_COMMENT) FROM information_schema.STATISTICS
				WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = ?`, schema, shadow, ix.Name).Scan(&typ, &comment); err != nil {
				return fmt.Errorf("read index %s of %s: %w", ix.Name, shadow, err)
			}
			if typ != "BTREE" || comment != "" {
				continue
			}
			quoted := make([]string, len(ix.Columns))
			for i, c := range ix.Columns {
				quoted[i] = QuoteMySQL(c)
			}
			redo = append(redo, ix.Name)
			stmt := fmt.Sprintf("ALTER TABLE %s DROP INDEX %s, ADD INDEX %s (%s)", QuoteMySQL(schema, shadow), QuoteMySQL(ix.Name),
				QuoteMySQL(ix.Name), strings.Join(quoted, ", "))
			if mariadb {
				stmt = fmt.Sprintf("ALTER TABLE %s RENAME INDEX %s TO %s", QuoteMySQL(schema, shadow), QuoteMySQL(ix.Name), QuoteMySQL(ix.Name))
			}
			if err := ddl.exec(ctx, stmt); err != nil {
				return fmt.Errorf("carry foreign keys: make index %s again: %w", ix.Name, err)
			}
		}
	}
	return nil
}
