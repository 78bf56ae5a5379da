package localtests

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// sandboxCA is the sandbox's certificate authority (sandbox.sh tls_certs).
func sandboxCA(t *testing.T) string {
	t.Helper()
	ca := os.Getenv("OSC_SANDBOX_TLS_CA")
	if ca == "" {
		ca = "/tmp/osc-sandbox/tls/ca.pem"
	}
	if _, err := os.Stat(ca); err != nil {
		t.Fatalf("the sandbox's TLS certificate authority: %v (run bash localtests/sandbox.sh up)", err)
	}
	return ca
}

// TestTLS migrates under load over TLS with the server's certificate
// verified: on MariaDB with --ssl --ssl-ca as a user the server accepts only
// over TLS (REQUIRE SSL), so that any connection osc opened without TLS, the
// binlog reader's included, would fail the run; on PostgreSQL the DSN's
// sslmode applies to every connection osc opens, the replication connection
// included, which the test checks in pg_stat_ssl while the cut-over is
// postponed.
func TestTLS(t *testing.T) {
	t.Run("mysql", func(t *testing.T) {
		t.Parallel()
		d := mysqlDialect{}
		c, err := loadCase(filepath.Join(d.dir(), "add_column"))
		if err != nil {
			t.Fatal(err)
		}
		c.name = "tls"
		admin := d.connectAdmin(t)
		var haveSSL string
		if err := admin.QueryRow("SELECT @@have_ssl").Scan(&haveSSL); err != nil || haveSSL != "YES" {
			t.Fatalf("the sandbox MariaDB has no TLS (have_ssl %q, %v): restart it (bash localtests/sandbox.sh down; bash localtests/sandbox.sh up)", haveSSL, err)
		}
		const user, password = "osct_tls", "tls-only"
		for _, q := range []string{
			"DROP USER IF EXISTS " + user,
			"CREATE USER " + user + " IDENTIFIED BY '" + password + "' REQUIRE SSL",
			"GRANT ALL ON *.* TO " + user,
		} {
			if _, err := admin.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		t.Cleanup(func() { admin.Exec("DROP USER IF EXISTS " + user) }) //nolint:errcheck // best effort
		c.extra = append(c.extra, "--user", user, "--password", password, "--ssl", "--ssl-ca", sandboxCA(t))
		runCase(t, d, admin, requireOsc(t), c)
	})

	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		d := pgDialect{dsn: pgDSN()}
		c, err := loadCase(filepath.Join(d.dir(), "add_column"))
		if err != nil {
			t.Fatal(err)
		}
		c.name = "tls"
		dsn := d.dsn
		for k, v := range map[string]string{"sslmode": "verify-full", "sslrootcert": sandboxCA(t), "application_name": "osct_tls"} {
			if dsn, err = withDSNParam(dsn, k, v); err != nil {
				t.Fatal(err)
			}
		}
		c.extra = append(c.extra, "--dsn", dsn)
		c.postponed = func(ctx context.Context, db *sql.DB, _ string) error {
			var all, tls, walsenders int
			err := db.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE s.ssl),
					count(*) FILTER (WHERE a.backend_type = 'walsender')
				FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'osct_tls'`).Scan(&all, &tls, &walsenders)
			switch {
			case err != nil:
				return err
			case all < 2 || walsenders < 1:
				return fmt.Errorf("osc's connections: %d, of which %d replication: want its pool and its replication connection", all, walsenders)
			case tls != all:
				return fmt.Errorf("%d of osc's %d connections use TLS", tls, all)
			}
			return nil
		}
		runCase(t, d, d.connectAdmin(t), requireOsc(t), c)
	})
}
