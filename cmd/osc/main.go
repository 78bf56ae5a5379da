package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"osc/dialect"
	"osc/engine"
	"osc/table"
)

func main() {
	gcPercent()
	os.Exit(exitCode(run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// gcPercent lets the heap grow to five times what is live before a
// collection (GOGC=400), unless the GOGC environment variable says
// otherwise: decoding the binlog or pgoutput allocates for every change, and
// at Go's default the collector took a sixth of osc's CPU. It applied a
// backlog about 18% (MariaDB) and 29% (PostgreSQL) faster with it, in
// cmd/osc-bench runs side by side, for a peak resident memory of about
// 200 MB instead of 100 MB (README, Performance).
func gcPercent() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// usageError is a command line osc cannot run: an unknown flag, a missing
// or contradictory one. It exits 2, as flag errors do in most tools.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// interruptedError is a run stopped by Ctrl-C, SIGTERM or the panic command.
type interruptedError struct{ error }

func (e interruptedError) Unwrap() error { return e.error }

// Exit statuses: hooks and scripts rely on them (README "Flags").
const (
	exitFailed      = 1 // the migration failed; what it made was removed
	exitUsage       = 2 // the command line is wrong; no database was touched
	exitRefused     = 3 // refused before changing anything (inspection, plan, resume)
	exitInterrupted = 4 // Ctrl-C, SIGTERM or the panic command; what it made was removed
)

// exitCode prints err and returns the process's exit status: 0 for success
// and for --help, else one of the exit constants.
func exitCode(err error, stderr io.Writer) int {
	var usage usageError
	var refused *engine.RefusedError
	var interrupted interruptedError
	switch {
	case err == nil || errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.Is(err, errDiffer):
		return exitFailed // osc verify printed the differences
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "osc: %v (see --help)\n", usage.error)
		return exitUsage
	}
	fmt.Fprintf(stderr, "osc: error: %v\n", err)
	switch {
	case errors.As(err, &interrupted) || errors.Is(err, engine.ErrPanic):
		return exitInterrupted
	case errors.As(err, &refused):
		return exitRefused
	}
	return exitFailed
}

// options are the command line, before it is turned into an engine.Config and
// a dialect.
type options struct {
	cfg engine.Config

	host, user, password, database string
	port                           int
	askPass, allowOnMaster         bool
	replicaServerID                uint32
	timeZone                       string
	panicOnWarnings                bool
	discardForeignKeys             bool

	dsn            string
	maxRetainedWAL int64 // bytes (--max-retained-wal)

	tlsFlags *mysqlTLSFlags
	mysqlTLS *tls.Config // from tlsFlags; nil: no TLS

	noop                  bool
	checksum              bool
	checkpoint            bool
	checkpointSeconds     int
	metricsAddress        string
	cutOverLockTimeoutS   int
	statusIntervalS       int
	verbose, debug, quiet bool
}

// parseFlags reads the command line; --help prints to usageOut.
func parseFlags(args []string, usageOut io.Writer) (*options, *pflag.FlagSet, error) {
	o := &options{}
	fs := pflag.NewFlagSet("osc", pflag.ContinueOnError)
	fs.SetOutput(usageOut)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprint(usageOut, `osc: online schema change for MySQL/MariaDB and PostgreSQL, without triggers.

Usage:
  osc --host H --user U --database D --table T --alter "ADD COLUMN c INT" [--execute]
  osc --dsn postgres://user@host/db --table schema.t --alter "ADD COLUMN c int" [--execute]
  osc ctl --database D --table T status      (steer a running osc; osc ctl --help)
  osc verify --table T --against OTHER ...   (compare two tables; osc verify --help)
  osc backfill --table T --set "b = f(a)"    (batch UPDATE in chunks; osc backfill --help)

Without --execute osc does a dry run (--noop): it inspects, creates and alters
the shadow table, reports the plan and drops everything it made.

Exit status: 0 done, 1 failed (what osc made was removed), 2 bad command line,
3 refused before changing anything, 4 interrupted or panic.

Flags:
`)
		fs.PrintDefaults()
	}

	// What to change.
	fs.StringVar(&o.cfg.Table, "table", "", "table to alter (PostgreSQL: may be schema-qualified, schema.table)")
	fs.StringVar(&o.cfg.Alter, "alter", "", `the ALTER TABLE clauses, without "ALTER TABLE t" (e.g. "ADD COLUMN c INT, DROP COLUMN d")`)
	fs.BoolVar(&o.cfg.Execute, "execute", false, "really migrate the table (default: dry run)")
	fs.BoolVar(&o.noop, "noop", false, "dry run: inspect, create and alter the shadow table, report, drop it (the default)")
	fs.StringVar(&o.cfg.Strategy, "strategy", engine.StrategyAuto, `how to alter the table: "auto" runs the ALTER natively where the server changes the table `+
		`without copying it (MySQL/MariaDB ALGORITHM=INSTANT; PostgreSQL catalog-only clauses, and unique, primary key, CHECK, FOREIGN KEY and SET NOT NULL in steps that do not hold writers), under the cut-over's lock timeout and retries, and copies otherwise; "copy" always copies; "native" refuses what needs a copy`)

	// MySQL / MariaDB connection (gh-ost names).
	fs.StringVar(&o.host, "host", "127.0.0.1", "MySQL: primary host")
	fs.IntVar(&o.port, "port", 3306, "MySQL: primary port")
	fs.StringVar(&o.user, "user", "", "MySQL: user (needs REPLICATION SLAVE and REPLICATION CLIENT)")
	fs.StringVar(&o.password, "password", "", "MySQL: password (prefer OSC_PASSWORD or --ask-pass: a command-line password is visible to other users)")
	fs.BoolVar(&o.askPass, "ask-pass", false, "MySQL: prompt for the password")
	fs.StringVar(&o.database, "database", "", "MySQL: database of the table")
	fs.BoolVar(&o.allowOnMaster, "allow-on-master", false, "accepted for gh-ost compatibility; osc always works on the primary")
	fs.Uint32Var(&o.replicaServerID, "replica-server-id", 0, "MySQL: server_id osc uses to read the binlog (default: derived from the process id, in 1000000-1999999)")
	o.tlsFlags = addMySQLTLSFlags(fs)
	fs.BoolVar(&o.panicOnWarnings, "panic-on-warnings", false, "MySQL: abort the migration when the copy or an applied change makes the server warn (a value truncated or rounded on its way into the altered table)")
	fs.BoolVar(&o.discardForeignKeys, "discard-foreign-keys", false, "MySQL: migrate a table with foreign keys of its own to a new table without them (the old table's are dropped after the cut-over)")
	fs.StringVar(&o.timeZone, "time-zone", "", "MySQL: time zone in which the --alter converts values to and from TIMESTAMP, as a plain ALTER in a session with this time_zone would (default: the server's global time_zone)")

	// PostgreSQL connection.
	fs.StringVar(&o.dsn, "dsn", "", `PostgreSQL: connection string, URL or "key=value" (libpq); PG* environment variables apply. Selects PostgreSQL.`)

	// How.
	fs.IntVar(&o.cfg.ChunkSize, "chunk-size", 1000, "rows per copy chunk: the first, then each chunk aims at --target-chunk-time; given without --target-chunk-time, every chunk's (gh-ost's fixed size)")
	fs.DurationVar(&o.cfg.ChunkTarget, "target-chunk-time", 500*time.Millisecond, "how long each copy chunk aims to take: the chunk size follows the rows' copy rate (0: keep --chunk-size)")
	fs.IntVar(&o.cfg.CopyThreads, "copy-threads", 1, "chunks copied at once, each its own range of keys (Spirit's --threads; the copy-threads command changes it while osc runs)")
	fs.IntVar(&o.cfg.DMLBatchSize, "dml-batch-size", 100, "captured changes applied per transaction (while a backlog lasts, up to 64 times as many)")
	fs.IntVar(&o.cutOverLockTimeoutS, "cut-over-lock-timeout-seconds", 3, "longest a cut-over attempt may wait for (and so block writers behind) its locks")
	fs.IntVar(&o.cfg.CutOverRetries, "cut-over-retries", 60, "cut-over attempts before giving up")
	fs.BoolVar(&o.cfg.ExactRowCount, "exact-rowcount", false, "count the table's rows (SELECT COUNT(*), a full scan) for the progress and ETA, instead of the statistics' estimate (gh-ost's name)")
	fs.BoolVar(&o.cfg.ConcurrentRowCount, "concurrent-rowcount", true, "with --exact-rowcount, count while the copy runs (cancelled when the copy ends); false: count before it starts")
	fs.BoolVar(&o.cfg.OkToDropTable, "ok-to-drop-table", false, "drop the old table after a successful cut-over (default: keep it)")
	fs.StringVar(&o.cfg.PostponeCutOverFlagFile, "postpone-cut-over-flag-file", "", "while this file exists, keep the shadow in sync and do not cut over")
	fs.BoolVar(&o.checksum, "checksum", true, "before the cut-over, compare the shadow with the table chunk by chunk, recopy what differs, and cut over only when they are equal")
	fs.IntVar(&o.cfg.ChecksumThreads, "checksum-threads", 2, "chunks the checksum compares at once")
	fs.IntVar(&o.cfg.ChecksumMaxRepairs, "checksum-max-repairs", 3, "times the checksum recopies chunks that differ before osc aborts (0: abort at the first difference)")
	fs.BoolVar(&o.checkpoint, "checkpoint", true, "save a checkpoint every --checkpoint-seconds, so that a killed run can be continued with --resume (PostgreSQL: the replication slot is then permanent until osc exits)")
	fs.IntVar(&o.checkpointSeconds, "checkpoint-seconds", 5, "seconds between checkpoints")
	fs.BoolVar(&o.cfg.Resume, "resume", false, "continue the migration a killed osc left (same table and --alter) from its last checkpoint")
	fs.DurationVar(&o.cfg.ResumeMaxAge, "resume-max-age", 7*24*time.Hour, "refuse to resume from a checkpoint older than this (0: any age)")
	fs.DurationVar(&o.cfg.RevertWindow, "revert-window", 0, "after the cut-over, keep the old table current this long so that the revert command can swap the tables back (0: no window)")
	fs.BoolVar(&o.cfg.InitiallyDropShadow, "initially-drop-ghost-table", false, "drop what a killed run of this migration left (shadow, bookkeeping, replication slot, publication) and start afresh")
	fs.BoolVar(&o.cfg.InitiallyDropOld, "initially-drop-old-table", false, "drop the old table an earlier migration of this table kept, before starting")
	fs.IntVar(&o.statusIntervalS, "status-interval", 5, "seconds between status lines")
	fs.DurationVar(&o.cfg.PreflightSample, "preflight-sample", 2*time.Second, "how long the preflight report, printed before anything is changed, samples the writes on the table (0: no sample; default 2s in a dry run, none with --execute, where it would delay the migration)")
	fs.StringVar(&o.metricsAddress, "metrics-address", "", `serve Prometheus metrics at http://ADDRESS/metrics and the JSON status at /status while osc runs (host:port; ":9108" binds 127.0.0.1)`)
	fs.BoolVar(&o.verbose, "verbose", false, "log more (same as --debug for now)")
	fs.BoolVar(&o.debug, "debug", false, "log everything")
	fs.BoolVar(&o.quiet, "quiet", false, "log only warnings and errors (status lines still print)")
	ctl := addControlFlags(fs)
	ghost := addGhostFlags(fs)

	version := fs.Bool("version", false, "print osc's version and exit")
	conf := fs.String("conf", "", "read flags from this file: user, password, host, port in its [client] section (gh-ost's --conf, a MySQL option file), any flag as name = value in [osc]; the command line wins")
	if err := parseWithConf(fs, args, conf); err != nil {
		return nil, fs, err
	}
	if *version {
		return nil, fs, errVersion
	}
	if ghost.checkFlag {
		if err := ghost.refusal(fs); err != nil {
			return nil, fs, usageError{err}
		}
		return nil, fs, errCheckFlag
	}
	o, err := checkFlags(fs, o, ctl, ghost)
	if err != nil {
		return nil, fs, usageError{err}
	}
	return o, fs, nil
}

// errVersion asks run to print the version instead of migrating.
var errVersion = errors.New("version requested")

// checkFlags validates the parsed command line and completes the options.
func checkFlags(fs *pflag.FlagSet, o *options, ctl *controlFlags, ghost *ghostFlags) (*options, error) {
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags take the form --name value)", fs.Arg(0))
	}
	if o.noop && o.cfg.Execute {
		return nil, errors.New("--noop and --execute contradict each other")
	}
	if o.cfg.Table == "" {
		return nil, errors.New("--table is required")
	}
	if o.cfg.Execute && !fs.Changed("preflight-sample") {
		// The dry run, osc's default, samples the writes; a real run
		// shows them in its status (changes applied) and does not wait
		// seconds for a report line, however quick its ALTER.
		o.cfg.PreflightSample = 0
	}
	switch o.cfg.Strategy {
	case engine.StrategyAuto, engine.StrategyCopy, engine.StrategyNative:
	default:
		return nil, fmt.Errorf("--strategy %q: want auto, copy or native", o.cfg.Strategy)
	}
	if o.cfg.Resume && o.cfg.Strategy == engine.StrategyNative {
		return nil, errors.New("--resume continues a copy: it contradicts --strategy native")
	}
	if o.cfg.RevertWindow > 0 && o.cfg.Strategy == engine.StrategyNative {
		return nil, errors.New("--revert-window keeps the copy's old table to swap back: it contradicts --strategy native")
	}
	if strings.TrimSpace(o.cfg.Alter) == "" {
		return nil, errors.New("--alter is required")
	}
	if o.cfg.ChunkSize < 1 {
		return nil, errors.New("--chunk-size must be at least 1")
	}
	if o.cfg.CopyThreads < 1 || o.cfg.CopyThreads > engine.MaxCopyThreads {
		return nil, fmt.Errorf("--copy-threads must be from 1 to %d", engine.MaxCopyThreads)
	}
	if o.cfg.DMLBatchSize < 1 {
		return nil, errors.New("--dml-batch-size must be at least 1")
	}
	if o.cutOverLockTimeoutS < 1 {
		return nil, errors.New("--cut-over-lock-timeout-seconds must be at least 1")
	}
	o.cfg.CutOverLockTimeout = time.Duration(o.cutOverLockTimeoutS) * time.Second
	if o.cfg.ChecksumThreads < 1 || o.cfg.ChecksumThreads > engine.MaxChecksumThreads {
		return nil, fmt.Errorf("--checksum-threads must be from 1 to %d", engine.MaxChecksumThreads)
	}
	if o.cfg.ChecksumMaxRepairs < 0 {
		return nil, errors.New("--checksum-max-repairs must be 0 or more")
	}
	o.cfg.NoChecksum = !o.checksum
	if o.checkpointSeconds < 1 {
		return nil, errors.New("--checkpoint-seconds must be at least 1")
	}
	o.cfg.NoCheckpoint = !o.checkpoint
	o.cfg.CheckpointInterval = time.Duration(o.checkpointSeconds) * time.Second
	switch {
	case o.cfg.ResumeMaxAge < 0:
		return nil, errors.New("--resume-max-age must be 0 or more")
	case o.cfg.RevertWindow < 0:
		return nil, errors.New("--revert-window must be 0 or more")
	case o.cfg.ChunkTarget < 0 || o.cfg.ChunkTarget > time.Minute:
		return nil, errors.New("--target-chunk-time must be between 0 and 1m")
	case o.cfg.PreflightSample < 0 || o.cfg.PreflightSample > time.Minute:
		return nil, errors.New("--preflight-sample must be between 0 and 1m")
	case o.cfg.Resume && o.cfg.InitiallyDropShadow:
		return nil, errors.New("--resume and --initially-drop-ghost-table contradict each other: resume what the killed run left, or drop it and start afresh")
	case o.cfg.Resume && o.cfg.NoCheckpoint:
		return nil, errors.New("--resume needs checkpoints (--checkpoint=false)")
	}
	o.cfg.Version = version()
	var err error
	if o.mysqlTLS, err = o.tlsFlags.config(); err != nil {
		return nil, err
	}
	if o.panicOnWarnings && fs.Changed("dsn") {
		return nil, errors.New("--panic-on-warnings is for MySQL: PostgreSQL has no warnings for a value it changes on its way into a column; " +
			"it fails on what does not fit (the migration fails with it), and rounds a numeric's scale or a timestamp's precision silently, as the plain ALTER does")
	}
	if o.discardForeignKeys && fs.Changed("dsn") {
		return nil, errors.New("--discard-foreign-keys is for MySQL: on PostgreSQL osc carries the table's foreign keys to the new table " +
			"(drop one in the --alter to lose it)")
	}
	if o.mysqlTLS != nil && fs.Changed("dsn") {
		return nil, errors.New("--ssl is for MySQL; for PostgreSQL set sslmode (and sslrootcert, sslcert, sslkey) in --dsn")
	}
	if o.metricsAddress != "" {
		addr, err := metricsAddress(o.metricsAddress)
		if err != nil {
			return nil, err
		}
		o.metricsAddress = addr
	}
	o.cfg.StatusInterval = time.Duration(o.statusIntervalS) * time.Second
	if fs.Changed("chunk-size") && !fs.Changed("target-chunk-time") {
		o.cfg.ChunkTarget = 0
	}
	if err := ctl.apply(fs, o); err != nil {
		return nil, err
	}
	if err := ghost.apply(fs, o); err != nil {
		return nil, err
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "ctl" {
		return runCtl(args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "verify" {
		return runVerify(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "backfill" {
		return runBackfill(args[1:], stdout, stderr)
	}
	o, fs, err := parseFlags(args, stdout)
	if errors.Is(err, errVersion) {
		_, err = fmt.Fprintln(stdout, "osc", version())
		return err
	}
	if errors.Is(err, errCheckFlag) {
		return nil
	}
	if err != nil {
		return err
	}
	o.cfg.Control.ProgressBar = isTerminal(stdout)
	level := slog.LevelInfo
	switch {
	case o.debug || o.verbose:
		level = slog.LevelDebug
	case o.quiet:
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	var d engine.Dialect
	if fs.Changed("dsn") {
		d, err = dialect.NewPostgres(o.cfg, dialect.PostgresOptions{DSN: o.dsn, MaxRetainedWAL: o.maxRetainedWAL}, log)
	} else {
		d, err = mysqlDialect(o, log)
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := engine.New(o.cfg, d, log, stdout)
	if o.metricsAddress != "" {
		stopMetrics, err := serveMetrics(o.metricsAddress, m, metricLabels(o.cfg, fs.Changed("dsn")), log)
		if err != nil {
			d.Close() // nothing was opened yet
			return &engine.RefusedError{Err: err}
		}
		defer stopMetrics()
	}
	if err := m.Run(ctx); err != nil {
		if ctx.Err() != nil {
			return interruptedError{fmt.Errorf("interrupted; everything osc created was removed: %w", err)}
		}
		return err
	}
	return nil
}

func mysqlDialect(o *options, log *slog.Logger) (engine.Dialect, error) {
	if o.database == "" {
		return nil, usageError{errors.New("--database is required for MySQL (for PostgreSQL give --dsn)")}
	}
	if o.user == "" {
		return nil, usageError{errors.New("--user is required for MySQL")}
	}
	password, err := mysqlPassword(o)
	if err != nil {
		return nil, err
	}
	o.cfg.Schema = o.database
	return dialect.NewMySQL(o.cfg, table.MySQLConn{
		Host: o.host, Port: o.port, User: o.user, Password: password, ReplicaServerID: o.replicaServerID,
		TimeZone: o.timeZone, TLS: o.mysqlTLS, PanicOnWarnings: o.panicOnWarnings,
		DiscardForeignKeys: o.discardForeignKeys,
	}, log)
}

// readPassword prompts for the password on the terminal.
func readPassword() (string, error) {
	fmt.Fprint(os.Stderr, "Password: ")
	p, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(p), nil
}

// version is the module version osc was built as (a tag, or a pseudo-version
// for go install), else the commit it was built from.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if v != "" && v != "(devel)" {
		return v
	}
	if rev == "" {
		return "(devel)"
	}
	return "commit " + rev + modified
}
