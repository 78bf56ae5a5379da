package table

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// PostgresTransient reports whether err is a PostgreSQL error after which
// the transaction had no effect and may simply run again: a deadlock victim
// (40P01) or a serialization failure (40001; under a server or role whose
// default_transaction_isolation is above READ COMMITTED), both of which
// abort the transaction, or a lock timeout (55P03, lock_timeout), after
// which the caller rolls back. It is osc's one classification of
// PostgreSQL errors as transient: the copy's and the applier's retries and
// the cut-over's attempts use it.
func PostgresTransient(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "40P01", "40001", "55P03": // deadlock_detected, serialization_failure, lock_not_available
		return true
	}
	return false
}

// PostgresRefused reports whether err is the server's refusal of a statement
// (a PostgreSQL error that PostgresTransient does not call transient): in a
// transaction, which rolled back, it had no effect.
func PostgresRefused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && !PostgresTransient(err)
}
