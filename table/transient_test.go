package table

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestTransient: one classification per database, the union of the codes
// the copy, the applier and the cut-over each retried, recognised through
// wrapping; anything else is not transient.
func TestTransient(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("apply 3 changes: %w", err) }
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&mysql.MySQLError{Number: 1213}, true},
		{wrap(&mysql.MySQLError{Number: 1205}), true},
		{wrap(&mysql.MySQLError{Number: 1317}), true},
		{wrap(&mysql.MySQLError{Number: 4060}), true}, // ER_ROLLBACK_ONLY (MariaDB)
		{&mysql.MySQLError{Number: 1020}, true},       // ER_CHECKREAD
		{&mysql.MySQLError{Number: 1062}, false},      // duplicate key
		{errors.New("1213"), false},
	} {
		if got := MySQLTransient(tc.err); got != tc.want {
			t.Errorf("MySQLTransient(%v) = %v", tc.err, got)
		}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "40P01"}, true},
		{wrap(&pgconn.PgError{Code: "40001"}), true},
		{wrap(&pgconn.PgError{Code: "55P03"}), true},
		{&pgconn.PgError{Code: "23505"}, false}, // unique_violation
		{errors.New("40P01"), false},
	} {
		if got := PostgresTransient(tc.err); got != tc.want {
			t.Errorf("PostgresTransient(%v) = %v", tc.err, got)
		}
	}
}

func TestQuoteMySQL(t *testing.T) {
	if got := QuoteMySQL("a`b"); got != "`a``b`" {
		t.Errorf("one part: %s", got)
	}
	if got := QuoteMySQL("db", "t.x"); got != "`db`.`t.x`" {
		t.Errorf("two parts: %s", got)
	}
}
