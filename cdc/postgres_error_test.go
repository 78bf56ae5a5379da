package cdc

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestDecodeMapBug(t *testing.T) {
	bug := &pgconn.PgError{Code: "XX000", Message: `could not map filenode "base/16384/2561142" to relation OID`}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{bug, true},
		{fmt.Errorf("receive: %w", bug), true},
		{&pgconn.PgError{Code: "XX000", Message: "unexpected duplicate for tablespace 0, relfilenode 49500"}, true},
		{&pgconn.PgError{Code: "XX000", Message: "cache lookup failed for relation 1"}, false},
		{errors.New(`could not map filenode "base/1/2" to relation OID`), false},
	} {
		if got := DecodeMapBug(c.err); got != c.want {
			t.Errorf("DecodeMapBug(%v) = %v", c.err, got)
		}
	}
}
