package table

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/go-sql-driver/mysql"
)

// The native path on MySQL/MariaDB: an --alter the server can carry out with
// ALGORITHM=INSTANT (adding, dropping or reordering columns, changing a
// DEFAULT, renaming...) changes only the table's metadata, in milliseconds
// whatever the table's size, and osc runs it as the plain ALTER it is. The
// server itself judges which --alters qualify: ALGORITHM=INSTANT makes it
// refuse, before it changes anything, one it would have to copy or rebuild
// the table for. osc asks it on a scratch table made like the original
// (CREATE TABLE … LIKE, so the same row format and indexes), and runs the
// statement on the table with ALGORITHM=INSTANT again, so that the table is
// never copied even should the scratch table have answered otherwise.
//
// On MariaDB the statement is the --alter alone, under the session's
// alter_algorithm = INSTANT: the binlog then carries the plain ALTER, which
// each replica carries out as its own copy of the table allows (instantly or
// not: a replica's table need not share the primary's history), where an
// ALGORITHM=INSTANT clause would stop a replica that cannot. MySQL has no such
// variable: there the clause is in the statement, and in the binlog.
//
// The statement needs the table's metadata lock for an instant: a
// transaction that has read or written the table holds it off, and every
// writer that comes after queues behind the waiting ALTER. So each attempt
// waits at most the cut-over's lock timeout (lock_wait_timeout) and the
// attempts are retried, as the cut-over's are.

// MySQLNativeClause is whether one clause of the --alter is instant: Why
// is the server's reason when it is not.
type MySQLNativeClause struct {
	Text, Why string
}

// MySQLNativeStatement returns the statement that carries out the --alter
// natively, or "" and the server's reason why it cannot; and clause by
// clause, whether the server does each instantly (tried one by one on the
// scratch table when the --alter as a whole is not). It changes nothing that
// outlives it: it tries the --alter on a scratch table with the shadow's
// name, which it drops.
func MySQLNativeStatement(ctx context.Context, db *sql.DB, in *MySQLInspection, mariadb bool) (stmt, why string, clauses []MySQLNativeClause, err error) {
	if in.Alter.unread != nil {
		return "", in.Alter.unread.Error(), nil, nil
	}
	if mysqlAlgorithmClause.MatchString(in.Alter.Text) {
		return "", "the --alter chooses its ALGORITHM or LOCK itself", nil, nil
	}
	schema, name := in.Table.Schema, in.Table.Name
	scratch, _, _ := MySQLNames(name)
	s, err := openMySQLNativeSession(ctx, db, in, mariadb)
	if err != nil {
		return "", "", nil, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = errors.Join(err, DropMySQLTable(dctx, db, schema, scratch), s.discard())
	}()
	if err := s.exec(ctx, "CREATE TABLE "+QuoteMySQL(schema, scratch)+" LIKE "+QuoteMySQL(schema, name)); err != nil {
		return "", "", nil, fmt.Errorf("create a scratch table to ask the server whether the --alter is instant: %w", err)
	}
	// refused runs the clauses on the scratch table, instant only, and
	// returns the server's refusal.
	refused := func(text string) (string, error) {
		if err := s.exec(ctx, mysqlNativeStatement(schema, scratch, text, mariadb)); err != nil {
			var me *mysql.MySQLError
			if errors.As(err, &me) {
				return me.Message, nil
			}
			return "", fmt.Errorf("ask the server whether the --alter is instant: %w", err)
		}
		return "", nil
	}
	why, err = refused(in.Alter.Text)
	if err != nil {
		return "", "", nil, err
	}
	if why == "" {
		for _, c := range in.Alter.Clauses {
			clauses = append(clauses, MySQLNativeClause{Text: c})
		}
		stmt = mysqlNativeStatement(schema, name, in.Alter.Text, mariadb)
		if mariadb {
			stmt = "SET SESSION alter_algorithm = 'INSTANT'; " + stmt
		}
		return stmt, "", clauses, nil
	}
	// Which clauses the copy is for: each alone (after those before it
	// that are instant: a refused one changed nothing).
	for _, c := range in.Alter.Clauses {
		cwhy, err := refused(c)
		if err != nil {
			return "", "", nil, err
		}
		clauses = append(clauses, MySQLNativeClause{Text: c, Why: cwhy})
	}
	return "", why, clauses, nil
}

// RunMySQLNative runs the --alter natively (MySQLNativeStatement) on the
// table; a lock wait that times out, a deadlock or an interrupted statement
// (MySQLTransient) is retried (see MySQLNativeRun).
func RunMySQLNative(ctx context.Context, db *sql.DB, in *MySQLInspection, mariadb bool, o MySQLNativeRun) (err error) {
	s, err := openMySQLNativeSession(ctx, db, in, mariadb)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, s.discard()) }()
	secs := max(1, int(math.Ceil(o.LockTimeout.Seconds())))
	if err := s.exec(ctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d", secs)); err != nil {
		return fmt.Errorf("set lock_wait_timeout: %w", err)
	}
	stmt := mysqlNativeStatement(in.Table.Schema, in.Table.Name, in.Alter.Text, mariadb)
	if o.Step != nil {
		o.Step(1, 1, stmt)
	}
	return retryNative(ctx, o.Retries, func() error {
		if o.BeforeAttempt != nil {
			if err := o.BeforeAttempt(ctx); err != nil {
				return err
			}
		}
		return s.exec(ctx, stmt)
	}, MySQLTransient)
}

// MySQLNativeRun is how RunMySQLNative runs the --alter: each attempt waits
// at most LockTimeout for the table's lock, Retries attempts in all, each
// after BeforeAttempt (when set) returns.
type MySQLNativeRun struct {
	LockTimeout   time.Duration
	Retries       int
	BeforeAttempt func(context.Context) error
	Step          func(i, n int, sql string) // told as the statement starts
}

func mysqlNativeStatement(schema, table, alter string, mariadb bool) string {
	stmt := "ALTER TABLE " + QuoteMySQL(schema, table) + " " + alter
	if !mariadb {
		stmt += ", ALGORITHM=INSTANT"
	}
	return stmt
}

// mysqlAlgorithmClause finds an ALGORITHM or LOCK clause (or the words in a
// literal: then osc copies, needlessly but safely).
var mysqlAlgorithmClause = regexp.MustCompile(`(?i)\b(ALGORITHM|LOCK)\s*=`)

// openMySQLNativeSession is a connection whose session is the plain
// ALTER's: the ALTER's time zone (see mysql_ddl.go) and the server's global
// sql_mode (a DBA's session has it); on MariaDB it allows only instant
// ALTERs (alter_algorithm).
func openMySQLNativeSession(ctx context.Context, db *sql.DB, in *MySQLInspection, mariadb bool) (*mysqlDDLSession, error) {
	zone := in.TimeZone
	if zone == "" {
		var err error
		if zone, err = ReadMySQLTimeZone(ctx, db); err != nil {
			return nil, err
		}
	}
	if err := CheckMySQLTimeZone(ctx, db, zone); err != nil {
		return nil, err
	}
	s, err := openMySQLDDLSession(ctx, db, zone)
	if err != nil {
		return nil, err
	}
	if err := s.exec(ctx, "SET SESSION sql_mode = @@global.sql_mode"); err != nil {
		return nil, errors.Join(fmt.Errorf("set the session's sql_mode: %w", err), s.discard())
	}
	if mariadb {
		if err := s.exec(ctx, "SET SESSION alter_algorithm = 'INSTANT'"); err != nil {
			return nil, errors.Join(fmt.Errorf("set the session's alter_algorithm: %w", err), s.discard())
		}
	}
	return s, nil
}
