package localtests

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// oscBinary is the osc every case runs, built once, on first use, by
// requireOsc.
var oscBinary struct {
	once sync.Once
	dir  string // the build's temporary directory, removed by TestMain
	path string
	err  error // why there is no binary: fails every case
}

func TestMain(m *testing.M) {
	code := m.Run()
	if oscBinary.dir != "" {
		os.RemoveAll(oscBinary.dir)
	}
	os.Exit(code)
}

// requireOsc returns the osc binary, building it the first time, and fails
// the test when there is none.
func requireOsc(t *testing.T) string {
	t.Helper()
	oscBinary.once.Do(func() { oscBinary.path, oscBinary.err = findOsc() })
	if oscBinary.err != nil {
		t.Fatal(oscBinary.err)
	}
	return oscBinary.path
}

// findOsc returns OSC_BIN, an osc to test instead (one built with -race, say),
// or else builds ./cmd/osc from the module root (the parent of this package's
// directory, where go test runs).
func findOsc() (string, error) {
	if bin := os.Getenv("OSC_BIN"); bin != "" {
		path, err := filepath.Abs(bin)
		if err == nil {
			_, err = os.Stat(path)
		}
		if err != nil {
			return "", fmt.Errorf("OSC_BIN: %w", err)
		}
		return path, nil
	}
	root, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	if err := trackSources(root); err != nil {
		return "", err
	}
	if oscBinary.dir, err = os.MkdirTemp("", "osc-localtests-"); err != nil {
		return "", err
	}
	bin := filepath.Join(oscBinary.dir, "osc")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/osc")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/osc: %w\n%s", err, out)
	}
	return bin, nil
}

// trackSources stats every Go source and go.mod/go.sum of the module. The go
// command caches a test result keyed by the files the test process touched
// while tests ran (not before m.Run); without this, a change to the engine,
// which this package does not import, would not invalidate a cached PASS.
func trackSources(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum" {
			_, err = os.Stat(path)
		}
		return err
	})
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// unreachable skips the test when a sandbox server is not running, or fails it
// under CI=true, where the sandbox is part of the job.
func unreachable(t *testing.T, what string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s unreachable (%v); start the sandbox: bash localtests/sandbox.sh up", what, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// mysqlConfig is the MySQL connection from OSC_MYSQL_HOST/PORT/USER (and the
// password osc itself reads, OSC_PASSWORD), with db as the default database.
func mysqlConfig(db string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(env("OSC_MYSQL_HOST", "127.0.0.1"), env("OSC_MYSQL_PORT", "13306"))
	cfg.User = env("OSC_MYSQL_USER", "root")
	cfg.Passwd = os.Getenv("OSC_PASSWORD")
	cfg.DBName = db
	// UPDATE reports matched rows, so that setting a value it already has
	// counts as a successful write.
	cfg.ClientFoundRows = true
	return cfg
}

// pgDSN is the PostgreSQL connection: OSC_PG_DSN, or one built from
// OSC_PG_HOST/PORT/USER for the database osc_test.
func pgDSN() string {
	if dsn := os.Getenv("OSC_PG_DSN"); dsn != "" {
		return dsn
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(env("OSC_PG_USER", "postgres")),
		Host:     net.JoinHostPort(env("OSC_PG_HOST", "127.0.0.1"), env("OSC_PG_PORT", "15432")),
		Path:     "/osc_test",
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// withSearchPath returns dsn (URL or key=value form) with search_path set.
func withSearchPath(dsn, schema string) (string, error) {
	return withDSNParam(dsn, "search_path", schema)
}

// withDatabase returns dsn (URL or key=value form) connecting to database
// instead of its own.
func withDatabase(dsn, database string) (string, error) {
	if !strings.Contains(dsn, "://") {
		return withDSNParam(dsn, "dbname", database) // the last dbname counts
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("parse OSC_PG_DSN: %w", err)
	}
	u.Path = "/" + database
	return u.String(), nil
}

// withDSNParam returns dsn (URL or key=value form) with one more parameter.
func withDSNParam(dsn, key, value string) (string, error) {
	if !strings.Contains(dsn, "://") {
		quoted := "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(value) + "'"
		return dsn + " " + key + "=" + quoted, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("parse OSC_PG_DSN: %w", err)
	}
	q := u.Query()
	q.Set(key, value)
	// Spaces as %20: libpq and pgx take a '+' literally.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String(), nil
}

// connect opens db and checks that the server answers; a server that does not
// skips (or, under CI, fails) the test.
func connect(t *testing.T, what, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("open %s: %v", what, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		unreachable(t, what, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
