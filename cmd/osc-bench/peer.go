package main

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"
)

// peer is the tool osc is measured against on one database (gh-ost on
// MySQL/MariaDB, pg_repack on PostgreSQL), run on the same table in the
// same run. It is skipped when its binary is not found.
type peer struct {
	name string
	bin  string
	// args is its command line for alter (pg_repack rebuilds the table and
	// takes no ALTER).
	args func(alter string) []string
	// prepare readies the database for it (pg_repack's extension).
	prepare string
}

// ghostPeer runs gh-ost as its README runs it on a primary, on MariaDB: the
// metadata-lock instrument it checks for is MySQL's performance_schema, and
// replica-lag throttling is as good as off, as it is for osc here.
func ghostPeer(bin, host, port, user string) *peer {
	if bin == "" {
		return nil
	}
	return &peer{name: "gh-ost", bin: bin, args: func(alter string) []string {
		return []string{"--host", host, "--port", port, "--user", user, "--password", "",
			"--database", "osc_demo", "--table", "osc_bench", "--alter", alter, "--execute", "--allow-on-master",
			"--initially-drop-ghost-table", "--initially-drop-old-table", "--ok-to-drop-table",
			"--max-lag-millis", "600000", "--skip-metadata-lock-check", "--verbose"}
	}}
}

// repackPeer runs pg_repack on the table: a full rebuild, as osc's copy is.
func repackPeer(bin, dsn string) *peer {
	if bin == "" {
		return nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return nil
	}
	host, port, user := u.Hostname(), u.Port(), u.User.Username()
	if port == "" {
		port = "5432"
	}
	db := strings.TrimPrefix(u.Path, "/")
	return &peer{name: "pg_repack", bin: bin, prepare: "CREATE EXTENSION IF NOT EXISTS pg_repack",
		args: func(string) []string {
			return []string{"-h", host, "-p", port, "-U", user, "-d", db, "-t", "public.osc_bench"}
		}}
}

// lookPeer finds a peer's binary: the flag's value, else on PATH; "" when
// there is none (or the flag is "none").
func lookPeer(flagValue, name string) string {
	switch flagValue {
	case "none":
		return ""
	case "":
		p, err := exec.LookPath(name)
		if err != nil {
			return ""
		}
		return p
	}
	return flagValue
}

// runTool runs bin with args, streaming its output (prefixed by who) to
// stderr and handing each line to watch, and returns how long it ran. A
// failure names the tool's last lines.
func runTool(ctx context.Context, who, bin string, args []string, watch func(line string, at time.Time)) (time.Duration, error) {
	progress("%s %s", bin, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, bin, args...) //nolint:gosec // G204: the binaries the developer named
	// On Ctrl-C let the tool clean up after itself.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 2 * time.Minute
	out, err := cmd.StderrPipe()
	if err != nil {
		return 0, err
	}
	cmd.Stdout = cmd.Stderr // status lines in the same stream as the log
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	var last []string
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(os.Stderr, "    "+who+"| "+line)
		if watch != nil {
			watch(line, time.Now())
		}
		last = append(last, line)
		if len(last) > 3 {
			last = last[1:]
		}
	}
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("%s: %w (%s)", bin, err, strings.Join(last, " | "))
	}
	return time.Since(start), nil
}
