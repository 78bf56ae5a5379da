package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"osc/engine"
	"osc/hooks"
	"osc/throttle"
)

// controlFlags are the operator-control flags (throttling, the interactive
// socket, hooks, status output), gh-ost's names.
type controlFlags struct {
	maxLagMillis               int
	replicas                   string
	maxLoad, criticalLoad      string
	criticalLoadIntervalMillis int
	flagFile                   string
	additionalFlagFile         string
	throttleQuery              string
	throttleHTTP               string
	maxRetainedWAL             string
	niceRatio                  float64

	socket            string
	tcpPort           int
	tcpAddress        string
	forceNamedCutOver bool
	forceNamedPanic   bool
	panicFlagFile     string

	hooksPath            string
	hooksTimeoutS        int
	hooksHint            string
	hooksStatusIntervalS int

	output string
}

func addControlFlags(fs *pflag.FlagSet) *controlFlags {
	f := &controlFlags{}
	// Throttling.
	fs.IntVar(&f.maxLagMillis, "max-lag-millis", 1500, "throttle the copy while a replica lags more than this (0: do not check lag)")
	fs.StringVar(&f.replicas, "throttle-control-replicas", "", "replicas to check for lag besides those discovered from the primary: host:port,... (PostgreSQL: host:port or connection strings)")
	fs.StringVar(&f.maxLoad, "max-load", "", "throttle while a load metric reaches its threshold, e.g. Threads_running=25,Threads_connected=500 (MySQL global status; PostgreSQL: active_backends, connected_backends)")
	fs.StringVar(&f.criticalLoad, "critical-load", "", "abort the migration (cleanly) when a load metric reaches its threshold, same form as --max-load")
	fs.IntVar(&f.criticalLoadIntervalMillis, "critical-load-interval-millis", 0, "when critical load is first met, check again after this long and abort only if it still is (0: abort at once)")
	fs.StringVar(&f.flagFile, "throttle-flag-file", "", "throttle while this file exists")
	fs.StringVar(&f.additionalFlagFile, "throttle-additional-flag-file", filepath.Join(os.TempDir(), "osc.throttle"), "throttle while this file exists (by default shared by every osc on the host)")
	fs.StringVar(&f.throttleQuery, "throttle-query", "", "throttle while this query, run on the primary every second, returns a value > 0")
	fs.StringVar(&f.throttleHTTP, "throttle-http", "", "throttle unless a HEAD request to this URL answers 200")
	fs.StringVar(&f.maxRetainedWAL, "max-retained-wal", "1GB", "PostgreSQL: throttle while the change capture's slot retains more WAL than this")
	fs.Float64Var(&f.niceRatio, "nice-ratio", 0, "after each chunk, sleep this many times the chunk's duration (0: none; 1: copy at half speed)")
	// Interactive control.
	fs.StringVar(&f.socket, "serve-socket-file", "", `unix socket for interactive commands (default "`+engine.DefaultSocketFile("<database>", "<table>")+`"; "" to serve none)`)
	fs.IntVar(&f.tcpPort, "serve-tcp-port", 0, "also serve interactive commands on this TCP port (0: do not)")
	fs.StringVar(&f.tcpAddress, "serve-tcp-address", "127.0.0.1", "address the TCP port binds to (anyone who reaches it can control the migration)")
	fs.BoolVar(&f.forceNamedCutOver, "force-named-cut-over", false, "the unpostpone / cut-over command must name the table: cut-over=<table>")
	fs.BoolVar(&f.forceNamedPanic, "force-named-panic", false, "the panic command must name the table: panic=<table>")
	fs.StringVar(&f.panicFlagFile, "panic-flag-file", "", "abort as the panic command does (removing what osc made) as soon as this file exists; osc refuses to start while it does")
	// Hooks.
	fs.StringVar(&f.hooksPath, "hooks-path", "", "directory of hook executables (on-startup*, on-success*, …; see README)")
	fs.IntVar(&f.hooksTimeoutS, "hooks-timeout-seconds", int(hooks.DefaultTimeout/time.Second), "longest a hook may run before it is killed (and fails)")
	fs.StringVar(&f.hooksHint, "hooks-hint", "", "free text passed to hooks as OSC_HOOKS_HINT")
	fs.IntVar(&f.hooksStatusIntervalS, "hooks-status-interval", 60, "seconds between on-status hook runs")
	// Output.
	fs.StringVar(&f.output, "output", "text", "status line format: text, or json (one object a line, for log pipelines)")
	return f
}

// apply validates the flags and sets them in o.cfg.Control.
func (f *controlFlags) apply(fs *pflag.FlagSet, o *options) error {
	pg := fs.Changed("dsn")
	k := &o.cfg.Control
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if f.maxLagMillis < 0 {
		bad("--max-lag-millis must be 0 (do not check) or more")
	}
	k.MaxLag = time.Duration(f.maxLagMillis) * time.Millisecond
	var err error
	if k.ThrottleControlReplicas, err = throttle.ParseReplicas(f.replicas, pg); err != nil {
		bad("--throttle-control-replicas: %v", err)
	}
	if k.MaxLoad, err = throttle.ParseThresholds(f.maxLoad); err != nil {
		bad("--max-load: %v", err)
	}
	if k.CriticalLoad, err = throttle.ParseThresholds(f.criticalLoad); err != nil {
		bad("--critical-load: %v", err)
	}
	if f.criticalLoadIntervalMillis < 0 {
		bad("--critical-load-interval-millis must be 0 or more")
	}
	k.CriticalLoadInterval = time.Duration(f.criticalLoadIntervalMillis) * time.Millisecond
	k.ThrottleFlagFile, k.ThrottleAdditionalFlagFile = f.flagFile, f.additionalFlagFile
	k.ThrottleQuery = f.throttleQuery
	if f.throttleHTTP != "" && !strings.HasPrefix(f.throttleHTTP, "http://") && !strings.HasPrefix(f.throttleHTTP, "https://") {
		bad("--throttle-http %q: want an http:// or https:// URL", f.throttleHTTP)
	}
	k.ThrottleHTTP = f.throttleHTTP
	if o.maxRetainedWAL, err = throttle.ParseBytes(f.maxRetainedWAL); err != nil {
		bad("--max-retained-wal: %v", err)
	}
	if f.niceRatio < 0 || f.niceRatio > 100 {
		bad("--nice-ratio must be from 0 to 100")
	}
	k.NiceRatio = f.niceRatio

	if f.tcpPort < 0 || f.tcpPort > 65535 {
		bad("--serve-tcp-port must be from 1 to 65535 (0: none)")
	}
	k.ServeTCPPort, k.ServeTCPAddress = f.tcpPort, f.tcpAddress
	k.ForceNamedCutOver, k.ForceNamedPanic = f.forceNamedCutOver, f.forceNamedPanic
	k.PanicFlagFile = f.panicFlagFile

	if f.hooksTimeoutS < 1 {
		bad("--hooks-timeout-seconds must be at least 1")
	}
	if f.hooksStatusIntervalS < 1 {
		bad("--hooks-status-interval must be at least 1")
	}
	k.HooksPath, k.HooksHint = f.hooksPath, f.hooksHint
	k.HooksTimeout = time.Duration(f.hooksTimeoutS) * time.Second
	k.HooksStatusInterval = time.Duration(f.hooksStatusIntervalS) * time.Second
	if err := (&hooks.Runner{Dir: f.hooksPath}).Check(); err != nil {
		bad("--hooks-path: %v", err)
	}

	switch f.output {
	case "text":
	case "json":
		k.JSONStatus = true
	default:
		bad("--output %q: want text or json", f.output)
	}

	// Where the socket goes, and which server hooks are told about.
	if pg {
		cfg, err := pgconn.ParseConfig(o.dsn)
		if err != nil {
			bad("--dsn: %v", err)
		} else {
			k.Host = net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
			k.ServeSocketFile = engine.DefaultSocketFile(cfg.Database, pgQualified(o.cfg.Table))
		}
	} else {
		k.Host = net.JoinHostPort(o.host, strconv.Itoa(o.port))
		k.ServeSocketFile = engine.DefaultSocketFile(o.database, o.cfg.Table)
	}
	if fs.Changed("serve-socket-file") {
		k.ServeSocketFile = f.socket
	}
	return errors.Join(errs...)
}

// pgQualified is a PostgreSQL table as schema.table (public by default).
func pgQualified(table string) string {
	if strings.Contains(table, ".") {
		return table
	}
	return "public." + table
}

// isTerminal reports whether w is a terminal (the status line then starts
// with a progress bar).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
