package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// applyBacklog measures the applier of the osc binary bin on a captured
// backlog: it migrates the table (alter) with its cut-over postponed; once
// it waits there, one statement
// updates n rows in one transaction, and the backlog's n changes are timed
// from that commit until osc reports them applied (its /status). The flag
// file then goes and osc finishes.
func (b bench) applyBacklog(ctx context.Context, db *sql.DB, o options, bin, alter string, n int) (result, error) {
	dir, err := os.MkdirTemp("", "osc-bench-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	flag := filepath.Join(dir, "postpone")
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		return result{}, err
	}
	addr, err := freeAddress()
	if err != nil {
		return result{}, err
	}
	r := result{db: b.name, run: bin + " applies the backlog", tool: "apply"}
	postponed := make(chan struct{})
	watch := func(line string, _ time.Time) {
		if strings.Contains(line, "msg=state state=postponed") {
			select {
			case <-postponed:
			default:
				close(postponed)
			}
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.runOscBin(ctx, db, o, bin, alter, watch,
			"--postpone-cut-over-flag-file", flag, "--metrics-address", addr)
		done <- err
	}()
	fail := func(err error) (result, error) {
		os.Remove(flag)
		return r, errors.Join(err, <-done)
	}
	select {
	case <-postponed:
	case err := <-done:
		return r, fmt.Errorf("osc ended before its cut-over was postponed: %v", err)
	}
	before, err := applied(ctx, addr)
	if err != nil {
		return fail(err)
	}
	res, err := db.ExecContext(ctx, "UPDATE osc_bench SET qty = qty + 1 WHERE id <= "+strconv.Itoa(n)) //nolint:gosec // G202: n is a number
	if err != nil {
		return fail(fmt.Errorf("the backlog's update: %w", err))
	}
	committed := time.Now()
	changed, err := res.RowsAffected()
	if err != nil {
		return fail(err)
	}
	for {
		a, err := applied(ctx, addr)
		if err != nil {
			return fail(err)
		}
		if a-before >= changed {
			r.applied, r.copy = changed, time.Since(committed)
			break
		}
		if time.Since(committed) > 10*time.Minute {
			return fail(fmt.Errorf("osc applied %d of the %d changes in 10 minutes", a-before, changed))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := os.Remove(flag); err != nil {
		return fail(err)
	}
	return r, <-done
}

// applied reads events_applied from osc's /status.
func applied(ctx context.Context, addr string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("osc's /status: %w", err)
	}
	defer resp.Body.Close()
	var st struct {
		Applied int64 `json:"events_applied"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, fmt.Errorf("osc's /status: %w", err)
	}
	return st.Applied, nil
}

// freeAddress is a loopback address with a port nothing listens on now.
func freeAddress() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
