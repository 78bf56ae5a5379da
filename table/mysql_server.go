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
	"strconv"
	"strings"
	"time"

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
// settings (utf8mb4, time_zone +00:00, notes recorded, the server's global
// sql_mode with NO_AUTO_VALUE_ON_ZERO, no client-side interpolation, times
// as text) and checks that the server answers.
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
	// time_zone stays UTC: see MySQLTimeConversion. sql_notes keeps the
	// notes by which the server says it changed a value, which osc reads
	// (MySQLWarnings, MySQLCopy.RefuseCutSpaces, MySQLCutNoted), also on a
	// server whose global sql_notes is 0; max_error_count keeps as many of a
	// statement's as the server can (the default keeps 64), so that every
	// note of an applier statement (at most 256 rows) is listed.
	cfg.Params = map[string]string{"time_zone": "'+00:00'", "sql_notes": "1", "max_error_count": "65535"}
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
