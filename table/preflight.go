package table

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The preflight report's readers (engine.Preflight): what a DBA checks of the
// table and the server before a schema change. Each reads what the server
// shows any user with osc's privileges.

// TableSize is a table's estimated rows (-1: the server has no estimate) and
// its bytes of data and indexes.
type TableSize struct {
	Rows, Data, Indexes int64
}

// OpenTransaction is a transaction open on the server.
type OpenTransaction struct {
	ID  string
	Who string
	Age time.Duration
	// Holds is "yes" or "no" when the server tells whether the
	// transaction holds a lock on the table, else "".
	Holds string
}

// ReadMySQLTableSize reads the table's size from information_schema (InnoDB's
// estimates, as SHOW TABLE STATUS shows them).
func ReadMySQLTableSize(ctx context.Context, db *sql.DB, schema, name string) (TableSize, error) {
	var s TableSize
	err := db.QueryRowContext(ctx, `SELECT COALESCE(TABLE_ROWS, 0), COALESCE(DATA_LENGTH, 0), COALESCE(INDEX_LENGTH, 0)
		FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, schema, name).Scan(&s.Rows, &s.Data, &s.Indexes)
	if err != nil {
		return s, fmt.Errorf("read the size of %s: %w", QuoteMySQL(schema, name), err)
	}
	return s, nil
}

// ReadMySQLRowsWritten returns a count of the rows written so far and what it
// counts: the table's inserted, updated and deleted rows when the server
// counts them per table (performance_schema, or MariaDB's userstat), else the
// server's row writes to every table (Handler_write, _update, _delete). The
// difference of two reads is the writes in between.
func ReadMySQLRowsWritten(ctx context.Context, db *sql.DB, schema, name string) (n int64, scope string, err error) {
	var ps, us sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT @@performance_schema").Scan(&ps); err == nil && ps.Int64 == 1 {
		if n, err := readMySQLTableIO(ctx, db, schema, name); err == nil {
			return n, "the table", nil
		}
	}
	if err := db.QueryRowContext(ctx, "SELECT @@userstat").Scan(&us); err == nil && us.Int64 == 1 {
		err := db.QueryRowContext(ctx, `SELECT COALESCE(SUM(ROWS_CHANGED), 0) FROM information_schema.TABLE_STATISTICS
			WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, schema, name).Scan(&n)
		if err == nil {
			return n, "the table", nil
		}
	}
	rows, err := db.QueryContext(ctx, `SHOW GLOBAL STATUS WHERE Variable_name IN ('Handler_write', 'Handler_update', 'Handler_delete')`)
	if err != nil {
		return 0, "", fmt.Errorf("read the rows written: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, v string
		if err := rows.Scan(&name, &v); err != nil {
			return 0, "", fmt.Errorf("read the rows written: %w", err)
		}
		c, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, "", fmt.Errorf("read the rows written: %s = %q: %w", name, v, err)
		}
		n += c
	}
	if err := rows.Err(); err != nil {
		return 0, "", fmt.Errorf("read the rows written: %w", err)
	}
	return n, "every table of the server (no count per table without performance_schema or userstat)", nil
}

// readMySQLTableIO returns the rows inserted, updated and deleted in the
// table as performance_schema counts them (every row operation on it, whatever
// index found the row; table_io_waits_summary_by_table has no INDEX_NAME,
// table_io_waits_summary_by_index_usage counts inserts under none).
func readMySQLTableIO(ctx context.Context, db *sql.DB, schema, name string) (int64, error) {
	var n int64
	err := db.QueryRowContext(ctx, `SELECT COALESCE(SUM(COUNT_INSERT + COUNT_UPDATE + COUNT_DELETE), 0)
		FROM performance_schema.table_io_waits_summary_by_table
		WHERE OBJECT_TYPE = 'TABLE' AND OBJECT_SCHEMA = ? AND OBJECT_NAME = ?`, schema, name).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read the rows written to %s from performance_schema: %w", QuoteMySQL(schema, name), err)
	}
	return n, nil
}

// ReadMySQLTransactions returns the oldest InnoDB transactions open for a
// second or more, oldest first, at most n.
func ReadMySQLTransactions(ctx context.Context, db *sql.DB, n int) ([]OpenTransaction, error) {
	// trx_started is the server's system time, whatever the session's
	// time_zone.
	rows, err := db.QueryContext(ctx, `SELECT t.trx_mysql_thread_id, COALESCE(p.USER, ''), COALESCE(p.HOST, ''),
			GREATEST(TIMESTAMPDIFF(MICROSECOND, t.trx_started, CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', 'SYSTEM')), 0)
		FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
		WHERE t.trx_mysql_thread_id <> CONNECTION_ID()
			AND t.trx_started <= CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', 'SYSTEM') - INTERVAL 1 SECOND
		ORDER BY t.trx_started LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("read the open transactions: %w", err)
	}
	defer rows.Close()
	var out []OpenTransaction
	for rows.Next() {
		var id, user, host string
		var us int64
		if err := rows.Scan(&id, &user, &host, &us); err != nil {
			return nil, fmt.Errorf("read the open transactions: %w", err)
		}
		out = append(out, OpenTransaction{ID: "thread " + id, Who: strings.TrimSuffix(user+"@"+host, "@"), Age: time.Duration(us) * time.Microsecond})
	}
	return out, rows.Err()
}

// ReadMySQLBinlogRetention says how long the server keeps its binlogs.
func ReadMySQLBinlogRetention(ctx context.Context, db *sql.DB) (string, error) {
	var secs sql.NullFloat64
	what := "binlog_expire_logs_seconds"
	if err := db.QueryRowContext(ctx, "SELECT @@binlog_expire_logs_seconds").Scan(&secs); err != nil {
		// Before MariaDB 10.6 and MySQL 8.0 only the days exist.
		var days sql.NullFloat64
		if err := db.QueryRowContext(ctx, "SELECT @@expire_logs_days").Scan(&days); err != nil {
			return "", fmt.Errorf("read the binlog retention: %w", err)
		}
		secs, what = sql.NullFloat64{Float64: days.Float64 * 86400, Valid: days.Valid}, "expire_logs_days"
	}
	keep := "binlogs are never purged by age"
	if secs.Float64 > 0 {
		age := (time.Duration(secs.Float64) * time.Second).String()
		if d := int64(secs.Float64); d%86400 == 0 {
			age = fmt.Sprintf("%d days", d/86400)
		}
		keep = fmt.Sprintf("binlogs are purged after %s (%s)", age, what)
	}
	return keep, nil
}

// pgTree is the relation $1 names with its partitions (a partitioned
// table's rows, sizes and writes are its partitions'), as a FROM item named
// tree with one column, oid.
const pgTree = `(SELECT $1::regclass::oid AS oid UNION ALL
	SELECT relid::oid FROM pg_catalog.pg_partition_tree($1::regclass) WHERE level > 0) tree`

// ReadPostgresTableSize reads the table's estimated rows (reltuples: -1, no
// estimate, for a table never vacuumed or analyzed, which is not an empty
// one) and its sizes: the heap with its TOAST table, and its indexes. A
// partitioned table's rows are its leaf partitions': ANALYZE gives a
// partitioned table (the root, a partition partitioned in turn) an estimate
// of the rows under it, counted once already.
func ReadPostgresTableSize(ctx context.Context, pool *pgxpool.Pool, schema, name string) (TableSize, error) {
	var s TableSize
	err := pool.QueryRow(ctx, `SELECT CASE WHEN bool_or(c.reltuples < 0 AND c.relkind <> 'p') THEN -1 ELSE coalesce(sum(greatest(c.reltuples, 0)) FILTER (WHERE c.relkind <> 'p'), 0)::int8 END,
			coalesce(sum(pg_table_size(c.oid)), 0)::int8, coalesce(sum(pg_indexes_size(c.oid)), 0)::int8
		FROM `+pgTree+` JOIN pg_catalog.pg_class c ON c.oid = tree.oid`, QuotePostgres(schema, name)).Scan(&s.Rows, &s.Data, &s.Indexes)
	if err != nil {
		return s, fmt.Errorf("read the size of %s: %w", QuotePostgres(schema, name), err)
	}
	return s, nil
}

// ReadPostgresRowsWritten returns the rows inserted, updated and deleted in
// the table so far, as the statistics collector counts them: sessions
// report their counts when a transaction ends, at most once a second.
func ReadPostgresRowsWritten(ctx context.Context, pool *pgxpool.Pool, schema, name string) (int64, error) {
	var n int64
	err := pool.QueryRow(ctx, `SELECT coalesce(sum(pg_stat_get_tuples_inserted(tree.oid) + pg_stat_get_tuples_updated(tree.oid) + pg_stat_get_tuples_deleted(tree.oid)), 0)::int8
		FROM `+pgTree, QuotePostgres(schema, name)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read the rows written to %s: %w", QuotePostgres(schema, name), err)
	}
	return n, nil
}

// ReadPostgresTransactions returns the oldest transactions of the database
// open for a second or more, oldest first, at most n, and whether each holds
// a lock on the table. A role that is not a superuser and lacks
// pg_read_all_stats sees other roles' sessions without their transaction
// start (their query reads "<insufficient privilege>"): it then returns an
// error rather than no transaction, which would read as none open.
func ReadPostgresTransactions(ctx context.Context, pool *pgxpool.Pool, schema, name string, n int) ([]OpenTransaction, error) {
	var hidden int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_stat_activity a
		WHERE a.datname = current_database() AND a.xact_start IS NULL AND a.query = '<insufficient privilege>'`).Scan(&hidden); err != nil {
		return nil, fmt.Errorf("read the open transactions: %w", err)
	}
	if hidden > 0 {
		return nil, fmt.Errorf("%d session(s) of other roles are hidden from osc's role, whose transactions it cannot see: grant it pg_read_all_stats", hidden)
	}
	rows, err := pool.Query(ctx, `SELECT a.pid, coalesce(a.usename, a.backend_type), coalesce(a.application_name, ''),
			greatest(extract(epoch FROM now() - a.xact_start), 0)::float8,
			EXISTS (SELECT FROM pg_catalog.pg_locks l WHERE l.pid = a.pid AND l.relation IN (SELECT oid FROM `+pgTree+`) AND l.granted)
		FROM pg_catalog.pg_stat_activity a
		WHERE a.xact_start < now() - interval '1 second' AND a.pid <> pg_backend_pid() AND a.datname = current_database()
		ORDER BY a.xact_start LIMIT $2`, QuotePostgres(schema, name), n)
	if err != nil {
		return nil, fmt.Errorf("read the open transactions: %w", err)
	}
	defer rows.Close()
	var out []OpenTransaction
	for rows.Next() {
		var pid int32
		var user, app string
		var secs float64
		var holds bool
		if err := rows.Scan(&pid, &user, &app, &secs, &holds); err != nil {
			return nil, fmt.Errorf("read the open transactions: %w", err)
		}
		who := user
		if app != "" {
			who += ", " + app
		}
		h := "no"
		if holds {
			h = "yes"
		}
		out = append(out, OpenTransaction{ID: "pid " + strconv.Itoa(int(pid)), Who: who,
			Age: time.Duration(secs * float64(time.Second)), Holds: h})
	}
	return out, rows.Err()
}

// ReadPostgresWALRetention says how much WAL a replication slot may retain
// (max_slot_wal_keep_size) and what the server keeps for its standbys.
func ReadPostgresWALRetention(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var slotKeep, walKeep string
	if err := pool.QueryRow(ctx, "SELECT current_setting('max_slot_wal_keep_size'), current_setting('wal_keep_size')").Scan(&slotKeep, &walKeep); err != nil {
		return "", fmt.Errorf("read the WAL retention: %w", err)
	}
	if slotKeep == "-1" {
		return fmt.Sprintf("osc's replication slot keeps the WAL it has not read, without limit (max_slot_wal_keep_size = -1): watch the disk, or set --max-retained-wal; wal_keep_size = %s", walKeep), nil
	}
	return fmt.Sprintf("a replication slot keeps at most %s of WAL (max_slot_wal_keep_size): a copy whose capture falls further behind loses its slot and fails; wal_keep_size = %s", slotKeep, walKeep), nil
}

// ReadPostgresStandbys lists the standbys streaming from the server, with the
// replay lag each reports.
func ReadPostgresStandbys(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	// Logical walsenders (change capture, such as osc's own) are connected
	// to a database; physical ones are not.
	rows, err := pool.Query(ctx, `SELECT coalesce(nullif(r.application_name, ''), 'standby'), coalesce(host(r.client_addr), 'local socket'),
			coalesce(extract(epoch FROM r.replay_lag), 0)::float8, r.state
		FROM pg_catalog.pg_stat_replication r JOIN pg_catalog.pg_stat_activity a ON a.pid = r.pid
		WHERE a.datname IS NULL ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_replication: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var app, host, state string
		var lag float64
		if err := rows.Scan(&app, &host, &lag, &state); err != nil {
			return nil, fmt.Errorf("read pg_stat_replication: %w", err)
		}
		out = append(out, fmt.Sprintf("%s at %s (%s), replay lag %s", app, host, state,
			time.Duration(lag*float64(time.Second)).Round(time.Millisecond)))
	}
	return out, rows.Err()
}
