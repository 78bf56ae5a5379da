package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"osc/backfill"
	"osc/engine"
	"osc/table"
)

// backfillOptions are osc backfill's command line.
type backfillOptions struct {
	conn options // the connection, control and output flags, as osc's
	cfg  engine.BackfillConfig

	lockWait time.Duration
}

func parseBackfillFlags(args []string, usageOut io.Writer) (*backfillOptions, *pflag.FlagSet, error) {
	b := &backfillOptions{}
	o := &b.conn
	fs := pflag.NewFlagSet("osc backfill", pflag.ContinueOnError)
	fs.SetOutput(usageOut)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprint(usageOut, `osc backfill: a throttled, resumable batch UPDATE of one table, in key order,
one short transaction per chunk (the backfill step of an expand/contract change).

Usage:
  osc backfill --host H --user U --database D --table T --set "b = f(a)" [--where "b IS NULL"] [--verify "b = f(a)"] [--execute]
  osc backfill --dsn postgres://user@host/db --table schema.t --set ... [--execute]
  osc backfill ... --verify "b IS NOT NULL"      (no --set: only verify)

Each chunk runs UPDATE T SET <set> WHERE <the chunk's key range> AND (<where>)
and saves its last key in T_osc_bf in the same transaction; a killed run is
continued with --resume. Without --execute it reports the plan (--noop).
Exit status: 0 done, 1 failed or rows fail --verify, 2 bad command line,
3 refused before changing anything, 4 interrupted or panic.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&b.cfg.Table, "table", "", "table to update (PostgreSQL: may be schema-qualified, schema.table)")
	fs.StringVar(&b.cfg.Set, "set", "", `the UPDATE's assignments, SQL: "first_name = ..., last_name = ..."`)
	fs.StringVar(&b.cfg.Where, "where", "", `update only the rows matching this SQL predicate (e.g. "first_name IS NULL", which also makes a re-run skip what is done)`)
	fs.StringVar(&b.cfg.Verify, "verify", "", "afterwards, count the rows for which this SQL boolean expression is not true, and fail listing their first keys")
	fs.BoolVar(&b.cfg.Execute, "execute", false, "really update the table (default: report the plan)")
	fs.BoolVar(&o.noop, "noop", false, "report the plan: rows matching, chunks, estimated duration; change nothing (the default)")
	fs.BoolVar(&b.cfg.Resume, "resume", false, "continue the backfill a killed osc left, after its last committed chunk")
	fs.StringVar(&o.host, "host", "127.0.0.1", "MySQL: primary host")
	fs.IntVar(&o.port, "port", 3306, "MySQL: primary port")
	fs.StringVar(&o.user, "user", "", "MySQL: user")
	fs.StringVar(&o.password, "password", "", "MySQL: password (prefer OSC_PASSWORD or --ask-pass: a command-line password is visible to other users)")
	fs.BoolVar(&o.askPass, "ask-pass", false, "MySQL: prompt for the password")
	fs.StringVar(&o.database, "database", "", "MySQL: database of the table")
	o.tlsFlags = addMySQLTLSFlags(fs)
	fs.StringVar(&o.dsn, "dsn", "", `PostgreSQL: connection string, URL or "key=value" (libpq); PG* environment variables apply. Selects PostgreSQL.`)
	fs.IntVar(&b.cfg.ChunkSize, "chunk-size", 1000, "rows per chunk: the first, then each aims at --target-chunk-time; given alone, every chunk's")
	fs.DurationVar(&b.cfg.ChunkTarget, "target-chunk-time", 500*time.Millisecond, "how long each chunk aims to take (0: keep --chunk-size)")
	fs.DurationVar(&b.lockWait, "lock-wait-timeout", time.Second, "longest a chunk waits for a row lock another transaction holds before it rolls back and is retried (MySQL: whole seconds, innodb_lock_wait_timeout and lock_wait_timeout; PostgreSQL: lock_timeout)")
	fs.IntVar(&b.cfg.Retries, "chunk-retries", 60, "attempts at a chunk that keeps meeting lock wait timeouts or deadlocks before the backfill gives up")
	fs.IntVar(&b.cfg.VerifyMaxKeys, "verify-max-keys", 10, "keys of rows failing --verify listed at most")
	fs.IntVar(&o.statusIntervalS, "status-interval", 5, "seconds between status lines")
	fs.StringVar(&o.metricsAddress, "metrics-address", "", `serve Prometheus metrics (osc_backfill_*) at http://ADDRESS/metrics and the JSON status at /status while the backfill runs (host:port; ":9108" binds 127.0.0.1)`)
	fs.BoolVar(&o.verbose, "verbose", false, "log more (same as --debug for now)")
	fs.BoolVar(&o.debug, "debug", false, "log everything")
	fs.BoolVar(&o.quiet, "quiet", false, "log only warnings and errors (status lines still print)")
	ctl := addControlFlags(fs)
	conf := fs.String("conf", "", "read flags from this file, as osc --conf does")
	if err := parseWithConf(fs, args, conf); err != nil {
		return nil, fs, err
	}
	if err := b.check(fs, ctl); err != nil {
		return nil, fs, usageError{err}
	}
	return b, fs, nil
}

// check validates the command line and completes the options.
func (b *backfillOptions) check(fs *pflag.FlagSet, ctl *controlFlags) error {
	o := &b.conn
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q (flags take the form --name value; quote the expressions)", fs.Arg(0))
	case o.noop && b.cfg.Execute:
		return errors.New("--noop and --execute contradict each other")
	case b.cfg.Table == "":
		return errors.New("--table is required")
	case strings.TrimSpace(b.cfg.Set) == "" && strings.TrimSpace(b.cfg.Verify) == "":
		return errors.New("--set is required (or --verify alone, to only verify)")
	case b.cfg.Set == "" && (b.cfg.Where != "" || b.cfg.Resume):
		return errors.New("--where and --resume go with --set")
	case b.cfg.ChunkSize < 1:
		return errors.New("--chunk-size must be at least 1")
	case b.cfg.ChunkTarget < 0 || b.cfg.ChunkTarget > time.Minute:
		return errors.New("--target-chunk-time must be between 0 and 1m")
	case b.lockWait <= 0 || b.lockWait > time.Hour:
		return errors.New("--lock-wait-timeout must be more than 0 and at most 1h")
	case b.cfg.Retries < 1:
		return errors.New("--chunk-retries must be at least 1")
	case b.cfg.VerifyMaxKeys < 1:
		return errors.New("--verify-max-keys must be at least 1")
	case !fs.Changed("dsn") && o.database == "":
		return errors.New("--database is required for MySQL (for PostgreSQL give --dsn)")
	case !fs.Changed("dsn") && o.user == "":
		return errors.New("--user is required for MySQL")
	}
	if fs.Changed("chunk-size") && !fs.Changed("target-chunk-time") {
		b.cfg.ChunkTarget = 0
	}
	var err error
	if o.mysqlTLS, err = o.tlsFlags.config(); err != nil {
		return err
	}
	if o.mysqlTLS != nil && fs.Changed("dsn") {
		return errors.New("--ssl is for MySQL; for PostgreSQL set sslmode (and sslrootcert, sslcert, sslkey) in --dsn")
	}
	if o.metricsAddress != "" {
		if o.metricsAddress, err = metricsAddress(o.metricsAddress); err != nil {
			return err
		}
	}
	o.cfg.Table = b.cfg.Table
	if err := ctl.apply(fs, o); err != nil {
		return err
	}
	b.cfg.Control = o.cfg.Control
	b.cfg.StatusInterval = time.Duration(o.statusIntervalS) * time.Second
	b.cfg.Version = version()
	return nil
}

// runBackfill is osc backfill.
func runBackfill(args []string, stdout, stderr io.Writer) error {
	b, fs, err := parseBackfillFlags(args, stdout)
	if err != nil {
		return err
	}
	o := &b.conn
	b.cfg.Control.ProgressBar = isTerminal(stdout)
	level := slog.LevelInfo
	switch {
	case o.debug || o.verbose:
		level = slog.LevelDebug
	case o.quiet:
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opt := backfill.Options{Table: b.cfg.Table, Set: b.cfg.Set, Where: b.cfg.Where, Verify: b.cfg.Verify, LockWait: b.lockWait, Log: log}
	var d engine.BackfillDialect
	if fs.Changed("dsn") {
		opt.Schema = "public"
		if s, t, ok := strings.Cut(b.cfg.Table, "."); ok {
			opt.Schema, opt.Table = s, t
		}
		d = backfill.NewPostgres(opt, o.dsn)
	} else {
		password, err := mysqlPassword(o)
		if err != nil {
			return err
		}
		opt.Schema = o.database
		d = backfill.NewMySQL(opt, table.MySQLConn{Host: o.host, Port: o.port, User: o.user, Password: password, TLS: o.mysqlTLS})
	}
	b.cfg.Schema, b.cfg.Table = opt.Schema, opt.Table
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bf := engine.NewBackfill(b.cfg, d, log, stdout)
	if o.metricsAddress != "" {
		labels := prometheus.Labels{"schema": opt.Schema, "table": opt.Table}
		stopMetrics, err := serveCollector(o.metricsAddress, newBackfillCollector(bf, labels), func() string { return bf.Status().JSON() }, log)
		if err != nil {
			d.Close() // nothing was opened yet
			return &engine.RefusedError{Err: err}
		}
		defer stopMetrics()
	}
	if err := bf.Run(ctx); err != nil {
		if ctx.Err() != nil {
			return interruptedError{fmt.Errorf("interrupted; the backfill's bookkeeping table was removed (committed chunks stay updated): %w", err)}
		}
		return err
	}
	return nil
}
