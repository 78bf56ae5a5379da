package cdc

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"osc/table"
)

// MySQLConfig is how the binlog reader connects to the server: it registers
// as a replica with ServerID, which must be unique among the server's replicas.
type MySQLConfig struct {
	Host     string
	Port     uint16
	User     string
	Password string
	ServerID uint32
	Flavor   string      // "mariadb" or "mysql"
	TLS      *tls.Config // nil: no TLS
	// From is where Start begins reading: a Checkpoint of an earlier
	// source, at a transaction's start (zero: the server's current end).
	From MySQLPos
}

// MySQLPos is a binlog position: the file and the end offset of an event.
// The positions of changes also number them (seq, from 1 in the order Next
// returns them): the rows of one event share its offset, and Ack must tell
// which of them were applied.
type MySQLPos struct {
	File string
	Pos  uint32
	seq  uint64
}

func (p MySQLPos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Pos) }

// ParseMySQLPos reads a position written by MySQLPos.String ("file:pos").
func ParseMySQLPos(s string) (MySQLPos, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return MySQLPos{}, fmt.Errorf("binlog position %q is not file:pos", s)
	}
	n, err := strconv.ParseUint(s[i+1:], 10, 32)
	if err != nil || n < 4 {
		return MySQLPos{}, fmt.Errorf("binlog position %q is not file:pos", s)
	}
	return MySQLPos{File: s[:i], Pos: uint32(n)}, nil
}

// mysqlQueue and mysqlQueueBytes bound the decoded changes that wait for
// Next (their number, and their size as changeSize counts it) before the
// binlog reader stops reading: enough for the engine's largest batches
// while a backlog lasts; mysqlEventQueue is how many events the syncer reads
// ahead of the reader (by count: rows may be large).
const (
	mysqlQueue      = 16384
	mysqlQueueBytes = 64 << 20
	mysqlEventQueue = 256
)

// myMarkerHint is the changelog hint of the rows EmitMarker writes.
const myMarkerHint = "marker"

// errMySourceClosed ends Next after Close.
var errMySourceClosed = errors.New("binlog reader closed")

// MySQLSource reads the binlog of a MySQL or MariaDB server as a replica and
// turns the row events of the plan's original table into Changes, and the
// marker rows of the changelog table into Marker changes. It never reads the
// table itself: a change is built from the binlog row image (FULL).
type MySQLSource struct {
	cfg  MySQLConfig
	db   *sql.DB
	plan *table.Plan

	changes chan Change
	// queued is the size of the changes in changes (changeSize); space is
	// signalled when Next takes some.
	queued atomic.Int64
	space  chan struct{}
	done   chan struct{} // closed when the reader goroutine ends
	err    error         // why the reader ended; read only after done is closed

	startOnce sync.Once
	started   chan struct{} // closed when Start has launched the reader
	closeOnce sync.Once
	closed    chan struct{} // closed when the syncer is closed
	cancel    context.CancelFunc
	syncer    *replication.BinlogSyncer

	mu    sync.Mutex
	read  MySQLPos // end of the last event read
	acked MySQLPos // last position the engine applied (zero: none)
	gtid  string   // last GTID seen, for display
	// safe is the last transaction boundary before which every change was
	// acked (Checkpoint); bounds are the boundaries read after it, each
	// with the number of changes sent before it, in binlog order.
	safe   MySQLPos
	bounds []myBound
	// swapped is the end of the cut-over's RENAME in the binlog, once read
	// (SwapPosition).
	swapped MySQLPos
}

// myBound is a transaction boundary in the binlog: every change numbered
// up to seq precedes it, every later one follows it.
type myBound struct {
	pos MySQLPos
	seq uint64
}

// NewMySQL returns a binlog source for the plan's original table; db is used
// to read the binlog position and to write markers into the changelog table.
func NewMySQL(cfg MySQLConfig, db *sql.DB, plan *table.Plan) (*MySQLSource, error) {
	switch {
	case cfg.ServerID == 0:
		return nil, errors.New("binlog source: the replica server id must not be 0")
	case cfg.Flavor != mysql.MySQLFlavor && cfg.Flavor != mysql.MariaDBFlavor:
		return nil, fmt.Errorf("binlog source: flavor %q is neither %q nor %q", cfg.Flavor, mysql.MySQLFlavor, mysql.MariaDBFlavor)
	case plan == nil || plan.Source == nil || len(plan.Source.Columns) == 0:
		return nil, errors.New("binlog source: the plan has no source table")
	case plan.ChangelogName == "":
		return nil, errors.New("binlog source: the plan has no changelog table")
	}
	return &MySQLSource{
		cfg:     cfg,
		db:      db,
		plan:    plan,
		changes: make(chan Change, mysqlQueue),
		space:   make(chan struct{}, 1),
		done:    make(chan struct{}),
		started: make(chan struct{}),
		closed:  make(chan struct{}),
	}, nil
}

// Start reads the server's current binlog position and starts streaming from
// it: every transaction committed after Start returns is read.
func (s *MySQLSource) Start(ctx context.Context) error {
	err := errors.New("binlog source: already started")
	s.startOnce.Do(func() { err = s.start(ctx) })
	return err
}

func (s *MySQLSource) start(ctx context.Context) error {
	pos, gtid := s.cfg.From, ""
	if pos.File == "" {
		var err error
		if pos, gtid, err = s.binlogStatus(ctx); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.read, s.gtid, s.safe = pos, gtid, pos
	s.mu.Unlock()

	dialer := &net.Dialer{Timeout: 10 * time.Second}
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID:  s.cfg.ServerID,
		Flavor:    s.cfg.Flavor,
		Host:      s.cfg.Host,
		Port:      s.cfg.Port,
		User:      s.cfg.User,
		Password:  s.cfg.Password,
		TLSConfig: s.cfg.TLS,
		// Values must reach the applier exactly as stored: temporal values as
		// strings (TIMESTAMP rendered in UTC, the applier's session time zone,
		// the one zone in which every instant has its own text; see
		// table.MySQLTimeConversion),
		// DECIMAL as its exact decimal string, and MySQL JSON as text that
		// keeps each value's type (1.0 stays a double).
		ParseTime:               false,
		TimestampStringLocation: time.UTC,
		UseDecimal:              false,
		RenderJSONAsMySQLText:   true,
		// A lost connection resumes at the next event's file:pos, which
		// may be inside a transaction: the reader takes the server's
		// rotate there for no boundary (myReader.event).
		MaxReconnectAttempts: 10,
		HeartbeatPeriod:      5 * time.Second,
		ReadTimeout:          30 * time.Second,
		Dialer:               dialer.DialContext,
		EventCacheCount:      mysqlEventQueue,
		Logger:               slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		RowsEventDecodeFunc:  s.decodeRows,
	})
	streamer, err := syncer.StartSync(mysql.Position{Name: pos.File, Pos: pos.Pos})
	if err != nil {
		syncer.Close()
		return fmt.Errorf("binlog source: start replication at %s: %w", pos, err)
	}
	readCtx, cancel := context.WithCancel(context.Background())
	s.syncer, s.cancel = syncer, cancel
	close(s.started)
	go s.run(readCtx, streamer)
	return nil
}

// binlogStatus returns the server's current binlog position and, for
// display, its GTID position.
func (s *MySQLSource) binlogStatus(ctx context.Context) (MySQLPos, string, error) {
	file, pos, gtid, err := s.showStatus(ctx, "SHOW MASTER STATUS")
	if err != nil {
		// MySQL 8.4 removed SHOW MASTER STATUS.
		var err2 error
		file, pos, gtid, err2 = s.showStatus(ctx, "SHOW BINARY LOG STATUS")
		if err2 != nil {
			return MySQLPos{}, "", fmt.Errorf("binlog source: read binlog position: %w; %w", err, err2)
		}
	}
	if file == "" {
		return MySQLPos{}, "", errors.New("binlog source: binary logging is disabled on the server (enable log_bin)")
	}
	if s.cfg.Flavor == mysql.MariaDBFlavor {
		if err := s.db.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&gtid); err != nil {
			return MySQLPos{}, "", fmt.Errorf("binlog source: read gtid_binlog_pos: %w", err)
		}
	}
	return MySQLPos{File: file, Pos: pos}, gtid, nil
}

func (s *MySQLSource) showStatus(ctx context.Context, query string) (file string, pos uint32, gtid string, err error) {
	rows, err := s.db.QueryContext(ctx, query)
	if err != nil {
		return "", 0, "", fmt.Errorf("%s: %w", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", 0, "", fmt.Errorf("%s: %w", query, err)
	}
	if !rows.Next() {
		return "", 0, "", rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return "", 0, "", fmt.Errorf("%s: %w", query, err)
	}
	for i, c := range cols {
		switch c {
		case "File":
			file = vals[i].String
		case "Position":
			if _, err := fmt.Sscan(vals[i].String, &pos); err != nil {
				return "", 0, "", fmt.Errorf("%s: position %q: %w", query, vals[i].String, err)
			}
		case "Executed_Gtid_Set":
			gtid = vals[i].String
		}
	}
	return file, pos, gtid, rows.Err()
}

// decodeRows decodes the rows of the source and changelog tables only; the
// rows of other tables are left undecoded.
func (s *MySQLSource) decodeRows(e *replication.RowsEvent, data []byte) error {
	pos, err := e.DecodeHeader(data)
	if err != nil {
		return err
	}
	if s.tableOf(e.Table) == myOtherTable {
		return nil
	}
	return e.DecodeData(pos, data)
}

type myTableKind uint8

const (
	myOtherTable myTableKind = iota
	mySourceTable
	myChangelogTable
)

func (s *MySQLSource) tableOf(t *replication.TableMapEvent) myTableKind {
	if t == nil || string(t.Schema) != s.plan.Source.Schema {
		return myOtherTable
	}
	switch string(t.Table) {
	case s.plan.Source.Name:
		return mySourceTable
	case s.plan.ChangelogName:
		return myChangelogTable
	}
	return myOtherTable
}

// run reads events until the stream fails, the table changes under the
// migration, the cut-over rename is read, or Close.
func (s *MySQLSource) run(ctx context.Context, streamer *replication.BinlogStreamer) {
	defer close(s.done)
	r := myReader{s: s}
	s.mu.Lock()
	r.file, r.lastPos = s.read.File, s.read.Pos
	s.mu.Unlock()
	for {
		ev, err := streamer.GetEvent(ctx)
		if err != nil {
			if ctx.Err() != nil {
				s.err = errMySourceClosed
			} else {
				s.err = fmt.Errorf("binlog source: read binlog after %s: %w", r.pos(), err)
			}
			return
		}
		end, err := r.event(ctx, ev)
		if err != nil {
			if ctx.Err() != nil {
				err = errMySourceClosed
			}
			s.err = err
			return
		}
		if end {
			return
		}
	}
}

// mariadbPreparedXA is MariaDB's FL_PREPARED_XA flag of a GTID event.
const mariadbPreparedXA = 64

// myReader is the state of the reader goroutine.
type myReader struct {
	s       *MySQLSource
	file    string
	lastPos uint32
	// xa is set inside an XA transaction (XA START … XA PREPARE): its rows
	// are binlogged at the prepare, before it commits or rolls back.
	xa bool
	// payload is set while the events of a compressed transaction are read.
	payload bool
	// seq numbers the changes sent (MySQLPos.seq).
	seq uint64
}

func (r *myReader) pos() MySQLPos { return MySQLPos{File: r.file, Pos: r.lastPos} }

// event handles one binlog event; end reports the cut-over rename, after
// which the original table's name belongs to the new table.
func (r *myReader) event(ctx context.Context, ev *replication.BinlogEvent) (end bool, err error) {
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		r.file = string(e.NextLogName)
		r.setPos(uint32(e.Position), "")
		// A binlog file starts between transactions. Any other rotate is
		// the one the server sends first on every connection, naming the
		// position asked for: at Start that is From or the server's end,
		// where safe already is; after a reconnect (go-mysql's retry asks
		// for the end of the last event read) it may be inside a
		// transaction, even inside a statement, and is no boundary.
		if e.Position == 4 {
			r.boundary()
		}
		return false, nil
	case *replication.HeartbeatEvent, *replication.FormatDescriptionEvent:
		return false, nil
	case *replication.TransactionPayloadEvent:
		// A compressed transaction, whole: it ends at the payload's end.
		r.payload = true
		defer func() { r.payload = false }()
		for _, inner := range e.Events {
			if end, err := r.event(ctx, inner); end || err != nil {
				return end, err
			}
		}
		r.setPos(ev.Header.LogPos, "")
		r.boundary()
		return false, nil
	}

	gtid := ""
	switch e := ev.Event.(type) {
	case *replication.MariadbGTIDEvent:
		// Every transaction starts with its GTID event (MySQL: also an
		// anonymous one), so the position before it is a boundary.
		r.boundary()
		gtid = e.GTID.String()
		// MariaDB marks the prepared part of an XA transaction in its GTID
		// event (FL_PREPARED_XA); MySQL logs XA START (below).
		r.xa = e.Flags&mariadbPreparedXA != 0
	case *replication.GTIDEvent:
		r.boundary()
		r.xa = false
		if set, err := e.GTIDNext(); err == nil {
			gtid = set.String()
		}
	case *replication.GtidTaggedLogEvent:
		r.boundary()
		r.xa = false
	case *replication.RowsEvent:
		if err := r.rows(ctx, ev.Header, e); err != nil {
			return false, err
		}
	case *replication.XIDEvent:
		r.xa = false
		if !r.payload {
			// The transaction commits here.
			r.setPos(ev.Header.LogPos, "")
			r.boundary()
			return false, nil
		}
	case *replication.QueryEvent:
		if q := strings.ToUpper(strings.TrimSpace(string(e.Query))); strings.HasPrefix(q, "XA START") || strings.HasPrefix(q, "XA BEGIN") {
			r.xa = true
		}
		switch r.s.classify(string(e.Schema), string(e.Query)) {
		case myQueryCutOver:
			r.setPos(ev.Header.LogPos, "")
			r.s.mu.Lock()
			r.s.swapped = r.pos()
			r.s.mu.Unlock()
			return true, nil
		case myQueryDDL:
			return false, fmt.Errorf("DDL on %s.%s during migration: %s", r.s.plan.Source.Schema, r.s.plan.Source.Name, e.Query)
		case myQueryDML:
			return false, fmt.Errorf("statement-based binlog event on %s.%s during migration (binlog_format must be ROW): %s",
				r.s.plan.Source.Schema, r.s.plan.Source.Name, e.Query)
		}
	}
	r.setPos(ev.Header.LogPos, gtid)
	return false, nil
}

func (r *myReader) setPos(pos uint32, gtid string) {
	if pos == 0 && gtid == "" {
		return
	}
	if pos != 0 {
		r.lastPos = pos
	}
	r.s.mu.Lock()
	r.s.read = r.pos()
	if gtid != "" {
		r.s.gtid = gtid
	}
	r.s.mu.Unlock()
}

func (r *myReader) rows(ctx context.Context, h *replication.EventHeader, e *replication.RowsEvent) error {
	kind := r.s.tableOf(e.Table)
	if kind == myOtherTable {
		return nil
	}
	pos := MySQLPos{File: r.file, Pos: h.LogPos}
	name := r.s.plan.Source.Schema + "." + string(e.Table.Table)
	if h.EventType == replication.PARTIAL_UPDATE_ROWS_EVENT {
		return fmt.Errorf("binlog source: partial JSON update of %s at %s: set binlog_row_value_options='' (FULL row images are required)", name, pos)
	}
	for _, skipped := range e.SkippedColumns {
		if len(skipped) > 0 {
			return fmt.Errorf("binlog source: row of %s at %s lacks columns: set binlog_row_image=FULL", name, pos)
		}
	}
	if kind == myChangelogTable {
		return r.markers(ctx, e, pos)
	}
	if r.xa {
		// Its rows reach the binlog at XA PREPARE, before it commits or
		// rolls back (and before it is visible): applying them could write
		// changes that never happen, and breaks the copy's argument.
		return fmt.Errorf("binlog source: an XA transaction changed %s at %s; osc cannot migrate a table written by XA transactions", name, pos)
	}

	n := len(r.s.plan.Source.Columns)
	if hashes := r.s.plan.Source.HashColumns; int(e.ColumnCount) != n+hashes {
		return fmt.Errorf("binlog source: row of %s at %s has %d columns, the table had %d (and %d hidden hash columns) when the migration started",
			name, pos, e.ColumnCount, n, hashes)
	}
	// The hidden hash columns of MariaDB's long unique keys come last: the
	// server computes them, osc neither reads nor writes them.
	for i, row := range e.Rows {
		e.Rows[i] = row[:n:n]
		for j, c := range r.s.plan.Source.Columns {
			if c.DataType == "timestamp" {
				row[j] = myEpochFraction(row[j])
			}
		}
	}
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		for _, row := range e.Rows {
			if err := r.send(ctx, Change{Op: Insert, After: row, Pos: pos}); err != nil {
				return err
			}
		}
	case replication.EnumRowsEventTypeUpdate:
		if len(e.Rows)%2 != 0 {
			return fmt.Errorf("binlog source: update of %s at %s has %d row images, not before/after pairs", name, pos, len(e.Rows))
		}
		for i := 0; i < len(e.Rows); i += 2 {
			if err := r.send(ctx, Change{Op: Update, Before: e.Rows[i], After: e.Rows[i+1], Pos: pos}); err != nil {
				return err
			}
		}
	case replication.EnumRowsEventTypeDelete:
		for _, row := range e.Rows {
			if err := r.send(ctx, Change{Op: Delete, Before: row, Pos: pos}); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("binlog source: unexpected rows event %s for %s at %s", h.EventType, name, pos)
	}
	return nil
}

// myEpochFraction is the text of a TIMESTAMP value as go-mysql decodes it
// (in UTC), except in the first second of the epoch: MariaDB stores a
// TIMESTAMP as its seconds since 1970-01-01 00:00:00 UTC and a fraction, and
// its zero value is 0 seconds without a fraction, where go-mysql renders any
// 0 seconds as the zero value, fraction kept ('0000-00-00 00:00:00.000001'
// for 1970-01-01 00:00:00.000001), which the applier wrote as such.
func myEpochFraction(v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	frac, ok := strings.CutPrefix(s, "0000-00-00 00:00:00.")
	if !ok || strings.Trim(frac, "0") == "" {
		return v
	}
	return "1970-01-01 00:00:00." + frac
}

// markers turns the marker rows inserted into the changelog table
// (id, ts, hint, value) into Marker changes.
func (r *myReader) markers(ctx context.Context, e *replication.RowsEvent, pos MySQLPos) error {
	if e.Type() != replication.EnumRowsEventTypeInsert {
		return nil
	}
	for _, row := range e.Rows {
		if len(row) < 4 {
			return fmt.Errorf("binlog source: changelog row at %s has %d columns, want id, ts, hint, value", pos, len(row))
		}
		hint := myTextValue(row[2])
		if hint != myMarkerHint {
			continue
		}
		id := myTextValue(row[3])
		if err := r.send(ctx, Change{Op: Marker, Marker: id, Pos: pos}); err != nil {
			return err
		}
	}
	return nil
}

// myTextValue is a VARCHAR of the binlog as a string ("" for NULL).
func myTextValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}

func (r *myReader) send(ctx context.Context, c Change) error {
	r.seq++
	p := c.Pos.(MySQLPos)
	p.seq = r.seq
	c.Pos = p
	size := int64(changeSize(&c))
	for q := r.s.queued.Load(); q > 0 && q+size > mysqlQueueBytes; q = r.s.queued.Load() {
		select {
		case <-r.s.space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.s.queued.Add(size)
	select {
	case r.s.changes <- c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Next returns the changes read so far, in binlog order, at most max of them,
// waiting for at least one. After the cut-over rename no change follows and
// Next waits for ctx.
func (s *MySQLSource) Next(ctx context.Context, limit int) ([]Change, error) {
	select {
	case <-s.started:
	default:
		return nil, errors.New("binlog source: Next before Start")
	}
	limit = max(limit, 1)
	var first Change
	select {
	case first = <-s.changes:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		// The reader sent everything before it ended.
		select {
		case first = <-s.changes:
		default:
			if s.err != nil {
				return nil, s.err
			}
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	out := make([]Change, 1, min(limit, 1+len(s.changes)))
	out[0] = first
fill:
	for len(out) < limit {
		select {
		case c := <-s.changes:
			out = append(out, c)
		default:
			break fill
		}
	}
	var size int64
	for i := range out {
		size += int64(changeSize(&out[i]))
	}
	s.queued.Add(-size)
	select {
	case s.space <- struct{}{}:
	default:
	}
	return out, nil
}

// EmitMarker inserts a marker row into the changelog table (autocommit): Next
// returns it after every change committed before.
func (s *MySQLSource) EmitMarker(ctx context.Context, id string) error {
	// In a transaction of its own, committed before EmitMarker returns, even
	// where the session does not autocommit (init_connect): the engine relies
	// on every change before the marker being visible once it returns.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("binlog source: emit marker: %w", err)
	}
	defer tx.Rollback() // a no-op after Commit
	//nolint:gosec // G202: the changelog's name, quoted; values are parameters
	q := "INSERT INTO " + table.QuoteMySQL(s.plan.Source.Schema, s.plan.ChangelogName) + " (hint, value) VALUES (?, ?)"
	if _, err := tx.ExecContext(ctx, q, myMarkerHint, id); err != nil {
		return fmt.Errorf("binlog source: emit marker: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("binlog source: emit marker: commit: %w", err)
	}
	return nil
}

// boundary records that the reader is at a transaction boundary: the end of
// the last event read is the start of the next transaction.
func (r *myReader) boundary() {
	s := r.s
	b := myBound{pos: r.pos(), seq: r.seq}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch n := len(s.bounds); {
	case b.seq <= s.acked.seq:
		// Every change before it was applied already.
		s.safe, s.bounds = b.pos, s.bounds[:0]
	case n > 0 && s.bounds[n-1].seq == b.seq:
		// No change since the last boundary: the later one will do.
		s.bounds[n-1] = b
	default:
		s.bounds = append(s.bounds, b)
	}
}

// Ack records the last change applied to the shadow: it and every change
// Next returned before it. The binlog needs no acknowledgement; Checkpoint
// and Lag report it.
func (s *MySQLSource) Ack(pos Position) {
	p, ok := pos.(MySQLPos)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.seq < s.acked.seq {
		return
	}
	s.acked = p
	i := 0
	for i < len(s.bounds) && s.bounds[i].seq <= p.seq {
		s.safe = s.bounds[i].pos
		i++
	}
	s.bounds = s.bounds[:copy(s.bounds, s.bounds[i:])]
}

// Checkpoint returns the binlog position a resumed source starts at
// (MySQLConfig.From): the end of the last transaction whose changes were
// all acked, so every change not acked is read again. A batch may end
// inside a transaction (inside one rows event even); the next transaction
// boundary after it counts only once the whole transaction was acked. ""
// before Start. oldest is ignored: a change before a chunk's marker in the
// binlog is visible to the chunk's read (ordered commit), so an applied
// change is never missed by a later chunk.
func (s *MySQLSource) Checkpoint(Position) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.safe.File == "" {
		return ""
	}
	return s.safe.String()
}

// Lag describes where the reader is in the binlog.
func (s *MySQLSource) Lag() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "binlog %s", s.read)
	if s.gtid != "" {
		fmt.Fprintf(&b, " gtid %s", s.gtid)
	}
	if s.acked.File != "" {
		fmt.Fprintf(&b, ", applied %s", s.acked)
	}
	return b.String()
}

// Close stops the replication connection and the reader goroutine.
func (s *MySQLSource) Close(ctx context.Context) error {
	s.startOnce.Do(func() {}) // no Start after Close
	select {
	case <-s.started:
	default:
		return nil
	}
	s.closeOnce.Do(func() {
		s.cancel()
		go func() {
			s.syncer.Close()
			close(s.closed)
		}()
	})
	for _, ch := range []chan struct{}{s.done, s.closed} {
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("binlog source: close: %w", ctx.Err())
		}
	}
	return nil
}

// myQueryKind is what a statement in the binlog means for the migration.
type myQueryKind uint8

const (
	myQueryOther   myQueryKind = iota
	myQueryDDL                 // changes or removes the original table
	myQueryDML                 // statement-logged write to the original table
	myQueryCutOver             // the cut-over RENAME (original and shadow)
)

// classify looks at a statement of a QueryEvent: a crude tokenizer finds the
// first keyword, the kind of object DDL acts on (an event or a procedure of
// the table's name is not the table), and every (schema.)name mentioned. It
// errs on the side of reporting DDL.
func (s *MySQLSource) classify(defaultSchema, query string) myQueryKind {
	toks := myStatementBody(myTokenize(query))
	if len(toks) == 0 || toks[0].quoted {
		return myQueryOther
	}
	kind := myQueryOther
	switch strings.ToUpper(toks[0].text) {
	case "WITH":
		// WITH … UPDATE/DELETE/INSERT (MySQL 8): a write behind a CTE.
		for _, t := range toks {
			if !t.quoted && !t.punct && slices.Contains([]string{"INSERT", "UPDATE", "DELETE", "REPLACE"}, strings.ToUpper(t.text)) {
				kind = myQueryDML
				break
			}
		}
	case "ALTER", "DROP", "RENAME", "TRUNCATE", "CREATE":
		// CREATE OR REPLACE TABLE drops the table it names.
		orReplace := len(toks) > 2 && strings.EqualFold(toks[1].text, "OR") && strings.EqualFold(toks[2].text, "REPLACE")
		verb, object := strings.ToUpper(toks[0].text), myObjectKind(toks)
		// osc's own ALTER of the shadow (the cut-over adds the carried
		// foreign keys to it) may name a column like the table.
		if schema, name, ok := myAlterTarget(toks); ok && s.plan.Shadow != nil && strings.EqualFold(name, s.plan.Shadow.Name) &&
			strings.EqualFold(cmp.Or(schema, defaultSchema), s.plan.Source.Schema) {
			return myQueryOther
		}
		if myDDLOnTable(verb, object, orReplace) {
			kind = myQueryDDL
			if verb == "CREATE" {
				toks = myOnTarget(toks, object)
			}
		}
	case "INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD":
		kind = myQueryDML
	}
	if kind == myQueryOther {
		return myQueryOther
	}
	src, shadow := false, false
	for i := 0; i < len(toks); i++ {
		if toks[i].punct {
			continue
		}
		schema, name := defaultSchema, toks[i].text
		if i+2 < len(toks) && toks[i+1].text == "." && toks[i+1].punct && !toks[i+2].punct {
			schema, name = toks[i].text, toks[i+2].text
			i += 2
		}
		// DROP DATABASE / SCHEMA [IF EXISTS] drops the table too.
		if strings.EqualFold(name, s.plan.Source.Schema) && myAfterDatabase(toks[:i]) {
			src = true
		}
		if !strings.EqualFold(schema, s.plan.Source.Schema) {
			continue
		}
		if strings.EqualFold(name, s.plan.Source.Name) {
			src = true
		}
		if s.plan.Shadow != nil && strings.EqualFold(name, s.plan.Shadow.Name) {
			shadow = true
		}
	}
	switch {
	case !src:
		return myQueryOther
	case shadow && strings.EqualFold(toks[0].text, "RENAME"):
		return myQueryCutOver
	}
	return kind
}

// myStatementBody skips MariaDB's SET STATEMENT var=value[, …] FOR prefix,
// which the binlog keeps word for word: the statement is what follows FOR.
func myStatementBody(toks []myToken) []myToken {
	if len(toks) < 2 || toks[0].quoted || toks[1].quoted ||
		!strings.EqualFold(toks[0].text, "SET") || !strings.EqualFold(toks[1].text, "STATEMENT") {
		return toks
	}
	for i := 2; i < len(toks); i++ {
		if !toks[i].quoted && !toks[i].punct && strings.EqualFold(toks[i].text, "FOR") {
			return toks[i+1:]
		}
	}
	return toks
}

// myAfterDatabase reports whether the tokens before a name end with DATABASE
// or SCHEMA, optionally followed by IF EXISTS.
func myAfterDatabase(before []myToken) bool {
	word := func(i int, w string) bool {
		return i >= 0 && !before[i].quoted && !before[i].punct && strings.EqualFold(before[i].text, w)
	}
	n := len(before) - 1
	if word(n, "EXISTS") && word(n-1, "IF") {
		n -= 2
	}
	return word(n, "DATABASE") || word(n, "SCHEMA")
}

type myToken struct {
	text   string
	quoted bool // `name` or "name"
	punct  bool
}

// myTokenize splits SQL into words, quoted identifiers and punctuation,
// dropping comments and string literals. The bodies of executable comments
// (/*! ... */, /*M! ... */) are kept.
func myTokenize(q string) []myToken {
	var toks []myToken
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.HasPrefix(q[i:], "/*!") || strings.HasPrefix(q[i:], "/*M!"):
			i += strings.Index(q[i:], "!") + 1
			for i < len(q) && q[i] >= '0' && q[i] <= '9' {
				i++
			}
		case strings.HasPrefix(q[i:], "/*"):
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return toks
			}
			i += end + 4
		case strings.HasPrefix(q[i:], "*/"):
			i += 2
		case c == '#' || strings.HasPrefix(q[i:], "-- "):
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				return toks
			}
			i += end + 1
		case c == '\'':
			i = mySkipString(q, i)
		case c == '`' || c == '"':
			var b bytes.Buffer
			j := i + 1
			for j < len(q) {
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c {
						b.WriteByte(c)
						j += 2
						continue
					}
					break
				}
				b.WriteByte(q[j])
				j++
			}
			toks = append(toks, myToken{text: b.String(), quoted: true})
			i = j + 1
		case myIsWordByte(c):
			j := i
			for j < len(q) && myIsWordByte(q[j]) {
				j++
			}
			toks = append(toks, myToken{text: q[i:j]})
			i = j
		default:
			toks = append(toks, myToken{text: q[i : i+1], punct: true})
			i++
		}
	}
	return toks
}

// mySkipString returns the index after the string literal starting at q[i].
func mySkipString(q string, i int) int {
	for j := i + 1; j < len(q); j++ {
		switch q[j] {
		case '\\':
			j++
		case '\'':
			if j+1 < len(q) && q[j+1] == '\'' {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(q)
}

func myIsWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// Saved: the binlog keeps every position until it is purged, whatever osc
// acknowledged; nothing to bound.
func (s *MySQLSource) Saved(string) {}
