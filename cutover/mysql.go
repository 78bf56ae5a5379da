package cutover

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"osc/table"
)

// mysqlSentryComment marks the sentry table, so that osc only ever drops a
// table named like the old table when it is its own sentry.
const mysqlSentryComment = table.MySQLSentryComment

// MySQLOptions describes one MySQL/MariaDB cut-over.
type MySQLOptions struct {
	Schema string
	Table  string // the original, renamed to Old
	Shadow string // renamed to Table
	Old    string // also the sentry's name while the swap is prepared

	// LockTimeout bounds each attempt's waits: for the table lock, for the
	// drain, and for the rename to queue up.
	LockTimeout time.Duration
	Retries     int // attempts in all
	// Attempted, when set, is called after each attempt with how long it
	// took: its locks and waits, the longest a writer waited on it.
	Attempted func(time.Duration)
	Log       *slog.Logger

	// ForeignKeys are the ADD clauses of the table's foreign keys, carried
	// to the shadow under ForeignKeyNames once it is drained (mysql_fk.go).
	ForeignKeys, ForeignKeyNames []string
	// Triggers are the table's triggers, made on the shadow under their
	// planned names once it is drained (mysql_trigger.go).
	Triggers []table.MySQLTrigger
	// CarryAutoIncrement raises the shadow's AUTO_INCREMENT counter to the
	// table's once it is drained (table.Plan.CarryAutoIncrement).
	CarryAutoIncrement bool
	// SetAutoIncrement is set again as the drained shadow's AUTO_INCREMENT
	// counter when SetsAutoIncrement (table.Plan.SetAutoIncrement).
	SetsAutoIncrement bool
	SetAutoIncrement  uint64
}

// errAttempt marks a failure worth another attempt (a wait that timed out).
var errAttempt = errors.New("cut-over attempt timed out")

// MySQL swaps Table and Shadow with the two-connection sentry algorithm (as
// gh-ost's atomic cut-over; it works on MariaDB, which refuses RENAME under
// LOCK TABLES):
//
//   - connection A creates the sentry table Old and runs LOCK TABLES Table
//     WRITE, Old WRITE: writers to Table start waiting;
//   - drain applies every change committed before the lock to the shadow;
//   - connection B runs RENAME TABLE Table TO Old, Shadow TO Table, which
//     waits for A's lock on Table;
//   - once B is seen waiting, A drops the sentry and unlocks: the rename runs
//     first, and the writers then resolve Table to the former shadow.
//
// The rename is queued ahead of the writers only if it waits for Table
// itself. A RENAME takes its metadata locks one by one in name order; had it
// reached Table after waiting on another name (gh-ost's sentry, _t_del,
// sorts before t), then when A unlocks, the writers already queued on Table
// would be granted it before the rename asks for it, and their writes would
// land in the old table after the drain: lost. So Shadow and Old must sort
// after Table (table.MySQLNames: t_osc_new, t_osc_old), which MySQL checks:
// then Table is the first lock the rename asks for, the one it is seen
// waiting for, and on release a waiting exclusive lock is granted before the
// writers' shared ones.
//
// Should A die at any point its locks go with it and B's rename fails on the
// sentry that still exists: the tables are never swapped before the drain.
// A failed attempt leaves no lock and no sentry, and is retried; once the
// rename happened there is no retry.
func MySQL(ctx context.Context, db *sql.DB, o MySQLOptions, ready, drain func(context.Context) error) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Shadow <= o.Table || o.Old <= o.Table {
		return fmt.Errorf("cut-over: the shadow %s and the old table %s must sort after %s, or writers could reach the old table after the drain",
			o.Shadow, o.Old, o.Table)
	}
	if err := analyzeMySQL(ctx, db, o.Schema, o.Shadow); err != nil {
		return err
	}
	retries := max(o.Retries, 1)
	for attempt := 1; ; attempt++ {
		if ready != nil {
			if err := ready(ctx); err != nil {
				return fmt.Errorf("cut-over attempt %d of %d: %w", attempt, retries, err)
			}
		}
		log.Info("cut-over attempt", "attempt", attempt, "of", retries, "table", o.Table)
		start := time.Now()
		swapped, err := mysqlAttempt(ctx, db, o, drain)
		if o.Attempted != nil {
			o.Attempted(time.Since(start))
		}
		if swapped {
			if err != nil {
				log.Warn("cut-over: the tables were swapped despite an error", "err", err)
			}
			log.Info("cut-over complete", "attempt", attempt, "attempt took",
				time.Since(start).Round(time.Millisecond).String())
			return nil
		}
		if !errors.Is(err, errAttempt) || attempt >= retries || ctx.Err() != nil {
			return fmt.Errorf("cut-over attempt %d of %d: %w", attempt, retries, err)
		}
		backoff := min(time.Duration(attempt)*250*time.Millisecond, 2*time.Second)
		log.Warn("cut-over attempt failed; retrying", "attempt", attempt, "err", err, "backoff", backoff.String())
		select {
		case <-ctx.Done():
			return fmt.Errorf("cut-over: %w", ctx.Err())
		case <-time.After(backoff):
		}
	}
}

// analyzeMySQL refreshes the shadow's index statistics before it becomes the
// table: InnoDB's persistent statistics date from when it was empty, and the
// optimizer then plans full scans for writers' key lookups right after the
// swap, whose row locks deadlock the writers against each other (seen under a
// full-speed load). ANALYZE TABLE samples a few index pages; nothing but osc
// uses the shadow, so it waits for no one.
func analyzeMySQL(ctx context.Context, db *sql.DB, schema, name string) error {
	rows, err := db.QueryContext(ctx, "ANALYZE TABLE "+table.QuoteMySQL(schema)+"."+table.QuoteMySQL(name))
	if err != nil {
		return fmt.Errorf("analyze the shadow table: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var tbl, op, typ, msg string
		if err := rows.Scan(&tbl, &op, &typ, &msg); err != nil {
			return fmt.Errorf("analyze the shadow table: %w", err)
		}
		if strings.EqualFold(typ, "error") {
			return fmt.Errorf("analyze the shadow table: %s", msg)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("analyze the shadow table: %w", err)
	}
	return nil
}

// mysqlAttempt runs one attempt; it reports whether the tables were swapped.
func mysqlAttempt(ctx context.Context, db *sql.DB, o MySQLOptions, drain func(context.Context) error) (swapped bool, err error) {
	q := func(n string) string { return table.QuoteMySQL(o.Schema) + "." + table.QuoteMySQL(n) }
	// Cleanup and checks must run even when ctx was cancelled.
	bg := context.WithoutCancel(ctx)
	if err := DropMySQLSentry(ctx, db, o.Schema, o.Old); err != nil {
		return false, err
	}
	secs := int(math.Ceil(o.LockTimeout.Seconds()))
	secs = max(secs, 1)

	a, err := db.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("cut-over connection: %w", err)
	}
	defer discard(a)
	b, err := db.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("cut-over connection: %w", err)
	}
	defer discard(b)
	var bID int64
	if err := b.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&bID); err != nil {
		return false, fmt.Errorf("cut-over connection: %w", err)
	}
	if _, err := b.ExecContext(ctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d", 2*secs+1)); err != nil {
		return false, fmt.Errorf("cut-over connection: %w", err)
	}
	if _, err := a.ExecContext(ctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d", secs)); err != nil {
		return false, fmt.Errorf("cut-over connection: %w", err)
	}

	if _, err := a.ExecContext(ctx, "CREATE TABLE "+q(o.Old)+" (id INT PRIMARY KEY) ENGINE=InnoDB COMMENT='"+mysqlSentryComment+"'"); err != nil {
		return false, retryable(fmt.Errorf("create sentry table %s: %w", o.Old, err))
	}
	// From here on, a failure leaves nothing behind: the rename is stopped
	// first, then the carried triggers and foreign keys dropped, then the
	// lock released, then the sentry dropped.
	var renameDone chan error
	carried, triggers := false, false
	defer func() {
		if swapped || err == nil {
			return
		}
		if renameDone != nil {
			if serr := stopRename(bg, db, bID, renameDone); serr != nil {
				// The rename may still run once the lock is gone: keep the
				// sentry so that it fails, and do not retry.
				if _, uerr := a.ExecContext(bg, "UNLOCK TABLES"); uerr != nil {
					discard(a)
				}
				err = fmt.Errorf("%w (after: %v)", serr, err)
				return
			}
		}
		if triggers {
			if terr := dropMySQLTriggers(bg, db, o, secs); terr != nil {
				err = fmt.Errorf("%w (after: %v)", terr, err)
			}
		}
		if carried {
			if ferr := dropMySQLForeignKeys(bg, db, o, secs); ferr != nil {
				err = fmt.Errorf("%w (after: %v)", ferr, err)
			}
		}
		if _, uerr := a.ExecContext(bg, "UNLOCK TABLES"); uerr != nil {
			// A's session is broken; its locks end with it.
			discard(a)
		}
		if s, cerr := mysqlSwapped(bg, db, o); cerr == nil && s {
			swapped = true
			return
		}
		if derr := DropMySQLSentry(bg, db, o.Schema, o.Old); derr != nil {
			err = fmt.Errorf("%w (after: %v)", derr, err)
		}
	}()

	lock := "LOCK TABLES " + q(o.Table) + " WRITE, " + q(o.Old) + " WRITE" //nolint:gosec // G202: quoted names only
	if len(o.ForeignKeys) > 0 {
		// The parents too, READ: their writers then wait for the parent
		// itself, holding no lock. Otherwise a parent's writer waits for
		// the table (its child) holding a lock on the shadow, a child too
		// once the carried foreign keys are added to it, and the
		// shadow's next DDL (a carried trigger, or the failed attempt's
		// cleanup) waits for that writer while the writer waits for this
		// lock: each attempt timed out, and a cleanup without a timeout
		// kept the writers waiting. Their reads still run.
		parents, err := mysqlParents(ctx, a, o.Schema, o.Table)
		if err != nil {
			return false, err
		}
		for _, p := range parents {
			lock += ", " + p + " READ"
		}
	}
	if _, err := a.ExecContext(ctx, lock); err != nil {
		return false, retryable(fmt.Errorf("lock %s: %w", o.Table, err))
	}
	dctx, cancel := context.WithTimeout(ctx, o.LockTimeout)
	err = drain(dctx)
	cancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return false, fmt.Errorf("%w: drain not done within %s: %v", errAttempt, o.LockTimeout, err)
		}
		return false, fmt.Errorf("drain under lock: %w", err)
	}
	if err := carryMySQLAutoIncrement(ctx, db, o, secs); err != nil {
		return false, err
	}
	if carried, err = addMySQLForeignKeys(ctx, db, o, secs); err != nil {
		carried = true // a key added before the failure is dropped again
		return false, err
	}
	if triggers, err = createMySQLTriggers(ctx, db, o, secs); err != nil {
		return false, err
	}

	renameDone = make(chan error, 1)
	go func() {
		// Not cancelled with ctx: closing the connection would not stop the
		// server-side wait; KILL QUERY does (stopRename).
		_, err := b.ExecContext(bg, "RENAME TABLE "+q(o.Table)+" TO "+q(o.Old)+", "+q(o.Shadow)+" TO "+q(o.Table))
		renameDone <- err
	}()
	if err := waitRenameQueued(ctx, db, bID, o.LockTimeout, renameDone); err != nil {
		return false, err
	}

	if _, err := a.ExecContext(bg, "DROP TABLE "+q(o.Old)); err != nil {
		return false, retryable(fmt.Errorf("drop sentry table %s: %w", o.Old, err))
	}
	// The rename, queued first, runs as soon as the lock is released; writers
	// follow it.
	_, uerr := a.ExecContext(bg, "UNLOCK TABLES")
	if uerr != nil {
		discard(a)
	}
	renameErr := <-renameDone
	renameDone = nil
	s, cerr := mysqlSwapped(bg, db, o)
	if cerr != nil {
		return false, fmt.Errorf("check the swap: %w (rename: %v)", cerr, renameErr)
	}
	if !s {
		if renameErr == nil {
			renameErr = errors.New("the rename reported success")
		}
		return false, retryable(fmt.Errorf("tables not swapped: %w", renameErr))
	}
	return true, renameErr
}

// carryMySQLAutoIncrement raises the drained shadow's AUTO_INCREMENT counter
// to the table's, which writes are waiting on: the shadow got the table's
// counter when it was made, and since then only the ids of the rows the
// applier wrote, not those of inserts the binlog never showed (rolled back,
// or deleted in their transaction), which a plain ALTER TABLE, keeping the
// table's counter, never hands out again. A counter the --alter sets (0
// too) is set again instead (SetAutoIncrement): the shadow's counter passed the ids of
// the rows the applier wrote, also of rows deleted since, where the plain
// ALTER's new table, which never held those, counts from its highest id.
// InnoDB makes the counter set at least the highest id + 1 in both.
func carryMySQLAutoIncrement(ctx context.Context, db *sql.DB, o MySQLOptions, secs int) error {
	if !o.CarryAutoIncrement && !o.SetsAutoIncrement {
		return nil
	}
	c, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("carry AUTO_INCREMENT: %w", err)
	}
	defer discard(c)
	next := o.SetAutoIncrement
	if o.CarryAutoIncrement {
		counter := func(name string) (sql.NullInt64, error) {
			var n sql.NullInt64
			err := c.QueryRowContext(ctx, "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
				o.Schema, name).Scan(&n)
			if err != nil {
				return n, fmt.Errorf("carry AUTO_INCREMENT: read %s's: %w", name, err)
			}
			return n, nil
		}
		want, err := counter(o.Table)
		if err != nil {
			return err
		}
		have, err := counter(o.Shadow)
		if err != nil || !want.Valid || !have.Valid || want.Int64 <= have.Int64 {
			return err
		}
		next = uint64(want.Int64)
	}
	if _, err := c.ExecContext(ctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d", secs)); err != nil {
		return fmt.Errorf("carry AUTO_INCREMENT: %w", err)
	}
	if _, err := c.ExecContext(ctx, "ALTER TABLE "+table.QuoteMySQL(o.Schema, o.Shadow)+" AUTO_INCREMENT = "+strconv.FormatUint(next, 10)); err != nil {
		return retryable(fmt.Errorf("carry AUTO_INCREMENT %d to %s: %w", next, o.Shadow, err))
	}
	return nil
}

// waitRenameQueued waits until connection id is seen waiting for a table
// metadata lock with the RENAME: the lock on the original table, the first
// table it asks for (see MySQL). A wait for another kind of lock (the schema's,
// behind a queued ALTER DATABASE; the backup lock) is not enough: the writers
// take none of those and would reach the table first.
func waitRenameQueued(ctx context.Context, db *sql.DB, id int64, timeout time.Duration, renameDone chan error) error {
	deadline := time.Now().Add(timeout)
	wait := 2 * time.Millisecond
	for {
		var n int
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.PROCESSLIST
			WHERE ID = ? AND STATE = 'Waiting for table metadata lock' AND INFO LIKE 'RENAME TABLE%'`, id).Scan(&n)
		if err != nil {
			return fmt.Errorf("watch the rename: %w", err)
		}
		if n > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: the rename was not seen waiting within %s", errAttempt, timeout)
		}
		select {
		case err := <-renameDone:
			// Put it back for stopRename.
			renameDone <- err
			if err == nil {
				return errors.New("the rename ended before the lock was released")
			}
			return retryable(fmt.Errorf("rename ended before the lock was released: %w", err))
		case <-ctx.Done():
			return fmt.Errorf("watch the rename: %w", ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// stopRename kills the rename if it still runs and waits for it to end. It
// returns an error when the rename could not be confirmed stopped. The
// rename's own error is not needed: the caller reads the tables to learn
// whether it swapped them (mysqlSwapped).
func stopRename(ctx context.Context, db *sql.DB, id int64, renameDone chan error) error {
	select {
	case <-renameDone: //nolint:errcheck // only its end matters (see above)
		return nil
	default:
	}
	// MySQL's error 1094 (unknown thread) means it already ended.
	_, kerr := db.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", id))
	select {
	case <-renameDone: //nolint:errcheck // only its end matters (see above)
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the rename (connection %d) did not stop (kill: %v)", id, kerr)
	}
}

// mysqlSwapped reports whether the swap happened: the original's name and
// Old exist, the shadow's name does not.
func mysqlSwapped(ctx context.Context, db *sql.DB, o MySQLOptions) (bool, error) {
	rows, err := db.QueryContext(ctx, `SELECT TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?, ?, ?)`, o.Schema, o.Table, o.Shadow, o.Old)
	if err != nil {
		return false, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return false, fmt.Errorf("list tables: %w", err)
		}
		seen[n] = true
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("list tables: %w", err)
	}
	return seen[o.Table] && seen[o.Old] && !seen[o.Shadow], nil
}

// DropMySQLSentry drops schema.name if it is a cut-over sentry (and not, say,
// the original table after a swap).
func DropMySQLSentry(ctx context.Context, db *sql.DB, schema, name string) error {
	var comment string
	err := db.QueryRowContext(ctx, `SELECT TABLE_COMMENT FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, schema, name).Scan(&comment)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look for sentry table %s: %w", name, err)
	}
	if comment != mysqlSentryComment {
		return nil
	}
	return table.DropMySQLTable(ctx, db, schema, name)
}

// retryable marks lock wait timeouts, deadlocks and interrupted statements
// (table.MySQLTransient) as worth another attempt.
func retryable(err error) error {
	if table.MySQLTransient(err) {
		return fmt.Errorf("%w: %w", errAttempt, err)
	}
	return err
}

// discard closes the connection without returning it to the pool: its
// session settings and any lock must not outlive the attempt.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	_ = c.Close()
}
