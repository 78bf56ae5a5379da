package backfill

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"osc/engine"
	"osc/probe"
	"osc/table"
	"osc/throttle"
)

// Options are a backfill's database-independent settings.
type Options struct {
	Schema, Table      string
	Set, Where, Verify string
	// LockWait is how long a chunk waits for a row (or metadata) lock
	// before it rolls back and is retried.
	LockWait time.Duration
	Log      *slog.Logger
}

// where is the --where, or TRUE.
func (o Options) where() string {
	if strings.TrimSpace(o.Where) == "" {
		return "TRUE"
	}
	return o.Where
}

// fails is the condition of the rows for which --verify is not true (a
// NULL fails it too).
func (o Options) fails() string {
	return "NOT COALESCE((" + o.Verify + "\n), FALSE)"
}

// checkpoint is what the bookkeeping table keeps: the backfill it belongs to
// and the last committed chunk's upper key.
type checkpoint struct {
	// Table is the table backfilled, schema.table: on PostgreSQL two long
	// names may share the bookkeeping table's (FitPostgresName).
	Table string          `json:"table"`
	Set   string          `json:"set"`
	Where string          `json:"where"`
	Key   json.RawMessage `json:"key"` // null before the first chunk
}

func newCheckpoint(o Options, key json.RawMessage) checkpoint {
	return checkpoint{Table: o.Schema + "." + o.Table, Set: o.Set, Where: o.Where, Key: key}
}

// of reports whether the checkpoint is of the backfill o.
func (ck checkpoint) of(o Options) bool {
	return ck.Table == o.Schema+"."+o.Table && ck.Set == o.Set && ck.Where == o.Where
}

// bookkeepingSuffix names the bookkeeping table after the table.
const bookkeepingSuffix = "_osc_bf"

// refuseLeftover is the refusal of a run without --resume that finds a
// killed run's bookkeeping table.
func refuseLeftover(name, saved, drop string) error {
	return fmt.Errorf("a killed osc backfill of this table left its checkpoint in %s (saved %s): run again with --resume to continue after its last committed chunk, or drop it (%s) to start afresh",
		name, saved, drop)
}

// refuseOther refuses to resume a checkpoint of another backfill.
func refuseOther(ck checkpoint, o Options) error {
	if t := o.Schema + "." + o.Table; ck.Table != t {
		return fmt.Errorf("the checkpoint is of a backfill of another table, %s, not of %s (their names share the bookkeeping table's): resume that one, or drop the table to backfill this one",
			ck.Table, t)
	}
	return fmt.Errorf("the checkpoint is of another backfill (--set %q --where %q), not of --set %q --where %q: resume it with the same expressions",
		ck.Set, ck.Where, o.Set, o.Where)
}

// refuseKeyAssignment refuses a --set that assigns col, a column of the key
// the backfill walks the table by: a row it moved ahead of the walk would be
// updated again by a later chunk, and again.
func refuseKeyAssignment(col string, keys []string) error {
	return fmt.Errorf("--set assigns %s, a column of the key (%s) osc walks the table by: a row the UPDATE moves ahead of the walk would be updated again by a later chunk; update the key with a plain UPDATE",
		col, strings.Join(keys, ", "))
}

// MySQL is the backfill of a MySQL or MariaDB table.
type MySQL struct {
	opt  Options
	conn table.MySQLConn

	db     *sql.DB
	work   *sql.Conn // the chunks' session: the server's time_zone, osc's lock waits
	lock   *table.MySQLLock
	key    table.MySQLKeyRange
	keys   []string
	from   string // "`s`.`t` FORCE INDEX (`k`)"
	book   string // quoted bookkeeping table
	bookN  string
	made   bool  // Begin created or took up the bookkeeping table
	limit  []any // the highest key at the first chunk (nil: empty table)
	limitd bool
	parser *mysqlParser
}

var _ engine.BackfillDialect = (*MySQL)(nil)

// NewMySQL returns the backfill of o.Schema.o.Table on the server conn
// reaches.
func NewMySQL(o Options, conn table.MySQLConn) *MySQL {
	return &MySQL{opt: o, conn: conn}
}

func (m *MySQL) table() string { return table.QuoteMySQL(m.opt.Schema, m.opt.Table) }

// Inspect connects, takes the table's advisory lock, reads its key and has
// the server prepare the backfill's statements.
func (m *MySQL) Inspect(ctx context.Context) (*engine.BackfillPlan, error) {
	db, err := table.OpenMySQL(ctx, m.conn, m.opt.Schema)
	if err != nil {
		return nil, err
	}
	m.db = db
	size, err := table.ReadMySQLTableSize(ctx, db, m.opt.Schema, m.opt.Table)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("table %s does not exist", m.table())
	}
	if err != nil {
		return nil, err
	}
	if m.lock, err = table.LockMySQL(ctx, db, m.opt.Schema, m.opt.Table); err != nil {
		return nil, fmt.Errorf("backfill: %w", err)
	}
	pair, err := table.PairMySQL(ctx, db, m.opt.Schema, m.opt.Table, m.opt.Table)
	if err != nil {
		return nil, err
	}
	cp, err := table.NewMySQLCopy(pair.Plan)
	if err != nil {
		return nil, err
	}
	m.key, m.keys = cp.Key, pair.Plan.Key
	m.from = strings.TrimPrefix(cp.From, "FROM ")
	m.bookN = m.opt.Table + bookkeepingSuffix
	if len(m.bookN) > 64 {
		return nil, fmt.Errorf("table name %s is too long for the backfill's bookkeeping table (%s: more than 64 characters)", m.opt.Table, m.bookN)
	}
	m.book = table.QuoteMySQL(m.opt.Schema, m.bookN)
	if m.work, err = db.Conn(ctx); err != nil {
		return nil, fmt.Errorf("backfill: connect: %w", err)
	}
	// The user's expressions run in the server's time zone, as in a
	// session of theirs (osc's pool is in UTC); each chunk waits for a lock
	// at most LockWait (whole seconds, at least 1, on MySQL).
	wait := max(int64(math.Ceil(m.opt.LockWait.Seconds())), 1)
	if _, err := m.work.ExecContext(ctx, "SET SESSION time_zone = @@GLOBAL.time_zone, innodb_lock_wait_timeout = ?, lock_wait_timeout = ?", wait, wait); err != nil {
		return nil, fmt.Errorf("backfill: session: %w", err)
	}
	var mode string
	if err := m.work.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("backfill: read sql_mode: %w", err)
	}
	if m.parser, err = newMySQLParser(mode); err != nil {
		return nil, err
	}
	if err := m.checkStatements(ctx, mode); err != nil {
		return nil, err
	}
	plan := &engine.BackfillPlan{Schema: m.opt.Schema, Table: m.opt.Table, Key: m.keys, EstimatedRows: size.Rows, Bookkeeping: m.bookN}
	plan.Notes = append(plan.Notes, fmt.Sprintf("each chunk locks its rows without waiting (FOR UPDATE NOWAIT) and waits at most %ds for other locks (innodb_lock_wait_timeout, lock_wait_timeout); a row an application holds makes it roll back and retry", wait))
	return plan, nil
}

// checkStatements checks the expressions (check.go, mysql_parse.go) and has
// the server prepare the statements made of them.
func (m *MySQL) checkStatements(ctx context.Context, mode string) error {
	l := lexer{mysql: true, backslash: !strings.Contains(mode, "NO_BACKSLASH_ESCAPES"), ansiQuotes: strings.Contains(mode, "ANSI_QUOTES")}
	var stmts []string
	if m.opt.Set != "" {
		if err := l.checkFragment("--set", m.opt.Set); err != nil {
			return err
		}
		if m.opt.Where != "" {
			if err := l.checkFragment("--where", m.opt.Where); err != nil {
				return err
			}
		}
		q, _ := m.update(make([]any, len(m.keys)), make([]any, len(m.keys)))
		if err := m.parser.checkUpdate(q, m.keys); err != nil {
			return err
		}
		// The lock's WHERE is the UPDATE's, which the parser checked.
		lq, _ := m.lockRows(make([]any, len(m.keys)), make([]any, len(m.keys)))
		stmts = append(stmts, q, lq)
	}
	if m.opt.Verify != "" {
		if err := l.checkFragment("--verify", m.opt.Verify); err != nil {
			return err
		}
		q := m.failing("COUNT(*)")
		if err := m.parser.checkVerify(q); err != nil {
			return err
		}
		stmts = append(stmts, q)
	}
	for _, q := range stmts {
		st, err := m.work.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("the server refuses the statement osc makes of the expressions: %w\n%s", err, q)
		}
		st.Close()
	}
	return nil
}

// chunkRows is the condition of the rows of the keys in (after, upto]
// (after nil: from the first) that match the --where, and its arguments.
func (m *MySQL) chunkRows(after, upto []any) (string, []any) {
	cond, args := m.key.Cond(upto, "<", true)
	if after != nil {
		c, a := m.key.Cond(after, ">", false)
		cond, args = c+" AND "+cond, append(a, args...)
	}
	return "(" + cond + ") AND (" + m.opt.where() + "\n)", args
}

// update is the chunk's UPDATE of the keys in (after, upto], and its
// arguments.
func (m *MySQL) update(after, upto []any) (string, []any) {
	cond, args := m.chunkRows(after, upto)
	return "UPDATE " + m.from + " SET " + m.opt.Set + "\nWHERE " + cond, args
}

// lockRows locks, without waiting (NOWAIT), the rows update changes: a
// chunk that waited for an application's row while holding the rows it
// had updated would make InnoDB pick the application's transaction, the
// smaller, as the victim of a deadlock in which it then asked for one of
// them.
func (m *MySQL) lockRows(after, upto []any) (string, []any) {
	cond, args := m.chunkRows(after, upto)
	return "SELECT COUNT(*) FROM " + m.from + " WHERE " + cond + " FOR UPDATE NOWAIT", args
}

// failing selects what of the rows for which --verify is not true.
func (m *MySQL) failing(what string) string {
	return "SELECT " + what + " FROM " + m.from + " WHERE " + m.opt.fails()
}

// Estimate times reading the first chunk.
func (m *MySQL) Estimate(ctx context.Context, size int) (*engine.BackfillEstimate, error) {
	est := &engine.BackfillEstimate{}
	start := time.Now()
	q := "SELECT " + strings.Join(m.key.Select(), ", ") + " FROM " + m.from + " ORDER BY " + m.key.OrderBy("") + fmt.Sprintf(" LIMIT 1 OFFSET %d", size-1)
	upto, err := m.key.QueryKey(ctx, m.work, q)
	if err != nil {
		return nil, fmt.Errorf("read a sample chunk: %w", err)
	}
	// The sample's rows: fewer than size in a smaller table.
	q, args := "SELECT COUNT(*) FROM "+m.from, []any(nil)
	if upto != nil {
		var cond string
		cond, args = m.key.Cond(upto, "<", true)
		q += " WHERE " + cond
	}
	if err := m.work.QueryRowContext(ctx, q, args...).Scan(&est.SampleRows); err != nil {
		return nil, fmt.Errorf("read a sample chunk: %w", err)
	}
	est.SampleTook = time.Since(start)
	return est, nil
}

// Begin creates the bookkeeping table, or takes up a killed run's.
func (m *MySQL) Begin(ctx context.Context, resume bool) ([]any, error) {
	var saved string
	err := m.db.QueryRowContext(ctx, "SELECT DATE_FORMAT(ts, '%Y-%m-%d %H:%i:%s UTC'), value FROM "+m.book+" WHERE id = 1").Scan(&saved, new(string))
	exists := err == nil || errors.Is(err, sql.ErrNoRows)
	switch {
	case err != nil && !errors.Is(err, sql.ErrNoRows) && !mysqlNoTable(err):
		return nil, fmt.Errorf("read the backfill's checkpoint: %w", err)
	case !resume && exists:
		return nil, refuseLeftover(m.bookN, saved, "DROP TABLE "+m.book)
	case resume && !exists:
		return nil, fmt.Errorf("nothing to resume: no checkpoint table %s (a backfill that ended, even by failing or Ctrl-C, removes it)", m.bookN)
	case resume:
		return m.resume(ctx)
	}
	if _, err := m.db.ExecContext(ctx, "CREATE TABLE "+m.book+` (id BIGINT PRIMARY KEY,
		ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
		hint VARCHAR(64) NOT NULL, value TEXT NOT NULL) ENGINE=InnoDB`); err != nil {
		return nil, fmt.Errorf("create the backfill's checkpoint table %s: %w", m.bookN, err)
	}
	m.made = true
	return nil, m.saveFirst(ctx)
}

// saveFirst saves the checkpoint of no chunk committed.
func (m *MySQL) saveFirst(ctx context.Context) error {
	ck, err := json.Marshal(newCheckpoint(m.opt, json.RawMessage("null")))
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if _, err := m.db.ExecContext(ctx, "INSERT INTO "+m.book+" (id, hint, value) VALUES (1, 'checkpoint', ?)", string(ck)); err != nil { //nolint:gosec // G202: the quoted bookkeeping table; the value is a parameter
		return fmt.Errorf("save the first checkpoint: %w", err)
	}
	return nil
}

// resume reads the killed run's checkpoint.
func (m *MySQL) resume(ctx context.Context) ([]any, error) {
	var v string
	err := m.db.QueryRowContext(ctx, "SELECT value FROM "+m.book+" WHERE id = 1").Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		// Killed between creating the table and saving its first
		// checkpoint: no chunk committed, start from the first.
		m.made = true
		return nil, m.saveFirst(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("read the backfill's checkpoint: %w", err)
	}
	var ck checkpoint
	if err := json.Unmarshal([]byte(v), &ck); err != nil {
		return nil, fmt.Errorf("read the backfill's checkpoint: %w", err)
	}
	if !ck.of(m.opt) {
		return nil, refuseOther(ck, m.opt)
	}
	m.made = true
	return table.DecodeMySQLKey(ck.Key)
}

// mysqlNoTable reports whether err is "table doesn't exist" (1146).
func mysqlNoTable(err error) bool {
	var me *gomysql.MySQLError
	return errors.As(err, &me) && me.Number == 1146
}

// UpdateChunk updates one chunk and saves its checkpoint, in one
// transaction.
func (m *MySQL) UpdateChunk(ctx context.Context, after []any, size int) (engine.BackfillChunk, error) {
	if !m.limitd {
		q := "SELECT " + strings.Join(m.key.Select(), ", ") + " FROM " + m.from + " ORDER BY " + m.key.OrderBy(" DESC") + " LIMIT 1"
		limit, err := m.key.QueryKey(ctx, m.work, q)
		if err != nil {
			return engine.BackfillChunk{}, fmt.Errorf("highest key: %w", err)
		}
		m.limit, m.limitd = limit, true
	}
	if m.limit == nil {
		return engine.BackfillChunk{Last: after, Done: true}, nil
	}
	tx, err := m.work.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return engine.BackfillChunk{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() // after Commit a no-op
	cond, args := m.key.Cond(m.limit, "<", true)
	if after != nil {
		c, a := m.key.Cond(after, ">", false)
		cond, args = c+" AND "+cond, append(a, args...)
	}
	q := "SELECT " + strings.Join(m.key.Select(), ", ") + " FROM " + m.from + " WHERE " + cond +
		" ORDER BY " + m.key.OrderBy("") + fmt.Sprintf(" LIMIT 1 OFFSET %d", size-1)
	upper, err := m.key.QueryKey(ctx, tx, q, args...)
	if err != nil {
		return engine.BackfillChunk{}, fmt.Errorf("upper bound: %w", err)
	}
	ch := engine.BackfillChunk{Last: upper, Scanned: int64(size)}
	if upper == nil {
		ch.Last, ch.Done = m.limit, true
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+m.from+" WHERE "+cond, args...).Scan(&ch.Scanned); err != nil {
			return engine.BackfillChunk{}, fmt.Errorf("count the last chunk: %w", err)
		}
	}
	lq, largs := m.lockRows(after, ch.Last)
	if err := tx.QueryRowContext(ctx, lq, largs...).Scan(new(int64)); err != nil {
		return engine.BackfillChunk{}, fmt.Errorf("lock the chunk's rows: %w", err)
	}
	uq, uargs := m.update(after, ch.Last)
	res, err := tx.ExecContext(ctx, uq, uargs...)
	if err != nil {
		return engine.BackfillChunk{}, fmt.Errorf("update: %w", err)
	}
	if ch.Updated, err = res.RowsAffected(); err != nil {
		return engine.BackfillChunk{}, fmt.Errorf("update: %w", err)
	}
	key, err := table.EncodeMySQLKey(ch.Last)
	if err != nil {
		return engine.BackfillChunk{}, err
	}
	ck, err := json.Marshal(newCheckpoint(m.opt, key))
	if err != nil {
		return engine.BackfillChunk{}, fmt.Errorf("checkpoint: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE "+m.book+" SET value = ? WHERE id = 1", string(ck)); err != nil { //nolint:gosec // G202: the quoted bookkeeping table; the value is a parameter
		return engine.BackfillChunk{}, fmt.Errorf("save the checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return engine.BackfillChunk{}, fmt.Errorf("commit: %w", err)
	}
	return ch, nil
}

// Behind estimates the rows with keys up to after, from the optimizer's
// estimate of the range (EXPLAIN: index dives, no scan).
func (m *MySQL) Behind(ctx context.Context, after []any) (int64, error) {
	cond, args := m.key.Cond(after, "<", true)
	rows, err := m.work.QueryContext(ctx, "EXPLAIN SELECT 1 FROM "+m.from+" WHERE "+cond, args...) //nolint:gosec // G202: the quoted table and key columns; the key's values are parameters
	if err != nil {
		return 0, fmt.Errorf("explain: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, fmt.Errorf("explain: %w", err)
	}
	at := slices.Index(cols, "rows")
	if at < 0 || !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("explain: %w", err)
		}
		return 0, fmt.Errorf("explain: no rows estimate (columns %v)", cols)
	}
	vals := make([]sql.NullInt64, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for i := range ptrs {
		if i != at {
			ptrs[i] = new(any)
		}
	}
	if err := rows.Scan(ptrs...); err != nil {
		return 0, fmt.Errorf("explain: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("explain: %w", err)
	}
	return vals[at].Int64, nil
}

// CountChunk counts the rows the --where selects, or that fail --verify,
// among the size rows after after.
func (m *MySQL) CountChunk(ctx context.Context, after []any, size int, failing bool, most int) (engine.BackfillCount, error) {
	cond, args := "TRUE", []any(nil)
	if after != nil {
		cond, args = m.key.Cond(after, ">", false)
	}
	q := "SELECT " + strings.Join(m.key.Select(), ", ") + " FROM " + m.from + " WHERE " + cond +
		" ORDER BY " + m.key.OrderBy("") + fmt.Sprintf(" LIMIT 1 OFFSET %d", size-1)
	upper, err := m.key.QueryKey(ctx, m.work, q, args...)
	if err != nil {
		return engine.BackfillCount{}, fmt.Errorf("upper bound: %w", err)
	}
	c := engine.BackfillCount{Last: upper, Scanned: int64(size)}
	if upper == nil {
		c.Done = true
		if err := m.work.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+m.from+" WHERE "+cond, args...).Scan(&c.Scanned); err != nil {
			return engine.BackfillCount{}, fmt.Errorf("count the last chunk: %w", err)
		}
	} else {
		u, uargs := m.key.Cond(upper, "<", true)
		cond, args = "("+cond+") AND "+u, append(args, uargs...)
	}
	pred := "(" + m.opt.where() + "\n)"
	if failing {
		pred = m.opt.fails()
	}
	where := " FROM " + m.from + " WHERE (" + cond + ") AND " + pred
	if err := m.work.QueryRowContext(ctx, "SELECT COUNT(*)"+where, args...).Scan(&c.Counted); err != nil {
		return engine.BackfillCount{}, err
	}
	if !failing || c.Counted == 0 || most <= 0 {
		return c, nil
	}
	rows, err := m.work.QueryContext(ctx, "SELECT "+strings.Join(m.key.Select(), ", ")+where+" ORDER BY "+m.key.OrderBy("")+fmt.Sprintf(" LIMIT %d", most), args...) //nolint:gosec // G202: the quoted table and key columns and the user's own --verify; the key's values are parameters
	if err != nil {
		return engine.BackfillCount{}, err
	}
	c.Keys, err = renderKeys(rows, m.keys)
	return c, err
}

// renderKeys reads rows of key values as "(k1=v1, k2=v2)".
func renderKeys(rows *sql.Rows, names []string) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(names))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		parts := make([]string, len(names))
		for i, v := range vals {
			parts[i] = names[i] + "=" + v.String
			if !v.Valid {
				parts[i] = names[i] + "=NULL"
			}
		}
		out = append(out, "("+strings.Join(parts, ", ")+")")
	}
	return out, rows.Err()
}

// Cleanup drops the bookkeeping table.
func (m *MySQL) Cleanup(ctx context.Context) error {
	if !m.made {
		return nil
	}
	if err := table.DropMySQLTable(ctx, m.db, m.opt.Schema, m.bookN); err != nil {
		return err
	}
	m.made = false
	return nil
}

// Throttle returns the probe: heartbeats go into the bookkeeping table.
func (m *MySQL) Throttle() (throttle.Probe, error) {
	return probe.NewMySQL(m.db, m.conn, m.opt.Schema, m.bookN, 0, m.opt.Log), nil
}

// Retryable: a lock wait timeout, a deadlock, or a row the chunk's NOWAIT
// lock found taken (MySQL 8: 3572, ER_LOCK_NOWAIT; MariaDB: a lock wait
// timeout).
func (m *MySQL) Retryable(err error) bool {
	var me *gomysql.MySQLError
	return table.MySQLTransient(err) || errors.As(err, &me) && me.Number == 3572
}

// Driver names the database for hooks.
func (m *MySQL) Driver() string { return "mysql" }

// ParseReplicas checks a list of host:port replicas.
func (m *MySQL) ParseReplicas(list string) ([]string, error) {
	return throttle.ParseReplicas(list, false)
}

// DisplayReplica shows a replica entry (host:port holds no password).
func (m *MySQL) DisplayReplica(entry string) string { return entry }

// Close releases the advisory lock and the connections.
func (m *MySQL) Close() error {
	var errs []error
	if m.work != nil {
		errs = append(errs, m.work.Close())
	}
	if m.lock != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errs = append(errs, m.lock.Release(ctx))
	}
	if m.db != nil {
		errs = append(errs, m.db.Close())
	}
	return errors.Join(errs...)
}
