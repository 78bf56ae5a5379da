package table

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
)

// MySQLConn is how to reach the MySQL/MariaDB primary.
type MySQLConn struct {
	Host     string
	Port     int
	User     string
	Password string
	// ReplicaServerID is the server id osc's binlog reader registers with;
	// 0 lets the dialect pick one.
	ReplicaServerID uint32
	// TimeZone is the zone in which values are converted between TIMESTAMP
	// and other types, as the session running a plain ALTER would; "" is
	// the server's global time_zone (see MySQLTimeConversion).
	TimeZone string
	// TLS, when set, encrypts every connection to the server (the SQL
	// connections and the binlog reader's); TLSFor fills in the host name
	// to verify.
	TLS *tls.Config
	// PanicOnWarnings fails the migration when the copy or the applier
	// makes the server warn (--panic-on-warnings, MySQLWarnings).
	PanicOnWarnings bool
	// DiscardForeignKeys migrates a table with foreign keys of its own to
	// a new table without them (--discard-foreign-keys).
	DiscardForeignKeys bool
}

// TLSFor returns the TLS configuration for connecting to host (nil without
// TLS): the connection's, verifying that host's certificate unless it
// skips verification.
func (c MySQLConn) TLSFor(host string) *tls.Config {
	if c.TLS == nil {
		return nil
	}
	t := c.TLS.Clone()
	if t.ServerName == "" {
		t.ServerName = host
	}
	return t
}

// mysqlSessionSQLMode is the session sql_mode of osc's connections: the
// server's global sql_mode, which a DBA's session running the ALTER gets, so
// that building and filling the shadow accepts and refuses what the plain
// ALTER would (strictness, ERROR_FOR_DIVISION_BY_ZERO in a generated column,
// NO_ZERO_DATE in a default), plus NO_AUTO_VALUE_ON_ZERO: the ALTER's own
// copy keeps a 0 in an AUTO_INCREMENT column (it sets that mode while it
// copies one, see MariaDB's copy_data_between_tables), and so must the copy
// and the applier, or the 0 would become a new number. (A column that only
// becomes AUTO_INCREMENT the ALTER copies without it: see MySQLRenumbered.)
// Two flags are not taken as they are (see mysql_sqlmode.go): a mode that is
// not strict gets STRICT_TRANS_TABLES, and PAD_CHAR_TO_FULL_LENGTH is dropped.
func mysqlSessionSQLMode(global string) string {
	modes := []string{}
	strict := false
	for _, m := range strings.Split(global, ",") {
		m = strings.TrimSpace(m)
		switch strings.ToUpper(m) {
		case "", "NO_AUTO_VALUE_ON_ZERO", "PAD_CHAR_TO_FULL_LENGTH":
			continue
		case "STRICT_TRANS_TABLES", "STRICT_ALL_TABLES":
			strict = true
		}
		modes = append(modes, m)
	}
	if !strict {
		modes = append(modes, "STRICT_TRANS_TABLES")
	}
	return strings.Join(append(modes, "NO_AUTO_VALUE_ON_ZERO"), ",")
}

// OpenMySQL opens a pool of connections to database with osc's session
// settings (utf8mb4, time_zone +00:00, the server's global sql_mode with
// NO_AUTO_VALUE_ON_ZERO, no client-side interpolation, times as text) and
// checks that the server answers.
func OpenMySQL(ctx context.Context, c MySQLConn, database string) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User = c.User
	cfg.Passwd = c.Password
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	cfg.DBName = database
	cfg.InterpolateParams = false
	cfg.ParseTime = false
	cfg.Timeout = 10 * time.Second
	cfg.TLS = c.TLSFor(c.Host)
	// time_zone stays UTC: see MySQLTimeConversion.
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	if err := cfg.Apply(mysql.Charset("utf8mb4", "")); err != nil {
		return nil, fmt.Errorf("mysql config: %w", err)
	}
	// Read the global sql_mode once, so that every connection of the pool
	// has the same mode even if the global one changes during the run.
	global, err := readMySQLGlobalSQLMode(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cfg.Params["sql_mode"] = "'" + mysqlSessionSQLMode(global) + "'"
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql config: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(10)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to mysql %s as %s: %w", cfg.Addr, c.User, err)
	}
	return db, nil
}

var mysqlModeName = regexp.MustCompile(`^[A-Z0-9_,]*$`)

// readMySQLGlobalSQLMode reads @@global.sql_mode on a connection of its own.
func readMySQLGlobalSQLMode(ctx context.Context, cfg *mysql.Config) (string, error) {
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return "", fmt.Errorf("mysql config: %w", err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(ctx, "SELECT @@global.sql_mode").Scan(&mode); err != nil {
		return "", fmt.Errorf("connect to mysql %s as %s: %w", cfg.Addr, cfg.User, err)
	}
	if !mysqlModeName.MatchString(mode) {
		return "", fmt.Errorf("the server's sql_mode %q is not a list of mode names", mode)
	}
	return mode, nil
}

// MySQLServer holds the server facts osc checks before starting.
type MySQLServer struct {
	Version        string
	LogBin         string // @@log_bin: "1" or "0"
	BinlogFormat   string
	BinlogRowImage string
	// OrderCommits is MySQL's @@binlog_order_commits ("" on MariaDB, which
	// always commits in binlog order).
	OrderCommits string
	// MaxWriteLockCount is @@max_write_lock_count: after that many strong
	// metadata locks in a row, weaker waiters go first.
	MaxWriteLockCount uint64
	Grants            []string // SHOW GRANTS of the current user
}

// Flavor is "mariadb" or "mysql".
func (s MySQLServer) Flavor() string {
	if strings.Contains(strings.ToLower(s.Version), "mariadb") {
		return "mariadb"
	}
	return "mysql"
}

// ReadMySQLServer reads the version, the binary log settings and the current
// user's grants.
func ReadMySQLServer(ctx context.Context, db *sql.DB) (MySQLServer, error) {
	var s MySQLServer
	err := db.QueryRowContext(ctx,
		"SELECT VERSION(), @@global.log_bin, @@global.binlog_format, @@global.binlog_row_image, @@global.max_write_lock_count").
		Scan(&s.Version, &s.LogBin, &s.BinlogFormat, &s.BinlogRowImage, &s.MaxWriteLockCount)
	if err != nil {
		return s, fmt.Errorf("read server variables: %w", err)
	}
	if s.Flavor() == "mysql" {
		if err := db.QueryRowContext(ctx, "SELECT @@global.binlog_order_commits").Scan(&s.OrderCommits); err != nil {
			return s, fmt.Errorf("read server variables: %w", err)
		}
	}
	rows, err := db.QueryContext(ctx, "SHOW GRANTS")
	if err != nil {
		return s, fmt.Errorf("show grants: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return s, fmt.Errorf("show grants: %w", err)
		}
		s.Grants = append(s.Grants, g)
	}
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("show grants: %w", err)
	}
	return s, nil
}

// Check refuses a server osc cannot read changes from, naming the fix.
func (s MySQLServer) Check() error {
	if s.LogBin != "1" && !strings.EqualFold(s.LogBin, "ON") {
		return fmt.Errorf("the binary log is off (log_bin=%s); osc reads changes from it: "+
			"enable log_bin with binlog_format=ROW and binlog_row_image=FULL in my.cnf and restart the server", s.LogBin)
	}
	if !strings.EqualFold(s.BinlogFormat, "ROW") {
		return fmt.Errorf("binlog_format is %s; osc needs ROW: SET GLOBAL binlog_format=ROW (and in my.cnf)", s.BinlogFormat)
	}
	if !strings.EqualFold(s.BinlogRowImage, "FULL") {
		return fmt.Errorf("binlog_row_image is %s; osc needs FULL: SET GLOBAL binlog_row_image=FULL (and in my.cnf)", s.BinlogRowImage)
	}
	if s.OrderCommits == "0" || strings.EqualFold(s.OrderCommits, "OFF") {
		// The copy relies on commits becoming visible in binlog order (see
		// engine's replayWindow).
		return errors.New("binlog_order_commits is OFF; osc needs transactions to commit in binary log order: " +
			"SET GLOBAL binlog_order_commits=ON (and in my.cnf)")
	}
	if s.MaxWriteLockCount != 0 && s.MaxWriteLockCount < mysqlMinWriteLockCount {
		// The cut-over's RENAME must be granted the table before the writers
		// queued on it (see cutover.MySQL).
		return fmt.Errorf("max_write_lock_count is %d; osc's cut-over needs its RENAME to go before the writers waiting on the table: "+
			"SET GLOBAL max_write_lock_count=4294967295 (the default, or more; and in my.cnf)", s.MaxWriteLockCount)
	}
	return checkMySQLGrants(s.Grants)
}

// mysqlMinWriteLockCount is the smallest max_write_lock_count osc accepts.
const mysqlMinWriteLockCount = 1000

// checkMySQLGrants refuses a user that lacks REPLICATION SLAVE or REPLICATION
// CLIENT (BINLOG MONITOR on MariaDB 10.5+) on *.*. Privileges that come
// through a role are not listed by SHOW GRANTS, so a user with roles is given
// the benefit of the doubt (the binlog reader then fails with the server's
// own message).
func checkMySQLGrants(grants []string) error {
	var slave, client, roles bool
	for _, g := range grants {
		up := strings.ToUpper(g)
		if !strings.HasPrefix(up, "GRANT ") {
			continue
		}
		on := strings.Index(up, " ON ")
		if on < 0 {
			roles = true // GRANT `role` TO `user`
			continue
		}
		if !strings.HasPrefix(strings.TrimSpace(up[on+4:]), "*.*") {
			continue
		}
		for _, p := range strings.Split(up[len("GRANT "):on], ",") {
			switch strings.TrimSpace(p) {
			case "ALL PRIVILEGES", "ALL":
				slave, client = true, true
			case "REPLICATION SLAVE", "REPLICATION REPLICA":
				slave = true
			case "REPLICATION CLIENT", "BINLOG MONITOR", "SUPER":
				client = true
			}
		}
	}
	if (slave && client) || roles {
		return nil
	}
	var missing []string
	if !slave {
		missing = append(missing, "REPLICATION SLAVE")
	}
	if !client {
		missing = append(missing, "REPLICATION CLIENT")
	}
	return fmt.Errorf("the user lacks %s, which osc needs to read the binary log: GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO <user>",
		strings.Join(missing, " and "))
}

// MySQLNames returns the names of the shadow, changelog and old tables of
// table name. The shadow and the old table (the cut-over's sentry) start
// with the table's own name, so that they sort after it: the cut-over's
// RENAME takes its metadata locks in name order, and must wait for the
// original table first (see cutover.MySQL).
func MySQLNames(name string) (shadow, changelog, old string) {
	return name + mysqlShadowSuffix, name + "_osc_log", name + "_osc_old"
}

// mysqlShadowSuffix is the longest suffix MySQLNames adds.
const mysqlShadowSuffix = "_osc_new"

// mysqlMaxIdent is MySQL's identifier length limit.
const mysqlMaxIdent = 64

// MySQLLock is the per-table advisory lock that keeps two osc runs off the
// same table. It lives on its own connection until Release.
type MySQLLock struct {
	conn *sql.Conn
	Name string
}

// mysqlLockName is "osc:<db>.<table>", hashed when longer than the 64
// characters MySQL allows a lock name.
func mysqlLockName(schema, name string) string {
	n := "osc:" + schema + "." + name
	if len(n) <= mysqlMaxIdent {
		return n
	}
	sum := sha256.Sum256([]byte(schema + "." + name))
	return "osc:" + hex.EncodeToString(sum[:])[:mysqlMaxIdent-4]
}

// mysqlLockWait is how long LockMySQL waits for a held lock. A run killed
// with SIGKILL (a lost host, a kill -9 before a --resume) leaves its lock
// with its session, which the server ends only once it has noticed the
// closed connection: on a loaded server that can take a moment after the
// process is gone, and a resume started at once would be refused.
const mysqlLockWait = 5

// LockMySQL takes the advisory lock for schema.name, waiting a few seconds
// (mysqlLockWait) for a holder that is going away.
func LockMySQL(ctx context.Context, db *sql.DB, schema, name string) (*MySQLLock, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("advisory lock: %w", err)
	}
	l := &MySQLLock{conn: conn, Name: mysqlLockName(schema, name)}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", l.Name, mysqlLockWait).Scan(&got); err != nil {
		conn.Close()
		return nil, fmt.Errorf("advisory lock %s: %w", l.Name, err)
	}
	if !got.Valid || got.Int64 != 1 {
		// Name the holder: a DBA whose osc host died can KILL the session
		// it left behind.
		var holder sql.NullInt64
		err := conn.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?)", l.Name).Scan(&holder)
		conn.Close()
		switch {
		case err != nil:
			return nil, fmt.Errorf("another osc is migrating %s.%s (advisory lock %s is held; its holder: %w)", schema, name, l.Name, err)
		case !holder.Valid:
			return nil, fmt.Errorf("another osc is migrating %s.%s (advisory lock %s was held, and was just released: run again)", schema, name, l.Name)
		}
		return nil, fmt.Errorf("another osc is migrating %s.%s (advisory lock %s is held by session %d; "+
			"if that osc died with its host and the session lingers, KILL %d)", schema, name, l.Name, holder.Int64, holder.Int64)
	}
	// The lock dies with the session: keep an idle session from timing out.
	if _, err := conn.ExecContext(ctx, "SET SESSION wait_timeout = 31536000"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("advisory lock %s: keep session alive: %w", l.Name, err)
	}
	return l, nil
}

// Release releases the lock and its connection.
func (l *MySQLLock) Release(ctx context.Context) error {
	_, err := l.conn.ExecContext(ctx, "DO RELEASE_LOCK(?)", l.Name)
	if cerr := l.conn.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("release advisory lock %s: %w", l.Name, err)
	}
	return nil
}

// MySQLInspection is what InspectMySQLTable found out about the original.
type MySQLInspection struct {
	Table         *Table
	Indexes       []MySQLIndex
	Collations    map[string]string // lower-case column name → collation
	EstimatedRows int64
	AutoIncrement int64 // next AUTO_INCREMENT value, 0 when none
	Alter         *MySQLAlter
	// TimeZone is the zone of conversions to and from TIMESTAMP (see
	// MySQLTimeConversion); CreateMySQLShadow reads the server's global
	// time_zone when it is "".
	TimeZone string
	// ForeignKeys says what the migration does with the table's own
	// foreign keys ("" when it has none), for the preflight report.
	ForeignKeys string
	// CarriedForeignKeys are the table's foreign keys the new table gets
	// at the cut-over (ShadowForeignKeys).
	CarriedForeignKeys []MySQLForeignKey
	// Triggers says what the migration does with the table's triggers ("":
	// it has none), for the preflight report; CarriedTriggers are those the
	// new table gets at the cut-over.
	Triggers        string
	CarriedTriggers []MySQLTrigger
}

// MySQLInspectOptions are the choices that change what InspectMySQL accepts.
type MySQLInspectOptions struct {
	// Resume: the run resumes a killed one, and what earlier runs left is
	// Resume's to judge.
	Resume bool
	// DiscardForeignKeys accepts a table with foreign keys of its own
	// (--discard-foreign-keys): the new table has none.
	DiscardForeignKeys bool
}

// InspectMySQLTable checks that schema.name can be migrated online with
// alter and reads it. Each refusal names the fix.
func InspectMySQLTable(ctx context.Context, db *sql.DB, schema, name, alter string) (*MySQLInspection, error) {
	return InspectMySQL(ctx, db, schema, name, alter, MySQLInspectOptions{})
}

// InspectMySQLTableToResume is InspectMySQLTable for a run that resumes a
// killed one: what earlier runs left is Resume's to judge.
func InspectMySQLTableToResume(ctx context.Context, db *sql.DB, schema, name, alter string) (*MySQLInspection, error) {
	return InspectMySQL(ctx, db, schema, name, alter, MySQLInspectOptions{Resume: true})
}

// InspectMySQL is InspectMySQLTable with options.
func InspectMySQL(ctx context.Context, db *sql.DB, schema, name, alter string, o MySQLInspectOptions) (*MySQLInspection, error) {
	if n := utf8.RuneCountInString(name) + len(mysqlShadowSuffix); n > mysqlMaxIdent {
		return nil, fmt.Errorf("table name %s is too long: osc's helper tables (%s%s) would exceed MySQL's %d-character limit; "+
			"rename the table to at most %d characters first", name, name, mysqlShadowSuffix, mysqlMaxIdent, mysqlMaxIdent-len(mysqlShadowSuffix))
	}
	info, err := readMySQLTableInfo(ctx, db, schema, name)
	if err != nil {
		return nil, err
	}
	if info == nil {
		return nil, fmt.Errorf("table %s.%s does not exist", schema, name)
	}
	if info.tableType != "BASE TABLE" {
		return nil, fmt.Errorf("%s.%s is a %s, not a base table; osc migrates base tables only", schema, name, info.tableType)
	}
	if !strings.EqualFold(info.engine, "InnoDB") {
		return nil, fmt.Errorf("table %s.%s uses the %s engine; osc needs InnoDB (transactions and row locks): "+
			"ALTER TABLE %s ENGINE=InnoDB first", schema, name, info.engine, QuoteMySQL(name))
	}
	trgs, carriedTriggers, err := checkMySQLTriggers(ctx, db, schema, name)
	if err != nil {
		return nil, err
	}
	t, colls, err := readMySQLColumns(ctx, db, schema, name)
	if err != nil {
		return nil, err
	}
	if cols := compressedColumns(t); len(cols) > 0 {
		return nil, fmt.Errorf("table %s.%s has COMPRESSED columns (%s); osc reads the table's changes from the binlog, "+
			"and its binlog reader cannot decode compressed columns: migrate it with a plain ALTER TABLE, "+
			"or MODIFY the columns without COMPRESSED first", schema, name, strings.Join(cols, ", "))
	}
	indexes, err := readMySQLIndexes(ctx, db, schema, name)
	if err != nil {
		return nil, err
	}
	usable := false
	for _, ix := range indexes {
		usable = usable || ix.keyUsable()
	}
	if !usable {
		return nil, errNoKey(t)
	}
	if !o.Resume {
		if err := checkMySQLLeftovers(ctx, db, schema, name); err != nil {
			return nil, err
		}
	}
	// The alter runs on a connection of the same pool, with the same sql_mode.
	var sqlMode string
	if err := db.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode").Scan(&sqlMode); err != nil {
		return nil, fmt.Errorf("read sql_mode: %w", err)
	}
	a, err := ParseMySQLAlter(name, alter, sqlMode)
	if err != nil {
		return nil, err
	}
	fks, carried, err := checkMySQLForeignKeys(ctx, db, schema, name, a.DroppedForeignKeys, o.DiscardForeignKeys)
	if err != nil {
		return nil, err
	}
	return &MySQLInspection{Table: t, Indexes: indexes, Collations: colls,
		EstimatedRows: info.rows, AutoIncrement: info.autoIncrement, Alter: a, ForeignKeys: fks, CarriedForeignKeys: carried,
		Triggers: trgs, CarriedTriggers: carriedTriggers}, nil
}

// compressedColumns names the columns with MariaDB's COMPRESSED attribute,
// which the catalog shows in the column type ("text /*M!100301 COMPRESSED*/").
func compressedColumns(t *Table) []string {
	var out []string
	for _, c := range t.Columns {
		if strings.Contains(strings.ToUpper(c.ColumnType), "COMPRESSED") {
			out = append(out, c.Name)
		}
	}
	return out
}

type mysqlTableInfo struct {
	tableType, engine string
	rows              int64
	autoIncrement     int64
}

// readMySQLTableInfo returns nil when the table does not exist.
func readMySQLTableInfo(ctx context.Context, db *sql.DB, schema, name string) (*mysqlTableInfo, error) {
	var info mysqlTableInfo
	var ai sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT TABLE_TYPE, COALESCE(ENGINE, ''), COALESCE(TABLE_ROWS, 0), AUTO_INCREMENT
		FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, schema, name).
		Scan(&info.tableType, &info.engine, &info.rows, &ai)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read table %s.%s: %w", schema, name, err)
	}
	info.autoIncrement = ai.Int64
	return &info, nil
}

func queryStrings(ctx context.Context, db *sql.DB, query string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func checkMySQLLeftovers(ctx context.Context, db *sql.DB, schema, name string) error {
	l, err := FindMySQLLeftovers(ctx, db, schema, name)
	if err != nil {
		return err
	}
	return l.Refusal(schema, name)
}

// readMySQLColumns reads the table's columns in ordinal order and the
// collation of each text column.
func readMySQLColumns(ctx context.Context, db *sql.DB, schema, name string) (*Table, map[string]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE,
			COALESCE(CHARACTER_SET_NAME, ''), COALESCE(COLLATION_NAME, ''), EXTRA, COALESCE(GENERATION_EXPRESSION, ''), COLUMN_DEFAULT
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, schema, name)
	if err != nil {
		return nil, nil, fmt.Errorf("read columns of %s.%s: %w", schema, name, err)
	}
	defer rows.Close()
	t := &Table{Schema: schema, Name: name}
	colls := map[string]string{}
	for rows.Next() {
		var c Column
		var nullable, collation, extra, genExpr string
		var def sql.NullString
		if err := rows.Scan(&c.Name, &c.DataType, &c.ColumnType, &nullable, &c.Charset, &collation, &extra, &genExpr, &def); err != nil {
			return nil, nil, fmt.Errorf("read columns of %s.%s: %w", schema, name, err)
		}
		c.DataType = strings.ToLower(c.DataType)
		c.Nullable = nullable == "YES"
		c.Unsigned = strings.Contains(strings.ToLower(c.ColumnType), "unsigned")
		// EXTRA is "VIRTUAL GENERATED", "STORED GENERATED" (MySQL, MariaDB) or
		// "PERSISTENT GENERATED" (old MariaDB); MySQL's "DEFAULT_GENERATED" is
		// only a default expression.
		up := strings.ToUpper(extra)
		c.AutoIncrement = strings.Contains(up, "AUTO_INCREMENT")
		c.Generated = genExpr != "" || strings.Contains(up, "VIRTUAL") || strings.Contains(up, "STORED") || strings.Contains(up, "PERSISTENT")
		c.Expression = genExpr
		c.AutoIncrement = strings.Contains(up, "AUTO_INCREMENT")
		if !c.Generated {
			c.Default = def.String
			c.NoDefault = !def.Valid && !c.AutoIncrement
		}
		if collation != "" {
			colls[foldName(c.Name)] = collation
		}
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read columns of %s.%s: %w", schema, name, err)
	}
	if len(t.Columns) == 0 {
		return nil, nil, fmt.Errorf("table %s.%s does not exist", schema, name)
	}
	return t, colls, nil
}

// readMySQLIndexes reads the table's indexes, the PRIMARY KEY first. Whether
// an index is ignored comes from MariaDB's IGNORED column (10.6+) or MySQL's
// IS_VISIBLE, whichever the server has: all columns are read by name.
func readMySQLIndexes(ctx context.Context, db *sql.DB, schema, name string) ([]MySQLIndex, error) {
	rows, err := db.QueryContext(ctx, `SELECT * FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
		ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX`, schema, name)
	if err != nil {
		return nil, fmt.Errorf("read indexes of %s.%s: %w", schema, name, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("read indexes of %s.%s: %w", schema, name, err)
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	get := func(col string) string {
		for i, c := range cols {
			if sameName(c, col) {
				return vals[i].String
			}
		}
		return ""
	}
	var out []MySQLIndex
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("read indexes of %s.%s: %w", schema, name, err)
		}
		ixName := get("INDEX_NAME")
		if len(out) == 0 || out[len(out)-1].Name != ixName {
			out = append(out, MySQLIndex{Name: ixName, Primary: ixName == "PRIMARY", Unique: get("NON_UNIQUE") == "0",
				Ignored: get("IGNORED") == "YES" || get("IS_VISIBLE") == "NO"})
		}
		sub := 0
		if s := get("SUB_PART"); s != "" {
			if sub, err = strconv.Atoi(s); err != nil {
				return nil, fmt.Errorf("read indexes of %s.%s: SUB_PART %q: %w", schema, name, s, err)
			}
		}
		ix := &out[len(out)-1]
		ix.Columns = append(ix.Columns, get("COLUMN_NAME"))
		ix.SubParts = append(ix.SubParts, sub)
		ix.Nullable = ix.Nullable || get("NULLABLE") == "YES"
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read indexes of %s.%s: %w", schema, name, err)
	}
	return out, nil
}

// mysqlChangelogDDL defines the changelog table, where the binlog reader's
// markers are inserted.
const mysqlChangelogDDL = `(id BIGINT AUTO_INCREMENT PRIMARY KEY, ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
hint VARCHAR(64) NOT NULL, value VARCHAR(4096) NOT NULL) ENGINE=InnoDB`

// CreateMySQLShadow creates the shadow table (CREATE TABLE ... LIKE, then the
// --alter) and the changelog table, and returns the plan. On failure it drops
// what it created.
func CreateMySQLShadow(ctx context.Context, db *sql.DB, in *MySQLInspection) (p *Plan, err error) {
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
	// The plain ALTER's session has the server's global sql_mode.
	var globalMode string
	if err := db.QueryRowContext(ctx, "SELECT @@global.sql_mode").Scan(&globalMode); err != nil {
		return nil, fmt.Errorf("read the server's sql_mode: %w", err)
	}
	p, err := BuildMySQLPlan(MySQLPlanInput{
		Source: in.Table, Shadow: st, SourceIndexes: in.Indexes, ShadowIndexes: sidx, Alter: in.Alter,
		OldName: old, ChangelogName: changelog, EstimatedRows: in.EstimatedRows,
		SourceCollations: in.Collations, ShadowCollations: scolls, TimeZone: zone, AlterTime: now,
	})
	if err != nil {
		return nil, err
	}
	p.Renumbered = mysqlRenumbered(p.Source, p.Shadow, p.Mapping, globalMode)
	if err := checkFillChecks(ctx, db, schema, shadow, p); err != nil {
		return nil, err
	}
	if err := padCharRefusal(globalMode, p); err != nil {
		return nil, err
	}
	if err := checkZoneExpressions(ctx, db, schema, shadow, p, zone); err != nil {
		return nil, err
	}
	return p, nil
}

// DropMySQLTable drops schema.name if it exists.
func DropMySQLTable(ctx context.Context, db *sql.DB, schema, name string) error {
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+QuoteMySQL(schema)+"."+QuoteMySQL(name)); err != nil {
		return fmt.Errorf("drop table %s.%s: %w", schema, name, err)
	}
	return nil
}
