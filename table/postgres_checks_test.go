package table

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestPostgresShadowRefusal(t *testing.T) {
	plan := &Plan{Source: &Table{Schema: "s", Name: "t"}, Shadow: &Table{Schema: "s", Name: "_t_osc"}}
	check := &pgconn.PgError{Code: "23514", SchemaName: "s", TableName: "_t_osc", ConstraintName: "a_pos", Detail: "Failing row contains (1, -3)."}
	domain := &pgconn.PgError{Code: "23514", DataTypeName: "posint"}
	other := &pgconn.PgError{Code: "23514", SchemaName: "s", TableName: "elsewhere"}
	dup := &pgconn.PgError{Code: "23505", SchemaName: "s", TableName: "_t_osc"}
	for _, tc := range []struct {
		err     error
		explain bool
	}{
		{fmt.Errorf("upsert: %w", check), true},
		{domain, true},
		{other, false},
		{dup, false},
		{errors.New("connection reset"), false},
	} {
		got := PostgresShadowRefusal(tc.err, plan)
		if !errors.Is(got, tc.err) {
			t.Errorf("%v: the explanation %v does not wrap the error", tc.err, got)
		}
		explained := strings.Contains(got.Error(), `a row of "s"."t" does not fit the altered table`)
		if explained != tc.explain {
			t.Errorf("%v: explained as %q, want explained %v", tc.err, got, tc.explain)
		}
	}
	if got := PostgresShadowRefusal(check, plan).Error(); !strings.Contains(got, "(Failing row contains (1, -3))") {
		t.Errorf("%q does not carry the failing row", got)
	}
}
