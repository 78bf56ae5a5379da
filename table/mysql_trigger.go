package table

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MySQLTrigger is a trigger of the table, as information_schema.TRIGGERS
// describes it: enough to make it again on another table.
type MySQLTrigger struct {
	Name                string
	Timing, Event       string // BEFORE/AFTER, INSERT/UPDATE/DELETE
	Statement           string // the body
	Definer             string // user@host
	SQLMode             string
	CharsetClient       string
	CollationConnection string
	// Shadow is the name it is carried under to the new table: trigger
	// names are schema-wide, and the table keeps its own until it is the
	// old table. The new table takes the own name back once the old
	// table's trigger is dropped (cutover.MySQLOwnNames).
	Shadow string
}

// ReadMySQLTriggers returns the table's triggers, in the order they fire
// for each event and timing.
func ReadMySQLTriggers(ctx context.Context, db MySQLQuerier, schema, name string) ([]MySQLTrigger, error) {
	rows, err := db.QueryContext(ctx, `SELECT TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT, DEFINER, SQL_MODE,
			CHARACTER_SET_CLIENT, COLLATION_CONNECTION
		FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?
		ORDER BY EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER`, schema, name)
	if err != nil {
		return nil, fmt.Errorf("read triggers of %s.%s: %w", schema, name, err)
	}
	defer rows.Close()
	var out []MySQLTrigger
	for rows.Next() {
		var t MySQLTrigger
		if err := rows.Scan(&t.Name, &t.Timing, &t.Event, &t.Statement, &t.Definer, &t.SQLMode, &t.CharsetClient, &t.CollationConnection); err != nil {
			return nil, fmt.Errorf("read triggers of %s.%s: %w", schema, name, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read triggers of %s.%s: %w", schema, name, err)
	}
	return out, nil
}

// mysqlTriggerCheck is what checkMySQLTriggers found: what the migration
// does with the table's triggers, for the preflight report ("" for none),
// the triggers it carries, and why the table cannot be copied
// (MySQLInspection.CopyRefusal; nil when it can).
type mysqlTriggerCheck struct {
	report  string
	carried []MySQLTrigger
	refusal error
}

// checkMySQLTriggers plans the table's triggers for the new table: each is
// carried under a planned name (as its foreign keys are, PlannedMySQLName),
// a refusal of the copy when that name is taken in the schema (but on the
// table's shadow, where a killed run's cut-over may have left it) or too long;
// an error is a failure to read them.
func checkMySQLTriggers(ctx context.Context, db *sql.DB, schema, name string) (mysqlTriggerCheck, error) {
	trgs, err := ReadMySQLTriggers(ctx, db, schema, name)
	if err != nil || len(trgs) == 0 {
		return mysqlTriggerCheck{}, err
	}
	var stale, then, now string
	err = db.QueryRowContext(ctx, `SELECT t.TRIGGER_NAME, t.DATABASE_COLLATION, s.DEFAULT_COLLATION_NAME
		FROM information_schema.TRIGGERS t JOIN information_schema.SCHEMATA s ON s.SCHEMA_NAME = t.TRIGGER_SCHEMA
		WHERE t.EVENT_OBJECT_SCHEMA = ? AND t.EVENT_OBJECT_TABLE = ? AND t.DATABASE_COLLATION <> s.DEFAULT_COLLATION_NAME
		ORDER BY t.TRIGGER_NAME LIMIT 1`, schema, name).Scan(&stale, &then, &now)
	switch {
	case err == nil:
		// The server records the schema's default collation when a trigger
		// is made, and its body's string variables and literals take it:
		// made again on the new table, the trigger would compare strings
		// otherwise, where the plain ALTER TABLE keeps it as it is.
		return mysqlTriggerCheck{refusal: fmt.Errorf("trigger %s was made while schema %s's default collation was %s; it is %s now, which osc's copy of the trigger on the new table "+
			"would take (the server records the schema's default when a trigger is made), and string comparisons in its body could change, where a plain ALTER TABLE keeps the trigger as it is: "+
			"make the trigger again first (DROP TRIGGER, CREATE TRIGGER) if its body is meant for %s, or set the schema's default back while osc runs (ALTER DATABASE %s COLLATE %s)",
			stale, schema, then, now, now, QuoteMySQL(schema), then)}, nil
	case !errors.Is(err, sql.ErrNoRows):
		return mysqlTriggerCheck{}, fmt.Errorf("read the collation the triggers of %s.%s were made under: %w", schema, name, err)
	}
	shadow, _, _ := MySQLNames(name)
	var carried []string
	for i := range trgs {
		t := &trgs[i]
		t.Shadow = PlannedMySQLName(t.Name)
		if utf8.RuneCountInString(t.Shadow) > mysqlMaxIdent {
			return mysqlTriggerCheck{refusal: fmt.Errorf("trigger %s: the name osc would carry it under to the new table, %s, exceeds MySQL's %d characters "+
				"(trigger names are schema-wide, so the new table cannot have the table's own): rename it first", t.Name, t.Shadow, mysqlMaxIdent)}, nil
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TRIGGERS
			WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME = ? AND EVENT_OBJECT_TABLE <> ?`, schema, t.Shadow, shadow).Scan(&n); err != nil {
			return mysqlTriggerCheck{}, fmt.Errorf("trigger %s: look up the name %s: %w", t.Name, t.Shadow, err)
		}
		if n > 0 {
			return mysqlTriggerCheck{refusal: fmt.Errorf("trigger %s: osc carries it to the new table as %s (trigger names are schema-wide), "+
				"and schema %s has a trigger of that name: rename one of them first", t.Name, t.Shadow, schema)}, nil
		}
		carried = append(carried, fmt.Sprintf("%s as %s", t.Name, t.Shadow))
	}
	return mysqlTriggerCheck{report: fmt.Sprintf("carried: %s (trigger names are schema-wide), made on the new table at the cut-over while writes are blocked, "+
		"after the last change is applied, so that each fires once per write of the application and never for osc's; "+
		"those of the old table are dropped after the cut-over, then the new table's made again under their own names, in their "+
		"firing order, under a LOCK TABLES of the table that writers wait for, as for the cut-over's", strings.Join(carried, ", ")), carried: trgs}, nil
}

// PlannedMySQLName is the name a carried foreign key or trigger gets on the
// new table, as pt-online-schema-change names foreign keys: a leading
// underscore added, or removed when it has one. The new table takes the own
// name back after the cut-over (cutover.MySQLOwnNames).
func PlannedMySQLName(name string) string {
	if strings.HasPrefix(name, "_") {
		return name[1:]
	}
	return "_" + name
}

// quoteMySQLString quotes s as a string literal.
func quoteMySQLString(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
}

// quoteMySQLDefiner quotes user@host as 'user'@'host'.
func quoteMySQLDefiner(definer string) string {
	i := strings.LastIndexByte(definer, '@')
	if i < 0 {
		return quoteMySQLString(definer)
	}
	return quoteMySQLString(definer[:i]) + "@" + quoteMySQLString(definer[i+1:])
}

// Session is the statement that sets the session as the trigger was made
// (its sql_mode and character set), to be run before Create.
func (t MySQLTrigger) Session() string {
	return fmt.Sprintf("SET SESSION sql_mode = %s, character_set_client = %s, collation_connection = %s",
		quoteMySQLString(t.SQLMode), quoteMySQLString(t.CharsetClient), quoteMySQLString(t.CollationConnection))
}

// Create is the statement that makes the trigger, under the name Shadow, on
// schema.table, with its definer; it fires after the table's triggers of its
// event and timing or, follows not "", right after that one of them. It is
// UTF-8, as information_schema gives the body: see CreateMySQLTrigger for a
// trigger made by a client of another character set.
func (t MySQLTrigger) Create(schema, table, follows string) string {
	order := ""
	if follows != "" {
		order = "FOLLOWS " + QuoteMySQL(follows) + " "
	}
	return fmt.Sprintf("CREATE DEFINER=%s TRIGGER %s %s %s ON %s FOR EACH ROW %s%s", quoteMySQLDefiner(t.Definer),
		QuoteMySQL(schema, t.Shadow), t.Timing, t.Event, QuoteMySQL(schema, table), order, t.Statement)
}

// CreateMySQLTriggers makes the triggers on schema.table under their
// planned names, in their firing order, as CreateMySQLTrigger does. The
// connection's session settings are changed: the caller discards it.
func CreateMySQLTriggers(ctx context.Context, c *sql.Conn, schema, table string, trgs []MySQLTrigger) error {
	for _, t := range trgs {
		if err := CreateMySQLTrigger(ctx, c, schema, table, t, ""); err != nil {
			return err
		}
	}
	return nil
}

// CreateMySQLTrigger makes t on schema.table under its Shadow name, in a
// session with the sql_mode and character set it was made with, to fire
// right after follows (a trigger of the table of its event and timing) or,
// follows "", after them all. The statement is built in UTF-8 (information_schema gives
// the body so) and the server reads it in the trigger's
// character_set_client: when that is another and the statement is not
// ASCII, the server first converts it back, or a literal of the body made by
// a latin1 client would change its characters (é written as Ã©). The
// connection's session settings are changed: the caller discards it.
func CreateMySQLTrigger(ctx context.Context, c *sql.Conn, schema, table string, t MySQLTrigger, follows string) error {
	stmt := t.Create(schema, table, follows)
	if !isASCII(stmt) && !utf8MySQLCharset(t.CharsetClient) {
		if !mysqlCharsetName.MatchString(t.CharsetClient) {
			return fmt.Errorf("make trigger %s (for %s) on %s: unexpected client character set %q", t.Shadow, t.Name, table, t.CharsetClient)
		}
		var b []byte
		if err := c.QueryRowContext(ctx, "SELECT CAST(CONVERT(CONVERT(? USING utf8mb4) USING "+t.CharsetClient+") AS BINARY)",
			[]byte(stmt)).Scan(&b); err != nil {
			return fmt.Errorf("make trigger %s (for %s) on %s: convert it to %s: %w", t.Shadow, t.Name, table, t.CharsetClient, err)
		}
		stmt = string(b)
	}
	if _, err := c.ExecContext(ctx, t.Session()); err != nil {
		return fmt.Errorf("make trigger %s: %w", t.Shadow, err)
	}
	if _, err := c.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("make trigger %s (for %s) on %s: %w", t.Shadow, t.Name, table, err)
	}
	return nil
}

// utf8MySQLCharset reports whether cs is one of MySQL's names of UTF-8.
func utf8MySQLCharset(cs string) bool {
	switch strings.ToLower(cs) {
	case "utf8", "utf8mb3", "utf8mb4":
		return true
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// DropMySQLTriggers drops every trigger of schema.table and returns their
// names.
func DropMySQLTriggers(ctx context.Context, db MySQLExecQuerier, schema, table string) ([]string, error) {
	trgs, err := ReadMySQLTriggers(ctx, db, schema, table)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, t := range trgs {
		if _, err := db.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+QuoteMySQL(schema, t.Name)); err != nil {
			return names, fmt.Errorf("drop trigger %s of %s.%s: %w", t.Name, schema, table, err)
		}
		names = append(names, t.Name)
	}
	return names, nil
}

// trialMySQLTriggers makes the carried triggers on the freshly altered
// shadow and drops them again, so that one the --alter breaks (its body names
// a column the --alter drops or renames) fails now rather than at the
// cut-over. The plain ALTER leaves such a trigger broken, failing each write
// it fires for: osc refuses, naming it.
func trialMySQLTriggers(ctx context.Context, db *sql.DB, schema, shadow string, in *MySQLInspection) error {
	if len(in.CarriedTriggers) == 0 {
		return nil
	}
	c, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("carry triggers: %w", err)
	}
	defer func() {
		_ = c.Raw(func(any) error { return driver.ErrBadConn }) // its session settings go with it
		_ = c.Close()
	}()
	err = CreateMySQLTriggers(ctx, c, schema, shadow, in.CarriedTriggers)
	if _, derr := DropMySQLTriggers(ctx, db, schema, shadow); derr != nil {
		return derr
	}
	if err != nil {
		return fmt.Errorf("the table's triggers do not fit the altered table (a plain ALTER TABLE would leave them failing each write "+
			"they fire for): %w; change or drop them first", err)
	}
	return nil
}
