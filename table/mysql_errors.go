package table

import (
	"errors"

	"github.com/go-sql-driver/mysql"
)

// MySQLTransient reports whether err is a MySQL error after which the
// failed statement had no effect and may simply run again: a deadlock
// victim (1213, the server rolled the transaction back), a lock wait
// timeout (1205) or an interrupted statement (1317, KILL QUERY, which the
// cut-over sends its own queued RENAME), both of which roll the statement
// back; or MariaDB's report that the transaction was rolled back: 4060
// (ER_ROLLBACK_ONLY, a deadlock inside a statement that the server reports
// at its next step, as a chunk's INSERT … SELECT into a shadow with a long
// unique key did in a CI run) or 1020 (ER_CHECKREAD, a REPEATABLE READ
// transaction meeting a row changed after its snapshot when
// innodb_snapshot_isolation is ON). The callers roll their transaction back
// and run all of it again.
// It is osc's one classification of MySQL errors as transient: the copy's
// and the applier's retries and the cut-over's attempts use it.
func MySQLTransient(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case 1205, 1213, 1317, // lock wait timeout, deadlock, query interrupted
		4060, 1020: // transaction rolled back (MariaDB), record changed since the snapshot
		return true
	}
	return false
}

// MySQLRefused reports whether err is the server's refusal of a statement
// (a MySQL error that MySQLTransient does not call transient): the statement
// had no effect, and would fail the same way again.
func MySQLRefused(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && !MySQLTransient(err)
}

// MySQLUnfit reports whether err is the server's refusal of a row's values:
// a value that does not fit its column (out of range, too long, truncated,
// not a valid value of the type), a NULL into a NOT NULL column or a missing
// value for a column without a DEFAULT, a CHECK constraint, or a duplicate in
// a unique index. The statement had no effect; the same row fails again.
func MySQLUnfit(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case 1048, // column cannot be null
		1062, 1586, // duplicate entry
		1264, 1690, // out of range
		1265, 1292, 1366, 1367, 1411, // truncated or incorrect value
		1364, // no default
		1406, // data too long
		3140, // invalid JSON (MySQL)
		3819, // check constraint violated (MySQL)
		4025: // CONSTRAINT failed (MariaDB)
		return true
	}
	return false
}
