package table

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
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
}

// Definition is the constraint's clause of an ALTER TABLE (or CREATE
// TABLE): CONSTRAINT name FOREIGN KEY (…) REFERENCES parent (…) ON DELETE …
// ON UPDATE ….
func (f MySQLForeignKey) Definition() string {
	quote := func(cols []string) string {
		q := make([]string, len(cols))
		for i, c := range cols {
			q[i] = QuoteMySQL(c)
		}
		return strings.Join(q, ", ")
	}
	return fmt.Sprintf("CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s) ON DELETE %s ON UPDATE %s",
		QuoteMySQL(f.Name), quote(f.Columns), QuoteMySQL(f.RefSchema, f.RefTable), quote(f.RefColumns), f.OnDelete, f.OnUpdate)
}

// cascades reports whether a change to the parent changes the child's rows:
// InnoDB makes those changes inside the storage engine, and the binlog has
// no row event for them (only the parent's), so a migration of the child
// would never see them.
func (f MySQLForeignKey) cascades() bool {
	inert := func(rule string) bool { return rule == "RESTRICT" || rule == "NO ACTION" }
	return !inert(f.OnDelete) || !inert(f.OnUpdate)
}

// readMySQLForeignKeys returns the foreign keys of schema.name (referencing
// false: the table's own, as a child) or those that reference it
// (referencing true: its children's), by child and name.
func readMySQLForeignKeys(ctx context.Context, db *sql.DB, schema, name string, referencing bool) ([]MySQLForeignKey, error) {
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

// checkMySQLForeignKeys refuses a table that foreign keys reference (after
// the swap they would reference the old table, renamed: InnoDB follows a
// RENAME), naming the statements that drop those keys first and add them
// back after; and a table with foreign keys of its own that the --alter does
// not drop, unless discard (--discard-foreign-keys: the new table has none),
// or, whatever the --alter and discard say, when one of them cascades. It
// returns what the migration does with the table's own foreign keys, for the
// preflight report ("" for none).
func checkMySQLForeignKeys(ctx context.Context, db *sql.DB, schema, name string, dropped []MySQLDroppedForeignKey, discard bool) (string, error) {
	own, err := readMySQLForeignKeys(ctx, db, schema, name, false)
	if err != nil {
		return "", fmt.Errorf("read foreign keys of %s.%s: %w", schema, name, err)
	}
	children, err := readMySQLForeignKeys(ctx, db, schema, name, true)
	if err != nil {
		return "", fmt.Errorf("read foreign keys referencing %s.%s: %w", schema, name, err)
	}
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
		return "", fmt.Errorf("table %s.%s is referenced by foreign keys (%s); after the cut-over they would reference the old table "+
			"(InnoDB moves a foreign key with the table it references when that is renamed), and osc cannot move them to the new one "+
			"without rebuilding the child tables: drop them first, %s then migrate, and add them back, %s (an ADD checks every row of "+
			"its table under a lock, unless run after SET SESSION foreign_key_checks = 0); or run a plain ALTER TABLE",
			schema, name, strings.Join(names, ", "), strings.Join(drop, " "), strings.Join(add, " "))
	}
	for _, d := range dropped {
		if !d.IfExists && !slices.ContainsFunc(own, func(f MySQLForeignKey) bool { return strings.EqualFold(f.Name, d.Name) }) {
			return "", fmt.Errorf("the --alter drops foreign key %s, which table %s.%s does not have (a plain ALTER TABLE fails on it)", d.Name, schema, name)
		}
	}
	if len(own) == 0 {
		return "", nil
	}
	var names, kept, cascading []string
	for _, f := range own {
		desc := fmt.Sprintf("%s referencing %s.%s", f.Name, f.RefSchema, f.RefTable)
		names = append(names, desc)
		if !slices.ContainsFunc(dropped, func(d MySQLDroppedForeignKey) bool { return strings.EqualFold(f.Name, d.Name) }) {
			kept = append(kept, desc)
		}
		if f.cascades() {
			cascading = append(cascading, fmt.Sprintf("%s (ON DELETE %s ON UPDATE %s)", desc, f.OnDelete, f.OnUpdate))
		}
	}
	if len(cascading) > 0 {
		return "", fmt.Errorf("table %s.%s has foreign keys that change its rows when their parent changes (%s): InnoDB makes those changes "+
			"without a row event in the binlog, so osc would never see them, and the new table would keep rows the table lost; "+
			"run a plain ALTER TABLE, or make them RESTRICT first", schema, name, strings.Join(cascading, ", "))
	}
	how := "dropped by the --alter"
	switch {
	case len(kept) > 0 && !discard:
		return "", fmt.Errorf("table %s.%s has foreign keys (%s); osc does not carry foreign keys to the new table yet: "+
			"drop them first (or in the --alter: DROP FOREIGN KEY), or run with --discard-foreign-keys to migrate it without them "+
			"(the new table has no foreign keys, the old one's are dropped after the cut-over), or run a plain ALTER TABLE",
			schema, name, strings.Join(kept, ", "))
	case len(kept) > 0:
		how = "discarded (--discard-foreign-keys)"
	}
	report := fmt.Sprintf("%s: the new table has none of %s; those of the old table are dropped after the cut-over "+
		"(metadata only, each attempt waiting at most the cut-over's lock timeout for the parent's lock)", how, strings.Join(names, ", "))
	if len(kept) > 0 {
		report += "; an --alter the server does in place, without a copy, keeps them"
	}
	return report, nil
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
	stmt := "ALTER TABLE " + QuoteMySQL(schema, name) + " " + strings.Join(drops, ", ")
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
