package probe

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/throttle"
)

// PostgresHeartbeatPrefix is the prefix of the logical decoding messages osc
// writes as heartbeats. They are not transactional: no transaction id is
// used, and the change capture, which reads only transactional 'osc'
// messages, ignores them.
const PostgresHeartbeatPrefix = "osc_heartbeat"

// pgHeartbeatHistory is how far back the heartbeats are remembered: a standby
// further behind reports this much lag (still far above any threshold).
const pgHeartbeatHistory = 10 * time.Minute

// pgBeat is one heartbeat: when osc wrote it and the WAL position it ended at.
type pgBeat struct {
	at  time.Time
	lsn int64
}

// PostgresProbe measures a PostgreSQL primary and its standbys. Every
// HeartbeatInterval osc writes a small WAL record (a non-transactional
// logical message) and remembers when, and at which WAL position. A standby
// that has replayed up to position R is as current as the newest heartbeat at
// or before R: its lag is osc's clock now minus that heartbeat's time, so the
// servers' clocks do not matter. The heartbeats also keep WAL flowing, so the
// replay positions standbys report to pg_stat_replication stay fresh.
//
// Standbys are those streaming from the primary (pg_stat_replication, read
// on the primary) and those given as connection strings or host:port (read
// on the standby itself with pg_last_wal_replay_lsn()).
type PostgresProbe struct {
	pool *pgxpool.Pool // the primary's (not closed by the probe)
	dsn  string        // the primary's connection string, base of host:port replicas
	slot string        // the change capture's replication slot
	log  *slog.Logger

	mu      sync.Mutex
	beats   []pgBeat
	standby map[string]*pgxpool.Pool // given replicas, by entry
}

var _ throttle.Probe = (*PostgresProbe)(nil)

// NewPostgres returns the probe of the primary pool (opened from dsn) whose
// change capture uses slot.
func NewPostgres(pool *pgxpool.Pool, dsn, slot string, log *slog.Logger) *PostgresProbe {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PostgresProbe{pool: pool, dsn: dsn, slot: slot, log: log, standby: map[string]*pgxpool.Pool{}}
}

// Heartbeat writes one heartbeat record and remembers its position.
func (p *PostgresProbe) Heartbeat(ctx context.Context, now time.Time) error {
	var lsn int64
	err := p.pool.QueryRow(ctx, "SELECT (pg_logical_emit_message(false, $1::text, $2::text) - '0/0'::pg_lsn)::bigint",
		PostgresHeartbeatPrefix, strconv.FormatInt(now.UnixMicro(), 10)).Scan(&lsn)
	if err != nil {
		return fmt.Errorf("write heartbeat: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.beats = append(p.beats, pgBeat{at: now, lsn: lsn})
	cut := 0
	for cut < len(p.beats)-1 && now.Sub(p.beats[cut].at) > pgHeartbeatHistory {
		cut++
	}
	p.beats = p.beats[cut:]
	return nil
}

// lagAt is the lag of a standby that has replayed up to lsn.
func (p *PostgresProbe) lagAt(lsn int64, now time.Time) (time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.beats) == 0 {
		return 0, errors.New("no heartbeat written yet")
	}
	// The first heartbeat past the replayed position: everything before the
	// one preceding it was replayed.
	i, _ := slices.BinarySearchFunc(p.beats, lsn, func(b pgBeat, l int64) int {
		if b.lsn <= l {
			return -1
		}
		return 1
	})
	if i == 0 {
		return max(now.Sub(p.beats[0].at), 0), nil
	}
	return max(now.Sub(p.beats[i-1].at), 0), nil
}

// ReplicaLags reads the standbys streaming from the primary and the given
// ones.
func (p *PostgresProbe) ReplicaLags(ctx context.Context, given []string) []throttle.ReplicaLag {
	now := time.Now()
	var out []throttle.ReplicaLag
	streaming, err := p.streaming(ctx)
	if err != nil {
		out = append(out, throttle.ReplicaLag{Name: "pg_stat_replication", Err: err})
	}
	for _, s := range streaming {
		l := throttle.ReplicaLag{Name: s.name, Err: s.err}
		if l.Err == nil {
			l.Lag, l.Err = p.lagAt(s.lsn, now)
		}
		out = append(out, l)
	}
	res := make([]throttle.ReplicaLag, len(given))
	var wg sync.WaitGroup
	for i, g := range given {
		wg.Go(func() {
			res[i].Name = DisplayReplica(g)
			var lsn int64
			if lsn, res[i].Err = p.replayed(ctx, g); res[i].Err == nil {
				res[i].Lag, res[i].Err = p.lagAt(lsn, now)
			}
		})
	}
	wg.Wait()
	p.closeUnused(given)
	return append(out, res...)
}

type pgStreaming struct {
	name string
	lsn  int64
	err  error
}

// streaming lists the physical standbys streaming from the primary with the
// position each reports to have replayed. Logical walsenders (change capture
// such as osc's own) are connected to a database; physical ones are not.
func (p *PostgresProbe) streaming(ctx context.Context) ([]pgStreaming, error) {
	rows, err := p.pool.Query(ctx, `SELECT r.application_name, coalesce(host(r.client_addr), 'local'),
			coalesce(r.client_port, 0), (r.replay_lsn - '0/0'::pg_lsn)::bigint
		FROM pg_stat_replication r JOIN pg_stat_activity a ON a.pid = r.pid
		WHERE a.datname IS NULL AND r.state IN ('streaming', 'catchup')
		ORDER BY 1, 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_replication: %w", err)
	}
	var out []pgStreaming
	for rows.Next() {
		var app, host string
		var port int
		var lsn sql.NullInt64
		if err := rows.Scan(&app, &host, &port, &lsn); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read pg_stat_replication: %w", err)
		}
		s := pgStreaming{name: app + "@" + net.JoinHostPort(host, strconv.Itoa(port)), lsn: lsn.Int64}
		if !lsn.Valid {
			s.err = errors.New("no replay position (standby starting, or osc's user lacks pg_read_all_stats)")
		}
		out = append(out, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pg_stat_replication: %w", err)
	}
	return out, nil
}

// replayed reads the replay position on a given standby.
func (p *PostgresProbe) replayed(ctx context.Context, entry string) (int64, error) {
	pool, err := p.standbyPool(ctx, entry)
	if err != nil {
		return 0, err
	}
	var recovery bool
	var lsn sql.NullInt64
	err = pool.QueryRow(ctx, "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint").Scan(&recovery, &lsn)
	if err != nil {
		return 0, fmt.Errorf("read replay position: %w", err)
	}
	if !recovery || !lsn.Valid {
		return 0, errors.New("not a standby (pg_is_in_recovery() is false)")
	}
	return lsn.Int64, nil
}

// standbyPool returns the connection to a given standby, opening it.
func (p *PostgresProbe) standbyPool(ctx context.Context, entry string) (*pgxpool.Pool, error) {
	p.mu.Lock()
	pool := p.standby[entry]
	p.mu.Unlock()
	if pool != nil {
		return pool, nil
	}
	dsn := entry
	if !throttle.IsDSN(entry) {
		dsn = p.dsn
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("connection string: %w", err)
	}
	if !throttle.IsDSN(entry) {
		host, port, err := net.SplitHostPort(entry)
		if err != nil {
			return nil, fmt.Errorf("want host:port or a connection string: %w", err)
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("port %q: %w", port, err)
		}
		cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Fallbacks = host, uint16(n), nil
	}
	cfg.MaxConns = 1
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > throttle.ProbeTimeout {
		cfg.ConnConfig.ConnectTimeout = throttle.ProbeTimeout
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "osc"
	}
	pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.standby[entry]; old != nil {
		pool.Close()
		return old, nil
	}
	p.standby[entry] = pool
	return pool, nil
}

func (p *PostgresProbe) closeUnused(given []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for entry, pool := range p.standby {
		if !slices.Contains(given, entry) {
			pool.Close()
			delete(p.standby, entry)
		}
	}
}

// DisplayReplica is a replica entry as status lines and logs show it: a
// connection string (which may hold a password) as its host:port.
func DisplayReplica(entry string) string {
	if !throttle.IsDSN(entry) {
		return entry
	}
	cfg, err := pgx.ParseConfig(entry)
	if err != nil {
		return "standby (unparsable connection string)"
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// pgLoadQueries are the load metrics PostgreSQL offers to --max-load and
// --critical-load, with gh-ost's MySQL names as aliases.
var pgLoadQueries = map[string]string{
	"active_backends": `SELECT count(*) FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid()`,
	"connected_backends": `SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'`,
}

var pgLoadAliases = map[string]string{"threads_running": "active_backends", "threads_connected": "connected_backends"}

// Load reads active_backends (alias Threads_running) or connected_backends
// (alias Threads_connected).
func (p *PostgresProbe) Load(ctx context.Context, names []string) ([]int64, error) {
	out := make([]int64, len(names))
	for i, n := range names {
		key := strings.ToLower(n)
		if a, ok := pgLoadAliases[key]; ok {
			key = a
		}
		q, ok := pgLoadQueries[key]
		if !ok {
			return nil, fmt.Errorf("%s: PostgreSQL load metrics are active_backends (alias Threads_running) and connected_backends (alias Threads_connected)", n)
		}
		if err := p.pool.QueryRow(ctx, q).Scan(&out[i]); err != nil {
			return nil, fmt.Errorf("read %s: %w", n, err)
		}
	}
	return out, nil
}

// Query runs the throttle query on the primary.
func (p *PostgresProbe) Query(ctx context.Context, q string) (int64, error) {
	var v sql.NullString
	// The text of the first column, whatever its type.
	rows, err := p.pool.Query(ctx, q, pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	if rows.Next() {
		raw := rows.RawValues()
		if len(raw) == 0 {
			return 0, errors.New("the query returns no column")
		}
		if raw[0] != nil {
			v = sql.NullString{String: string(raw[0]), Valid: true}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	return parseQueryValue(v)
}

// RetainedWAL is the WAL the change capture's slot keeps on the primary.
func (p *PostgresProbe) RetainedWAL(ctx context.Context) (int64, bool, error) {
	var n sql.NullInt64
	err := p.pool.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - restart_lsn)::bigint FROM pg_replication_slots
		WHERE slot_name = $1`, p.slot).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read slot %s: %w", p.slot, err)
	}
	return n.Int64, n.Valid, nil
}

// Close closes the connections to the given standbys.
func (p *PostgresProbe) Close() error {
	p.closeUnused(nil)
	return nil
}
