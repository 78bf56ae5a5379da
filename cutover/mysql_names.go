package cutover

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"osc/table"
)

// MySQLNamesOptions describes giving the migrated table's carried foreign
// keys and triggers their own names back (MySQLOwnNames).
type MySQLNamesOptions struct {
	Schema, Table string
	// ForeignKeys and Triggers map the name each was carried under (its
	// planned name) to its own.
	ForeignKeys, Triggers map[string]string
	// LockTimeout bounds each attempt's wait for the table's lock; Retries
	// is the attempts in all, as at the cut-over.
	LockTimeout time.Duration
	Retries     int
	Log         *slog.Logger
}

// MySQLOwnNames gives the migrated table's carried foreign keys and triggers
// their own names back, once the old table no longer holds them (it is
// dropped, or its foreign keys and triggers are): the table is then what a
// plain ALTER TABLE leaves, names included. MariaDB has no RENAME TRIGGER nor
// RENAME CONSTRAINT, so, under one LOCK TABLES of the table (its readers and
// writers, and its parents' writers, wait for it, as for the cut-over's), one
// ALTER TABLE drops each carried foreign key and adds it back under its own
// name with its rules (foreign_key_checks = 0, in place: metadata only, no
// row is read, the index it uses is kept), and each carried trigger is made
// again under its own name right after itself in its firing order (FOLLOWS),
// with its definer, sql_mode and character set, then dropped under its
// planned name. No write runs meanwhile, so none misses a trigger or fires
// one twice; should the session die between a trigger's CREATE and its DROP
// (osc killed), the server releases the lock with that one trigger there
// twice, and a run that calls MySQLOwnNames again (osc --resume) only drops
// its planned name: no trigger is ever missing. The foreign keys and the
// triggers are renamed independently: a failure of one leaves the other
// done; a trigger whose own name cannot be made keeps its planned one, and
// the others are renamed. Each attempt waits at most LockTimeout for the
// lock, and one stopped by a lock wait, a deadlock or the loss of its session
// is retried up to Retries attempts in all, for what is left. It returns the names given back (with an
// error too); its error says which statements to run for the rest: the table
// is right but for the names.
func MySQLOwnNames(ctx context.Context, db *sql.DB, o MySQLNamesOptions) ([]string, error) {
	if len(o.ForeignKeys)+len(o.Triggers) == 0 {
		return nil, nil
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	secs := max(int(math.Ceil(o.LockTimeout.Seconds())), 1)
	retries := max(o.Retries, 1)
	var given []string
	fail := func(attempt int, err error, script []string) ([]string, error) {
		if len(given) > 0 {
			err = fmt.Errorf("%w; %s have their own names already", err, strings.Join(given, ", "))
		}
		if len(script) > 0 {
			err = fmt.Errorf("%w; run yourself (one session): %s", err, strings.Join(script, "; "))
		}
		return given, fmt.Errorf("give %s.%s's foreign keys and triggers their own names (attempt %d of %d): %w", o.Schema, o.Table, attempt, retries, err)
	}
	lost := false // an attempt's session was lost: the next must flush the table
	for attempt := 1; ; attempt++ {
		names, script, err := mysqlOwnNamesAttempt(ctx, db, o, secs, lost)
		lost = lost || errors.Is(err, errSessionLost)
		given = append(given, names...)
		if err == nil {
			return given, nil
		}
		if !errors.Is(err, errAttempt) || attempt >= retries || ctx.Err() != nil {
			return fail(attempt, err, script)
		}
		backoff := min(time.Duration(attempt)*250*time.Millisecond, 2*time.Second)
		log.Warn("giving the foreign keys and triggers their own names failed; retrying", "attempt", attempt, "err", err, "backoff", backoff.String())
		select {
		case <-ctx.Done():
			return fail(attempt, ctx.Err(), script)
		case <-time.After(backoff):
		}
	}
}

// mysqlOwnNamesAttempt runs one attempt. It returns the names given back,
// and the statements that would do what is left to do, for the error's
// message: read before the lock, and again under it once something failed.
//
// Under the lock it flushes the table from the server's table cache first.
// MariaDB parses a table's triggers whenever it opens the table (under LOCK
// TABLES, again after each CREATE or DROP TRIGGER), and a KILL that lands
// mid-parse leaves that instance of the table in the cache with the triggers
// it did not parse missing, for any session to take: a DROP TRIGGER run on
// it rewrites the table's trigger file from the triggers it has, silently
// losing the others. A renaming session killed on the server (a DBA's KILL,
// pt-kill) leaves one; the flush opens the table afresh. Without the RELOAD
// privilege the flush is skipped, unless an earlier attempt lost its
// session (mustFlush): that attempt fails, naming the fix.
func mysqlOwnNamesAttempt(ctx context.Context, db *sql.DB, o MySQLNamesOptions, secs int, mustFlush bool) (names, script []string, err error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	defer discard(c)
	r, err := readMySQLOwnNames(ctx, c, o)
	if err != nil || r.empty() {
		return nil, nil, err
	}
	script = r.script(o)
	if _, err := c.ExecContext(ctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d, foreign_key_checks = 0", secs)); err != nil {
		return nil, script, fmt.Errorf("set the session: %w", err)
	}
	// Each trigger is made in a session set as it was made (its sql_mode
	// and character set); the statements after it are read in the
	// session's own: a DROP TRIGGER of a name that is not ASCII, sent in
	// UTF-8, read as latin1 would name no trigger.
	var own table.MySQLTrigger
	if err := c.QueryRowContext(ctx, "SELECT @@session.sql_mode, @@session.character_set_client, @@session.collation_connection").
		Scan(&own.SQLMode, &own.CharsetClient, &own.CollationConnection); err != nil {
		return nil, script, fmt.Errorf("read the session: %w", err)
	}
	session := own.Session()
	quoted := table.QuoteMySQL(o.Schema, o.Table)
	if _, err := c.ExecContext(ctx, "LOCK TABLES "+quoted+" WRITE"); err != nil {
		return nil, script, lostOr(fmt.Errorf("lock %s: %w", o.Table, err))
	}
	// Once the lock is held the statements run to their end, whatever
	// happens to ctx (they change metadata only, each waits at most
	// lock_wait_timeout): the driver closes the connection of a statement
	// cancelled in flight, and the server would then release the lock
	// between a trigger's CREATE and its DROP, for writes to fire it twice
	// until a resumed run drops the second.
	ctx = context.WithoutCancel(ctx)
	defer func() {
		// A failed UNLOCK leaves the session broken: discard ends it, and
		// its locks with it.
		_, _ = c.ExecContext(ctx, "UNLOCK TABLES")
	}()
	if _, err := c.ExecContext(ctx, "FLUSH LOCAL TABLES "+quoted); err != nil {
		noReload := mysqlNoReload(err)
		switch {
		case noReload && mustFlush:
			return nil, script, fmt.Errorf("flush %s from the table cache (an earlier attempt's session was lost: MariaDB may have left "+
				"the table's triggers half parsed there, where a DROP TRIGGER loses the others; grant RELOAD, or run FLUSH LOCAL TABLES %s first): %w",
				o.Table, quoted, err)
		case !noReload:
			return nil, script, lostOr(fmt.Errorf("flush %s from the table cache: %w", o.Table, err))
		}
	}
	// Read again under the lock: what the statements below change.
	if r, err = readMySQLOwnNames(ctx, c, o); err != nil {
		return nil, script, lostOr(err)
	}
	var errs []error
	if r.fkAlter != "" {
		if _, err := c.ExecContext(ctx, r.fkAlter); err != nil {
			errs = append(errs, lostOr(fmt.Errorf("rename the foreign keys %s: %w", strings.Join(r.fkNames, ", "), err)))
		} else {
			names = append(names, r.fkNames...)
		}
	}
	// The triggers whether or not the foreign keys were renamed: neither
	// needs the other; nor does a trigger need another, but all need the
	// session, and the lock it holds.
	for _, t := range r.triggers {
		if err := renameMySQLTrigger(ctx, c, o, t, session); err != nil {
			err = lostOr(err)
			errs = append(errs, err)
			if errors.Is(err, errSessionLost) {
				// The session is gone (killed on the server, its
				// connection lost), its lock with it, maybe with this
				// trigger there twice and firing twice (or its
				// statement killed, the session's copy of the table
				// maybe half parsed): osc lives on and drops its
				// checkpoint table, so no --resume would drop the
				// planned copy; another attempt, on a fresh session,
				// does, and renames the rest.
				break
			}
			continue
		}
		names = append(names, t.trg.Shadow)
	}
	if len(errs) == 0 {
		// A KILL QUERY that lands while a statement above reopens the
		// table (each CREATE and DROP TRIGGER does) can leave the
		// session's own copy half parsed with the statement reported
		// done, and a DROP TRIGGER run on it may then keep the trigger:
		// what is left is read again from a fresh copy of the table.
		left, err := mysqlOwnNamesLeft(ctx, c, o, quoted)
		if err == nil && left.empty() {
			return names, nil, nil
		}
		if err == nil {
			err = fmt.Errorf("%w: names still to give back after their statements reported done (a statement killed?)", errSessionLost)
			names = slices.DeleteFunc(names, left.has)
		}
		errs = append(errs, err)
	}
	// What is left, read again (on a connection of its own should the
	// session be gone).
	left, rerr := readMySQLOwnNames(ctx, c, o)
	if rerr != nil {
		if fresh, cerr := db.Conn(ctx); cerr == nil {
			left, rerr = readMySQLOwnNames(ctx, fresh, o)
			_ = fresh.Close()
		}
	}
	if rerr == nil {
		script = left.script(o)
	}
	return names, script, errors.Join(errs...)
}

// mysqlOwnNamesLeft flushes the table (c holds its lock) and reads what is
// left to rename.
func mysqlOwnNamesLeft(ctx context.Context, c *sql.Conn, o MySQLNamesOptions, quoted string) (mysqlOwnNames, error) {
	if _, err := c.ExecContext(ctx, "FLUSH LOCAL TABLES "+quoted); err != nil && !mysqlNoReload(err) {
		return mysqlOwnNames{}, lostOr(fmt.Errorf("flush %s from the table cache: %w", o.Table, err))
	}
	left, err := readMySQLOwnNames(ctx, c, o)
	return left, lostOr(err)
}

// lostOr marks err, when not nil, as the loss of the attempt's session
// (errSessionLost) when it is not the server's answer or is a statement
// killed (1317, KILL QUERY), or else as retryable when it is transient.
func lostOr(err error) error {
	var me *mysql.MySQLError
	switch {
	case err == nil:
		return nil
	case !serverError(err), errors.As(err, &me) && me.Number == 1317:
		return fmt.Errorf("%w: %w", errSessionLost, err)
	}
	return retryable(err)
}

// errSessionLost is an attempt whose session was lost (killed on the
// server, its connection gone): retried, flushing the table first.
var errSessionLost = fmt.Errorf("%w: the session is gone", errAttempt)

// mysqlNoReload reports whether err is the server's refusal of a FLUSH for
// want of the RELOAD privilege.
func mysqlNoReload(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1227
}

// serverError reports whether err is the server's answer to a statement
// (the session lives on), not a lost connection.
func serverError(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me)
}

// mysqlTriggerRename is a carried trigger of the table to rename.
type mysqlTriggerRename struct {
	// trg is the trigger under its planned name (Name), Shadow its own.
	trg table.MySQLTrigger
	// made: the table has it under its own name too, right after the
	// planned one (a renaming killed between the CREATE and the DROP):
	// only the planned one is dropped.
	made bool
}

// mysqlOwnNames is what is left to rename on the table.
type mysqlOwnNames struct {
	fkAlter  string   // the ALTER TABLE that renames the foreign keys, or ""
	fkNames  []string // their own names
	triggers []mysqlTriggerRename
}

func (r mysqlOwnNames) empty() bool { return r.fkAlter == "" && len(r.triggers) == 0 }

// has reports whether own is one of the names r still has to give back.
func (r mysqlOwnNames) has(own string) bool {
	return slices.Contains(r.fkNames, own) || slices.ContainsFunc(r.triggers, func(t mysqlTriggerRename) bool { return t.trg.Shadow == own })
}

// readMySQLOwnNames reads the table's foreign keys and triggers and plans
// the renames: each foreign key under a planned name gets a DROP and an ADD
// under its own; each trigger under a planned name is made again under its
// own right after itself, unless there already, and dropped.
func readMySQLOwnNames(ctx context.Context, c *sql.Conn, o MySQLNamesOptions) (mysqlOwnNames, error) {
	var r mysqlOwnNames
	fks, err := table.ReadMySQLForeignKeys(ctx, c, o.Schema, o.Table)
	if err != nil {
		return r, fmt.Errorf("read the foreign keys of %s: %w", o.Table, err)
	}
	var clauses []string
	for _, f := range fks {
		own, ok := o.ForeignKeys[f.Name]
		if !ok {
			continue
		}
		g := f
		g.Name = own
		clauses = append(clauses, "DROP FOREIGN KEY "+table.QuoteMySQL(f.Name), "ADD "+g.Definition())
		r.fkNames = append(r.fkNames, own)
	}
	if len(clauses) > 0 {
		r.fkAlter = "ALTER TABLE " + table.QuoteMySQL(o.Schema, o.Table) + " " + strings.Join(clauses, ", ") + ", ALGORITHM=INPLACE"
	}
	if len(o.Triggers) == 0 {
		return r, nil
	}
	trgs, err := table.ReadMySQLTriggers(ctx, c, o.Schema, o.Table)
	if err != nil {
		return r, err
	}
	has := map[string]bool{}
	for _, t := range trgs {
		has[t.Name] = true
	}
	for _, t := range trgs {
		if own, ok := o.Triggers[t.Name]; ok {
			t.Shadow = own
			r.triggers = append(r.triggers, mysqlTriggerRename{trg: t, made: has[own]})
		}
	}
	return r, nil
}

// script is what the user runs when osc could not: the statements of an
// attempt.
func (r mysqlOwnNames) script(o MySQLNamesOptions) []string {
	s := []string{"SET SESSION foreign_key_checks = 0", "LOCK TABLES " + table.QuoteMySQL(o.Schema, o.Table) + " WRITE",
		"FLUSH LOCAL TABLES " + table.QuoteMySQL(o.Schema, o.Table)}
	if r.fkAlter != "" {
		s = append(s, r.fkAlter)
	}
	for _, t := range r.triggers {
		if !t.made {
			s = append(s, t.trg.Session(), t.trg.Create(o.Schema, o.Table, t.trg.Name))
		}
		s = append(s, "DROP TRIGGER "+table.QuoteMySQL(o.Schema, t.trg.Name))
	}
	return append(s, "UNLOCK TABLES")
}

// renameMySQLTrigger makes t.trg again under its own name right after itself
// (unless t.made) and drops it under its planned name, on c, which holds the
// table's write lock (ctx is not cancelled: a statement cancelled in flight
// would end the session, and the lock). session sets the session back as it
// was before the CREATE, which sets it as the trigger was made. A DROP that
// fails drops the trigger made under its own name again: it is never there
// twice once the lock goes, unless the session dies in between (a session
// killed during the DROP may or may not have run it).
func renameMySQLTrigger(ctx context.Context, c *sql.Conn, o MySQLNamesOptions, t mysqlTriggerRename, session string) error {
	own, planned := t.trg.Shadow, t.trg.Name
	if !t.made {
		err := table.CreateMySQLTrigger(ctx, c, o.Schema, o.Table, t.trg, planned)
		if _, serr := c.ExecContext(ctx, session); serr != nil {
			err = errors.Join(err, fmt.Errorf("set the session back after making trigger %s: %w", own, serr))
		}
		if err != nil {
			return err
		}
	}
	if _, err := c.ExecContext(ctx, "DROP TRIGGER "+table.QuoteMySQL(o.Schema, planned)); err != nil {
		err = fmt.Errorf("drop trigger %s (made again as %s): %w", planned, own, err)
		if t.made {
			return err
		}
		if _, uerr := c.ExecContext(ctx, "DROP TRIGGER "+table.QuoteMySQL(o.Schema, own)); uerr != nil {
			return fmt.Errorf("%w; dropping %s again failed too, and %s.%s may have the trigger twice, under both names, until the planned one is dropped: %w",
				err, own, o.Schema, o.Table, uerr)
		}
		return err
	}
	return nil
}
