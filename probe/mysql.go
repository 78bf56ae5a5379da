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

	"osc/table"
	"osc/throttle"
)

// mysqlHeartbeatID is the changelog row the heartbeat upserts. Negative ids
// never come from AUTO_INCREMENT, so the markers' rows are not touched and the
// table keeps one heartbeat row whatever the run's length. The binlog reader
// ignores the row: it turns only inserts with hint 'marker' into markers.
const mysqlHeartbeatID = -1

// mysqlDiscoverInterval is how often the primary is asked for its replicas.
const mysqlDiscoverInterval = 10 * time.Second

// MySQLProbe measures a MySQL/MariaDB primary and its replicas. The heartbeat
// is the current time (UTC microseconds, osc's clock) upserted into the
// changelog table every HeartbeatInterval; a replica's lag is osc's clock now
// minus the heartbeat the replica has applied, so the servers' clocks do not
// matter.
type MySQLProbe struct {
	db        *sql.DB // the primary's pool (not closed by the probe)
	conn      table.MySQLConn
	schema    string
	changelog string
	ownID     uint32 // server_id of osc's own binlog reader
	log       *slog.Logger

	mu           sync.Mutex
	replicas     map[string]*sql.DB // open connections, by host:port
	watched      []string           // discovered replicas verified to be replicas
	ignored      map[string]string  // discovered entries that are not (or not yet) verified: why
	discoveredAt time.Time
}

var _ throttle.Probe = (*MySQLProbe)(nil)

// NewMySQL returns the probe of the primary db; conn (the primary's
// credentials) is used for the replicas too. ownServerID is the server_id
// osc's binlog reader registers with, which SHOW SLAVE HOSTS lists.
func NewMySQL(db *sql.DB, conn table.MySQLConn, schema, changelog string, ownServerID uint32, log *slog.Logger) *MySQLProbe {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &MySQLProbe{db: db, conn: conn, schema: schema, changelog: changelog, ownID: ownServerID, log: log,
		replicas: map[string]*sql.DB{}, ignored: map[string]string{}}
}

func (p *MySQLProbe) changelogName() string {
	return table.QuoteMySQL(p.schema) + "." + table.QuoteMySQL(p.changelog)
}

// Heartbeat upserts the heartbeat row.
func (p *MySQLProbe) Heartbeat(ctx context.Context, now time.Time) error {
	if p.changelog == "" {
		// No changelog table (the native path): the replicas report
		// their lag themselves (replicaLag).
		return nil
	}
	v := strconv.FormatInt(now.UnixMicro(), 10)
	//nolint:gosec // G202: the changelog's name, quoted; values are parameters
	q := "INSERT INTO " + p.changelogName() + " (id, hint, value) VALUES (?, 'heartbeat', ?) " +
		"ON DUPLICATE KEY UPDATE ts = CURRENT_TIMESTAMP(6), value = ?"
	if _, err := p.db.ExecContext(ctx, q, mysqlHeartbeatID, v, v); err != nil {
		return fmt.Errorf("write heartbeat: %w", err)
	}
	return nil
}

// ReplicaLags reads the given replicas and those discovered from the primary
// (SHOW SLAVE HOSTS) concurrently. A discovered entry is watched only once
// its server_id was checked: binlog clients such as osc's own readers
// register as replicas too, with an address that is not a server.
func (p *MySQLProbe) ReplicaLags(ctx context.Context, given []string) []throttle.ReplicaLag {
	p.mu.Lock()
	due := time.Since(p.discoveredAt) >= mysqlDiscoverInterval
	names := append([]string(nil), given...)
	for _, w := range p.watched {
		if !slices.Contains(names, w) {
			names = append(names, w)
		}
	}
	p.mu.Unlock()
	out := make([]throttle.ReplicaLag, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() {
			lag, err := p.replicaLag(ctx, n)
			out[i] = throttle.ReplicaLag{Name: n, Lag: lag, Err: err}
		})
	}
	wg.Wait()
	if due {
		p.discover(ctx)
	}
	p.closeUnused(names)
	return out
}

// replica returns the open connection to host:port, opening it.
func (p *MySQLProbe) replica(ctx context.Context, addr string) (*sql.DB, error) {
	p.mu.Lock()
	db := p.replicas[addr]
	p.mu.Unlock()
	if db != nil {
		return db, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("want host:port: %w", err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", port, err)
	}
	c := p.conn
	c.Host, c.Port = host, n
	db, err = table.OpenMySQL(ctx, c, p.schema)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(2)
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.replicas[addr]; old != nil {
		db.Close()
		return old, nil
	}
	p.replicas[addr] = db
	return db, nil
}

// replicaLag reads the heartbeat the replica has applied.
func (p *MySQLProbe) replicaLag(ctx context.Context, addr string) (time.Duration, error) {
	if p.changelog == "" {
		return p.secondsBehind(ctx, addr)
	}
	db, err := p.replica(ctx, addr)
	if err != nil {
		return 0, err
	}
	var v string
	err = db.QueryRowContext(ctx, "SELECT value FROM "+p.changelogName()+" WHERE id = ?", mysqlHeartbeatID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errors.New("no heartbeat replicated yet")
	}
	if err != nil {
		return 0, fmt.Errorf("read heartbeat: %w", err)
	}
	us, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("heartbeat %q: %w", v, err)
	}
	return max(time.Since(time.UnixMicro(us)), 0), nil
}

// mysqlReplicaHost is one row of SHOW SLAVE HOSTS.
type mysqlReplicaHost struct {
	serverID uint32
	addr     string
}

// discover refreshes the watched replicas from the primary's list.
func (p *MySQLProbe) discover(ctx context.Context) {
	hosts, err := p.replicaHosts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("replica discovery (SHOW SLAVE HOSTS) failed; watching only --throttle-control-replicas", "err", err)
		}
		return
	}
	var watched []string
	ignored := map[string]string{}
	for _, h := range hosts {
		if why := p.verify(ctx, h); why != "" {
			ignored[h.addr] = why
			continue
		}
		watched = append(watched, h.addr)
	}
	if ctx.Err() != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range watched {
		if !slices.Contains(p.watched, w) {
			p.log.Info("watching replica for lag", "replica", w)
		}
	}
	for addr, why := range ignored {
		if p.ignored[addr] != why {
			p.log.Info("not watching a registered replica", "replica", addr, "why", why)
		}
	}
	p.watched, p.ignored, p.discoveredAt = watched, ignored, time.Now()
}

// verify checks that a listed replica is the server it says it is; it
// returns why not ("" when it is).
func (p *MySQLProbe) verify(ctx context.Context, h mysqlReplicaHost) string {
	p.mu.Lock()
	known := slices.Contains(p.watched, h.addr)
	p.mu.Unlock()
	if known {
		return ""
	}
	db, err := p.replica(ctx, h.addr)
	if err != nil {
		return "cannot connect: " + err.Error()
	}
	var id uint32
	if err := db.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id); err != nil {
		return "cannot read server_id: " + err.Error()
	}
	if id != h.serverID {
		return fmt.Sprintf("%s answers with server_id %d, not %d: a binlog client, not a replica", h.addr, id, h.serverID)
	}
	return ""
}

// replicaHosts lists the replicas registered with the primary, without
// osc's own binlog reader and entries without an address.
func (p *MySQLProbe) replicaHosts(ctx context.Context) ([]mysqlReplicaHost, error) {
	rows, err := p.db.QueryContext(ctx, "SHOW SLAVE HOSTS")
	if err != nil {
		// MySQL 8.4 knows only the new name.
		var err2 error
		if rows, err2 = p.db.QueryContext(ctx, "SHOW REPLICAS"); err2 != nil {
			return nil, err
		}
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	idx := map[string]int{}
	for i, c := range cols {
		idx[strings.ToLower(c)] = i
	}
	iID, ok1 := idx["server_id"]
	iHost, ok2 := idx["host"]
	iPort, ok3 := idx["port"]
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("unexpected columns %v", cols)
	}
	var out []mysqlReplicaHost
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		id, err1 := strconv.ParseUint(vals[iID].String, 10, 32)
		port, err2 := strconv.Atoi(vals[iPort].String)
		host := vals[iHost].String
		if err1 != nil || err2 != nil || host == "" || port <= 0 || uint32(id) == p.ownID {
			continue
		}
		out = append(out, mysqlReplicaHost{serverID: uint32(id), addr: net.JoinHostPort(host, strconv.Itoa(port))})
	}
	return out, rows.Err()
}

// closeUnused closes connections to replicas no longer watched or given.
func (p *MySQLProbe) closeUnused(inUse []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, db := range p.replicas {
		if !slices.Contains(inUse, addr) && !slices.Contains(p.watched, addr) {
			db.Close()
			delete(p.replicas, addr)
		}
	}
}

// Load reads global status variables.
func (p *MySQLProbe) Load(ctx context.Context, names []string) ([]int64, error) {
	quoted := make([]string, len(names))
	for i, n := range names {
		if !throttle.IsMetricName(n) {
			return nil, fmt.Errorf("%q is not a status variable name", n)
		}
		quoted[i] = "'" + n + "'"
	}
	rows, err := p.db.QueryContext(ctx, "SHOW GLOBAL STATUS WHERE Variable_name IN ("+strings.Join(quoted, ",")+")") //nolint:gosec // G202: each name is checked above to be a status variable name
	if err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			return nil, fmt.Errorf("read status: %w", err)
		}
		got[strings.ToLower(n)] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	out := make([]int64, len(names))
	for i, n := range names {
		v, ok := got[strings.ToLower(n)]
		if !ok {
			return nil, fmt.Errorf("%s: no such global status variable", n)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("%s=%q is not a number", n, v)
		}
		out[i] = int64(f)
	}
	return out, nil
}

// Query runs the throttle query on the primary.
func (p *MySQLProbe) Query(ctx context.Context, q string) (int64, error) {
	var v sql.NullString
	if err := p.db.QueryRowContext(ctx, q).Scan(&v); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	return parseQueryValue(v)
}

// parseQueryValue reads a throttle query's result: NULL or no row is 0.
func parseQueryValue(v sql.NullString) (int64, error) {
	if !v.Valid || v.String == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v.String), 64)
	if err != nil {
		return 0, fmt.Errorf("result %q is not a number", v.String)
	}
	return int64(f), nil
}

// RetainedWAL does not apply to MySQL: the binlog is kept by the server's
// own expiry, whatever osc reads.
func (p *MySQLProbe) RetainedWAL(context.Context) (int64, bool, error) { return 0, false, nil }

// Close closes the replica connections.
func (p *MySQLProbe) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for addr, db := range p.replicas {
		errs = append(errs, db.Close())
		delete(p.replicas, addr)
	}
	return errors.Join(errs...)
}

// Replicas lists the replicas registered with the primary (SHOW SLAVE HOSTS),
// each with the lag it reports itself (Seconds_Behind_Master), for the
// preflight report: the heartbeat lag the throttle reads needs the changelog
// table, which is not made yet then. A replica osc cannot check is listed
// with why.
func (p *MySQLProbe) Replicas(ctx context.Context) []string {
	hosts, err := p.replicaHosts(ctx)
	if err != nil {
		return []string{"cannot list them (SHOW SLAVE HOSTS): " + err.Error()}
	}
	var out []string
	for _, h := range hosts {
		if why := p.verify(ctx, h); why != "" {
			out = append(out, h.addr+": not checked: "+why)
			continue
		}
		out = append(out, h.addr+" "+p.reportedLag(ctx, h.addr))
	}
	return out
}

// reportedLag describes the replica's own view of its lag.
func (p *MySQLProbe) reportedLag(ctx context.Context, addr string) string {
	lag, err := p.secondsBehind(ctx, addr)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return fmt.Sprintf("lag %.0fs (Seconds_Behind_Master)", lag.Seconds())
}
