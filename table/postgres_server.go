package table

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresQuerier is what the PostgreSQL catalog readers need: a pool, a
// connection or a transaction.
type PostgresQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// pgMaxIdent is PostgreSQL's identifier length limit in bytes (NAMEDATALEN-1).
const pgMaxIdent = 63

// OpenPostgres opens a pool of connections to the database dsn names (a libpq
// URL or key=value string; empty uses the PG* environment variables) and
// checks that the server answers.
func OpenPostgres(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres connection string: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// The copy, the applier, the throttle's probes, and during the
		// checksum its lock and snapshot readers (as MySQL's pool).
		cfg.MaxConns = 10
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "osc"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres %s:%d as %s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.User, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres %s:%d as %s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.User, err)
	}
	return pool, nil
}

// QuotePostgres quotes and joins identifiers: QuotePostgres("s", "t") is "s"."t".
func QuotePostgres(parts ...string) string {
	return pgx.Identifier(parts).Sanitize()
}

// PostgresNames are the objects osc creates or renames for one table.
type PostgresNames struct {
	Schema, Table string // the original
	Shadow, Old   string // the shadow, and the name the original gets at cut-over (same schema)
	Checkpoint    string // the bookkeeping table holding the checkpoint (same schema)
	// Aside holds the rows a new unique key turned away from the shadow
	// (same schema; only for a plan with new unique keys: postgres_aside.go).
	Aside string
	// The logical replication slot and the publication, set by InDatabase:
	// slot names are cluster-wide, so they name the database too.
	Database          string
	Slot, Publication string
}

// NewPostgresNames returns the names for schema.name: _<t>_osc, _<t>_old,
// _<t>_osk and _<t>_osd; the slot and the publication are named once the database is
// known (InDatabase).
func NewPostgresNames(schema, name string) PostgresNames {
	return PostgresNames{
		Schema: schema, Table: name,
		Shadow: FitPostgresName("_"+name, "_osc"), Old: FitPostgresName("_"+name, "_old"),
		Checkpoint: FitPostgresName("_"+name, "_osk"), Aside: FitPostgresName("_"+name, "_osd"),
	}
}

// InDatabase returns the names with those of the slot and the publication
// for the table in database: osc_[<schema>_]<t>_<hash>, made of [a-z0-9_] in
// at most 63 bytes, the hash (8 hex digits) being of the database, the schema
// and the table's exact names. A replication slot's name is unique in the
// whole cluster, and the readable part alone is not even unique in one
// database (public.a_b and a.b): with the hash, the migrations of the same
// schema.table in two databases (a staging copy, a database per tenant)
// neither take each other's slot nor report or drop it as a leftover of
// their own.
func (n PostgresNames) InDatabase(database string) PostgresNames {
	capture := pgCaptureName(database, n.Schema, n.Table)
	n.Database, n.Slot, n.Publication = database, capture, capture
	return n
}

// FitPostgresName is base+suffix, base cut (on a character boundary) so that
// the result fits in an identifier (63 bytes).
func FitPostgresName(base, suffix string) string {
	max := pgMaxIdent - len(suffix)
	for len(base) > max {
		_, size := utf8.DecodeLastRuneInString(base)
		base = base[:len(base)-size]
	}
	return base + suffix
}

func pgCaptureName(database, schema, name string) string {
	raw := name
	if schema != "public" {
		raw = schema + "_" + name
	}
	var b strings.Builder
	b.WriteString("osc_")
	for _, r := range raw {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r - 'A' + 'a')
		default:
			b.WriteByte('_')
		}
	}
	h := fnv.New32a()
	h.Write([]byte(database + "\x00" + schema + "\x00" + name))
	suffix := fmt.Sprintf("_%08x", h.Sum32())
	s := b.String()
	if len(s) > pgMaxIdent-len(suffix) {
		s = s[:pgMaxIdent-len(suffix)]
	}
	return s + suffix
}

// PostgresServer holds the server facts osc checks before starting.
type PostgresServer struct {
	Version             int // server_version_num
	WalLevel            string
	MaxReplicationSlots int
	ReplicationSlots    int // slots in use
	MaxWalSenders       int
	WalSenders          int // WAL sender processes running
	User                string
	Superuser           bool
	Replication         bool // the user has the REPLICATION attribute
	Database            string
	// CreateOnDatabase: the user has the CREATE privilege on the database,
	// which CREATE PUBLICATION and osc's scratch schema need.
	CreateOnDatabase bool
}

// ReadPostgresServer reads the server facts.
func ReadPostgresServer(ctx context.Context, q PostgresQuerier) (PostgresServer, error) {
	var s PostgresServer
	err := q.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, current_setting('wal_level'),
		current_setting('max_replication_slots')::int, (SELECT count(*) FROM pg_replication_slots)::int,
		current_setting('max_wal_senders')::int,
		(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::int,
		r.rolname, r.rolsuper, r.rolreplication, current_database(), has_database_privilege(current_database(), 'CREATE')
		FROM pg_roles r WHERE r.rolname = current_user`).Scan(&s.Version, &s.WalLevel, &s.MaxReplicationSlots,
		&s.ReplicationSlots, &s.MaxWalSenders, &s.WalSenders, &s.User, &s.Superuser, &s.Replication, &s.Database, &s.CreateOnDatabase)
	if err != nil {
		return s, fmt.Errorf("read server settings: %w", err)
	}
	return s, nil
}

// MinPostgresVersion is the oldest server osc reads changes from, as
// server_version_num: PostgreSQL 14, whose pgoutput sends logical decoding
// messages (osc's markers).
const MinPostgresVersion = 140000

// Check refuses a server osc cannot read changes from, naming the fixes.
func (s PostgresServer) Check() error {
	var problems []string
	if s.Version < MinPostgresVersion {
		problems = append(problems, fmt.Sprintf("PostgreSQL %d is too old: osc needs PostgreSQL 14 or later (pgoutput with logical decoding messages)", s.Version))
	}
	if s.WalLevel != "logical" {
		problems = append(problems, fmt.Sprintf("wal_level is %q: osc reads changes through logical decoding; set wal_level = logical in postgresql.conf and restart PostgreSQL", s.WalLevel))
	}
	if s.MaxReplicationSlots-s.ReplicationSlots < 1 {
		problems = append(problems, fmt.Sprintf("no free replication slot (max_replication_slots = %d, %d in use): drop an unused slot (SELECT pg_drop_replication_slot('name')) or raise max_replication_slots and restart",
			s.MaxReplicationSlots, s.ReplicationSlots))
	}
	if s.MaxWalSenders-s.WalSenders < 1 {
		problems = append(problems, fmt.Sprintf("no free WAL sender (max_wal_senders = %d, %d running): raise max_wal_senders and restart",
			s.MaxWalSenders, s.WalSenders))
	}
	if !s.Superuser && !s.Replication {
		problems = append(problems, fmt.Sprintf("user %s lacks the REPLICATION attribute osc needs for logical replication: ALTER ROLE %s REPLICATION",
			s.User, QuotePostgres(s.User)))
	}
	if !s.CreateOnDatabase {
		problems = append(problems, fmt.Sprintf("user %s lacks the CREATE privilege on database %s, which osc needs for its publication and for the scratch schema in which it learns the names a plain ALTER TABLE gives: GRANT CREATE ON DATABASE %s TO %s",
			s.User, s.Database, QuotePostgres(s.Database), QuotePostgres(s.User)))
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

// PostgresLock is the per-table advisory lock that keeps two osc runs off the
// same table, held on a connection of its own until Release.
type PostgresLock struct {
	conn *pgx.Conn
	key  string
}

// postgresLockWait is how long LockPostgres waits for a held lock: a run
// killed with SIGKILL leaves its lock with its session until the server has
// noticed the closed connection, a moment after the process is gone on a
// loaded server, and a --resume started at once would be refused.
const postgresLockWait = 5 * time.Second

// LockPostgres takes pg_try_advisory_lock(hashtext('osc:<schema>.<name>')),
// trying again for a few seconds (postgresLockWait) while it is held.
func LockPostgres(ctx context.Context, pool *pgxpool.Pool, schema, name string) (*PostgresLock, error) {
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("advisory lock: connect: %w", err)
	}
	l := &PostgresLock{conn: conn, key: "osc:" + schema + "." + name}
	// The lock dies with the session: an idle session must not be ended.
	if _, err := conn.Exec(ctx, "SET idle_session_timeout = 0"); err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42704" { // undefined_object: before PostgreSQL 14
			conn.Close(ctx)
			return nil, fmt.Errorf("advisory lock: %w", err)
		}
	}
	var got bool
	for deadline := time.Now().Add(postgresLockWait); ; {
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtext($1))", l.key).Scan(&got); err != nil {
			conn.Close(ctx)
			return nil, fmt.Errorf("advisory lock %s: %w", l.key, err)
		}
		if got || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			conn.Close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("advisory lock %s: %w", l.key, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !got {
		conn.Close(ctx)
		return nil, fmt.Errorf("another osc is migrating %s.%s (advisory lock hashtext('%s') is held; "+
			"SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = hashtext('%s')::oid shows its session)",
			schema, name, l.key, l.key)
	}
	return l, nil
}

// Release releases the lock and closes its connection.
func (l *PostgresLock) Release(ctx context.Context) error {
	_, err := l.conn.Exec(ctx, "SELECT pg_advisory_unlock(hashtext($1))", l.key)
	if cerr := l.conn.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("release advisory lock %s: %w", l.key, err)
	}
	return nil
}
