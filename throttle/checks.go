package throttle

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
)

// loadMet reports whether any metric is at or above its threshold, and which.
func (t *Throttler) loadMet(ctx context.Context, th Thresholds) (bool, string, error) {
	values, err := t.probe.Load(ctx, th.Names())
	if err != nil {
		return false, "", err
	}
	for i, x := range th {
		if values[i] >= x.Value {
			return true, fmt.Sprintf("%s=%d >= %d", x.Name, values[i], x.Value), nil
		}
	}
	return false, "", nil
}

func (t *Throttler) checkHTTP(ctx context.Context, url string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return "throttle-http: " + err.Error()
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return "throttle-http: " + err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("throttle-http %s: %s", url, resp.Status)
	}
	return ""
}

// fileExists reports whether a flag file is there (anything at the path
// counts, as with gh-ost). A path that cannot be looked at (permissions)
// counts as there: throttling is the safe side.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}
