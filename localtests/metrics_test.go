package localtests

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestMetrics runs a migration under load with --metrics-address and
// scrapes /metrics while the cut-over is postponed: the state is postponed,
// the copy covered the table, changes were applied, and every series names
// the table.
func TestMetrics(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			t.Parallel()
			c, err := loadCase(filepath.Join(d.dir(), "add_column"))
			if err != nil {
				t.Fatal(err)
			}
			c.name = "metrics"
			addr, err := freeAddress()
			if err != nil {
				t.Fatal(err)
			}
			c.extra = append(c.extra, "--metrics-address", addr)
			c.postponed = func(ctx context.Context, db *sql.DB, _ string) error {
				body, err := scrape(ctx, "http://"+addr+"/metrics")
				if err != nil {
					return err
				}
				var rows int64
				if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+d.quote(c.table)).Scan(&rows); err != nil {
					return err
				}
				table := regexp.QuoteMeta(c.table)
				for _, want := range []struct {
					name string
					min  float64
				}{{"osc_rows_copied_total", 1}, {"osc_changes_applied_total", 1}, {"osc_rows_estimated", 1}} {
					re := regexp.MustCompile("(?m)^" + want.name + `\{[^}]*table="` + table + `"[^}]*\} (\S+)$`)
					m := re.FindStringSubmatch(body)
					if m == nil {
						return fmt.Errorf("/metrics lacks %s for table %s:\n%s", want.name, c.table, body)
					}
					if v, err := strconv.ParseFloat(m[1], 64); err != nil || v < want.min {
						return fmt.Errorf("%s is %s, want at least %v", want.name, m[1], want.min)
					}
				}
				if !regexp.MustCompile(`(?m)^osc_state\{[^}]*state="postponed"[^}]*\} 1$`).MatchString(body) {
					return fmt.Errorf("/metrics does not report the state postponed:\n%s", body)
				}
				return nil
			}
			runCase(t, d, d.connectAdmin(t), requireOsc(t), c)
		})
	}
}

// freeAddress returns a loopback address with a port nothing listens on.
func freeAddress() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// scrape GETs url and returns the body.
func scrape(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b), nil
}
