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
	"sync"
	"syscall"

	"github.com/spf13/pflag"

	"osc/checksum"
	"osc/engine"
	"osc/table"
)

// errDiffer is a verify that found differences: exit status 1, the
// differences already printed.
var errDiffer = errors.New("the tables differ")

// verifyOptions are osc verify's command line.
type verifyOptions struct {
	conn                         options // the connection flags, as osc's
	table, against               string
	threads, chunkSize, maxDiffs int
}

// differ is the checksum reader's Diffs: the first differences of a chunk.
type differ interface {
	Diffs(ctx context.Context, c engine.ChecksumChunk, most int) ([]string, error)
}

func parseVerifyFlags(args []string, usageOut io.Writer) (*verifyOptions, *pflag.FlagSet, error) {
	v := &verifyOptions{}
	o := &v.conn
	fs := pflag.NewFlagSet("osc verify", pflag.ContinueOnError)
	fs.SetOutput(usageOut)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprint(usageOut, `osc verify: compare two tables that share a key, as osc's checksum compares
the original and the shadow before the cut-over, and print the differing keys.

Usage:
  osc verify --host H --user U --database D --table T --against OTHER
  osc verify --dsn postgres://user@host/db --table schema.t --against OTHER

OTHER plays the original (e.g. the old table a migration kept, t_osc_old or
_t_old) and T the altered table: columns are paired by name, each compared
as the copy converts OTHER's value into T's column; columns of one table only
are listed as not compared. T's key (its PRIMARY KEY first) must be a key of
OTHER on the same columns. Both tables are read in one snapshot, without locks.
Exit status: 0 equal, 1 different (or an error), 2 a command line error.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&v.table, "table", "", "the table to verify (PostgreSQL: may be schema-qualified, schema.table)")
	fs.StringVar(&v.against, "against", "", "the table to compare it with, in the same database (PostgreSQL: may be schema-qualified; default schema: --table's)")
	fs.StringVar(&o.host, "host", "127.0.0.1", "MySQL: host")
	fs.IntVar(&o.port, "port", 3306, "MySQL: port")
	fs.StringVar(&o.user, "user", "", "MySQL: user")
	fs.StringVar(&o.password, "password", "", "MySQL: password (prefer OSC_PASSWORD or --ask-pass: a command-line password is visible to other users)")
	fs.BoolVar(&o.askPass, "ask-pass", false, "MySQL: prompt for the password")
	o.tlsFlags = addMySQLTLSFlags(fs)
	fs.StringVar(&o.database, "database", "", "MySQL: database of both tables")
	fs.StringVar(&o.dsn, "dsn", "", `PostgreSQL: connection string, URL or "key=value" (libpq); PG* environment variables apply. Selects PostgreSQL.`)
	fs.IntVar(&v.threads, "checksum-threads", 2, "chunks compared at once")
	fs.IntVar(&v.chunkSize, "chunk-size", 10000, "rows per compared chunk")
	fs.IntVar(&v.maxDiffs, "max-diffs", 20, "differences printed at most (0: only the count of differing chunks)")
	fs.BoolVar(&o.debug, "debug", false, "log everything")
	conf := fs.String("conf", "", "read flags from this file, as osc --conf does")
	if err := parseWithConf(fs, args, conf); err != nil {
		return nil, fs, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fs, usageError{fmt.Errorf("unexpected argument %q (flags take the form --name value)", fs.Arg(0))}
	case v.table == "":
		return nil, fs, usageError{errors.New("--table is required")}
	case v.against == "":
		return nil, fs, usageError{errors.New("--against is required")}
	case v.threads < 1 || v.threads > engine.MaxChecksumThreads:
		return nil, fs, usageError{fmt.Errorf("--checksum-threads must be from 1 to %d", engine.MaxChecksumThreads)}
	case v.chunkSize < 1:
		return nil, fs, usageError{errors.New("--chunk-size must be at least 1")}
	case v.maxDiffs < 0:
		return nil, fs, usageError{errors.New("--max-diffs must be 0 or more")}
	case !fs.Changed("dsn") && o.database == "":
		return nil, fs, usageError{errors.New("--database is required for MySQL (for PostgreSQL give --dsn)")}
	case !fs.Changed("dsn") && o.user == "":
		return nil, fs, usageError{errors.New("--user is required for MySQL")}
	}
	var err error
	if o.mysqlTLS, err = o.tlsFlags.config(); err != nil {
		return nil, fs, usageError{err}
	}
	return v, fs, nil
}

// runVerify is osc verify: it returns errDiffer when the tables differ.
func runVerify(args []string, stdout, stderr io.Writer) error {
	v, fs, err := parseVerifyFlags(args, stdout)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if v.conn.debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := checksum.Options{Unlocked: true, Log: log}
	var pair *table.Pair
	var ck engine.Checksum
	var tname, oname string
	if fs.Changed("dsn") {
		schema, name := "public", v.table
		if s, t, ok := strings.Cut(v.table, "."); ok {
			schema, name = s, t
		}
		oschema, oname0 := schema, v.against
		if s, t, ok := strings.Cut(v.against, "."); ok {
			oschema, oname0 = s, t
		}
		pool, err := table.OpenPostgres(ctx, v.conn.dsn)
		if err != nil {
			return err
		}
		defer pool.Close()
		if pair, err = table.PairPostgres(ctx, pool, schema, name, oschema, oname0); err != nil {
			return err
		}
		ck = checksum.NewPostgres(pool, pair.Plan, opts)
		tname, oname = schema+"."+name, oschema+"."+oname0
	} else {
		password, err := mysqlPassword(&v.conn)
		if err != nil {
			return err
		}
		db, err := table.OpenMySQL(ctx, table.MySQLConn{Host: v.conn.host, Port: v.conn.port, User: v.conn.user, Password: password, TLS: v.conn.mysqlTLS}, v.conn.database)
		if err != nil {
			return err
		}
		defer db.Close()
		if pair, err = table.PairMySQL(ctx, db, v.conn.database, v.table, v.against); err != nil {
			return err
		}
		if ck, err = checksum.NewMySQL(db, pair.Plan, opts); err != nil {
			return err
		}
		tname, oname = v.conn.database+"."+v.table, v.conn.database+"."+v.against
	}
	defer ck.Close()
	fmt.Fprintf(stdout, "verify %s against %s, key (%s)\n", tname, oname, strings.Join(pair.Plan.Key, ", "))
	for _, c := range pair.OnlyAgainst {
		fmt.Fprintf(stdout, "not compared: column %s (only in %s)\n", c, oname)
	}
	for _, c := range pair.OnlyTable {
		fmt.Fprintf(stdout, "not compared: column %s (only in %s)\n", c, tname)
	}
	for _, c := range pair.Generated {
		fmt.Fprintf(stdout, "not compared: generated column %s\n", c)
	}
	res, err := compareChunks(ctx, ck, v)
	if err != nil {
		return err
	}
	// The checksum's words for the sides, as the tables' names.
	names := strings.NewReplacer(
		" is missing from the shadow", " is missing from "+tname,
		" is in the shadow but not in the original", " is in "+tname+" but not in "+oname,
		" differs: original ", " differs: "+oname+" ",
		", shadow ", ", "+tname+" ")
	shown, differing := 0, 0
	for _, r := range res.chunks {
		if !r.differs {
			continue
		}
		differing++
		for _, d := range r.diffs {
			if shown < v.maxDiffs {
				fmt.Fprintln(stdout, names.Replace(d))
				shown++
			}
		}
	}
	if differing == 0 {
		fmt.Fprintf(stdout, "equal: %d rows in %d chunks\n", res.rows, len(res.chunks))
		return nil
	}
	fmt.Fprintf(stdout, "different: %d of %d chunks differ\n", differing, len(res.chunks))
	return errDiffer
}

// mysqlPassword is --password, else OSC_PASSWORD, or what --ask-pass reads.
func mysqlPassword(o *options) (string, error) {
	password := o.password
	if password == "" {
		password = os.Getenv("OSC_PASSWORD")
	}
	if o.askPass {
		p, err := readPassword()
		if err != nil {
			return "", err
		}
		password = p
	}
	return password, nil
}

// chunkResult is one compared chunk.
type chunkResult struct {
	differs bool
	diffs   []string
}

type compared struct {
	chunks []chunkResult // in key order
	rows   int64         // rows of the table verified
}

// compareChunks bounds chunks on one reader and compares them on the
// others, v.threads at once, as the engine's checksum does.
func compareChunks(ctx context.Context, ck engine.Checksum, v *verifyOptions) (*compared, error) {
	readers, err := ck.Open(ctx, v.threads+1, nil, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, r := range readers {
			_ = r.Close()
		}
	}()
	type job struct {
		i int
		c engine.ChecksumChunk
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan job)
	out := &compared{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, r := range readers[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				orig, shadow, err := r.Sum(ctx, j.c)
				if err != nil {
					cancel(err)
					continue
				}
				res := chunkResult{differs: orig != shadow}
				if res.differs && v.maxDiffs > 0 {
					d, ok := r.(differ)
					if !ok {
						cancel(errors.New("verify: the checksum cannot list differences"))
						continue
					}
					if res.diffs, err = d.Diffs(ctx, j.c, v.maxDiffs); err != nil {
						cancel(err)
						continue
					}
				}
				mu.Lock()
				out.chunks[j.i] = res
				out.rows += shadow.Rows
				mu.Unlock()
			}
		}()
	}
	var after []any
	for i := 0; ctx.Err() == nil; i++ {
		upto, err := readers[0].Bound(ctx, after, v.chunkSize)
		if err != nil {
			cancel(err)
			break
		}
		mu.Lock()
		out.chunks = append(out.chunks, chunkResult{})
		mu.Unlock()
		select {
		case jobs <- job{i, engine.ChecksumChunk{After: after, Upto: upto}}:
		case <-ctx.Done():
		}
		if upto == nil {
			break
		}
		after = upto
	}
	close(jobs)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return out, nil
}
