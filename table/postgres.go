package table

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"sort"
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
	// The logical replication slot and the publication, set by InDatabase:
	// slot names are cluster-wide, so they name the database too.
	Database          string
	Slot, Publication string
}

// NewPostgresNames returns the names for schema.name: _<t>_osc, _<t>_old and
// _<t>_osk; the slot and the publication are named once the database is
// known (InDatabase).
func NewPostgresNames(schema, name string) PostgresNames {
	return PostgresNames{
		Schema: schema, Table: name,
		Shadow: FitPostgresName("_"+name, "_osc"), Old: FitPostgresName("_"+name, "_old"),
		Checkpoint: FitPostgresName("_"+name, "_osk"),
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

// pgColumn is a column with the catalog facts the plan needs.
type pgColumn struct {
	Column
	Num        int16 // attnum
	Identity   bool
	HasDefault bool
	// Missing: the column has a missing value (atthasmissing), the one its
	// ADD COLUMN's non-volatile DEFAULT gave the rows that existed then;
	// Default is that DEFAULT's expression.
	Missing bool
	Default string
	// Collation is the column's collation (0: none); Deterministic: it
	// compares equal only equal strings (a nondeterministic ICU collation,
	// case-insensitive say, does not).
	Collation     uint32
	Deterministic bool
}

func pgReadColumns(ctx context.Context, q PostgresQuerier, oid uint32) ([]pgColumn, error) {
	rows, err := q.Query(ctx, `SELECT a.attnum, a.attname, format_type(a.atttypid, NULL), format_type(a.atttypid, a.atttypmod),
		NOT a.attnotnull, a.attgenerated <> '', a.attidentity <> '', a.atthasdef, a.atthasmissing,
		coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attcollation,
		coalesce((SELECT co.collisdeterministic FROM pg_collation co WHERE co.oid = a.attcollation), true)
		FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, oid)
	if err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgColumn, error) {
		var c pgColumn
		err := r.Scan(&c.Num, &c.Name, &c.DataType, &c.ColumnType, &c.Nullable, &c.Generated, &c.Identity, &c.HasDefault, &c.Missing, &c.Default,
			&c.Collation, &c.Deterministic)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	return cols, nil
}

func pgTable(schema, name string, cols []pgColumn) *Table {
	t := &Table{Schema: schema, Name: name}
	for _, c := range cols {
		t.Columns = append(t.Columns, c.Column)
	}
	return t
}

// pgIndex is one index as pg_index describes it.
type pgIndex struct {
	Name                                                   string
	Primary, Unique, Exclusion, Immediate, Valid, NullsNot bool // NullsNot: NULLS NOT DISTINCT
	Columns                                                []string
	Include                                                []string
	Exprs, Pred                                            string
	Method                                                 string
	OpClasses, Options, Collations                         string
	ConstraintDef                                          string // the exclusion constraint
}

func pgReadIndexes(ctx context.Context, q PostgresQuerier, oid uint32, version int) ([]pgIndex, error) {
	nullsNot := "false"
	if version >= 150000 {
		nullsNot = "i.indnullsnotdistinct"
	}
	rows, err := q.Query(ctx, `SELECT c.relname, i.indisprimary, i.indisunique, i.indisexclusion, i.indimmediate,
		i.indisvalid AND i.indisready AND i.indislive, `+nullsNot+`, i.indnkeyatts::int,
		ARRAY(SELECT coalesce(a.attname::text, '') FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(num, ord)
			LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num ORDER BY k.ord),
		coalesce(pg_get_expr(i.indexprs, i.indrelid), ''), coalesce(pg_get_expr(i.indpred, i.indrelid), ''),
		am.amname, i.indclass::text, i.indoption::text, i.indcollation::text,
		coalesce((SELECT pg_get_constraintdef(con.oid) FROM pg_constraint con
			WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype = 'x' LIMIT 1), '')
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
		WHERE i.indrelid = $1 ORDER BY c.relname`, oid)
	if err != nil {
		return nil, fmt.Errorf("read indexes: %w", err)
	}
	idx, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgIndex, error) {
		var ix pgIndex
		var nkey int
		var all []string
		err := r.Scan(&ix.Name, &ix.Primary, &ix.Unique, &ix.Exclusion, &ix.Immediate, &ix.Valid, &ix.NullsNot, &nkey,
			&all, &ix.Exprs, &ix.Pred, &ix.Method, &ix.OpClasses, &ix.Options, &ix.Collations, &ix.ConstraintDef)
		if nkey > len(all) {
			nkey = len(all)
		}
		ix.Columns, ix.Include = all[:nkey], all[nkey:]
		return ix, err
	})
	if err != nil {
		return nil, fmt.Errorf("read indexes: %w", err)
	}
	return idx, nil
}

// keyUsable reports whether the index identifies rows and can be an ON
// CONFLICT arbiter: valid, unique, not deferrable, no expression, not
// partial, over NOT NULL columns.
func (ix pgIndex) keyUsable(cols []pgColumn) bool {
	if !ix.Valid || !ix.Unique || !ix.Immediate || ix.Exprs != "" || ix.Pred != "" || len(ix.Columns) == 0 {
		return false
	}
	for _, name := range ix.Columns {
		c := pgFindColumn(cols, name)
		if c == nil || c.Nullable {
			return false
		}
	}
	return true
}

func (ix pgIndex) describe() string {
	kind := "unique index"
	switch {
	case ix.Primary:
		kind = "primary key"
	case ix.Exclusion:
		kind = "exclusion constraint"
	case !ix.Unique:
		kind = "index"
	}
	cols := make([]string, len(ix.Columns))
	for i, c := range ix.Columns {
		if c == "" {
			c = "<expression>"
		}
		cols[i] = c
	}
	s := fmt.Sprintf("%s %s (%s)", kind, ix.Name, strings.Join(cols, ", "))
	if ix.Pred != "" {
		s += " WHERE " + ix.Pred
	}
	return s
}

// signature describes the index with its column names passed through rename;
// ok is false when a column has no name under rename. strict adds operator
// classes, options and collations, which change with a column's type.
func (ix pgIndex) signature(rename func(string) (string, bool), strict bool) (string, bool) {
	mapCols := func(cols []string) (string, bool) {
		out := make([]string, len(cols))
		for i, c := range cols {
			if c == "" {
				continue
			}
			n, ok := rename(c)
			if !ok {
				return "", false
			}
			out[i] = n
		}
		return strings.Join(out, ","), true
	}
	key, ok := mapCols(ix.Columns)
	if !ok {
		return "", false
	}
	inc, ok := mapCols(ix.Include)
	if !ok {
		return "", false
	}
	parts := []string{ix.Method, fmt.Sprint(ix.Primary, ix.Unique, ix.Exclusion, ix.NullsNot), key, inc, ix.Exprs, ix.Pred}
	if strict {
		parts = append(parts, ix.OpClasses, ix.Options, ix.Collations, ix.ConstraintDef)
	}
	return strings.Join(parts, "\x00"), true
}

func pgFindColumn(cols []pgColumn, name string) *pgColumn {
	for i := range cols {
		if cols[i].Name == name {
			return &cols[i]
		}
	}
	return nil
}

// PostgresInspection is what InspectPostgresTable found out about the original.
type PostgresInspection struct {
	Names         PostgresNames
	Server        PostgresServer
	OID           uint32
	Source        *Table
	EstimatedRows int64
	SizeBytes     int64
	Notes         []string // long transactions, views re-created and foreign keys moved at cut-over
	// PartitionKey is a partitioned table's (pg_get_partkeydef; "" for an
	// ordinary table), Partitions its partitions (postgres_partition.go).
	PartitionKey string
	Partitions   []PostgresPartition
}

// pgTableFacts is what the refusals are decided on.
type pgTableFacts struct {
	Exists            bool
	Kind, Persistence string // relkind, relpersistence
	Owner             string
	Owns              bool // the user is (a member of) the owner
	RowSecurity       bool // row security enabled or forced
	Policies          []string
	Parents, Children int // pg_inherits both ways
	HasKey            bool
	HasPrimary        bool     // a primary key (usable or not)
	ReplIdent         string   // relreplident
	AllTablesPubs     []string // FOR ALL TABLES
	SchemaPubs        []string // FOR TABLES IN SCHEMA of the table's schema
	TablePubs         []string // publications listing the table
	Rules             []string
	MatViews          []string // materialized views reading the table
	OtherRules        []string // rules of other relations reading the table (not a view's _RETURN)
	ForeignViews      []string // views reading the table that the user does not own
	RowTypeUsers      []string // objects using the table's row type
	Functions         []string // functions whose body is bound to the table (BEGIN ATOMIC)
	SelfForeignKeys   []string
	PartitionedFKs    []string        // foreign keys to the table from partitioned tables
	Partitioning      *pgPartitioning // a partitioned table's key and partitions
	ForeignChildren   []string        // foreign keys to the table from tables the user does not own
	LeftoverPub       bool
	LeftoverSlot      bool
	LeftoverSlotPID   int32
	// LeftoverSlotRetained is the WAL the leftover slot keeps, in bytes.
	LeftoverSlotRetained int64
	LeftoverShadow       bool
	LeftoverOld          bool
	OldRows              int64 // the old table's row estimate
	LeftoverCheckpoint   bool
	CheckpointSaved      string // when the killed run saved its checkpoint ("" if it saved none)
	// Resume: the user resumes the killed run, whose leftovers are then no
	// refusal (the dialect's Resume checks them).
	Resume bool
}

// problems lists every refusal, each naming its fix.
func (f *pgTableFacts) problems(n PostgresNames) []string {
	t := n.Schema + "." + n.Table
	if !f.Exists {
		return []string{fmt.Sprintf("table %s does not exist", t)}
	}
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	list := func(s []string) string { return strings.Join(s, ", ") }
	switch f.Kind {
	case "r":
	case "p":
		if f.Partitioning == nil {
			add("%s is a partitioned table whose partitions were not read", t)
			break
		}
		for _, problem := range f.Partitioning.Problems {
			add("%s is a partitioned table and %s", t, problem)
		}
	default:
		add("%s is not an ordinary table (relkind %q)", t, f.Kind)
	}
	if f.Persistence != "p" {
		add("%s is unlogged or temporary: its changes are not written to the WAL, so logical decoding cannot capture them; ALTER TABLE %s SET LOGGED first",
			t, QuotePostgres(n.Schema, n.Table))
	}
	if !f.Owns {
		add("%s is owned by %s: run osc as the owner (or a member of its role), as the swap renames the table", t, f.Owner)
	}
	if f.Parents > 0 || f.Children > 0 && f.Kind != "p" {
		add("%s takes part in inheritance (%d parents, %d children): osc does not migrate inherited tables or partitions", t, f.Parents, f.Children)
	}
	if !f.HasKey {
		add("%s has no PRIMARY KEY and no usable UNIQUE index (valid, not deferrable, not partial, no expression, all columns NOT NULL); "+
			"osc needs one to copy and apply rows: add a PRIMARY KEY first", t)
	}
	switch {
	case f.ReplIdent == "n", f.ReplIdent == "d" && !f.HasPrimary:
		add("the replica identity of %s carries no key (%s), so logical replication cannot tell which row an UPDATE or DELETE changed: "+
			"ALTER TABLE %s REPLICA IDENTITY USING INDEX <a unique index on NOT NULL columns> (or REPLICA IDENTITY FULL)",
			t, map[string]string{"n": "NOTHING", "d": "DEFAULT, and no primary key"}[f.ReplIdent], QuotePostgres(n.Schema, n.Table))
	}
	if len(f.AllTablesPubs) > 0 {
		add("publication %s is FOR ALL TABLES: it would publish osc's shadow table too; osc refuses to run while one exists (DROP PUBLICATION %s, or migrate outside osc)",
			list(f.AllTablesPubs), QuotePostgres(f.AllTablesPubs[0]))
	}
	if len(f.SchemaPubs) > 0 {
		add("publication %s publishes every table of schema %s (FOR TABLES IN SCHEMA): it would publish osc's shadow table too; ALTER PUBLICATION %s DROP TABLES IN SCHEMA %s first",
			list(f.SchemaPubs), n.Schema, QuotePostgres(f.SchemaPubs[0]), QuotePostgres(n.Schema))
	}
	if len(f.TablePubs) > 0 {
		add("%s is in publication %s, which would keep publishing the old table after the swap: ALTER PUBLICATION %s DROP TABLE %s first and add the table back after the migration",
			t, list(f.TablePubs), QuotePostgres(f.TablePubs[0]), QuotePostgres(n.Schema, n.Table))
	}
	if !f.Resume {
		p = append(p, f.leftovers(n)...)
	}
	if f.RowSecurity || len(f.Policies) > 0 {
		add("%s has row level security enabled or policies (%s), which osc does not carry over yet: disable and drop them first and re-create them after the migration",
			t, list(f.Policies))
	}
	if len(f.Rules) > 0 {
		add("%s has rules (%s), which osc does not carry over yet: drop them first and re-create them after the migration", t, list(f.Rules))
	}
	if len(f.MatViews) > 0 {
		add("materialized views read %s (%s), which osc does not carry over yet: drop them first and re-create them after the migration", t, list(f.MatViews))
	}
	if len(f.OtherRules) > 0 {
		add("rules of other relations read %s (%s), which osc does not carry over yet: drop them first", t, list(f.OtherRules))
	}
	if len(f.ForeignViews) > 0 {
		add("views read %s (%s) that the user does not own; osc re-creates them on the new table at cut-over and must own them: run osc as their owner or ALTER VIEW ... OWNER TO the user",
			t, list(f.ForeignViews))
	}
	if len(f.RowTypeUsers) > 0 {
		add("the row type of %s is used by %s, which would stay bound to the old table: drop them first", t, list(f.RowTypeUsers))
	}
	if len(f.Functions) > 0 {
		add("functions %s have bodies bound to %s (BEGIN ATOMIC), which would keep using the old table: drop them first and re-create them after the migration", list(f.Functions), t)
	}
	if len(f.SelfForeignKeys) > 0 {
		add("%s has self-referencing foreign keys (%s), which osc does not carry over yet: drop them first and re-add them after the migration", t, list(f.SelfForeignKeys))
	}
	if len(f.ForeignChildren) > 0 {
		add("foreign keys reference %s from tables the user does not own (%s); osc moves them to the new table at cut-over and must own those tables: run osc as their owner",
			t, list(f.ForeignChildren))
	}
	if len(f.PartitionedFKs) > 0 {
		add("partitioned tables reference %s (%s), which osc cannot move to the new table yet: drop those foreign keys first", t, list(f.PartitionedFKs))
	}
	return p
}

// pgStrings runs a query returning one text column.
func pgStrings(ctx context.Context, q PostgresQuerier, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// InspectPostgresTable checks the server and the table named by n, and reads
// the table. Every refusal names its fix; all are reported at once.
func InspectPostgresTable(ctx context.Context, q PostgresQuerier, n PostgresNames) (*PostgresInspection, error) {
	return InspectPostgresTableFor(ctx, q, n, false)
}

// InspectPostgresTableFor is InspectPostgresTable; resume: what a killed run
// of this migration left is no refusal (the user resumes it).
func InspectPostgresTableFor(ctx context.Context, q PostgresQuerier, n PostgresNames, resume bool) (*PostgresInspection, error) {
	srv, err := ReadPostgresServer(ctx, q)
	if err != nil {
		return nil, err
	}
	in := &PostgresInspection{Names: n, Server: srv}
	f, err := pgReadFacts(ctx, q, n, srv.Version, in)
	if err != nil {
		return nil, fmt.Errorf("inspect %s.%s: %w", n.Schema, n.Table, err)
	}
	f.Resume = resume
	check := srv
	if resume && f.LeftoverSlot {
		// The resumed run takes up the killed run's slot: it needs no other.
		check.ReplicationSlots--
	}
	var problems []string
	if err := check.Check(); err != nil {
		problems = append(problems, err.Error())
	}
	problems = append(problems, f.problems(n)...)
	if len(problems) > 0 {
		return nil, fmt.Errorf("osc cannot migrate %s.%s:\n  - %s", n.Schema, n.Table, strings.Join(problems, "\n  - "))
	}
	cols, err := pgReadColumns(ctx, q, in.OID)
	if err != nil {
		return nil, err
	}
	in.Source = pgTable(n.Schema, n.Table, cols)
	if in.EstimatedRows < 0 {
		if err := q.QueryRow(ctx, "SELECT count(*) FROM "+QuotePostgres(n.Schema, n.Table)).Scan(&in.EstimatedRows); err != nil {
			return nil, fmt.Errorf("count rows: %w", err)
		}
	}
	notes, err := pgLongTransactions(ctx, q)
	if err != nil {
		return nil, err
	}
	in.Notes = append(in.Notes, notes...)
	views, err := pgStrings(ctx, q, `SELECT DISTINCT v.oid::regclass::text FROM pg_depend d
		JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
		JOIN pg_class v ON v.oid = r.ev_class
		WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND v.oid <> $1 AND v.relkind = 'v' ORDER BY 1`, in.OID)
	if err != nil {
		return nil, fmt.Errorf("read views: %w", err)
	}
	if len(views) > 0 {
		in.Notes = append(in.Notes, "views re-created on the new table at cut-over: "+strings.Join(views, ", "))
	}
	fks, err := pgStrings(ctx, q, `SELECT con.conname || ' on ' || con.conrelid::regclass::text FROM pg_constraint con
		WHERE con.contype = 'f' AND con.confrelid = $1 AND con.conrelid <> $1 AND con.conparentid = 0 ORDER BY 1`, in.OID)
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	if len(fks) > 0 {
		in.Notes = append(in.Notes, "foreign keys moved to the new table at cut-over (NOT VALID, validated right after): "+strings.Join(fks, ", "))
	}
	return in, nil
}

// RecheckPostgresTable repeats the inspection's refusals on a table being
// migrated, for the cut-over to run with the table locked: a rule,
// policy, publication or dependent object added during the run would
// otherwise be left on the old table or break the swap. osc's own
// publication, slot and shadow exist by now and are not refusals.
func RecheckPostgresTable(ctx context.Context, q PostgresQuerier, n PostgresNames) error {
	srv, err := ReadPostgresServer(ctx, q)
	if err != nil {
		return err
	}
	f, err := pgReadFacts(ctx, q, n, srv.Version, &PostgresInspection{Names: n})
	if err != nil {
		return fmt.Errorf("inspect %s.%s again: %w", n.Schema, n.Table, err)
	}
	f.LeftoverPub, f.LeftoverSlot, f.LeftoverShadow, f.LeftoverCheckpoint = false, false, false, false
	if problems := f.problems(n); len(problems) > 0 {
		return fmt.Errorf("%s.%s changed during the migration; osc cannot swap it:\n  - %s",
			n.Schema, n.Table, strings.Join(problems, "\n  - "))
	}
	return nil
}

func pgReadFacts(ctx context.Context, q PostgresQuerier, n PostgresNames, version int, in *PostgresInspection) (*pgTableFacts, error) {
	f := &pgTableFacts{}
	var reltuples float64
	var nsp uint32
	err := q.QueryRow(ctx, `SELECT c.oid, n.oid, c.relkind::text, c.relpersistence::text, pg_get_userbyid(c.relowner),
		pg_has_role(c.relowner, 'USAGE'), c.relrowsecurity OR c.relforcerowsecurity, c.reltuples::float8,
		pg_total_relation_size(c.oid), c.relreplident::text
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
		n.Schema, n.Table).Scan(&in.OID, &nsp, &f.Kind, &f.Persistence, &f.Owner, &f.Owns, &f.RowSecurity, &reltuples, &in.SizeBytes, &f.ReplIdent)
	if errors.Is(err, pgx.ErrNoRows) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read table: %w", err)
	}
	f.Exists = true
	in.EstimatedRows = int64(reltuples)
	if reltuples < 0 {
		in.EstimatedRows = -1
	}
	oid := in.OID

	if err := q.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_inherits WHERE inhrelid = $1)::int,
		(SELECT count(*) FROM pg_inherits WHERE inhparent = $1)::int`, oid).Scan(&f.Parents, &f.Children); err != nil {
		return nil, fmt.Errorf("read inheritance: %w", err)
	}
	if f.Kind == "p" {
		var unknown bool
		if f.Partitioning, err = pgReadPartitioning(ctx, q, oid); err != nil {
			return nil, err
		}
		in.PartitionKey, in.Partitions = f.Partitioning.Key, f.Partitioning.Partitions
		// The root holds no rows: the partitions' estimates and sizes.
		if err := q.QueryRow(ctx, `SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::int8, coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8,
			coalesce(bool_or(c.reltuples < 0), false) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1`, oid).Scan(
			&in.EstimatedRows, &in.SizeBytes, &unknown); err != nil {
			return nil, fmt.Errorf("read the partitions' sizes: %w", err)
		}
		if unknown { // a partition never analyzed: counted
			in.EstimatedRows = -1
		}
	}
	cols, err := pgReadColumns(ctx, q, oid)
	if err != nil {
		return nil, err
	}
	idx, err := pgReadIndexes(ctx, q, oid, version)
	if err != nil {
		return nil, err
	}
	for _, ix := range idx {
		if ix.keyUsable(cols) {
			f.HasKey = true
		}
		if ix.Primary {
			f.HasPrimary = true
		}
	}

	type list struct {
		dst  *[]string
		what string
		sql  string
		args []any
	}
	lists := []list{
		{&f.AllTablesPubs, "publications", `SELECT pubname FROM pg_publication WHERE puballtables ORDER BY 1`, nil},
		{&f.TablePubs, "publications", `SELECT p.pubname FROM pg_publication p JOIN pg_publication_rel r ON r.prpubid = p.oid
			WHERE r.prrelid = $1 ORDER BY 1`, []any{oid}},
		{&f.Policies, "policies", `SELECT polname FROM pg_policy WHERE polrelid = $1 ORDER BY 1`, []any{oid}},
		{&f.Rules, "rules", `SELECT rulename FROM pg_rewrite WHERE ev_class = $1 ORDER BY 1`, []any{oid}},
		{&f.MatViews, "materialized views", `SELECT DISTINCT v.oid::regclass::text FROM pg_depend d
			JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
			JOIN pg_class v ON v.oid = r.ev_class
			WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND v.oid <> $1 AND v.relkind = 'm' ORDER BY 1`, []any{oid}},
		{&f.OtherRules, "rules", `SELECT DISTINCT r.rulename || ' on ' || v.oid::regclass::text FROM pg_depend d
			JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
			JOIN pg_class v ON v.oid = r.ev_class
			WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND v.oid <> $1 AND v.relkind <> 'm'
			AND r.rulename <> '_RETURN' ORDER BY 1`, []any{oid}},
		{&f.ForeignViews, "views", `SELECT DISTINCT v.oid::regclass::text || ' (owner ' || pg_get_userbyid(v.relowner) || ')' FROM pg_depend d
			JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
			JOIN pg_class v ON v.oid = r.ev_class
			WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND v.oid <> $1 AND v.relkind = 'v'
			AND NOT pg_has_role(v.relowner, 'USAGE') ORDER BY 1`, []any{oid}},
		{&f.RowTypeUsers, "row type users", `SELECT pg_describe_object(d.classid, d.objid, d.objsubid) FROM pg_depend d
			WHERE d.refclassid = 'pg_type'::regclass AND d.refobjid = (SELECT reltype FROM pg_class WHERE oid = $1)
			AND d.deptype = 'n' ORDER BY 1`, []any{oid}},
		{&f.Functions, "functions", `SELECT DISTINCT d.objid::regprocedure::text FROM pg_depend d
			WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 ORDER BY 1`, []any{oid}},
		{&f.SelfForeignKeys, "foreign keys", `SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = $1 AND confrelid = $1 ORDER BY 1`, []any{oid}},
		{&f.PartitionedFKs, "foreign keys", `SELECT con.conname || ' on ' || con.conrelid::regclass::text FROM pg_constraint con
			JOIN pg_class c ON c.oid = con.conrelid
			WHERE con.contype = 'f' AND con.confrelid = $1 AND con.conrelid <> $1 AND (c.relkind = 'p' OR c.relispartition) ORDER BY 1`, []any{oid}},
		{&f.ForeignChildren, "foreign keys", `SELECT con.conname || ' on ' || con.conrelid::regclass::text || ' (owner ' || pg_get_userbyid(c.relowner) || ')'
			FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
			WHERE con.contype = 'f' AND con.confrelid = $1 AND con.conrelid <> $1 AND NOT pg_has_role(c.relowner, 'USAGE') ORDER BY 1`, []any{oid}},
	}
	if version >= 150000 {
		lists = append(lists, list{&f.SchemaPubs, "publications", `SELECT p.pubname FROM pg_publication p JOIN pg_publication_namespace s ON s.pnpubid = p.oid
			WHERE s.pnnspid = $1 ORDER BY 1`, []any{nsp}})
	}
	for _, l := range lists {
		if *l.dst, err = pgStrings(ctx, q, l.sql, l.args...); err != nil {
			return nil, fmt.Errorf("read %s: %w", l.what, err)
		}
	}
	// osc's own publication is reported as a leftover, not as a user's.
	f.TablePubs = pgWithout(f.TablePubs, n.Publication)

	err = q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1),
		EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $2 AND database = current_database()),
		coalesce((SELECT active_pid FROM pg_replication_slots WHERE slot_name = $2 AND database = current_database()), 0),
		coalesce((SELECT (pg_current_wal_insert_lsn() - restart_lsn)::int8 FROM pg_replication_slots
			WHERE slot_name = $2 AND database = current_database() AND NOT pg_is_in_recovery()), 0),
		EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = $3 AND relname = $4),
		EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = $3 AND relname = $5),
		coalesce((SELECT reltuples::int8 FROM pg_class WHERE relnamespace = $3 AND relname = $5), 0),
		EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = $3 AND relname = $6)`,
		n.Publication, n.Slot, nsp, n.Shadow, n.Old, n.Checkpoint).Scan(&f.LeftoverPub, &f.LeftoverSlot, &f.LeftoverSlotPID,
		&f.LeftoverSlotRetained, &f.LeftoverShadow, &f.LeftoverOld, &f.OldRows, &f.LeftoverCheckpoint)
	if err != nil {
		return nil, fmt.Errorf("look for leftovers: %w", err)
	}
	if f.LeftoverCheckpoint {
		if f.CheckpointSaved, err = pgCheckpointSaved(ctx, q, n); err != nil {
			return nil, fmt.Errorf("look for leftovers: %w", err)
		}
	}
	return f, nil
}

func pgWithout(s []string, drop string) []string {
	out := s[:0:0]
	for _, v := range s {
		if v != drop {
			out = append(out, v)
		}
	}
	return out
}

// pgLongTransactions describes transactions open for more than a minute.
func pgLongTransactions(ctx context.Context, q PostgresQuerier) ([]string, error) {
	notes, err := pgStrings(ctx, q, `SELECT format('long transaction: pid %s (%s, %s) open for %s: %s',
			pid, coalesce(usename, backend_type), coalesce(state, ''), date_trunc('second', now() - xact_start),
			left(regexp_replace(coalesce(query, ''), '\s+', ' ', 'g'), 80))
		FROM pg_stat_activity WHERE xact_start < now() - interval '1 minute' AND pid <> pg_backend_pid()
		ORDER BY xact_start`)
	if err != nil {
		return nil, fmt.Errorf("read long transactions: %w", err)
	}
	if len(notes) > 0 {
		notes = append(notes,
			"change capture starts only once transactions open now have ended (creating a logical replication slot waits for them)",
			"long transactions holding locks on the table will hold the cut-over lock queue: the cut-over retries until they end")
	}
	return notes, nil
}

// PostgresForeignKey is a foreign key the new table gets at cut-over.
type PostgresForeignKey struct {
	Name       string
	Definition string // pg_get_constraintdef text, without NOT VALID
	References string // the referenced table (regclass text)
	Validate   bool   // validate after the swap (false: it was NOT VALID on the original)
	// Check, when set, finds the rows a plain ALTER TABLE would refuse the
	// key for: the cut-over runs it first and fails if it finds one.
	Check *PostgresForeignKeyCheck
}

// PostgresShadow is the created shadow table and what the cut-over needs to
// know of it beyond the plan.
type PostgresShadow struct {
	Plan *Plan
	// ForeignKeys are the shadow's own foreign keys (the original's, as
	// changed by the --alter), kept off the shadow while rows are copied and
	// added to the new table at cut-over.
	ForeignKeys []PostgresForeignKey
	// Checks are the shadow's NOT VALID CHECK constraints, kept off the
	// shadow while rows are copied and added NOT VALID at cut-over.
	Checks []PostgresCheck
	// Renames are names of the original the shadow's objects take at cut-over.
	Renames []PostgresRename
	// RestartedIdentity are identity columns whose sequence the --alter
	// restarted: the cut-over keeps their position.
	RestartedIdentity []string
	// AlwaysIdentity are the shadow's GENERATED ALWAYS identity columns,
	// GENERATED BY DEFAULT while rows are copied and applied (an update of
	// the original may change the column; ALWAYS would refuse to carry it)
	// and ALWAYS again at cut-over.
	AlwaysIdentity []string
	// OwnerSet: the --alter gives the table an owner (OWNER TO), which the
	// cut-over keeps.
	OwnerSet bool
	// Triggers are the original's triggers as the --alter left them on the
	// shadow, kept off it while rows are copied and applied and made on it
	// in the cut-over's transaction.
	Triggers []PostgresTrigger
	// Indexes are the shadow's non-unique indexes, kept off it while rows
	// are copied and built once the copy is over (postgres_indexes.go).
	Indexes []PostgresIndex
	// Partitions are a partitioned table's partitions, each with its shadow
	// partition, which takes the partition's name at cut-over.
	Partitions []PostgresPartition
}

// SplitPostgresAlter splits the --alter at top-level semicolons (outside
// quotes, dollar quotes and comments) into ALTER TABLE clauses, so that
// RENAME, which PostgreSQL does not combine with other clauses, can be given
// too. A part with nothing but white space and comments is no clause.
func SplitPostgresAlter(alter string) []string {
	var parts []string
	start, tokens := 0, 0
	flush := func(end int) {
		if tokens > 0 {
			parts = append(parts, strings.TrimSpace(alter[start:end]))
		}
	}
	for _, t := range pgLex(alter) {
		if t.Kind == pgPunct && t.Text == ";" {
			flush(t.Start)
			start, tokens = t.End, 0
			continue
		}
		tokens++
	}
	flush(len(alter))
	return parts
}

// pgDollarTag reports whether s is $tag$ with an identifier-like tag.
func pgDollarTag(s string) bool {
	for i, r := range s[1 : len(s)-1] {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= 0x80 || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// CreatePostgresShadow creates the shadow table like the original (defaults,
// constraints, indexes, identity, generated columns, storage, comments,
// storage parameters and foreign keys), applies the --alter to it and builds
// the plan, in one transaction: any refusal leaves nothing behind. lockTimeout
// bounds its waits for locks (on the original, and on the tables its foreign
// keys reference).
func CreatePostgresShadow(ctx context.Context, pool *pgxpool.Pool, in *PostgresInspection, alter string, lockTimeout time.Duration) (*PostgresShadow, error) {
	clauses := SplitPostgresAlter(alter)
	if len(clauses) == 0 {
		return nil, errors.New("the --alter is empty")
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("create shadow: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	sh, err := pgCreateShadow(ctx, tx, in, clauses, lockTimeout)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("create shadow: commit: %w", err)
	}
	return sh, nil
}

func pgCreateShadow(ctx context.Context, tx pgx.Tx, in *PostgresInspection, clauses []string, lockTimeout time.Duration) (*PostgresShadow, error) {
	if c := pgPartitionClause(clauses); c != "" {
		return nil, fmt.Errorf("the --alter has %s: osc copies the rows a table holds and cannot follow rows that arrive or leave with a partition; run ALTER TABLE … %s directly (it is a catalog change, with DETACH PARTITION … CONCURRENTLY or an ATTACH over a validated CHECK constraint matching the bound taking no long lock)", c, c)
	}
	n := in.Names
	orig, shadow := QuotePostgres(n.Schema, n.Table), QuotePostgres(n.Schema, n.Shadow)
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", max(lockTimeout.Milliseconds(), 1))); err != nil {
		return nil, fmt.Errorf("create shadow: %w", err)
	}
	var tablespace string
	var reloptions []string
	if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT spcname FROM pg_tablespace WHERE oid = c.reltablespace), ''),
		coalesce(c.reloptions, '{}') || ARRAY(SELECT 'toast.' || o FROM pg_class t, unnest(t.reloptions) o WHERE t.oid = c.reltoastrelid)
		FROM pg_class c WHERE c.oid = $1`, in.OID).Scan(&tablespace, &reloptions); err != nil {
		return nil, fmt.Errorf("create shadow: read table options: %w", err)
	}
	create := fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING ALL)%s", shadow, orig, in.pgPartitionBy())
	if tablespace != "" {
		create += " TABLESPACE " + QuotePostgres(tablespace)
	}
	if _, err := tx.Exec(ctx, create); err != nil {
		return nil, fmt.Errorf("create shadow %s: %w", shadow, err)
	}
	if err := pgCreateShadowPartitions(ctx, tx, in); err != nil {
		return nil, err
	}
	if len(reloptions) > 0 {
		if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s SET (%s)", shadow, PostgresRelOptions(reloptions))); err != nil {
			return nil, fmt.Errorf("create shadow: copy storage parameters: %w", err)
		}
	}
	var shadowOID uint32
	if err := tx.QueryRow(ctx, "SELECT $1::regclass::oid", shadow).Scan(&shadowOID); err != nil {
		return nil, fmt.Errorf("create shadow: %w", err)
	}
	// LIKE lays the columns out in the original's order with fresh attnums;
	// a column keeps its attnum through RENAME COLUMN and ALTER TYPE.
	pre, err := pgReadColumns(ctx, tx, shadowOID)
	if err != nil {
		return nil, err
	}
	preAlter := map[int16]string{}
	for _, c := range pre {
		preAlter[c.Num] = c.Name
	}
	// The original's foreign keys go on the shadow, valid or not as on the
	// original, so that the --alter sees them; they are read back and taken
	// off before any row is copied.
	origFKs, err := pgReadForeignKeys(ctx, tx, in.OID)
	if err != nil {
		return nil, err
	}
	for _, fk := range origFKs {
		stmt := fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", shadow, QuotePostgres(fk.Name), fk.Definition)
		if !fk.Validate {
			stmt += " NOT VALID"
		}
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return nil, fmt.Errorf("create shadow: copy foreign key %s: %w", fk.Name, err)
		}
	}
	if err := pgCopyCheckValidity(ctx, tx, in.OID, shadow); err != nil {
		return nil, err
	}
	origTriggers, err := pgCopyTriggers(ctx, tx, in.OID, n)
	if err != nil {
		return nil, err
	}
	identity, err := pgPrepareIdentity(ctx, tx, in.OID, shadowOID)
	if err != nil {
		return nil, err
	}
	naming, err := pgLearnNames(ctx, tx, in, clauses)
	if err != nil {
		return nil, err
	}

	srcIdx, err := pgReadIndexes(ctx, tx, in.OID, in.Server.Version)
	if err != nil {
		return nil, err
	}
	likeIdx, err := pgReadIndexes(ctx, tx, shadowOID, in.Server.Version)
	if err != nil {
		return nil, err
	}
	indexNames := map[string]string{}
	for _, p := range pgPairIndexes(srcIdx, likeIdx, func(s string) (string, bool) { return s, true }) {
		indexNames[p[0]] = p[1]
	}
	if err := pgCopyProperties(ctx, tx, in.OID, n.Schema, n.Shadow, indexNames); err != nil {
		return nil, err
	}
	using, err := pgNewUsingTracker(ctx, tx, n, shadowOID, preAlter)
	if err != nil {
		return nil, err
	}
	added := pgNewAddedTracker(shadowOID, pre)
	for _, c := range clauses {
		c = pgMapConstraintNames(pgMapNewIndexNames(c, indexNames, n.Shadow), indexNames)
		if c, err = using.prepare(c); err != nil {
			return nil, err
		}
		// The extended protocol runs exactly one statement.
		if _, err := tx.Conn().PgConn().ExecParams(ctx, "ALTER TABLE "+shadow+" "+c, nil, nil, nil, nil).Close(); err != nil {
			return nil, fmt.Errorf("the --alter fails on the shadow table (ALTER TABLE %s %s): %w", shadow, c, err)
		}
		if err := using.applied(ctx, tx); err != nil {
			return nil, err
		}
		if err := added.applied(ctx, tx, n, c); err != nil {
			return nil, err
		}
	}
	var relname, nspname, relkind string
	var inherits bool
	if err := tx.QueryRow(ctx, `SELECT c.relname, n.nspname, c.relkind::text, EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = c.oid)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`, shadowOID).Scan(&relname, &nspname, &relkind, &inherits); err != nil {
		return nil, fmt.Errorf("read shadow: %w", err)
	}
	if relname != n.Shadow || nspname != n.Schema {
		return nil, errors.New("the --alter renames the table or moves it to another schema; osc changes a table in place: rename it with ALTER TABLE directly")
	}
	if relkind != map[bool]string{false: "r", true: "p"}[in.Partitioned()] || inherits {
		return nil, errors.New("the --alter makes the table partitioned or inherit from another; osc does not support that")
	}
	renames, err := pgApplyNames(ctx, tx, in, shadowOID, naming)
	if err != nil {
		return nil, err
	}

	post, err := pgReadColumns(ctx, tx, shadowOID)
	if err != nil {
		return nil, err
	}
	src, err := pgReadColumns(ctx, tx, in.OID)
	if err != nil {
		return nil, err
	}
	shIdx, err := pgReadIndexes(ctx, tx, shadowOID, in.Server.Version)
	if err != nil {
		return nil, err
	}
	pgDisplayNames(shIdx, renames)
	replIdent, err := pgReadReplicaIdentity(ctx, tx, in.OID)
	if err != nil {
		return nil, err
	}
	addedFills, addedNotes, err := added.fills(ctx, tx, n, post)
	if err != nil {
		return nil, err
	}
	plan, kept, err := pgBuildPlan(pgPlanInput{Names: n, Source: src, Shadow: post, PreAlter: preAlter, Values: using.values(), AddedFills: addedFills,
		SourceIndexes: srcIdx, ShadowIndexes: shIdx, EstimatedRows: in.EstimatedRows, ReplIdent: replIdent})
	if err != nil {
		return nil, err
	}
	plan.Notes = append(plan.Notes, addedNotes...)
	if err := pgCheckUsing(ctx, tx, plan, in.OID, src); err != nil {
		return nil, err
	}
	if err := pgCheckDependents(ctx, tx, in.OID, plan, kept, shIdx); err != nil {
		return nil, err
	}

	// The shadow's foreign keys: carried over at cut-over, off the shadow meanwhile
	// (a row copied after its parent's deletion must not fail the copy).
	shFKs, err := pgReadForeignKeys(ctx, tx, shadowOID)
	if err != nil {
		return nil, err
	}
	out := &PostgresShadow{Plan: plan, OwnerSet: pgAlterSetsOwner(clauses), Partitions: in.Partitions}
	for _, fk := range shFKs {
		if fk.ReferencesOID == shadowOID {
			return nil, fmt.Errorf("the --alter adds a self-referencing foreign key %s; osc does not carry those over yet: add it after the migration", fk.Name)
		}
		if fk.Check, err = pgForeignKeyCheck(ctx, tx, shadowOID, fk, origFKs, plan); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", shadow, QuotePostgres(fk.Name))); err != nil {
			return nil, fmt.Errorf("create shadow: set foreign key %s aside: %w", fk.Name, err)
		}
		out.ForeignKeys = append(out.ForeignKeys, fk.PostgresForeignKey)
		how := "NOT VALID, validated right after"
		switch {
		case !fk.Validate:
			how = "NOT VALID, as a plain ALTER TABLE leaves it"
		case fk.Check != nil:
			how = "NOT VALID, validated right after; before the cut-over osc checks the rows for it, and fails if one does not match, as a plain ALTER TABLE fails"
		}
		plan.Notes = append(plan.Notes, fmt.Sprintf("foreign key %s added to the new table at cut-over (%s)", fk.Name, how))
	}
	if out.Checks, err = pgSetAsideChecks(ctx, tx, shadowOID, shadow); err != nil {
		return nil, err
	}
	if out.Triggers, err = pgSetAsideTriggers(ctx, tx, shadowOID, shadow, origTriggers); err != nil {
		return nil, err
	}
	for _, t := range out.Triggers {
		plan.Notes = append(plan.Notes, fmt.Sprintf("trigger %s made on the new table at cut-over, in the transaction that swaps the tables: "+
			"it fires for the application's writes, never for the copy and the applier", t.Name))
	}
	for _, c := range out.Checks {
		plan.Notes = append(plan.Notes, fmt.Sprintf("check constraint %s added to the new table at cut-over, NOT VALID: it checks the writes after the cut-over, not the rows copied", c.Name))
	}
	if out.RestartedIdentity, err = pgRestartedIdentity(ctx, tx, shadowOID, identity); err != nil {
		return nil, err
	}
	if out.AlwaysIdentity, err = pgIdentityByDefault(ctx, tx, shadowOID, shadow); err != nil {
		return nil, err
	}
	out.Renames = renames
	// A partitioned shadow keeps its indexes: its partitions' indexes depend
	// on them (pg_depend), which pgSetAsideIndexes leaves alone.
	if out.Indexes, err = pgSetAsideIndexes(ctx, tx, shadowOID, n.Schema); err != nil {
		return nil, err
	}
	for _, x := range out.Indexes {
		plan.Notes = append(plan.Notes, fmt.Sprintf("index %s built on the new table once the rows are copied", x.Name))
	}

	if in.Partitioned() {
		names := make([]string, len(in.Partitions))
		for i, p := range in.Partitions {
			names[i] = p.Name
		}
		plan.Notes = append(plan.Notes, fmt.Sprintf("partitioned (%s): the shadow is a partition tree with a shadow partition for each of %s, copied, captured (publish_via_partition_root) and compared through the root; "+
			"at cut-over each partition becomes _<partition>_old and its shadow partition takes its name", in.PartitionKey, strings.Join(names, ", ")))
	}
	plan.Notes = append(plan.Notes, fmt.Sprintf("rows: ~%d, size %s", in.EstimatedRows, pgSize(in.SizeBytes)))
	plan.Notes = append(plan.Notes, in.Notes...)
	plan.Notes = append(plan.Notes, fmt.Sprintf("cut-over: LOCK TABLE %s and then %s IN ACCESS EXCLUSIVE MODE (with the views reading it and, through them, their tables, "+
		"and the tables its foreign keys link) for the time it takes to drain the last changes and swap the names, with a short lock_timeout and retries", orig, shadow))
	return out, nil
}

// PostgresRelOptions renders pg_class.reloptions ("key=value", or
// "toast.key=value") for a WITH (...) or SET (...) list.
func PostgresRelOptions(opts []string) string {
	parts := make([]string, len(opts))
	for i, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		parts[i] = QuotePostgres(strings.Split(k, ".")...) + " = '" + strings.ReplaceAll(v, "'", "''") + "'"
	}
	return strings.Join(parts, ", ")
}

func pgSize(b int64) string {
	units := []string{"bytes", "kB", "MB", "GB", "TB"}
	v, u := float64(b), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d bytes", b)
	}
	return fmt.Sprintf("%.1f %s", v, units[u])
}

type pgForeignKey struct {
	PostgresForeignKey
	ReferencesOID uint32 // confrelid
}

// pgReadForeignKeys reads the table's foreign keys (its own constraints, not
// those of partitions), with NOT VALID cut off the definition.
func pgReadForeignKeys(ctx context.Context, q PostgresQuerier, oid uint32) ([]pgForeignKey, error) {
	rows, err := q.Query(ctx, `SELECT conname, pg_get_constraintdef(oid), convalidated, confrelid, confrelid::regclass::text
		FROM pg_constraint WHERE contype = 'f' AND conrelid = $1 AND conparentid = 0 ORDER BY conname`, oid)
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	fks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgForeignKey, error) {
		var fk pgForeignKey
		err := r.Scan(&fk.Name, &fk.Definition, &fk.Validate, &fk.ReferencesOID, &fk.References)
		fk.Definition = strings.TrimSuffix(fk.Definition, " NOT VALID")
		return fk, err
	})
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	return fks, nil
}

// pgCheckDependents refuses an --alter that the cut-over could not carry the
// original's dependents through: a view reading a column the alter drops,
// renames or retypes (CREATE OR REPLACE VIEW would fail), or a foreign key
// from another table whose referenced columns lose their name or their
// unique index.
func pgCheckDependents(ctx context.Context, tx pgx.Tx, oid uint32, plan *Plan, shadowOf map[string]string, shIdx []pgIndex) error {
	rows, err := tx.Query(ctx, `SELECT DISTINCT v.oid::regclass::text, a.attname FROM pg_depend d
		JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
		JOIN pg_class v ON v.oid = r.ev_class
		JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
		WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND d.refobjsubid > 0 AND v.oid <> $1 ORDER BY 1, 2`, oid)
	if err != nil {
		return fmt.Errorf("read view columns: %w", err)
	}
	type use struct{ view, col string }
	uses, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (use, error) {
		var u use
		return u, r.Scan(&u.view, &u.col)
	})
	if err != nil {
		return fmt.Errorf("read view columns: %w", err)
	}
	for _, u := range uses {
		sh, ok := shadowOf[u.col]
		switch {
		case !ok:
			return fmt.Errorf("view %s reads column %s, which the --alter drops: drop or change the view first", u.view, u.col)
		case sh != u.col:
			return fmt.Errorf("view %s reads column %s, which the --alter renames to %s: drop or change the view first", u.view, u.col, sh)
		}
		sc, dc := plan.Source.Columns[plan.Source.ColumnIndex(u.col)], plan.Shadow.Columns[plan.Shadow.ColumnIndex(sh)]
		if sc.ColumnType != dc.ColumnType {
			return fmt.Errorf("view %s reads column %s, whose type the --alter changes (%s -> %s); the view could not be re-created on the new table: drop or change the view first",
				u.view, u.col, sc.ColumnType, dc.ColumnType)
		}
	}

	rows, err = tx.Query(ctx, `SELECT con.conname || ' on ' || con.conrelid::regclass::text,
		ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(num, ord)
			JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord)
		FROM pg_constraint con WHERE con.contype = 'f' AND con.confrelid = $1 AND con.conrelid <> $1 AND con.conparentid = 0`, oid)
	if err != nil {
		return fmt.Errorf("read foreign keys: %w", err)
	}
	type ref struct {
		name string
		cols []string
	}
	refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ref, error) {
		var f ref
		return f, r.Scan(&f.name, &f.cols)
	})
	if err != nil {
		return fmt.Errorf("read foreign keys: %w", err)
	}
	for _, f := range refs {
		for _, c := range f.cols {
			if sh, ok := shadowOf[c]; !ok || sh != c {
				return fmt.Errorf("foreign key %s references column %s, which the --alter drops or renames: drop the foreign key first", f.name, c)
			}
		}
		found := false
		for _, ix := range shIdx {
			if ix.Valid && ix.Unique && ix.Immediate && ix.Exprs == "" && ix.Pred == "" && pgSameSet(ix.Columns, f.cols) {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("foreign key %s references (%s), which has no unique index left after the --alter: drop the foreign key first",
				f.name, strings.Join(f.cols, ", "))
		}
	}
	return nil
}

func pgSameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		if seen[s] == 0 {
			return false
		}
		seen[s]--
	}
	return true
}

type pgPlanInput struct {
	Names                        PostgresNames
	Source, Shadow               []pgColumn
	PreAlter                     map[int16]string  // shadow attnum → original column name, read before the alter
	Values                       map[int16]pgValue // shadow attnum → the value a USING computes
	SourceIndexes, ShadowIndexes []pgIndex
	EstimatedRows                int64
	ReplIdent                    pgReplicaIdentity // the original's
	AddedFills                   map[int16]string  // shadow attnum → what osc writes into an added column (pgAddedTracker.fills)
}

// pgMissingValue is the value a plain ALTER's ADD COLUMN gives every existing
// row when its DEFAULT is not volatile (now(), CURRENT_DATE, a constant):
// evaluated once, for all rows, where the DEFAULT the copy's INSERT leaves to
// the server would give each chunk its own transaction's now(). The ALTER
// that made the shadow evaluated it once too and kept it as the column's
// missing value (attmissingval), in the catalog, where a resumed run finds it
// again. When a rewrite cleared it, osc keeps it elsewhere (postgres_added.go).
func pgMissingValue(n PostgresNames, c *pgColumn) string {
	return pgMissingValueOf(QuotePostgres(n.Schema, n.Shadow), c.Name, c.ColumnType, c.Default)
}

// pgMissingValueOf reads the missing value of column col of table rel (quoted,
// qualified) as a value of type typ: read back as text and cast in the same
// session, it is exact. The one-element array's text is read as a text[]
// whose element is cast: an array type's element is itself an array, which
// typ[] would take for a second dimension. Should something rewrite rel
// (VACUUM FULL) and clear it, the expression def is evaluated instead (NULL
// when "").
func pgMissingValueOf(rel, col, typ, def string) string {
	if def == "" {
		def = "NULL"
	}
	return fmt.Sprintf("coalesce((SELECT %s FROM pg_catalog.pg_attribute a "+
		"WHERE a.attrelid = %s::regclass AND a.attname = %s AND a.atthasmissing), %s)",
		pgMissingElement("a.attmissingval::text", typ), pgLiteral(rel), pgLiteral(col), def)
}

// pgMissingElement is SQL for the element of the one-element array whose
// text is the expression arr, as a value of type typ.
func pgMissingElement(arr, typ string) string {
	return fmt.Sprintf("CAST((%s::text[])[1] AS %s)", arr, typ)
}

// pgBuildPlan maps the original's columns onto the shadow's by attnum,
// chooses the key and refuses a shadow that would lose or reject rows:
// a unique or exclusion constraint the original does not guarantee, a new
// NOT NULL column without a default, a generated column made ordinary.
// kept maps every original column the shadow keeps (generated ones too) to
// its shadow name.
func pgBuildPlan(in pgPlanInput) (plan *Plan, kept map[string]string, err error) {
	p := &Plan{
		Source:  pgTable(in.Names.Schema, in.Names.Table, in.Source),
		Shadow:  pgTable(in.Names.Schema, in.Names.Shadow, in.Shadow),
		OldName: in.Names.Old, EstimatedRows: in.EstimatedRows,
	}
	shadowOf := map[string]*pgColumn{} // original name → shadow column
	toSource := map[string]string{}    // shadow name → original name
	kept = map[string]string{}
	for i := range in.Shadow {
		sc := &in.Shadow[i]
		if orig, ok := in.PreAlter[sc.Num]; ok {
			shadowOf[orig] = sc
			toSource[sc.Name] = orig
			kept[orig] = sc.Name
		}
	}
	var notes []string
	for i, c := range in.Source {
		sc := shadowOf[c.Name]
		if sc == nil {
			if c.Generated {
				notes = append(notes, "drop generated column "+c.Name)
			} else {
				notes = append(notes, "drop column "+c.Name+" (its data will be lost)")
			}
			continue
		}
		if sc.Name != c.Name {
			notes = append(notes, "rename column "+c.Name+" -> "+sc.Name)
		}
		if v, ok := in.Values[sc.Num]; ok {
			notes = append(notes, fmt.Sprintf("change column %s: %s -> %s, value computed USING %s", sc.Name, c.ColumnType, sc.ColumnType, strings.Join(v.Using, ", then USING ")))
		} else if sc.ColumnType != c.ColumnType {
			notes = append(notes, fmt.Sprintf("change column %s: %s -> %s", sc.Name, c.ColumnType, sc.ColumnType))
		}
		if c.Nullable && !sc.Nullable {
			notes = append(notes, fmt.Sprintf("column %s becomes NOT NULL: a NULL in the original makes the copy fail", sc.Name))
		}
		switch {
		case c.Generated && !sc.Generated:
			return nil, nil, fmt.Errorf("the --alter makes generated column %s an ordinary one; logical replication does not carry generated values, so osc cannot fill it: "+
				"add a new column and fill it after the migration instead", c.Name)
		case c.Generated:
		case sc.Generated:
			notes = append(notes, "column "+c.Name+" becomes generated (computed by the database)")
		default:
			p.Mapping = append(p.Mapping, ColumnMap{Source: c.Name, Shadow: sc.Name, SourceIndex: i, Expr: in.Values[sc.Num].Expr})
		}
	}
	for _, sc := range in.Shadow {
		if _, ok := in.PreAlter[sc.Num]; ok {
			continue
		}
		if !sc.Nullable && !sc.HasDefault && !sc.Identity && !sc.Generated {
			return nil, nil, fmt.Errorf("the --alter adds column %s NOT NULL without a default: rows copied from the original cannot fill it; give it a DEFAULT", sc.Name)
		}
		kind := "column"
		if sc.Generated {
			kind = "generated column"
		}
		notes = append(notes, fmt.Sprintf("add %s %s %s", kind, sc.Name, sc.ColumnType))
		if expr, ok := in.AddedFills[sc.Num]; ok {
			p.Fills = append(p.Fills, ColumnFill{Shadow: sc.Name, Expr: expr})
		} else if sc.Missing && !sc.Generated && !sc.Identity {
			p.Fills = append(p.Fills, ColumnFill{Shadow: sc.Name, Expr: pgMissingValue(in.Names, &sc)})
		}
	}
	typeSafe := func(shadowName string) bool {
		orig, ok := toSource[shadowName]
		if !ok {
			return false
		}
		sc := shadowOf[orig]
		if v, ok := in.Values[sc.Num]; ok && !v.Cast {
			return false // a USING computes other values
		}
		src := pgFindColumn(in.Source, orig)
		if sc.Collation != src.Collation && !sc.Deterministic {
			return false // a nondeterministic collation makes distinct strings equal
		}
		return PostgresEqualityKept(src.ColumnType, sc.ColumnType)
	}
	unchanged := func(shadowName string) bool {
		orig, ok := toSource[shadowName]
		if !ok || !typeSafe(shadowName) {
			return false
		}
		sc, src := shadowOf[orig], pgFindColumn(in.Source, orig)
		return sc.ColumnType == src.ColumnType && sc.Collation == src.Collation
	}
	newUnique, err := pgCheckNewUnique(in.SourceIndexes, in.ShadowIndexes, toSource, typeSafe, unchanged)
	if err != nil {
		return nil, nil, err
	}
	p.NewUnique = newUnique
	key, rowKey, err := pgChooseKey(in, shadowOf, typeSafe)
	if err != nil {
		return nil, nil, err
	}
	for _, k := range key.Columns {
		p.Key = append(p.Key, k)
		p.KeyIndex = append(p.KeyIndex, p.Source.ColumnIndex(k))
	}
	notes = append(notes, "key: "+key.describe())
	for _, k := range rowKey {
		p.RowKey = append(p.RowKey, k)
		p.RowKeyIndex = append(p.RowKeyIndex, p.Source.ColumnIndex(k))
	}
	if rowKey != nil {
		notes = append(notes, "rows of the altered table identified by ("+strings.Join(rowKey, ", ")+"), which holds the key")
	}
	p.Notes = notes
	return p, kept, nil
}

// PostgresEqualityKept reports whether changing a column's type from one to
// the other keeps distinct values distinct (so a unique index over it stays
// implied): the same type, a wider integer, text and varchar of any length,
// or a numeric with no fewer digits either side of the point. Each such
// change also keeps the values' order, collations aside.
func PostgresEqualityKept(from, to string) bool {
	if from == to {
		return true
	}
	ints := map[string]int{"smallint": 1, "integer": 2, "bigint": 3}
	if a, b := ints[from], ints[to]; a > 0 && b > 0 {
		return b >= a
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
			return s2 >= s1 && p2-s2 >= p1-s1
		}
	}
	return false
}

// pgCheckNewUnique refuses a unique index or exclusion constraint of the
// shadow that no valid index of the original implies: copying with ON
// CONFLICT DO NOTHING would drop the rows violating it silently. A shadow
// index is implied by an original one with the same definition, or (plain
// unique indexes) by a non-partial unique index on a subset of its columns.
func pgCheckNewUnique(src, sh []pgIndex, toSource map[string]string, typeSafe, unchanged func(string) bool) ([]UniqueKey, error) {
	var out []UniqueKey
	rename := func(s string) (string, bool) { n, ok := toSource[s]; return n, ok }
	same := func(s string) (string, bool) { return s, true }
	for _, u := range sh {
		if !u.Unique && !u.Exclusion {
			continue
		}
		colsSafe := true
		for _, c := range append(append([]string{}, u.Columns...), u.Include...) {
			if c != "" && !typeSafe(c) {
				colsSafe = false
			}
		}
		implied := false
		if colsSafe {
			us, ok := u.signature(rename, true)
			for _, o := range src {
				if !o.Valid {
					continue
				}
				if os, _ := o.signature(same, true); ok && os == us {
					implied = true
					break
				}
				if u.Unique && u.Exprs == "" && o.Unique && o.Exprs == "" && o.Pred == "" && (!u.NullsNot || o.NullsNot) &&
					pgSubset(o.Columns, u.Columns, rename) {
					implied = true
					break
				}
			}
		}
		if !implied {
			nu, ok, err := pgNewUnique(u, toSource, unchanged)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, nu)
				continue
			}
			return nil, fmt.Errorf("the shadow table would have %s, which the original does not guarantee (a new exclusion constraint or primary key, a new unique index that is "+
				"partial, over an expression or deferrable, one over a column that the --alter adds or whose type, collation or values (USING) it changes, "+
				"or the copy of an invalid index of the original, which must then be dropped first): copying with ON CONFLICT DO NOTHING would silently "+
				"drop the rows that violate it, and osc adds a new unique key, checking every clash "+
				"with the original, only as an immediate UNIQUE over columns the --alter leaves as they are; migrate without it and add it afterwards (CREATE UNIQUE INDEX CONCURRENTLY)",
				u.describe())
		}
	}
	return out, nil
}

// pgSubset reports whether every column of o (original names) is among the
// columns of u (shadow names, mapped back by rename).
func pgSubset(o, u []string, rename func(string) (string, bool)) bool {
	have := map[string]bool{}
	for _, c := range u {
		n, ok := rename(c)
		if !ok {
			return false
		}
		have[n] = true
	}
	for _, c := range o {
		if !have[c] {
			return false
		}
	}
	return len(o) > 0
}

// pgChooseKey returns the original's primary key, or else its unique index
// with the fewest columns, that is usable as a key in the original and whose
// columns reach the shadow (types keeping equality) and form a usable key
// there too; else one the shadow has only within a wider key, and that
// key's columns (see pgSharedKey).
func pgChooseKey(in pgPlanInput, shadowOf map[string]*pgColumn, typeSafe func(string) bool) (pgIndex, []string, error) {
	var cands []pgIndex
	for _, ix := range in.SourceIndexes {
		if ix.keyUsable(in.Source) {
			cands = append(cands, ix)
		}
	}
	// A key the replica identity does not carry cannot be captured.
	sort.SliceStable(cands, func(i, j int) bool {
		if ci, cj := in.ReplIdent.covers(cands[i].Columns), in.ReplIdent.covers(cands[j].Columns); ci != cj {
			return ci
		}
		if cands[i].Primary != cands[j].Primary {
			return cands[i].Primary
		}
		return len(cands[i].Columns) < len(cands[j].Columns)
	})
	for _, ix := range cands {
		var want []string
		for _, c := range ix.Columns {
			sc := shadowOf[c]
			if sc == nil || sc.Generated || !typeSafe(sc.Name) {
				want = nil
				break
			}
			want = append(want, sc.Name)
		}
		if want == nil {
			continue
		}
		for _, u := range in.ShadowIndexes {
			if u.keyUsable(in.Shadow) && pgSameSet(u.Columns, want) {
				if !in.ReplIdent.covers(ix.Columns) {
					return pgIndex{}, nil, in.ReplIdent.refusal(in.Names, ix)
				}
				return ix, nil, nil
			}
		}
	}
	if len(cands) == 0 {
		return pgIndex{}, nil, fmt.Errorf("table %s.%s has no PRIMARY KEY and no usable UNIQUE index; osc needs one to copy and apply rows: add a PRIMARY KEY first",
			in.Names.Schema, in.Names.Table)
	}
	return pgSharedKey(in, shadowOf, typeSafe, cands)
}

// pgPairIndexes pairs each old index with a new one of the same definition
// (new columns mapped back by rename): first exactly, then ignoring operator
// classes, options and collations (which follow a column's type), then the
// primary keys left over.
func pgPairIndexes(oldIdx, newIdx []pgIndex, rename func(string) (string, bool)) [][2]string {
	same := func(s string) (string, bool) { return s, true }
	used := make([]bool, len(newIdx))
	paired := map[string]bool{}
	var pairs [][2]string
	match := func(o pgIndex, ok func(pgIndex) bool) {
		for j, u := range newIdx {
			if !used[j] && ok(u) {
				used[j], paired[o.Name] = true, true
				pairs = append(pairs, [2]string{o.Name, u.Name})
				return
			}
		}
	}
	for _, strict := range []bool{true, false} {
		for _, o := range oldIdx {
			if paired[o.Name] {
				continue
			}
			os, _ := o.signature(same, strict)
			match(o, func(u pgIndex) bool { us, ok := u.signature(rename, strict); return ok && us == os })
		}
	}
	for _, o := range oldIdx {
		if o.Primary && !paired[o.Name] {
			match(o, func(u pgIndex) bool { return u.Primary })
		}
	}
	return pairs
}

// pgConstraintRef matches the clauses of an ALTER TABLE that name an index
// or an index-backed constraint, and the name.
var pgConstraintRef = regexp.MustCompile(`(?i)\b((?:DROP\s+CONSTRAINT\s+(?:IF\s+EXISTS\s+)?|ALTER\s+CONSTRAINT\s+|RENAME\s+CONSTRAINT\s+|VALIDATE\s+CONSTRAINT\s+|USING\s+INDEX\s+|CLUSTER\s+ON\s+))("(?:[^"]|"")+"|[A-Za-z_\x{80}-\x{10FFFF}][A-Za-z0-9_$\x{80}-\x{10FFFF}]*)`)

// pgMapConstraintNames rewrites the names of the original's indexes and
// index-backed constraints (primary key, unique, exclusion) in an --alter
// clause to their counterparts on the shadow, which LIKE had to name
// differently (index names are unique in a schema). Other constraints keep
// their names on the shadow.
func pgMapConstraintNames(clause string, names map[string]string) string {
	return pgConstraintRef.ReplaceAllStringFunc(clause, func(m string) string {
		sub := pgConstraintRef.FindStringSubmatch(m)
		name := sub[2]
		if strings.HasPrefix(name, `"`) {
			name = strings.ReplaceAll(name[1:len(name)-1], `""`, `"`)
		} else {
			name = strings.ToLower(name)
		}
		if to, ok := names[name]; ok {
			return sub[1] + QuotePostgres(to)
		}
		return m
	})
}

// DropPostgresTable drops schema.name if it exists, refusing to cascade to
// objects that depend on it.
func DropPostgresTable(ctx context.Context, q PostgresQuerier, schema, name string) error {
	if _, err := q.Exec(ctx, "DROP TABLE IF EXISTS "+QuotePostgres(schema, name)+" RESTRICT"); err != nil {
		return fmt.Errorf("drop table %s.%s: %w", schema, name, err)
	}
	return nil
}
