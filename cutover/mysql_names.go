package cutover

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

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
// ALTER TABLE drops each carried foreign key and adds it
// back under its own name with its rules (foreign_key_checks = 0, in place:
// metadata only, no row is read, the index it uses is kept), and every
// trigger of the table is dropped and made again in firing order, the
// carried ones under their own names, each with its definer, sql_mode and
// character set. No write runs meanwhile, so none misses a trigger or fires
// one twice; a trigger statement that fails puts back the triggers as they
// were before the lock is released. Each attempt waits at most LockTimeout
// for the lock, and one stopped by a lock wait or a deadlock is retried up to
// Retries attempts in all. It returns the names given back (with an error
// too: the foreign keys' ALTER commits before the triggers are made again);
// its error says which statements to run for the rest: the table is right
// but for the names.
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
	for attempt := 1; ; attempt++ {
		names, script, err := mysqlOwnNamesAttempt(ctx, db, o, secs)
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
// message: read before the lock, again under it, and without the foreign
// keys' ALTER once it has run (the script would fail at it, before the
// triggers).
func mysqlOwnNamesAttempt(ctx context.Context, db *sql.DB, o MySQLNamesOptions, secs int) (names, script []string, err error) {
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
	if _, err := c.ExecContext(ctx, "LOCK TABLES "+table.QuoteMySQL(o.Schema, o.Table)+" WRITE"); err != nil {
		return nil, script, retryable(fmt.Errorf("lock %s: %w", o.Table, err))
	}
	// Once the lock is held the statements run to their end, whatever
	// happens to ctx (they change metadata only, each waits at most
	// lock_wait_timeout): the driver closes the connection of a statement
	// cancelled in flight, and the server would then release the lock with
	// the triggers dropped and not yet made again, for writes to run
	// without them.
	ctx = context.WithoutCancel(ctx)
	defer func() {
		// A failed UNLOCK leaves the session broken: discard ends it, and
		// its locks with it.
		_, _ = c.ExecContext(ctx, "UNLOCK TABLES")
	}()
	// Read again under the lock: what the statements below change.
	if r, err = readMySQLOwnNames(ctx, c, o); err != nil {
		return nil, script, err
	}
	script = r.script(o)
	if r.fkAlter != "" {
		if _, err := c.ExecContext(ctx, r.fkAlter); err != nil {
			return nil, script, retryable(fmt.Errorf("rename the foreign keys %s: %w", strings.Join(r.fkNames, ", "), err))
		}
		names = append(names, r.fkNames...)
		r.fkAlter = ""
		script = r.script(o)
	}
	if len(r.trgNames) > 0 {
		if err := remakeMySQLTriggers(ctx, c, o, r.triggers); err != nil {
			return names, script, retryable(err)
		}
		names = append(names, r.trgNames...)
	}
	return names, nil, nil
}

// mysqlOwnNames is what is left to rename on the table.
type mysqlOwnNames struct {
	fkAlter  string   // the ALTER TABLE that renames the foreign keys, or ""
	fkNames  []string // their own names
	triggers []table.MySQLTrigger
	trgNames []string // the own names of the triggers to rename
}

func (r mysqlOwnNames) empty() bool { return r.fkAlter == "" && len(r.trgNames) == 0 }

// readMySQLOwnNames reads the table's foreign keys and triggers and plans
// the renames: each foreign key under a planned name gets a DROP and an ADD
// under its own; the triggers, when one of them has a planned name, are all
// made again in firing order (the planned ones under their own names: Shadow
// is the name each is made under), as a trigger made later fires after
// those of its event and timing made earlier.
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
	for i := range trgs {
		trgs[i].Shadow = trgs[i].Name
		if own, ok := o.Triggers[trgs[i].Name]; ok {
			trgs[i].Shadow = own
			r.trgNames = append(r.trgNames, own)
		}
	}
	if len(r.trgNames) > 0 {
		r.triggers = trgs
	}
	return r, nil
}

// script is what the user runs when osc could not: the statements of an
// attempt.
func (r mysqlOwnNames) script(o MySQLNamesOptions) []string {
	s := []string{"SET SESSION foreign_key_checks = 0", "LOCK TABLES " + table.QuoteMySQL(o.Schema, o.Table) + " WRITE"}
	if r.fkAlter != "" {
		s = append(s, r.fkAlter)
	}
	if len(r.trgNames) > 0 {
		for _, t := range r.triggers {
			// IF EXISTS: the statements also make a trigger lost by a
			// renaming whose session died between its DROP and CREATE.
			s = append(s, "DROP TRIGGER IF EXISTS "+table.QuoteMySQL(o.Schema, t.Name))
		}
		for _, t := range r.triggers {
			s = append(s, t.Session(), t.Create(o.Schema, o.Table))
		}
	}
	return append(s, "UNLOCK TABLES")
}

// remakeMySQLTriggers drops the table's triggers (trgs, in firing order) and
// makes them again under their Shadow names, on c, which holds the table's
// write lock (ctx is not cancelled: a statement cancelled in flight would end
// the session, and the lock). On a failure it puts back what was there: the
// triggers made so far are dropped, and those dropped made again under their
// names, each before the first left of its event and timing (a DROP that
// failed midway leaves the later ones, which the dropped fired before).
func remakeMySQLTriggers(ctx context.Context, c *sql.Conn, o MySQLNamesOptions, trgs []table.MySQLTrigger) error {
	var dropped []table.MySQLTrigger
	var made []string
	restore := func(cause error) error {
		var errs []error
		for _, n := range made {
			if _, err := c.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+table.QuoteMySQL(o.Schema, n)); err != nil {
				errs = append(errs, fmt.Errorf("drop trigger %s: %w", n, err))
			}
		}
		left, err := table.ReadMySQLTriggers(ctx, c, o.Schema, o.Table)
		if err != nil {
			errs = append(errs, err)
		}
		for _, t := range dropped {
			t.Shadow = t.Name
			next := ""
			for _, l := range left {
				if l.Event == t.Event && l.Timing == t.Timing {
					next = l.Name
					break
				}
			}
			if err := table.CreateMySQLTrigger(ctx, c, o.Schema, o.Table, t, next); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w; putting the triggers back failed too, %s.%s may lack some until they are made again: %w",
				cause, o.Schema, o.Table, errors.Join(errs...))
		}
		return cause
	}
	for _, t := range trgs {
		if _, err := c.ExecContext(ctx, "DROP TRIGGER "+table.QuoteMySQL(o.Schema, t.Name)); err != nil {
			return restore(fmt.Errorf("drop trigger %s: %w", t.Name, err))
		}
		dropped = append(dropped, t)
	}
	for _, t := range trgs {
		if err := table.CreateMySQLTrigger(ctx, c, o.Schema, o.Table, t, ""); err != nil {
			return restore(err)
		}
		made = append(made, t.Shadow)
	}
	return nil
}
