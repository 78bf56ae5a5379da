package table

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The native path on PostgreSQL: many ALTER TABLE clauses change only the
// catalog (add a column without a volatile DEFAULT, drop or rename one, set
// or drop a DEFAULT or a NOT NULL, widen a varchar, add a CHECK NOT VALID,
// change storage parameters...), in milliseconds whatever the table's size,
// and osc runs them as the plain ALTER they are. Which ones qualify the
// server decides, not a list of clauses: in a transaction it rolls back, osc
// runs the --alter on a scratch table made LIKE the original (INCLUDING ALL:
// its indexes and constraints) and refuses the native path when the server
// rewrote the table, its TOAST table or an index (a new relfilenode), built
// an index, added a constraint it validated (by scanning the rows), or
// validated one or set NOT NULL on an existing column (both scan the table).
// What is left neither copies nor reads the rows.
//
// Every clause holds the ACCESS EXCLUSIVE lock until the transaction
// commits; while it waits for the lock, every later query of the table
// queues behind it. So each attempt waits at most the cut-over's lock
// timeout (lock_timeout) and the attempts are retried, as the cut-over's
// are.

// pgNativeState is what the probe compares before and after the --alter.
type pgNativeState struct {
	file, toast int64            // relfilenodes (toast 0: none)
	indexes     map[string]int64 // index name → relfilenode
	constraints map[uint32]pgNativeConstraint
	notNull     map[int16]bool // attnum → attnotnull
}

type pgNativeConstraint struct {
	name      string
	kind      string // contype
	validated bool
}

func readPgNativeState(ctx context.Context, tx pgx.Tx, rel string) (*pgNativeState, error) {
	s := &pgNativeState{indexes: map[string]int64{}, constraints: map[uint32]pgNativeConstraint{}, notNull: map[int16]bool{}}
	if err := tx.QueryRow(ctx, `SELECT c.relfilenode::bigint, coalesce(t.relfilenode, 0)::bigint FROM pg_class c
		LEFT JOIN pg_class t ON t.oid = c.reltoastrelid WHERE c.oid = $1::regclass`, rel).Scan(&s.file, &s.toast); err != nil {
		return nil, fmt.Errorf("read %s: %w", rel, err)
	}
	rows, err := tx.Query(ctx, `SELECT ic.relname::text, ic.relfilenode::bigint FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
		WHERE i.indrelid = $1::regclass`, rel)
	if err != nil {
		return nil, fmt.Errorf("read the indexes of %s: %w", rel, err)
	}
	for rows.Next() {
		var n string
		var f int64
		if err := rows.Scan(&n, &f); err != nil {
			return nil, fmt.Errorf("read the indexes of %s: %w", rel, err)
		}
		s.indexes[n] = f
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the indexes of %s: %w", rel, err)
	}
	rows, err = tx.Query(ctx, `SELECT oid, conname::text, contype::text, convalidated FROM pg_constraint WHERE conrelid = $1::regclass`, rel)
	if err != nil {
		return nil, fmt.Errorf("read the constraints of %s: %w", rel, err)
	}
	for rows.Next() {
		var oid uint32
		var c pgNativeConstraint
		if err := rows.Scan(&oid, &c.name, &c.kind, &c.validated); err != nil {
			return nil, fmt.Errorf("read the constraints of %s: %w", rel, err)
		}
		s.constraints[oid] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the constraints of %s: %w", rel, err)
	}
	rows, err = tx.Query(ctx, `SELECT attnum, attnotnull FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, rel)
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", rel, err)
	}
	for rows.Next() {
		var n int16
		var nn bool
		if err := rows.Scan(&n, &nn); err != nil {
			return nil, fmt.Errorf("read the columns of %s: %w", rel, err)
		}
		s.notNull[n] = nn
	}
	return s, rows.Err()
}

// pgNativeWhy says why the --alter that turned before into after is not
// metadata only, or "" when it is; rename gives a name the server derived
// from the scratch table's the one it would derive from the table's.
func pgNativeWhy(before, after *pgNativeState, rename func(string) string) string {
	if after.file != before.file {
		return "it rewrites the table"
	}
	var why []string
	if before.toast != 0 && after.toast != before.toast {
		why = append(why, "it rewrites the table's TOAST table")
	}
	for _, n := range slices.Sorted(maps.Keys(after.indexes)) {
		switch f, ok := before.indexes[n]; {
		case !ok:
			why = append(why, "it builds index "+rename(n))
		case f != after.indexes[n]:
			why = append(why, "it rebuilds index "+rename(n))
		}
	}
	var cons []string
	for oid, c := range after.constraints {
		b, ok := before.constraints[oid]
		switch {
		case !ok && c.kind == "c" && !c.validated:
			// CHECK … NOT VALID: checked on later writes only.
		case !ok:
			cons = append(cons, "it adds constraint "+rename(c.name)+", which reads the table (or another) to validate it")
		case c.validated && !b.validated:
			cons = append(cons, "it validates constraint "+rename(c.name)+", reading the table")
		}
	}
	slices.Sort(cons)
	why = append(why, cons...)
	for n, nn := range after.notNull {
		if was, ok := before.notNull[n]; ok && nn && !was {
			why = append(why, "it sets NOT NULL on an existing column, reading the table to check it")
			break
		}
	}
	return strings.Join(why, "; ")
}

// pgValidateClause finds a VALIDATE CONSTRAINT (or the words in a literal:
// then osc copies, needlessly but safely).
var pgValidateClause = regexp.MustCompile(`(?i)\bVALIDATE\s+CONSTRAINT\b`)

// PostgresNativeStatements returns the statements that carry out the
// --alter natively, or nil and why not. It changes nothing: the probe on the
// scratch table runs in a transaction it rolls back.
func PostgresNativeStatements(ctx context.Context, pool *pgxpool.Pool, in *PostgresInspection, alter string, lockTimeout time.Duration) (stmts []string, why string, err error) {
	clauses := SplitPostgresAlter(alter)
	if len(clauses) == 0 {
		return nil, "", errors.New("the --alter is empty")
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("ask the server whether the --alter is metadata only: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	n := in.Names
	orig, scratch := QuotePostgres(n.Schema, n.Table), QuotePostgres(n.Schema, n.Shadow)
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", max(lockTimeout.Milliseconds(), 1))); err != nil {
		return nil, "", fmt.Errorf("ask the server whether the --alter is metadata only: %w", err)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING ALL)", scratch, orig)); err != nil {
		return nil, "", fmt.Errorf("create a scratch table (rolled back) to ask the server whether the --alter is metadata only: %w", err)
	}
	before, err := readPgNativeState(ctx, tx, scratch)
	if err != nil {
		return nil, "", err
	}
	for _, c := range clauses {
		if pgValidateClause.MatchString(c) {
			// The scratch table's constraints are all valid: validating one
			// changes nothing there, and reads the whole table here.
			return nil, "it validates a constraint, reading the table", nil
		}
		// The extended protocol runs exactly one statement.
		if _, err := tx.Conn().PgConn().ExecParams(ctx, "ALTER TABLE "+scratch+" "+c, nil, nil, nil, nil).Close(); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) {
				return nil, "the server refuses it on a copy of the table's definition: " + pgErr.Message, nil
			}
			return nil, "", fmt.Errorf("ask the server whether the --alter is metadata only: %w", err)
		}
		stmts = append(stmts, "ALTER TABLE "+orig+" "+c)
	}
	after, err := readPgNativeState(ctx, tx, scratch)
	if err != nil {
		return nil, "", err
	}
	rename := func(name string) string {
		if rest, ok := strings.CutPrefix(name, n.Shadow); ok {
			return n.Table + rest
		}
		return name
	}
	if why := pgNativeWhy(before, after, rename); why != "" {
		return nil, why, nil
	}
	return stmts, "", nil
}

// RunPostgresNative runs the statements (PostgresNativeStatements) in one
// transaction. An attempt lasts about lockTimeout at most: lock_timeout
// bounds each lock wait, and a deadline the attempt as a whole (a clause may wait
// for several tables' locks, a foreign key's other table say, while holding
// the table's); a lock timeout, a deadlock or the deadline is retried, up to
// retries attempts in all.
func RunPostgresNative(ctx context.Context, pool *pgxpool.Pool, stmts []string, lockTimeout time.Duration, retries int) error {
	attempt := func() error {
		// A quarter over the lock timeout: one lock wait ends by the
		// server's lock_timeout, which says what held the lock.
		actx, cancel := context.WithTimeoutCause(ctx, lockTimeout+lockTimeout/4, errNativeAttemptTimeout)
		defer cancel()
		err := runPostgresNativeOnce(actx, pool, stmts, lockTimeout)
		if ctx.Err() == nil && errors.Is(context.Cause(actx), errNativeAttemptTimeout) && err != nil {
			// Not the server's refusal (PostgresRefused): %v.
			err = fmt.Errorf("%w (%v)", errNativeAttemptTimeout, err)
		}
		return err
	}
	return retryNative(ctx, retries, attempt, func(err error) bool {
		return PostgresTransient(err) || errors.Is(err, errNativeAttemptTimeout)
	})
}

// errNativeAttemptTimeout is the cause of an attempt that outlasted the lock
// timeout.
var errNativeAttemptTimeout = errors.New("the attempt outlasted the lock timeout")

func runPostgresNativeOnce(ctx context.Context, pool *pgxpool.Pool, stmts []string, lockTimeout time.Duration) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", max(lockTimeout.Milliseconds(), 1))); err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := tx.Conn().PgConn().ExecParams(ctx, s, nil, nil, nil, nil).Close(); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}
