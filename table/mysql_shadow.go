package table

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var mysqlModeName = regexp.MustCompile(`^[A-Z0-9_,]*$`)

// mysqlMinWriteLockCount is the smallest max_write_lock_count osc accepts.
const mysqlMinWriteLockCount = 1000

// mysqlShadowSuffix is the longest suffix MySQLNames adds.
const mysqlShadowSuffix = "_osc_new"

// mysqlMaxIdent is MySQL's identifier length limit.
const mysqlMaxIdent = 64

// mysqlLockWait is how long LockMySQL waits for a held lock. A run killed
// with SIGKILL (a lost host, a kill -9 before a --resume) leaves its lock
// with its session, which the server ends only once it has noticed the
// closed connection: on a loaded server that can take a moment after the
// process is gone, and a resume started at once would be refused.
const mysqlLockWait = 5

// mysqlChangelogDDL defines the changelog table, where the binlog reader's
// markers are inserted.
const mysqlChangelogDDL = `(id BIGINT AUTO_INCREMENT PRIMARY KEY, ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
hint VARCHAR(64) NOT NULL, value VARCHAR(4096) NOT NULL) ENGINE=InnoDB`

// CreateMySQLShadow creates the shadow table (CREATE TABLE ... LIKE, then the
// --alter) and the changelog table, and returns the plan. On failure it drops
// what it created. A table osc cannot copy (MySQLInspection.CopyRefusal) is
// refused before anything is made.
func CreateMySQLShadow(ctx context.Context, db *sql.DB, in *MySQLInspection) (p *Plan, err error) {
	if in.CopyRefusal != nil {
		return nil, in.CopyRefusal
	}
	schema, name := in.Table.Schema, in.Table.Name
	shadow, changelog, _ := MySQLNames(name)
	q := func(n string) string { return QuoteMySQL(schema) + "." + QuoteMySQL(n) }
	defer func() {
		if err == nil {
			return
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, n := range []string{shadow, changelog} {
			if derr := DropMySQLTable(dctx, db, schema, n); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()
	zone := in.TimeZone
	if zone == "" {
		if zone, err = ReadMySQLTimeZone(ctx, db); err != nil {
			return nil, err
		}
	}
	if err := CheckMySQLTimeZone(ctx, db, zone); err != nil {
		return nil, err
	}
	// The shadow's definition is read in the ALTER's time zone (mysql_ddl.go).
	ddl, err := openMySQLDDLSession(ctx, db, zone)
	if err != nil {
		return nil, err
	}
	defer func() {
		if derr := ddl.discard(); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	if err := ddl.exec(ctx, "CREATE TABLE "+q(shadow)+" LIKE "+q(name)); err != nil {
		return nil, fmt.Errorf("create shadow table %s: %w", shadow, err)
	}
	if err := restoreMySQLHashKeys(ctx, db, ddl, schema, name, shadow); err != nil {
		return nil, err
	}
	// The counter first: an AUTO_INCREMENT option of the --alter then
	// overrides it, as it would on the original (ALTER TABLE keeps it).
	if in.AutoIncrement > 1 {
		if err := ddl.exec(ctx, "ALTER TABLE "+q(shadow)+" AUTO_INCREMENT = "+strconv.FormatInt(in.AutoIncrement, 10)); err != nil {
			return nil, fmt.Errorf("carry AUTO_INCREMENT over to the shadow table: %w", err)
		}
	}
	// The server judges the --alter: osc runs it as given, but for the
	// foreign keys it drops, which the shadow does not have.
	if in.Alter.ShadowText != "" {
		if err := ddl.exec(ctx, "ALTER TABLE "+q(shadow)+" "+in.Alter.ShadowText); err != nil {
			return nil, fmt.Errorf("the --alter fails on the shadow table: %w", err)
		}
	}
	if in.Alter.unread != nil {
		return nil, in.Alter.unread
	}
	if err := trialMySQLForeignKeys(ctx, db, ddl, schema, shadow, in); err != nil {
		return nil, err
	}
	if err := trialMySQLTriggers(ctx, db, schema, shadow, in); err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+q(changelog)+" "+mysqlChangelogDDL); err != nil {
		return nil, fmt.Errorf("create changelog table %s: %w", changelog, err)
	}
	var now string
	if err := db.QueryRowContext(ctx, "SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%d %H:%i:%s.%f')").Scan(&now); err != nil {
		return nil, fmt.Errorf("read the server's clock: %w", err)
	}
	return planMySQLShadow(ctx, db, in, zone, now)
}

// planMySQLShadow reads the shadow table the --alter made and builds the
// plan from it; zone is the conversions' time zone, now the plan's
// AlterTime.
func planMySQLShadow(ctx context.Context, db *sql.DB, in *MySQLInspection, zone, now string) (*Plan, error) {
	schema := in.Table.Schema
	shadow, changelog, old := MySQLNames(in.Table.Name)
	info, err := readMySQLTableInfo(ctx, db, schema, shadow)
	if err != nil {
		return nil, err
	}
	if info == nil {
		return nil, fmt.Errorf("shadow table %s.%s vanished", schema, shadow)
	}
	if info.tableType != "BASE TABLE" {
		return nil, fmt.Errorf("the --alter makes the table a %s table; osc migrates base tables only "+
			"(it would fill a SYSTEM VERSIONED table's history with its own copy and apply): run it with a plain ALTER TABLE", info.tableType)
	}
	if !strings.EqualFold(info.engine, "InnoDB") {
		return nil, fmt.Errorf("the --alter makes the table use the %s engine; osc needs InnoDB", info.engine)
	}
	def, err := MySQLDefinition(ctx, db, schema, shadow)
	if err != nil {
		return nil, err
	}
	if keys := mysqlWithoutOverlaps(def); len(keys) > 0 {
		return nil, fmt.Errorf("the table would have the key %s WITHOUT OVERLAPS, into which MariaDB refuses the copy's "+
			"INSERT … ON DUPLICATE KEY UPDATE and the applier's REPLACE: run the --alter with a plain ALTER TABLE, "+
			"or drop the key first and add it after the migration", strings.Join(keys, ", "))
	}
	fks, err := queryStrings(ctx, db, `SELECT CONCAT(CONSTRAINT_NAME, ' referencing ', UNIQUE_CONSTRAINT_SCHEMA, '.', REFERENCED_TABLE_NAME)
		FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? ORDER BY CONSTRAINT_NAME`, schema, shadow)
	if err != nil {
		return nil, fmt.Errorf("read foreign keys of the shadow table %s: %w", shadow, err)
	}
	if len(fks) > 0 {
		return nil, fmt.Errorf("the --alter adds a foreign key (%s); osc does not support foreign keys "+
			"(the cut-over would leave them pointing at the old table): drop the FOREIGN KEY or REFERENCES clause", strings.Join(fks, ", "))
	}
	st, scolls, err := readMySQLColumns(ctx, db, schema, shadow)
	if err != nil {
		return nil, err
	}
	sidx, err := readMySQLIndexes(ctx, db, schema, shadow)
	if err != nil {
		return nil, err
	}
	// The plain ALTER's session has the server's global sql_mode, and its
	// explicit_defaults_for_timestamp, which on MySQL decides whether a NULL
	// into a TIMESTAMP NOT NULL becomes the clock's time (MariaDB: always).
	var globalMode string
	var nullTimestampNow bool
	if err := db.QueryRowContext(ctx, "SELECT @@global.sql_mode, @@global.explicit_defaults_for_timestamp = 0").
		Scan(&globalMode, &nullTimestampNow); err != nil {
		return nil, fmt.Errorf("read the server's sql_mode: %w", err)
	}
	nullTimestampNow = nullTimestampNow || in.Flavor == "mariadb"
	p, err := BuildMySQLPlan(MySQLPlanInput{
		Source: in.Table, Shadow: st, SourceIndexes: in.Indexes, ShadowIndexes: sidx, Alter: in.Alter,
		OldName: old, ChangelogName: changelog, EstimatedRows: in.EstimatedRows,
		SourceCollations: in.Collations, ShadowCollations: scolls, TimeZone: zone, AlterTime: now, NullTimestampNow: nullTimestampNow,
	})
	if err != nil {
		return nil, err
	}
	p.CarryAutoIncrement = in.AutoIncrement > 0 && !in.Alter.SetsAutoIncrement
	p.SetsAutoIncrement, p.SetAutoIncrement = in.Alter.SetsAutoIncrement, in.Alter.AutoIncrement
	p.Renumbered = mysqlRenumbered(p.Source, p.Shadow, p.Mapping, globalMode)
	if err := checkFillChecks(ctx, db, schema, shadow, p); err != nil {
		return nil, err
	}
	if err := padCharRefusal(globalMode, p); err != nil {
		return nil, err
	}
	if err := readMySQLMembers(ctx, db, p, [2]string{schema, in.Table.Name}, [2]string{schema, shadow}); err != nil {
		return nil, err
	}
	if err := checkZoneExpressions(ctx, db, schema, shadow, p, zone); err != nil {
		return nil, err
	}
	return p, nil
}

// mysqlUniqueKey is a UNIQUE key line of SHOW CREATE TABLE, without its
// comma: the line; the key's quoted name; the line up to its parts; " USING
// HASH" when it says so; the rest. The parts are quoted names, each with an
// optional prefix length and order, so that a COMMENT that reads ") USING
// HASH" does not make a key a hash key.
var mysqlUniqueKey = regexp.MustCompile("(?m)^  ((UNIQUE KEY (`(?:[^`]|``)*`) \\((?:`(?:[^`]|``)*`(?:\\(\\d+\\))?(?: DESC| ASC)?,?)+\\))( USING HASH)?(.*?)),?$")

// restoreMySQLHashKeys gives the shadow back the order of the original's
// unique keys, and the USING HASH of those over short columns, that CREATE
// TABLE … LIKE changes: MariaDB copies a unique key declared USING HASH over
// short columns (one it could keep in a B-tree) as a B-tree key, and sorts
// the B-tree unique keys before those that keep their hash (the long unique
// keys). A plain ALTER keeps the keys' order, turning the short hash keys
// into B-tree keys in place (unless it adds an index: then it sorts them
// first), so that an original may also hold a B-tree unique key after a
// hash one. When the shadow's unique keys differ, those from the original's
// first hash key on are dropped and added again in the original's order,
// each USING HASH (an added key goes after the unique keys already there,
// and a hash key after the B-tree ones), and an ALTER … FORCE turns the
// short ones into B-tree keys in place, as the plain ALTER does: whatever
// the --alter, a short unique key is never left USING HASH.
func restoreMySQLHashKeys(ctx context.Context, db *sql.DB, ddl *mysqlDDLSession, schema, name, shadow string) error {
	orig, err := MySQLDefinition(ctx, db, schema, name)
	if err != nil {
		return err
	}
	keys := mysqlUniqueKey.FindAllStringSubmatch(orig, -1)
	first := slices.IndexFunc(keys, func(m []string) bool { return m[4] != "" })
	if first < 0 {
		return nil
	}
	def, err := MySQLDefinition(ctx, db, schema, shadow)
	if err != nil {
		return err
	}
	have := mysqlUniqueKey.FindAllStringSubmatch(def, -1)
	if slices.EqualFunc(keys, have, func(a, b []string) bool { return a[1] == b[1] }) {
		return nil
	}
	tail := keys[first:]
	clauses := make([]string, 0, 2*len(tail))
	for _, m := range tail {
		clauses = append(clauses, "DROP INDEX "+m[3])
	}
	for _, m := range tail {
		// A key declared USING BTREE says so where USING HASH goes.
		clauses = append(clauses, "ADD "+m[2]+" USING HASH"+strings.TrimPrefix(m[5], " USING BTREE"))
	}
	if err := ddl.exec(ctx, "ALTER TABLE "+QuoteMySQL(schema, shadow)+" "+strings.Join(clauses, ", ")); err != nil {
		return fmt.Errorf("give the shadow table the order of the original's unique keys: %w", err)
	}
	// As any plain ALTER does, also one that leaves the shadow as it is
	// (a foreign key dropped): the short ones become B-tree keys in place.
	if err := ddl.exec(ctx, "ALTER TABLE "+QuoteMySQL(schema, shadow)+" FORCE"); err != nil {
		return fmt.Errorf("give the shadow table the order of the original's unique keys: %w", err)
	}
	return nil
}

// mysqlWithoutOverlapsKey is a key line of SHOW CREATE TABLE whose parts
// end with an application-time period WITHOUT OVERLAPS (MariaDB); its
// parts, before any COMMENT, hold no quote.
var mysqlWithoutOverlapsKey = regexp.MustCompile("(?m)^  (?:PRIMARY KEY|UNIQUE KEY (`(?:[^`]|``)*`)) \\([^'\n]* WITHOUT OVERLAPS\\)")

// mysqlWithoutOverlaps names the keys WITHOUT OVERLAPS of a table's
// definition.
func mysqlWithoutOverlaps(def string) []string {
	var out []string
	for _, m := range mysqlWithoutOverlapsKey.FindAllStringSubmatch(def, -1) {
		name := m[1]
		if name == "" {
			name = "PRIMARY"
		}
		out = append(out, name)
	}
	return out
}

// DropMySQLTable drops schema.name if it exists.
func DropMySQLTable(ctx context.Context, db *sql.DB, schema, name string) error {
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+QuoteMySQL(schema)+"."+QuoteMySQL(name)); err != nil {
		return fmt.Errorf("drop table %s.%s: %w", schema, name, err)
	}
	return nil
}
