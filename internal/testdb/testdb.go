package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"
)

// connectTimeout bounds connecting to the sandbox and pinging it;
// dropTimeout bounds dropping a test schema when the test ends.
const (
	connectTimeout = 5 * time.Second
	dropTimeout    = 10 * time.Second
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Unreachable ends the test because the sandbox's what ("MySQL",
// "PostgreSQL") did not answer: it skips the test with how to start the
// sandbox, or fails it when CI=true, where the sandbox must be up.
func Unreachable(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s sandbox unreachable: %v", what, err)
	}
	t.Skipf("start the sandbox: bash localtests/sandbox.sh up (%v)", err)
}

// Connect calls open with a deadline of a few seconds and returns what it
// opened; an error means the sandbox's what is unreachable (see Unreachable).
// The caller closes the result.
func Connect[T any](t testing.TB, what string, open func(ctx context.Context) (T, error)) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	v, err := open(ctx)
	if err != nil {
		Unreachable(t, what, err)
	}
	return v
}

// MySQLServer is the sandbox's MySQL (MariaDB) primary.
type MySQLServer struct {
	Host     string // OSC_MYSQL_HOST, by default 127.0.0.1
	Port     int    // OSC_MYSQL_PORT, by default 13306
	User     string // OSC_MYSQL_USER, by default root
	Password string // OSC_MYSQL_PASSWORD, by default none
}

// MySQL is the sandbox's MySQL server as the environment names it.
func MySQL(t testing.TB) MySQLServer {
	t.Helper()
	port, err := strconv.Atoi(env("OSC_MYSQL_PORT", "13306"))
	if err != nil {
		t.Fatalf("OSC_MYSQL_PORT: %v", err)
	}
	return MySQLServer{Host: env("OSC_MYSQL_HOST", "127.0.0.1"), Port: port,
		User: env("OSC_MYSQL_USER", "root"), Password: os.Getenv("OSC_MYSQL_PASSWORD")}
}

// Config is a driver configuration for database on the server: TCP, the
// utf8mb4 character set, a dial timeout of a few seconds and otherwise the
// driver's defaults. Session variables (Params) and the rest are the
// caller's to set.
func (s MySQLServer) Config(t testing.TB, database string) *mysql.Config {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = s.User, s.Password
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), database
	cfg.Timeout = connectTimeout
	if err := cfg.Apply(mysql.Charset("utf8mb4", "")); err != nil {
		t.Fatalf("mysql charset: %v", err)
	}
	return cfg
}

// OpenMySQL opens cfg and pings the server (see Unreachable when it does not
// answer); the handle is closed when the test ends.
func OpenMySQL(t testing.TB, cfg *mysql.Config) *sql.DB {
	t.Helper()
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("mysql config: %v", err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return Connect(t, "MySQL", func(ctx context.Context) (*sql.DB, error) {
		return db, db.PingContext(ctx)
	})
}

// MySQLFlavor is the server's flavor as go-mysql names it: "mariadb" or
// "mysql".
func MySQLFlavor(t testing.TB, db *sql.DB) string {
	t.Helper()
	version := Connect(t, "MySQL", func(ctx context.Context) (string, error) {
		var v string
		err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v)
		return v, err
	})
	if strings.Contains(strings.ToLower(version), "mariadb") {
		return "mariadb"
	}
	return "mysql"
}

// ExecMySQL runs q, failing the test on an error.
func ExecMySQL(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// DropMySQLTables drops the tables, in order, now and again when the test
// ends.
func DropMySQLTables(t testing.TB, db *sql.DB, names ...string) {
	t.Helper()
	for _, n := range names {
		ExecMySQL(t, db, "DROP TABLE IF EXISTS "+n)
	}
	t.Cleanup(func() {
		for _, n := range names {
			if _, err := db.Exec("DROP TABLE IF EXISTS " + n); err != nil {
				t.Errorf("drop test table %s: %v", n, err)
			}
		}
	})
}

// PostgresDSN is the connection string to the database osc_test of the
// sandbox's PostgreSQL primary, from OSC_PG_USER, OSC_PG_HOST and OSC_PG_PORT
// (by default postgres, 127.0.0.1 and 15432). OSC_PG_DSN, which names the
// database postgres, is not used: the tests work in osc_test.
func PostgresDSN() string { return postgresDSN(env("OSC_PG_PORT", "15432")) }

// PostgresQuietDSN is PostgresDSN on the sandbox's quiet PostgreSQL primary
// (OSC_PG_QUIET_PORT, by default 15434), a server of its own for the tests
// that need one no other test uses meanwhile: PostgreSQL's decoding bug,
// which they provoke, is not met while another logical slot is active. Only
// one package's tests may use it, one test at a time.
func PostgresQuietDSN() string { return postgresDSN(env("OSC_PG_QUIET_PORT", "15434")) }

func postgresDSN(port string) string {
	return fmt.Sprintf("postgres://%s@%s:%s/osc_test?sslmode=disable",
		env("OSC_PG_USER", "postgres"), env("OSC_PG_HOST", "127.0.0.1"), port)
}

// PostgresConfig is the pool configuration of PostgresDSN, for the caller to
// adjust (runtime parameters, say) before OpenPostgres.
func PostgresConfig(t testing.TB) *pgxpool.Config { return postgresConfig(t, PostgresDSN()) }

// PostgresQuietConfig is PostgresConfig on the quiet primary (PostgresQuietDSN).
func PostgresQuietConfig(t testing.TB) *pgxpool.Config { return postgresConfig(t, PostgresQuietDSN()) }

func postgresConfig(t testing.TB, dsn string) *pgxpool.Config {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("postgres connection string: %v", err)
	}
	return cfg
}

// OpenPostgres opens a pool with cfg and pings the server (see Unreachable
// when it does not answer); the pool is closed when the test ends.
func OpenPostgres(t testing.TB, cfg *pgxpool.Config) *pgxpool.Pool {
	t.Helper()
	pool := Connect(t, "PostgreSQL", func(ctx context.Context) (*pgxpool.Pool, error) {
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if err := pool.Ping(ctx); err != nil {
			pool.Close()
			return nil, err
		}
		return pool, nil
	})
	t.Cleanup(pool.Close)
	return pool
}

// ResetPostgresSchema drops schema with all it holds and creates it empty; it
// is dropped again when the test ends.
func ResetPostgresSchema(t testing.TB, pool *pgxpool.Pool, schema string) {
	t.Helper()
	drop := "DROP SCHEMA IF EXISTS " + schema + " CASCADE"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
		defer cancel()
		if _, err := pool.Exec(ctx, drop); err != nil {
			t.Errorf("drop test schema: %v", err)
		}
	})
	ExecPostgres(t, pool, drop, "CREATE SCHEMA "+schema)
}

// DropPostgresCapture drops the replication slots (those not in use) and
// the publications that osc runs on tables of schema in database left when
// their test process was killed (a go test timeout): the next run's osc
// would refuse to start beside them. list runs a query returning names;
// exec runs a statement. A name is osc's for a table of schema when it is
// osc_<schema>_<table>_<hash of database, schema and table> (table's
// pgCaptureName, for names of [a-z0-9_] within 63 bytes): the prefix alone
// would also take the capture of a table of a schema whose name starts with
// this one's and an underscore (twice and twice_threads).
func DropPostgresCapture(ctx context.Context, database, schema string, list func(ctx context.Context, query string) ([]string, error),
	exec func(ctx context.Context, stmt string) error) error {
	prefix := "osc_" + schema + "_"
	like := "'" + strings.ReplaceAll(strings.ReplaceAll(prefix, "_", `\_`), "'", "''") + "%'"
	for _, kind := range []struct{ list, drop string }{
		{"SELECT slot_name::text FROM pg_replication_slots WHERE NOT active AND slot_name LIKE " + like, "SELECT pg_drop_replication_slot('%s')"},
		{"SELECT pubname::text FROM pg_publication WHERE pubname LIKE " + like, `DROP PUBLICATION IF EXISTS "%s"`},
	} {
		names, err := list(ctx, kind.list)
		if err != nil {
			return fmt.Errorf("capture left on %s: %w", schema, err)
		}
		for _, n := range names {
			if !postgresCaptureOf(n, database, schema) {
				continue
			}
			if err := exec(ctx, fmt.Sprintf(kind.drop, n)); err != nil {
				return fmt.Errorf("drop the capture %s left on %s: %w", n, schema, err)
			}
		}
	}
	return nil
}

// postgresCaptureOf reports whether name is the capture (slot and
// publication) osc names for some table of schema in database.
func postgresCaptureOf(name, database, schema string) bool {
	prefix := "osc_" + schema + "_"
	const hashLen = len("_01234567")
	if !strings.HasPrefix(name, prefix) || len(name) <= len(prefix)+hashLen {
		return false
	}
	tbl := name[len(prefix) : len(name)-hashLen]
	h := fnv.New32a()
	h.Write([]byte(database + "\x00" + schema + "\x00" + tbl))
	return name[len(name)-hashLen:] == fmt.Sprintf("_%08x", h.Sum32())
}

// ExecPostgres runs the statements in order, failing the test on an error.
func ExecPostgres(t testing.TB, pool *pgxpool.Pool, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := pool.Exec(context.Background(), s); err != nil {
			t.Fatalf("%.300s: %v", s, err)
		}
	}
}

// ExecPostgresIn runs the statements in order on one connection with schema
// first on its search path (then public), which it resets after; it fails
// the test on an error.
func ExecPostgresIn(t testing.TB, pool *pgxpool.Pool, schema string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatalf("acquire a connection: %v", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET search_path = "+schema+", public"); err != nil {
		t.Fatalf("set search_path: %v", err)
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%.300s: %v", s, err)
		}
	}
	if _, err := conn.Exec(ctx, "RESET search_path"); err != nil {
		t.Fatalf("reset search_path: %v", err)
	}
}
