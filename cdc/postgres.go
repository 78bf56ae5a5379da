package cdc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/table"
	"osc/throttle"
)

// MarkerPrefix is the prefix of the logical decoding messages that carry
// markers (pg_logical_emit_message(true, 'osc', id)).
const MarkerPrefix = "osc"

const (
	// statusInterval is how often the reader confirms its position to the
	// server (well below the default wal_sender_timeout of 60 s).
	statusInterval = time.Second
	// The reader stops reading the stream while this many changes or bytes
	// wait for Next; the server keeps the rest in its WAL meanwhile.
	maxQueuedChanges = 10000
	maxQueuedBytes   = 64 << 20
	// slotGoneTimeout bounds how long Close waits for the server to drop the
	// temporary slot after the replication connection closed.
	slotGoneTimeout = 10 * time.Second
)

// walsenderParams returns the session settings of the replication
// connection. They fix the text form of the values pgoutput sends, so that the
// applier's session reads them back exactly: UTC timestamps with explicit
// offsets, ISO dates (year first: unambiguous whatever the reader's
// DateStyle), intervals with units, shortest exact floats, hex bytea.
func walsenderParams() map[string]string {
	return map[string]string{
		"replication":        "database",
		"client_encoding":    "UTF8",
		"TimeZone":           "UTC",
		"DateStyle":          "ISO, MDY",
		"IntervalStyle":      "postgres",
		"extra_float_digits": "3",
		"bytea_output":       "hex",
	}
}

// simpleName is what a slot or publication name may be: PostgreSQL requires
// [a-z0-9_] for slots; publications use the same so that neither needs quoting
// in the replication protocol's commands and options.
var simpleName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// PostgresConfig names the replication objects the source creates. DSN is the
// connection string as the user gave it (URL or key=value; "" uses the PG*
// environment variables).
type PostgresConfig struct {
	DSN         string
	Slot        string
	Publication string
	// Permanent makes the slot a permanent one, which outlives the
	// replication connection and osc itself, so that a killed run can be
	// resumed from it (checkpoints on). The slot is then confirmed only up
	// to the last saved checkpoint (Saved), and Close drops it. Otherwise
	// the slot is temporary: the server drops it when the connection ends.
	Permanent bool
	// ResumeFrom, when set, is a Checkpoint a killed run saved: the slot
	// and the publication it made exist, and Start streams from that
	// position instead of creating them (see CheckPostgresResume).
	ResumeFrom string
	// Log, when set, tells what the slot's creation waits for.
	Log *slog.Logger
	// SkipThrough, when set, is the id of a revert window's swap message
	// (table.PostgresSwapPrefix, emitted in the cut-over's swap transaction):
	// nothing decoded up to and including that message's transaction is
	// returned — the forward applier's writes into the shadow.
	SkipThrough string
	// PartitionRoot: the table is partitioned, and the publication
	// publishes its partitions' changes as the table's own
	// (publish_via_partition_root): the stream describes and changes the
	// root relation only, whichever partition a row is in (a row that an
	// UPDATE moves to another partition arrives as a DELETE of its old
	// key and an INSERT of the row).
	PartitionRoot bool
}

// LSN is a PostgreSQL WAL position. The Pos of every change a PostgresSource
// returns is the LSN of its transaction's commit record.
type LSN pglogrepl.LSN

func (l LSN) String() string { return pglogrepl.LSN(l).String() }

// pubColumn is one column the publication sends, as the catalog described it
// when the source started.
type pubColumn struct {
	name   string
	typ    uint32
	typmod int32
	index  int // position in plan.Source.Columns
}

// PostgresSource captures the changes to one table through logical
// replication: a publication for the table, a pgoutput slot and a reader
// goroutine that turns the stream into Changes. The slot is temporary
// (dropped by the server when the replication connection ends, even if osc
// is killed), or, with checkpoints, permanent: it survives a killed osc, so
// that a resumed run streams again every change after the checkpoint, and
// Close drops it.
//
// Positions and acknowledgement. pgoutput (protocol 1) sends a transaction
// only once it has committed, whole, between Begin and Commit; every Change
// gets the transaction's commit LSN as Pos, and is queued for Next as soon as
// it arrives; Next returns it once the Commit arrived, with the rest of its
// transaction (wholeTransactions). The slot is confirmed (flush position of the standby status
// updates) only up to a transaction that is complete: its Commit was received,
// every one of its changes was returned by Next, and Ack was called with that
// Pos or a later one. Ack(pos) is read as "every change Next returned before
// this call with a Pos <= pos has been applied", which is what the engine
// promises when it acks the last change of each applied batch, even when the
// batch ends inside a transaction (one too large for the queue). When nothing is queued, no transaction is
// open and every change returned has been acked, the confirmed position
// advances to the last position the server sent, so that transactions on
// other tables (which send nothing) do not make the slot retain WAL. That
// "every change returned has been acked" is counted in changes, not compared
// by position: every change of a transaction has the same Pos, so the last
// batch of a transaction, returned after its first batch was acked, has a Pos
// an Ack already reached while it is still being applied.
//
// A permanent slot is confirmed no further than the position of the last
// checkpoint saved (Saved): the server never streams again what it was
// confirmed, and a resumed run must get every change from the checkpoint's
// position on, paired as it is with the copy's watermark (see
// engine.Checkpoint). The slot then retains the WAL of one checkpoint
// interval more.
type PostgresSource struct {
	cfg  PostgresConfig
	pool *pgxpool.Pool
	plan *table.Plan

	// Set by Start.
	relOID     uint32
	columns    []pubColumn
	createdPub bool
	pubID      string // the publication's identity when streaming began (ReadPostgresPublicationID)
	ownSlot    bool   // the slot is this source's to drop (permanent: made or resumed by it)
	conn       *pgconn.PgConn
	cancel     context.CancelFunc
	done       chan struct{} // closed when the reader goroutine exits

	dataReady  chan struct{} // signalled when changes are queued or the reader failed
	spaceReady chan struct{} // signalled when Next took changes

	mu         sync.Mutex
	queue      []Change
	queueBytes int
	// emitted holds the ids of the markers EmitMarker committed and Next has
	// not returned yet: a logical message reaches every slot of the
	// database, so other sources' markers (another osc's, a test's) are
	// dropped.
	emitted    map[string]bool
	err        error // the reader's failure; returned by Next
	relSeen    bool  // a Relation message for the table was received
	inTxn      bool
	txnLSN     LSN    // commit LSN of the open transaction
	txnXid     uint32 // its transaction id
	lastCommit LSN    // commit LSN of the last transaction whose Commit arrived
	complete   LSN    // every transaction committed at or before it was returned whole by Next
	returned   LSN    // Pos of the last change Next returned
	returnedN  uint64 // changes Next returned
	ackedN     uint64 // of those, the changes known applied: all returned before an Ack of the last one's Pos or later
	flushed    LSN    // applied: confirmed to the server, unless a permanent slot waits for a checkpoint
	saved      LSN    // permanent slot: the position of the last saved checkpoint
	confirmed  LSN    // last flush position sent to the server
	idlePos    LSN    // last position received outside any transaction
	received   LSN    // highest WAL position received
	serverEnd  LSN    // the server's WAL end as last reported
	// skipping: SkipThrough's transaction has not committed yet; swapTxn:
	// the open transaction is the one that emitted it.
	skipping, swapTxn bool
}

// NewPostgres returns a source for plan.Source. Start begins the capture.
func NewPostgres(cfg PostgresConfig, pool *pgxpool.Pool, plan *table.Plan) (*PostgresSource, error) {
	if !simpleName.MatchString(cfg.Slot) {
		return nil, fmt.Errorf("replication slot name %q: use lower-case letters, digits and underscores (at most 63)", cfg.Slot)
	}
	if !simpleName.MatchString(cfg.Publication) {
		return nil, fmt.Errorf("publication name %q: use lower-case letters, digits and underscores (at most 63)", cfg.Publication)
	}
	if plan == nil || plan.Source == nil || len(plan.KeyIndex) == 0 || len(plan.Key) != len(plan.KeyIndex) {
		return nil, errors.New("postgres change capture: the plan has no source table or key")
	}
	for n, i := range plan.KeyIndex {
		if i < 0 || i >= len(plan.Source.Columns) || plan.Source.Columns[i].Name != plan.Key[n] {
			return nil, fmt.Errorf("postgres change capture: key column %q is not at position %d of the table", plan.Key[n], i)
		}
	}
	return &PostgresSource{
		cfg:        cfg,
		pool:       pool,
		plan:       plan,
		dataReady:  make(chan struct{}, 1),
		spaceReady: make(chan struct{}, 1),
		skipping:   cfg.SkipThrough != "",
	}, nil
}

func (s *PostgresSource) tableName() string {
	return pgx.Identifier{s.plan.Source.Schema, s.plan.Source.Name}.Sanitize()
}

func (s *PostgresSource) displayName() string {
	return s.plan.Source.Schema + "." + s.plan.Source.Name
}

// Start creates the publication and the slot and starts streaming from the
// slot's consistent point: every change committed after Start returns is
// delivered by Next. Resuming (ResumeFrom), it takes up the publication and
// the slot a killed run left, checked as CheckPostgresResume checks them, and
// streams from the checkpoint's position. On failure it drops what it created
// (resuming: what it took up).
func (s *PostgresSource) Start(ctx context.Context) (err error) {
	if s.conn != nil || s.createdPub {
		return errors.New("postgres change capture already started")
	}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), slotGoneTimeout+5*time.Second)
			defer cancel()
			if cerr := s.Close(cctx); cerr != nil {
				err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
			}
		}
	}()
	if err := s.inspect(ctx); err != nil {
		return err
	}
	var resume pglogrepl.LSN
	if s.cfg.ResumeFrom != "" {
		// The resumed run owns the killed run's publication and slot: a
		// failure drops them, as it drops the shadow (the dialect's Resume
		// checked them already, changing nothing when it refused).
		s.createdPub, s.ownSlot = true, s.cfg.Permanent
		if resume, err = CheckPostgresResume(ctx, s.pool, s.cfg, s.plan.Source.Schema, s.plan.Source.Name); err != nil {
			return err
		}
	} else if err := s.createPublication(ctx); err != nil {
		return err
	}
	if s.pubID, err = ReadPostgresPublicationID(ctx, s.pool, s.cfg.Publication, s.plan.Source.Schema, s.plan.Source.Name); err != nil {
		return err
	}

	connCfg, err := pgconn.ParseConfig(s.cfg.DSN)
	if err != nil {
		return fmt.Errorf("replication connection: %w", err)
	}
	for k, v := range walsenderParams() {
		connCfg.RuntimeParams[k] = v
	}
	if _, ok := connCfg.RuntimeParams["application_name"]; !ok {
		connCfg.RuntimeParams["application_name"] = "osc"
	}
	conn, err := pgconn.ConnectConfig(ctx, connCfg)
	if err != nil {
		return fmt.Errorf("replication connection: %w", err)
	}
	s.conn = conn
	start, snap := resume, ""
	if s.cfg.ResumeFrom == "" {
		if start, snap, err = s.createSlot(ctx, conn); err != nil {
			return err
		}
	}
	err = pglogrepl.StartReplication(ctx, conn, s.cfg.Slot, start, pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication,
		PluginArgs: []string{
			"proto_version '1'",
			"publication_names '" + s.cfg.Publication + "'",
			"messages 'true'",
		},
	})
	if err != nil {
		return fmt.Errorf("start replication from slot %s: %w", s.cfg.Slot, err)
	}
	// Waited for once the slot is streaming: a permanent slot is inactive
	// between its creation and START_REPLICATION, and looks abandoned then.
	if snap != "" {
		if err := s.waitCommittedVisible(ctx, snap); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.flushed, s.complete, s.received, s.idlePos, s.serverEnd = LSN(start), LSN(start), LSN(start), LSN(start), LSN(start)
	s.saved, s.confirmed = LSN(start), LSN(start)
	s.mu.Unlock()

	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.done = make(chan struct{})
	go s.run(rctx, conn)
	return nil
}

// createPublication creates the publication of the table.
func (s *PostgresSource) createPublication(ctx context.Context) error {
	pub := pgx.Identifier{s.cfg.Publication}.Sanitize()
	with := "publish = 'insert, update, delete, truncate'"
	if s.cfg.PartitionRoot {
		with += ", publish_via_partition_root = true"
	}
	_, err := s.pool.Exec(ctx, fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s WITH (%s)", pub, s.tableName(), with))
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" {
			return fmt.Errorf("publication %s already exists (left by an earlier run?); if no migration is running, drop it: DROP PUBLICATION %s", s.cfg.Publication, pub)
		}
		return fmt.Errorf("create publication %s: %w", s.cfg.Publication, err)
	}
	s.createdPub = true
	return nil
}

// createSlot creates the slot on the replication connection and returns its
// consistent point and the snapshot then, for waitCommittedVisible.
func (s *PostgresSource) createSlot(ctx context.Context, conn *pgconn.PgConn) (pglogrepl.LSN, string, error) {
	stop := s.reportSlotWait(ctx)
	defer stop()
	slot, err := pglogrepl.CreateReplicationSlot(ctx, conn, s.cfg.Slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{
		Temporary:      !s.cfg.Permanent,
		SnapshotAction: "NOEXPORT_SNAPSHOT",
		Mode:           pglogrepl.LogicalReplication,
	})
	if err != nil {
		return 0, "", fmt.Errorf("create replication slot %s: %w", s.cfg.Slot, err)
	}
	s.ownSlot = s.cfg.Permanent
	start, err := pglogrepl.ParseLSN(slot.ConsistentPoint)
	if err != nil {
		return 0, "", fmt.Errorf("create replication slot %s: consistent point %q: %w", s.cfg.Slot, slot.ConsistentPoint, err)
	}
	var snap string
	if err := s.pool.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&snap); err != nil {
		return 0, "", fmt.Errorf("read the snapshot at the slot's consistent point: %w", err)
	}
	return start, snap, nil
}

// slotWaitReport is how long the slot's creation may wait before osc says
// what it waits for, and then how often it says it again.
const slotWaitReport = 5 * time.Second

// reportSlotWait logs, while the slot's creation is slow, the transactions it
// is waiting for: PostgreSQL builds a logical slot's starting point only once
// every transaction that held a transaction id when it started has ended,
// so one long transaction holds osc up before the copy, silently otherwise.
// The returned function stops it.
func (s *PostgresSource) reportSlotWait(ctx context.Context) (stop func()) {
	if s.cfg.Log == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTimer(slotWaitReport)
		defer t.Stop()
		for waited := slotWaitReport; ; waited += 2 * slotWaitReport {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			s.logSlotWait(ctx, waited)
			t.Reset(2 * slotWaitReport)
		}
	}()
	return func() { cancel(); <-done }
}

// logSlotWait logs the oldest transactions that hold a transaction id.
func (s *PostgresSource) logSlotWait(ctx context.Context, waited time.Duration) {
	rows, err := s.pool.Query(ctx, `SELECT pid, coalesce(usename, backend_type), coalesce(application_name, ''),
			date_trunc('second', now() - xact_start)::text, coalesce(datname, '')
		FROM pg_catalog.pg_stat_activity
		WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() ORDER BY xact_start LIMIT 3`)
	var oldest []string
	if err == nil {
		for rows.Next() {
			var pid int32
			var user, app, age, db string
			if err = rows.Scan(&pid, &user, &app, &age, &db); err != nil {
				break
			}
			oldest = append(oldest, fmt.Sprintf("pid %d (%s %s in %s) open for %s", pid, user, app, db, age))
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.cfg.Log.Warn("creating the replication slot is taking long: it waits for every transaction that was running to end", "waited", waited.String(), "err", err)
		return
	}
	s.cfg.Log.Warn("creating the replication slot is taking long: it waits for every transaction that was running to end (the copy starts once they have); end or commit them, or wait",
		"waited", waited.String(), "oldest", strings.Join(oldest, "; "))
}

// waitCommittedVisible returns once every transaction that was running when
// the slot became consistent (snap: the snapshot read right after) and has
// committed since is visible to new snapshots. The slot does not stream a transaction whose commit record
// precedes its consistent point, so the copy must see it; one still waiting
// for a synchronous standby's acknowledgement is committed in the WAL but
// invisible to everybody else until then. Transactions that commit later are
// streamed and need no wait.
func (s *PostgresSource) waitCommittedVisible(ctx context.Context, snap string) error {
	for wait := time.Now(); ; {
		var invisible int
		err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_snapshot_xip($1::pg_snapshot) AS x
			WHERE pg_xact_status(x) = 'committed' AND NOT pg_visible_in_snapshot(x, pg_current_snapshot())`, snap).Scan(&invisible)
		if err != nil {
			return fmt.Errorf("wait for committed transactions to become visible: %w", err)
		}
		if invisible == 0 {
			return nil
		}
		if time.Since(wait) > 5*time.Second {
			return fmt.Errorf("%d transactions committed before change capture started are still not visible after 5 s "+
				"(waiting for a synchronous standby?); they would be neither streamed nor copied: fix the standby and run osc again", invisible)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// inspect checks the server version and the table's replica identity, and
// records the columns and types the publication will send.
func (s *PostgresSource) inspect(ctx context.Context) error {
	var version int
	if err := s.pool.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return fmt.Errorf("server version: %w", err)
	}
	if version < table.MinPostgresVersion {
		return fmt.Errorf("change capture needs PostgreSQL 14 or later (pgoutput messages); the server is %d", version)
	}
	var (
		oid      uint32
		ident    string
		identCol []string
	)
	err := s.pool.QueryRow(ctx, `
		SELECT c.oid, c.relreplident::text,
		       coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum)
		                 FROM pg_index i
		                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1])
		                 WHERE i.indrelid = c.oid
		                   AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident))),
		                '{}')
		FROM pg_class c
		WHERE c.oid = to_regclass($1)`, s.tableName()).Scan(&oid, &ident, &identCol)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("table %s does not exist", s.displayName())
	}
	if err != nil {
		return fmt.Errorf("replica identity of %s: %w", s.displayName(), err)
	}
	if ident != "f" {
		have := map[string]bool{}
		for _, c := range identCol {
			have[c] = true
		}
		// The key the shadow's rows are told apart by (Plan.Identity),
		// which holds the original's.
		key, _ := s.plan.Identity()
		for _, k := range key {
			if !have[k] {
				return fmt.Errorf("the replica identity of %s (%s) does not include key column %q: updates and deletes could not be captured; "+
					"give the table a primary key or run ALTER TABLE %s REPLICA IDENTITY USING INDEX <unique index on (%s)>",
					s.displayName(), identityDesc(ident, identCol), k, s.tableName(), strings.Join(key, ", "))
			}
		}
	}
	s.relOID = oid

	rows, err := s.pool.Query(ctx, `
		SELECT attname::text, atttypid::int8, atttypmod
		FROM pg_attribute
		WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
		ORDER BY attnum`, oid)
	if err != nil {
		return fmt.Errorf("columns of %s: %w", s.displayName(), err)
	}
	var cols []pubColumn
	for rows.Next() {
		var (
			c   pubColumn
			typ int64
		)
		if err := rows.Scan(&c.name, &typ, &c.typmod); err != nil {
			rows.Close()
			return fmt.Errorf("columns of %s: %w", s.displayName(), err)
		}
		c.typ = uint32(typ)
		c.index = s.plan.Source.ColumnIndex(c.name)
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("columns of %s: %w", s.displayName(), err)
	}
	var want []string
	for _, c := range s.plan.Source.Columns {
		if !c.Generated {
			want = append(want, c.Name)
		}
	}
	if !sameNames(cols, want) {
		return s.changedError(names(cols))
	}
	s.columns = cols
	return nil
}

func identityDesc(ident string, cols []string) string {
	switch ident {
	case "d":
		if len(cols) == 0 {
			return "default, and the table has no primary key"
		}
		return "primary key (" + strings.Join(cols, ", ") + ")"
	case "i":
		return "index (" + strings.Join(cols, ", ") + ")"
	case "n":
		return "nothing"
	}
	return ident
}

func sameNames(cols []pubColumn, want []string) bool {
	if len(cols) != len(want) {
		return false
	}
	for i, c := range cols {
		if c.name != want[i] || c.index < 0 {
			return false
		}
	}
	return true
}

func names(cols []pubColumn) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.name
	}
	return out
}

func (s *PostgresSource) changedError(now []string) error {
	return fmt.Errorf("table %s changed during migration (columns now: %s); the migration is aborted",
		s.displayName(), strings.Join(now, ", "))
}

// Next returns queued changes in commit order, waiting for at least one:
// whole transactions, up to limit changes and then the rest of the last
// transaction (wholeTransactions). A failure of the reader is returned as
// soon as it happens.
func (s *PostgresSource) Next(ctx context.Context, limit int) ([]Change, error) {
	for {
		s.mu.Lock()
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return nil, err
		}
		if n, cut := s.wholeTransactions(limit); n > 0 {
			limit = n
			out := make([]Change, limit)
			copy(out, s.queue)
			out[limit-1].Cut = cut
			clear(s.queue[:limit])
			s.queue = s.queue[limit:]
			if len(s.queue) == 0 {
				s.queue = nil
			}
			for i := range out {
				s.queueBytes -= changeSize(&out[i])
			}
			s.returned = out[limit-1].Pos.(LSN)
			s.returnedN += uint64(limit)
			if len(s.queue) == 0 {
				s.complete = max(s.complete, s.lastCommit)
			} else {
				// The transactions before the first change still queued
				// have been returned whole.
				head := s.queue[0].Pos.(LSN)
				for i := limit - 1; i >= 0; i-- {
					if p := out[i].Pos.(LSN); p != head {
						s.complete = max(s.complete, p)
						break
					}
				}
			}
			s.mu.Unlock()
			signal(s.spaceReady)
			return out, nil
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.dataReady:
		}
	}
}

// wholeTransactions returns how many of the queued changes Next returns for
// limit (0: wait): the queued changes of transactions whose Commit arrived,
// up to limit, and then the rest of the last one, so that a batch the
// engine applies in one transaction of the shadow holds whole transactions
// of the original. A transaction that was cut would commit on the shadow a
// state the original never committed, which a deferred unique or exclusion
// constraint of the shadow refuses (two rows swapping their values). Only
// when the queue is full, and the reader waits for room before it can read
// the Commit, is the open transaction's head returned (up to limit), with
// cut: its last change is marked Change.Cut.
// Called with mu held.
func (s *PostgresSource) wholeTransactions(limit int) (int, bool) {
	n := len(s.queue)
	if n == 0 {
		return 0, false
	}
	if limit <= 0 || limit > n {
		limit = n
	}
	whole := 0
	for whole < n && s.queue[whole].Pos.(LSN) <= s.lastCommit {
		whole++
	}
	if whole == 0 {
		if n >= maxQueuedChanges || s.queueBytes >= maxQueuedBytes {
			return limit, true
		}
		return 0, false
	}
	out := min(limit, whole)
	for out < whole && s.queue[out].Pos == s.queue[out-1].Pos {
		out++
	}
	return out, false
}

// Ack confirms that every change Next returned so far with a Pos at or before
// pos has been applied. The slot is confirmed up to the last complete
// transaction at or before pos (see PostgresSource); a change Next returns
// later, even with the same Pos, is applied only when a later Ack says so.
func (s *PostgresSource) Ack(pos Position) {
	l, ok := pos.(LSN)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l >= s.returned {
		s.ackedN = s.returnedN
	}
	s.flushed = max(s.flushed, min(l, s.complete))
}

// EmitMarker commits a logical decoding message with prefix MarkerPrefix; the
// stream delivers it after every change committed before. The commit flushes
// its WAL at once (synchronous_commit on for this transaction only): under
// asynchronous commit the walsender would send the marker only after the WAL
// writer's next round (wal_writer_delay, 200 ms by default), and the cut-over
// holds writers while it waits for the marker.
func (s *PostgresSource) EmitMarker(ctx context.Context, id string) error {
	s.mu.Lock()
	if s.emitted == nil {
		s.emitted = map[string]bool{}
	}
	s.emitted[id] = true
	s.mu.Unlock()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = on"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT pg_logical_emit_message(true, $1::text, $2::text)", MarkerPrefix, id)
		return err
	})
	if err != nil {
		s.mu.Lock()
		delete(s.emitted, id)
		s.mu.Unlock()
		return fmt.Errorf("emit marker: %w", err)
	}
	return nil
}

// Lag describes the applied position and the server's WAL end, and for a
// permanent slot the position confirmed to it, from which the server keeps
// the WAL until osc drops the slot, even after osc died.
func (s *PostgresSource) Lag() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Permanent {
		return fmt.Sprintf("lsn %s (server %s; permanent slot %s confirmed %s, retains %s+)", s.flushed, s.serverEnd,
			s.cfg.Slot, s.confirmed, throttle.FormatBytes(max(int64(s.serverEnd)-int64(s.confirmed), 0)))
	}
	return fmt.Sprintf("lsn %s (server %s)", s.flushed, s.serverEnd)
}

// Close stops the reader, closes the replication connection, drops the slot
// (temporary: the server does, and Close waits until it is gone; permanent:
// Close drops it once the server has let go of it) and drops the
// publication. It works on a fresh ctx after the migration's was cancelled,
// and is a no-op for what was never created.
func (s *PostgresSource) Close(ctx context.Context) error {
	var errs []error
	if s.cancel != nil {
		s.cancel()
		select {
		case <-s.done:
		case <-ctx.Done():
		}
		s.cancel = nil
	}
	s.mu.Lock()
	if s.err == nil {
		s.err = errors.New("change capture closed")
	}
	s.mu.Unlock()
	signal(s.dataReady)
	if s.conn != nil {
		if err := s.conn.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close replication connection: %w", err))
		}
		s.conn = nil
		if !s.cfg.Permanent {
			if err := s.waitSlotGone(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if s.ownSlot {
		if err := s.dropSlot(ctx); err != nil {
			errs = append(errs, err)
		} else {
			s.ownSlot = false
		}
	}
	if s.createdPub {
		pub := pgx.Identifier{s.cfg.Publication}.Sanitize()
		if _, err := s.pool.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pub); err != nil {
			errs = append(errs, fmt.Errorf("drop publication %s: %w", s.cfg.Publication, err))
		} else {
			s.createdPub = false
		}
	}
	return errors.Join(errs...)
}

// waitSlotGone waits until the server has dropped the temporary slot, which it
// does when the walsender process of the closed connection exits.
func (s *PostgresSource) waitSlotGone(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, slotGoneTimeout)
	defer cancel()
	for {
		var n int
		err := s.pool.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", s.cfg.Slot).Scan(&n)
		if err == nil && n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("still present")
			}
			return fmt.Errorf("replication slot %s not dropped: %w (check pg_replication_slots)", s.cfg.Slot, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// dropSlot drops the permanent slot, waiting (at most slotGoneTimeout) until
// the walsender of the closed connection has let go of it.
func (s *PostgresSource) dropSlot(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, slotGoneTimeout)
	defer cancel()
	for {
		var n int
		err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, s.cfg.Slot).Scan(&n)
		if err == nil && n == 0 {
			return nil
		}
		if err == nil {
			// Fails while the slot is still active (55006): tried again.
			_, err = s.pool.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, s.cfg.Slot)
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("still in use")
			}
			return fmt.Errorf("drop replication slot %s: %w; it retains WAL: once nothing streams from it, SELECT pg_drop_replication_slot('%s')", s.cfg.Slot, err, s.cfg.Slot)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// signal wakes a waiter on ch without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run is the reader goroutine: it alone uses conn until Close.
func (s *PostgresSource) run(ctx context.Context, conn *pgconn.PgConn) {
	defer close(s.done)
	err := s.read(ctx, conn)
	if ctx.Err() != nil {
		return
	}
	if DecodeMapBug(err) {
		err = fmt.Errorf("%w (a PostgreSQL bug: logical decoding can fail so shortly after a replication slot is created "+
			"while DDL (CREATE TABLE, TRUNCATE, a rewriting ALTER TABLE, a GRANT) commits in the same database; "+
			"a slot made later does not meet it: until the cut-over swaps the tables, osc drops what it made and starts over by itself; "+
			"a resumed run does not, and drops what it resumed: run osc again without --resume)", err)
	}
	s.mu.Lock()
	if s.err == nil {
		s.err = fmt.Errorf("replication stream of %s: %w", s.displayName(), err)
	}
	s.mu.Unlock()
	signal(s.dataReady)
}

// DecodeMapBug reports whether err is one of the walsender's errors of a
// PostgreSQL bug: while a new slot builds its first snapshot, PostgreSQL
// ignores the commits of catalog changes, and decodes the transactions that
// began before the slot was ready and committed after with a snapshot that
// lacks them (pgsql-hackers, "Fix logical decoding not track transaction
// during SNAPBUILD_BUILDING_SNAPSHOT", unfixed in 15.18). A change to a table
// whose storage such a commit created cannot be mapped to it ("could not map
// filenode"); one to a table whose catalog row such a commit replaced (a
// GRANT, say) maps to both versions of the row ("unexpected duplicate for
// tablespace"). Only the transactions open when the slot became ready can
// meet it.
func DecodeMapBug(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "XX000" &&
		(strings.HasPrefix(pgErr.Message, "could not map filenode") || strings.HasPrefix(pgErr.Message, "unexpected duplicate for tablespace"))
}

func (s *PostgresSource) full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) >= maxQueuedChanges || s.queueBytes >= maxQueuedBytes
}

func (s *PostgresSource) read(ctx context.Context, conn *pgconn.PgConn) error {
	nextStatus := time.Now().Add(statusInterval)
	timer := time.NewTimer(statusInterval)
	defer timer.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !time.Now().Before(nextStatus) {
			if err := s.sendStatus(ctx, conn); err != nil {
				return err
			}
			nextStatus = time.Now().Add(statusInterval)
		}
		if s.full() {
			timer.Reset(time.Until(nextStatus))
			select {
			case <-ctx.Done():
			case <-s.spaceReady:
			case <-timer.C:
			}
			continue
		}
		rctx, cancel := context.WithDeadline(ctx, nextStatus)
		msg, err := conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if pgconn.Timeout(err) || ctx.Err() != nil {
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			reply, err := s.handleCopyData(m.Data)
			if err != nil {
				return err
			}
			if reply {
				if err := s.sendStatus(ctx, conn); err != nil {
					return err
				}
				nextStatus = time.Now().Add(statusInterval)
			}
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		case *pgproto3.CopyDone:
			return errors.New("the server ended the stream")
		}
	}
}

// sendStatus confirms the flushed position to the server.
func (s *PostgresSource) sendStatus(ctx context.Context, conn *pgconn.PgConn) error {
	s.mu.Lock()
	if len(s.queue) == 0 && !s.inTxn && s.ackedN == s.returnedN {
		s.flushed = max(s.flushed, s.idlePos)
	}
	flush := s.flushed
	if s.cfg.Permanent {
		flush = min(flush, s.saved)
	}
	s.confirmed = flush
	write := max(s.received, flush)
	s.mu.Unlock()
	err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pglogrepl.LSN(write),
		WALFlushPosition: pglogrepl.LSN(flush),
		WALApplyPosition: pglogrepl.LSN(flush),
	})
	if err != nil {
		return fmt.Errorf("send standby status: %w", err)
	}
	return nil
}

// handleCopyData processes one message of the stream and reports whether the
// server asked for a status reply.
func (s *PostgresSource) handleCopyData(data []byte) (bool, error) {
	if len(data) == 0 {
		return false, nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		k, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return false, fmt.Errorf("keepalive: %w", err)
		}
		s.mu.Lock()
		s.serverEnd = max(s.serverEnd, LSN(k.ServerWALEnd))
		if !s.inTxn {
			s.idlePos = max(s.idlePos, LSN(k.ServerWALEnd))
		}
		s.mu.Unlock()
		return k.ReplyRequested, nil
	case pglogrepl.XLogDataByteID:
		x, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return false, fmt.Errorf("xlog data: %w", err)
		}
		s.mu.Lock()
		s.serverEnd = max(s.serverEnd, LSN(x.ServerWALEnd))
		s.received = max(s.received, LSN(x.WALStart))
		s.mu.Unlock()
		if len(x.WALData) == 0 {
			return false, nil
		}
		msg, err := pglogrepl.Parse(x.WALData)
		if err != nil {
			return false, fmt.Errorf("decode pgoutput message %q: %w", x.WALData[0], err)
		}
		return false, s.handleMessage(msg)
	}
	return false, nil
}

func (s *PostgresSource) handleMessage(msg pglogrepl.Message) error {
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		s.mu.Lock()
		s.inTxn, s.txnLSN, s.txnXid = true, LSN(m.FinalLSN), m.Xid
		s.mu.Unlock()
	case *pglogrepl.CommitMessage:
		s.mu.Lock()
		s.inTxn = false
		if s.swapTxn {
			s.skipping, s.swapTxn = false, false
		}
		s.lastCommit = max(s.lastCommit, s.txnLSN)
		s.idlePos = max(s.idlePos, LSN(m.TransactionEndLSN))
		if len(s.queue) == 0 {
			// Every change of the transaction was returned already (or it
			// had none); otherwise Next completes it when it takes the last.
			s.complete = max(s.complete, s.txnLSN)
		}
		s.mu.Unlock()
		// Next returns a transaction's changes once its Commit arrived.
		signal(s.dataReady)
	case *pglogrepl.RelationMessage:
		if m.RelationID != s.relOID && s.cfg.PartitionRoot {
			// pgoutput describes the partition a change was made in after
			// the root, whose relation the change then names (checkChange
			// refuses any other).
			return nil
		}
		if m.RelationID != s.relOID {
			return fmt.Errorf("unexpected relation %s.%s in the stream", m.Namespace, m.RelationName)
		}
		if err := s.checkRelation(m); err != nil {
			return err
		}
		s.mu.Lock()
		s.relSeen = true
		s.mu.Unlock()
	case *pglogrepl.InsertMessage:
		if err := s.checkChange(m.RelationID); err != nil {
			return err
		}
		after, unchanged, err := s.decodeTuple(m.Tuple)
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		s.push(Change{Op: Insert, After: after, Unchanged: unchanged})
	case *pglogrepl.UpdateMessage:
		if err := s.checkChange(m.RelationID); err != nil {
			return err
		}
		after, unchanged, err := s.decodeTuple(m.NewTuple)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		c := Change{Op: Update, After: after, Unchanged: unchanged}
		if m.OldTuple != nil {
			if c.Before, _, err = s.decodeTuple(m.OldTuple); err != nil {
				return fmt.Errorf("update: old key: %w", err)
			}
			if err := s.checkKey(c.Before); err != nil {
				return fmt.Errorf("update: old key: %w", err)
			}
		}
		s.push(c)
	case *pglogrepl.DeleteMessage:
		if err := s.checkChange(m.RelationID); err != nil {
			return err
		}
		before, _, err := s.decodeTuple(m.OldTuple)
		if err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		if err := s.checkKey(before); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		s.push(Change{Op: Delete, Before: before})
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			if id == s.relOID {
				return fmt.Errorf("TRUNCATE of %s during migration; the migration is aborted", s.displayName())
			}
		}
	case *pglogrepl.LogicalDecodingMessage:
		if m.Prefix == table.PostgresSwapPrefix && m.Transactional && s.cfg.SkipThrough != "" && string(m.Content) == s.cfg.SkipThrough {
			s.mu.Lock()
			s.swapTxn = s.skipping
			s.mu.Unlock()
		}
		if m.Prefix == MarkerPrefix && m.Transactional {
			id := string(m.Content)
			s.mu.Lock()
			ours := s.emitted[id]
			delete(s.emitted, id)
			s.mu.Unlock()
			if ours {
				s.push(Change{Op: Marker, Marker: id})
			}
		}
	}
	return nil
}

// checkRelation verifies that the columns the stream describes are those the
// migration planned for.
func (s *PostgresSource) checkRelation(m *pglogrepl.RelationMessage) error {
	now := make([]string, len(m.Columns))
	for i, c := range m.Columns {
		now[i] = c.Name
	}
	if len(m.Columns) != len(s.columns) {
		return s.changedError(now)
	}
	keyFlag := map[string]bool{}
	for i, c := range m.Columns {
		want := s.columns[i]
		if c.Name != want.name || c.DataType != want.typ || c.TypeModifier != want.typmod {
			return s.changedError(now)
		}
		keyFlag[c.Name] = c.Flags&1 != 0
	}
	if m.ReplicaIdentity != 'f' {
		key, _ := s.plan.Identity()
		for _, k := range key {
			if !keyFlag[k] {
				return fmt.Errorf("the replica identity of %s changed during migration and no longer includes key column %q; the migration is aborted",
					s.displayName(), k)
			}
		}
	}
	return nil
}

func (s *PostgresSource) checkChange(rel uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rel != s.relOID || !s.relSeen {
		return fmt.Errorf("change to relation %d before its description", rel)
	}
	if !s.inTxn {
		return errors.New("row change outside a transaction")
	}
	return nil
}

// checkKey verifies that an old-row image carries the key.
func (s *PostgresSource) checkKey(row Row) error {
	key, index := s.plan.Identity()
	for n, i := range index {
		if row[i] == nil {
			return fmt.Errorf("the old row has no value for key column %q", key[n])
		}
	}
	return nil
}

// decodeTuple turns pgoutput tuple data into a row image in the source's
// column order: text values as strings, NULL as nil, unchanged TOAST values
// marked in the returned slice (nil when every value was sent).
func (s *PostgresSource) decodeTuple(t *pglogrepl.TupleData) (Row, []bool, error) {
	if t == nil {
		return nil, nil, errors.New("no tuple")
	}
	if len(t.Columns) != len(s.columns) {
		return nil, nil, fmt.Errorf("tuple has %d columns, the table %d", len(t.Columns), len(s.columns))
	}
	row := make(Row, len(s.plan.Source.Columns))
	var unchanged []bool
	for i, c := range t.Columns {
		j := s.columns[i].index
		switch c.DataType {
		case pglogrepl.TupleDataTypeText:
			row[j] = string(c.Data)
		case pglogrepl.TupleDataTypeNull:
		case pglogrepl.TupleDataTypeToast:
			if unchanged == nil {
				unchanged = make([]bool, len(row))
			}
			unchanged[j] = true
		default:
			return nil, nil, fmt.Errorf("column %q: unexpected value kind %q", s.columns[i].name, c.DataType)
		}
	}
	return row, unchanged, nil
}

// push queues a change of the open transaction for Next.
func (s *PostgresSource) push(c Change) {
	s.mu.Lock()
	if s.skipping {
		s.mu.Unlock()
		return
	}
	c.Pos, c.Xid = s.txnLSN, s.txnXid
	s.queue = append(s.queue, c)
	s.queueBytes += changeSize(&c)
	s.mu.Unlock()
	signal(s.dataReady)
}

// Checkpoint is where a resumed source (ResumeFrom) restarts: the applied
// position (see Ack), or, when oldest (a change's Pos: its transaction's
// commit LSN) is earlier, oldest itself. Resumed at an LSN, the server
// streams again every transaction whose commit record starts at or after
// it: every change not acknowledged yet, and oldest's transaction. "" before
// Start.
func (s *PostgresSource) Checkpoint(oldest Position) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flushed == 0 {
		return ""
	}
	at := s.flushed
	if l, ok := oldest.(LSN); ok && l != 0 {
		at = min(at, l)
	}
	return at.String()
}

// PublicationID is the publication's identity (ReadPostgresPublicationID)
// as Start found it, before it streamed anything; "" before Start.
func (s *PostgresSource) PublicationID() string { return s.pubID }

// Saved records that a checkpoint at pos (from Checkpoint) was saved: a
// permanent slot may now be confirmed up to it. A position that is no LSN
// (none comes from Checkpoint) changes nothing.
func (s *PostgresSource) Saved(pos string) {
	l, err := pglogrepl.ParseLSN(pos)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.saved = max(s.saved, LSN(l))
	s.mu.Unlock()
}
