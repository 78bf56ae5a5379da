package table

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/internal/testdb"
)

// hp2PrivRole and hp2PrivSchema are this test's own role and schema.
const (
	hp2PrivRole   = "hp2_osc_nocreate"
	hp2PrivSchema = "hp2_priv_test"
)

// A role with what osc needs besides (REPLICATION, owning the table) but
// without CREATE on the database is refused at inspection, naming the GRANT:
// CREATE PUBLICATION needs that privilege, and so does the scratch schema in
// which osc learns the names. With it, the shadow gets the names a plain
// ALTER TABLE gives.
func TestPostgresInspectNeedsCreateOnDatabase(t *testing.T) {
	admin := testdb.Connect(t, "PostgreSQL", func(ctx context.Context) (*pgxpool.Pool, error) {
		return OpenPostgres(ctx, testdb.PostgresDSN())
	})
	t.Cleanup(admin.Close)
	var db string
	if err := admin.QueryRow(context.Background(), "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	drop := []string{"DROP SCHEMA IF EXISTS " + hp2PrivSchema + " CASCADE", "DROP OWNED BY " + hp2PrivRole, "DROP ROLE " + hp2PrivRole}
	cleanup := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var exists bool
		if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", hp2PrivRole).Scan(&exists); err != nil || !exists {
			return
		}
		for _, s := range drop {
			if _, err := admin.Exec(ctx, s); err != nil {
				t.Errorf("%s: %v", s, err)
			}
		}
	}
	cleanup()
	t.Cleanup(cleanup)
	testdb.ExecPostgres(t, admin,
		"CREATE ROLE "+hp2PrivRole+" LOGIN REPLICATION",
		"CREATE SCHEMA "+hp2PrivSchema+" AUTHORIZATION "+hp2PrivRole,
		"SET ROLE "+hp2PrivRole,
		"CREATE TABLE "+hp2PrivSchema+".t (id int PRIMARY KEY, a int)",
		"INSERT INTO "+hp2PrivSchema+".t SELECT i, i FROM generate_series(1, 10) i",
		"RESET ROLE")

	cfg := testdb.PostgresConfig(t)
	cfg.ConnConfig.User = hp2PrivRole
	pool := testdb.OpenPostgres(t, cfg)
	ctx := context.Background()
	n := NewPostgresNames(hp2PrivSchema, "t")
	_, err := InspectPostgresTable(ctx, pool, n)
	wantErr(t, err, "lacks the CREATE privilege on database", "GRANT CREATE ON DATABASE "+QuotePostgres(db)+" TO "+QuotePostgres(hp2PrivRole))

	testdb.ExecPostgres(t, admin, "GRANT CREATE ON DATABASE "+QuotePostgres(db)+" TO "+hp2PrivRole)
	in, err := InspectPostgresTable(ctx, pool, n)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := CreatePostgresShadow(ctx, pool, in, "ADD CHECK (a > 0), ADD COLUMN b serial", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := DropPostgresTable(ctx, pool, hp2PrivSchema, sh.Plan.Shadow.Name); err != nil {
			t.Error(err)
		}
	}()
	var check, seq bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = $1::regclass AND conname = 't_a_check'),
		to_regclass($2) IS NOT NULL`, hp2PrivSchema+"."+sh.Plan.Shadow.Name, hp2PrivSchema+".t_b_seq").Scan(&check, &seq); err != nil {
		t.Fatal(err)
	}
	if !check || !seq {
		t.Errorf("the shadow's new check constraint t_a_check (%v) and sequence t_b_seq (%v) do not have the names a plain ALTER TABLE gives", check, seq)
	}
}
