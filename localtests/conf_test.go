package localtests

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestConfPassword runs osc's dry run on MariaDB as a user whose password
// (with characters an option file treats specially) is given only in the
// --conf file's [client] section; the same run with a wrong password there
// is refused at inspection (exit status 3).
func TestConfPassword(t *testing.T) {
	d := mysqlDialect{}
	c, err := loadCase(filepath.Join(d.dir(), "add_column"))
	if err != nil {
		t.Fatal(err)
	}
	c.name = "conf"
	bin := requireOsc(t)
	admin := d.connectAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	ns, _ := setupCase(ctx, t, d, admin, c)
	const user, password = "osct_conf", `p#w;"x'1`
	for _, q := range []string{
		"DROP USER IF EXISTS " + user,
		"CREATE USER " + user + " IDENTIFIED BY '" + `p#w;"x\'1` + "'",
		"GRANT ALL ON *.* TO " + user,
	} {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	defer admin.ExecContext(context.Background(), "DROP USER IF EXISTS "+user) //nolint:errcheck // best effort
	args := []string{"--host", env("OSC_MYSQL_HOST", "127.0.0.1"), "--port", env("OSC_MYSQL_PORT", "13306"),
		"--database", ns, "--table", c.table, "--alter", c.alter}
	for _, tc := range []struct {
		password string
		code     int
	}{{password, 0}, {"wrong", 3}} {
		conf := filepath.Join(t.TempDir(), "osc.cnf")
		text := "[client]\nuser = " + user + "\npassword = '" + tc.password + "'\n"
		if tc.password == password {
			text = "[client]\nuser = " + user + "\npassword = `" + tc.password + "`\n"
		}
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		osc, err := startOsc(ctx, bin, append(args, "--conf", conf))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-osc.done:
		case <-time.After(failureTimeout):
			osc.stop()
			t.Fatalf("osc did not finish within %v", failureTimeout)
		}
		if code := osc.exitCode(); code != tc.code {
			osc.logOutput(t)
			t.Errorf("password %q: exit %d, want %d", tc.password, code, tc.code)
		}
	}
	dropCase(ctx, t, d, admin, ns)
}
