package checksum

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/copier"
	"osc/cutover"
	"osc/engine"
	"osc/table"
)

// Postgres is the checksum of a PostgreSQL migration. Open locks the
// original IN SHARE MODE (writers wait, readers do not), lets the engine
// drain the applier, and opens REPEATABLE READ READ ONLY readers on one
// exported snapshot (pg_export_snapshot, SET TRANSACTION SNAPSHOT) before
// committing the lock. A chunk's fingerprint is count(*) and the bit_xor of
// the rows' hashes (pgRowHash: the columns' hashes chained, each value
// hashed exactly, see pgColumnHashOf): on the original each mapped column
// as the copy computes it (the column or the ALTER's USING expression),
// cast to the shadow column's type when the types differ (an explicit cast
// gives what the copy's assignment stored, for every value the assignment
// accepts); on the shadow the stored columns. A NULL is marked in the row's
// mask, so NULL, the empty string, 0 and 'NULL' differ.
//
// It uses the pool's connections, so that readers have the copy's session
// settings (TimeZone, DateStyle, extra_float_digits…), on which conversions
// and text forms depend.
type Postgres struct {
	pool *pgxpool.Pool
	plan *table.Plan
	opts Options

	mu    sync.Mutex
	ready bool
	sql   *copier.PostgresStatements
	// origVals and shadVals are each mapped column's value on the
	// original (converted as the copy converts it) and on the shadow.
	origVals, shadVals []string
	// origHash and shadHash are the row's hash on each side (pgRowHash).
	origHash, shadHash string
	// origKeys and shadKeys are the key columns in the shadow's types,
	// for ordering both tables' rows together (Diff).
	origKeys, shadKeys []string
	// unordered says why the shadow's key order may differ from the
	// original's ("" when it does not): chunks are then the whole table,
	// and cannot be recopied.
	unordered string
	// aside is the table of rows set aside of a plan with new unique keys
	// ("" for other plans and osc verify): its rows are rows of the
	// shadow (README, "Why nothing is lost", step 5), so the shadow's
	// side of a chunk is the shadow and that table together.
	aside string
}

var (
	_ engine.Checksum       = (*Postgres)(nil)
	_ engine.ChecksumReader = (*pgReader)(nil)
)

// NewPostgres returns the checksum of the plan; it reads the catalog on the
// first Open.
func NewPostgres(pool *pgxpool.Pool, plan *table.Plan, opts Options) *Postgres {
	return &Postgres{pool: pool, plan: plan, opts: opts.defaults()}
}

// pgChecksumBackoff is the pause between two attempts at the lock.
const pgChecksumBackoff = 100 * time.Millisecond

func (c *Postgres) init(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready {
		return nil
	}
	s, err := copier.NewPostgresStatements(c.plan)
	if err != nil {
		return err
	}
	p := c.plan
	c.origVals, c.shadVals = nil, nil
	var types []string
	var nullable []bool
	for _, m := range p.Mapping {
		j := p.Shadow.ColumnIndex(m.Shadow)
		if j < 0 || m.SourceIndex < 0 || m.SourceIndex >= len(p.Source.Columns) {
			return fmt.Errorf("column %s of the mapping is not in the plan's tables", m.Shadow)
		}
		src, sh := p.Source.Columns[m.SourceIndex], p.Shadow.Columns[j]
		c.origVals = append(c.origVals, pgValue(m, src.ColumnType, sh.ColumnType))
		c.shadVals = append(c.shadVals, table.QuotePostgres(m.Shadow))
		types = append(types, sh.ColumnType)
		// A value computed or cast may be NULL where the column is not.
		nullable = append(nullable, src.Nullable || sh.Nullable || m.Expr != "" || src.ColumnType != sh.ColumnType)
	}
	c.origHash, c.shadHash = pgRowHash(c.origVals, types, nullable), pgRowHash(c.shadVals, types, nullable)
	unordered, err := c.keyOrder(ctx, s)
	if err != nil {
		return err
	}
	c.aside = ""
	if !c.opts.Unlocked {
		c.aside = table.PostgresAside(p)
	}
	c.sql, c.unordered, c.ready = s, unordered, true
	return nil
}

// pgValue is the original's side of a mapped column: the copy's value
// (PostgresValue), cast to the shadow column's type unless it is the
// column itself and the types are the same.
func pgValue(m table.ColumnMap, from, to string) string {
	if m.Expr == "" && from == to {
		return m.PostgresValue()
	}
	return "CAST((" + m.PostgresValue() + ") AS " + to + ")"
}

// pgColumnHash is how a column's value enters the row's hash (pgRowHash):
// fn(arg, seed), fn an extended hash function of the value's type that
// tells every two distinct stored values apart, but for the sign where
// sign is set; zero is a value of arg's type (typed: coalesce would take
// an integer for a smallint and 0) that stands for NULL. The
// templates take the value as %[1]s.
type pgColumnHash struct {
	fn, arg, zero, sign string
}

var (
	pgVarchar     = regexp.MustCompile(`^character varying(\(\d+\))?$`)
	pgScaled      = regexp.MustCompile(`^numeric\(\d+,\d+\)$`)
	pgTimestamp   = regexp.MustCompile(`^timestamp(\(\d\))? without time zone$`)
	pgTimestampTZ = regexp.MustCompile(`^timestamp(\(\d\))? with time zone$`)
	pgTime        = regexp.MustCompile(`^time(\(\d\))? without time zone$`)
	pgTimeTZ      = regexp.MustCompile(`^time(\(\d\))? with time zone$`)
)

// pgColumnHashOf is the hash of a value of the shadow's type typ. Where
// equality is identity (integers, uuids, times, text under the "C"
// collation, a numeric with a scale, whose every value is stored with that
// scale) the type's own hash function takes the value; a timestamptz is
// taken at UTC (one timestamp per instant), a boolean as 0 or 1. The
// numeric and float hashes ignore the sign (hash_numeric_extended hashes
// the digits and the weight; hashfloat8extended equates -0 and 0): the
// sign is in the row's mask. Every other type (numeric without a scale,
// where 1.0 = 1.00, jsonb, char(n), arrays, domains, dates and bytea,
// whose hash functions SQL cannot call on them…) is hashed by its text
// form in the "C" collation, which costs more.
func pgColumnHashOf(typ string) pgColumnHash {
	switch {
	case typ == "smallint":
		return pgColumnHash{fn: "hashint2extended", arg: "%[1]s", zero: "0::smallint"}
	case typ == "integer":
		return pgColumnHash{fn: "hashint4extended", arg: "%[1]s", zero: "0::integer"}
	case typ == "bigint":
		return pgColumnHash{fn: "hashint8extended", arg: "%[1]s", zero: "0::bigint"}
	case typ == "boolean":
		return pgColumnHash{fn: "hashint4extended", arg: "(%[1]s)::integer", zero: "0::integer"}
	case typ == "uuid":
		return pgColumnHash{fn: "uuid_hash_extended", arg: "%[1]s", zero: "'00000000-0000-0000-0000-000000000000'::uuid"}
	case typ == "text" || pgVarchar.MatchString(typ):
		return pgColumnHash{fn: "hashtextextended", arg: `(%[1]s) COLLATE "C"`, zero: "''"}
	case pgScaled.MatchString(typ):
		return pgColumnHash{fn: "hash_numeric_extended", arg: "%[1]s", zero: "0::numeric", sign: "(%[1]s) < 0"}
	case pgTimestamp.MatchString(typ):
		return pgColumnHash{fn: "timestamp_hash_extended", arg: "%[1]s", zero: "'epoch'::timestamp"}
	case pgTimestampTZ.MatchString(typ):
		return pgColumnHash{fn: "timestamp_hash_extended", arg: "(%[1]s) AT TIME ZONE 'UTC'", zero: "'epoch'::timestamp"}
	case pgTime.MatchString(typ):
		return pgColumnHash{fn: "time_hash_extended", arg: "%[1]s", zero: "'00:00'::time"}
	case pgTimeTZ.MatchString(typ):
		return pgColumnHash{fn: "timetz_hash_extended", arg: "%[1]s", zero: "'00:00+00'::timetz"}
	case typ == "real":
		return pgColumnHash{fn: "hashfloat4extended", arg: "%[1]s", zero: "0::real", sign: `float4send(%[1]s) >= '\x80'::bytea`}
	case typ == "double precision":
		return pgColumnHash{fn: "hashfloat8extended", arg: "%[1]s", zero: "0::double precision", sign: `float8send(%[1]s) >= '\x80'::bytea`}
	}
	return pgColumnHash{fn: "hashtextextended", arg: `((%[1]s)::text) COLLATE "C"`, zero: "''"}
}

// pgMaskBits is how many bits of a bigint one word of a row's mask uses:
// their sum stays below 2^62.
const pgMaskBits = 62

// pgRowHash is the hash of a row of the values vals, of the shadow's types
// types, of which those marked nullable may be NULL: a chain of the
// columns' hashes (pgColumnHashOf), each seeded with the hash of the
// columns before it, h_i = fn_i(v_i, h_(i-1)), so that every bit of the
// row's hash depends on every column and on its position. The chain starts
// from the row's mask: one bit per nullable column, set when it is NULL
// (its value is then hashed as the type's zero), and one per numeric or
// float column, set when it is negative (the bits past 62 in further
// words, hashed first). Extended hash functions are strict: without the
// zero a NULL would make the row's hash NULL, which bit_xor skips.
func pgRowHash(vals, types []string, nullable []bool) string {
	var bits []string
	for i, v := range vals {
		if nullable[i] {
			bits = append(bits, "("+v+") IS NULL")
		}
		if s := pgColumnHashOf(types[i]).sign; s != "" {
			bits = append(bits, fmt.Sprintf(s, v))
		}
	}
	var words []string
	for len(bits) > 0 {
		n := min(len(bits), pgMaskBits)
		terms := make([]string, n)
		for k, b := range bits[:n] {
			terms[k] = fmt.Sprintf("CASE WHEN %s THEN %d::bigint ELSE 0::bigint END", b, int64(1)<<k)
		}
		words = append(words, "("+strings.Join(terms, " + ")+")")
		bits = bits[n:]
	}
	h := "0::bigint"
	for k, w := range words {
		if k == 0 {
			h = w
			continue
		}
		h = "hashint8extended(" + w + ", " + h + ")"
	}
	for i, v := range vals {
		ch := pgColumnHashOf(types[i])
		arg := fmt.Sprintf(ch.arg, v)
		if nullable[i] {
			arg = "coalesce(" + arg + ", " + ch.zero + ")"
		}
		h = ch.fn + "(" + arg + ", " + h + ")"
	}
	return h
}

// keyOrder compares the key columns' types and collations in both tables,
// sets origKeys and shadKeys, and says why the shadow's key order may
// differ from the original's ("" when it does not).
func (c *Postgres) keyOrder(ctx context.Context, s *copier.PostgresStatements) (string, error) {
	p := c.plan
	c.origKeys, c.shadKeys = nil, nil
	var why []string
	for n, i := range p.KeyIndex {
		src := p.Source.Columns[i]
		var sh *table.Column
		for _, m := range p.Mapping {
			if m.SourceIndex == i {
				if j := p.Shadow.ColumnIndex(m.Shadow); j >= 0 {
					sh = &p.Shadow.Columns[j]
				}
			}
		}
		if sh == nil {
			return "", fmt.Errorf("key column %s is not in the shadow", src.Name)
		}
		var origColl, shadColl string
		err := c.pool.QueryRow(ctx, `SELECT
			(SELECT coalesce(co.collname, '') FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = a.attcollation WHERE a.attrelid = to_regclass($1) AND a.attname = $2),
			(SELECT coalesce(co.collname, '') FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = a.attcollation WHERE a.attrelid = to_regclass($3) AND a.attname = $4)`,
			s.Source, src.Name, s.Shadow, sh.Name).Scan(&origColl, &shadColl)
		if err != nil {
			return "", fmt.Errorf("read the collations of key column %s: %w", src.Name, err)
		}
		o, k := s.Keys[n], s.SKeys[n]
		if src.ColumnType != sh.ColumnType {
			o = "CAST(" + o + " AS " + sh.ColumnType + ")"
			if !table.PostgresEqualityKept(src.ColumnType, sh.ColumnType) {
				why = append(why, fmt.Sprintf("the --alter changes key column %s from %s to %s", src.Name, src.ColumnType, sh.ColumnType))
			}
		}
		if origColl != shadColl {
			// Ordered together in one collation, whichever.
			o, k = o+` COLLATE "C"`, k+` COLLATE "C"`
			why = append(why, fmt.Sprintf("the --alter changes the collation of key column %s from %q to %q", src.Name, origColl, shadColl))
		}
		c.origKeys, c.shadKeys = append(c.origKeys, o), append(c.shadKeys, k)
	}
	return strings.Join(why, "; "), nil
}

// Open locks the original IN SHARE MODE on a dedicated connection, calls
// blocked, opens n readers on one snapshot and commits the lock. A lock
// wait longer than the lock timeout, a deadlock, or a blocked that takes
// longer than the lock timeout rolls the attempt back; Open tries again
// after a short pause, up to Retries attempts in all.
func (c *Postgres) Open(ctx context.Context, n int, ready, blocked func(context.Context) error) ([]engine.ChecksumReader, error) {
	if n < 1 {
		return nil, fmt.Errorf("checksum: %d readers", n)
	}
	// The lock's connection and the readers' are held together: a pool
	// smaller than that would wait for itself.
	n, err := readers(n, int(c.pool.Config().MaxConns), c.opts.Log)
	if err != nil {
		return nil, err
	}
	if err := c.init(ctx); err != nil {
		return nil, fmt.Errorf("checksum: %w", err)
	}
	for attempt := 1; ; attempt++ {
		var readers []*pgReader
		var err error
		if c.opts.Unlocked {
			if readers, err = c.openReaders(ctx, n); err != nil {
				for _, r := range readers {
					_ = r.Close()
				}
				return nil, err
			}
		} else {
			if ready != nil {
				if err := ready(ctx); err != nil {
					return nil, fmt.Errorf("checksum: lock attempt %d: %w", attempt, err)
				}
			}
			readers, err = c.attempt(ctx, n, blocked)
		}
		if err == nil {
			out := make([]engine.ChecksumReader, len(readers))
			for i, r := range readers {
				out[i] = r
			}
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("checksum: lock %s: %w", c.sql.Source, context.Cause(ctx))
		}
		if !table.PostgresTransient(err) && !errors.Is(err, errPgBlockedTimeout) {
			return nil, err
		}
		if attempt >= max(c.opts.Retries, 1) {
			return nil, fmt.Errorf("checksum: lock %s: gave up after %d attempts: %w", c.sql.Source, attempt, err)
		}
		c.opts.Log.Warn("checksum: attempt at the lock on the original rolled back; retrying", "attempt", attempt,
			"lock_timeout", c.opts.LockTimeout.String(), "err", err)
		t := time.NewTimer(pgChecksumBackoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("checksum: lock %s: %w", c.sql.Source, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// errPgBlockedTimeout is a blocked that did not finish within the lock
// timeout: writers would wait longer than the cut-over lets them.
var errPgBlockedTimeout = errors.New("the last changes were not applied (and chunks recopied) within the lock timeout")

// attempt takes the lock, runs blocked within the lock timeout and opens
// the readers, then releases the lock; on error everything is released.
func (c *Postgres) attempt(ctx context.Context, n int, blocked func(context.Context) error) ([]*pgReader, error) {
	if err := cutover.CancelPostgresAutovacuum(ctx, c.pool, c.plan, c.opts.Log); err != nil {
		return nil, fmt.Errorf("checksum: %w", err)
	}
	lock, release, err := cutover.LockPostgresShare(ctx, c.pool, c.sql.Source, c.opts.LockTimeout)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	defer release()
	// Like the cut-over's drain, blocked has the lock timeout: writers
	// then wait at most about twice that (the lock's wait, then blocked).
	bctx, cancel := context.WithTimeout(ctx, c.opts.LockTimeout)
	err = blocked(bctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w (%v)", errPgBlockedTimeout, err)
		}
		return nil, err
	}
	readers, err := c.openReaders(ctx, n)
	if err == nil {
		if err = lock.Commit(ctx); err != nil {
			err = fmt.Errorf("checksum: release the lock: %w", err)
		}
	}
	if err != nil {
		for _, r := range readers {
			_ = r.Close()
		}
		return nil, err
	}
	c.opts.Log.Info("checksum: writes blocked", "for", time.Since(start).Round(time.Millisecond).String(),
		"table", c.plan.Source.Schema+"."+c.plan.Source.Name, "readers", n)
	return readers, nil
}

// openReaders opens the readers on one snapshot, with the lock held.
func (c *Postgres) openReaders(ctx context.Context, n int) ([]*pgReader, error) {
	var readers []*pgReader
	var snapshot string
	for i := range n {
		r, err := c.openReader(ctx, snapshot)
		if err != nil {
			return readers, fmt.Errorf("checksum: open reader %d: %w", i+1, err)
		}
		readers = append(readers, r)
		if i == 0 {
			if err := r.tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snapshot); err != nil {
				return readers, fmt.Errorf("checksum: export the snapshot: %w", err)
			}
			if !pgSnapshotID.MatchString(snapshot) {
				return readers, fmt.Errorf("checksum: unexpected snapshot id %q", snapshot)
			}
			if c.aside != "" {
				// In the snapshot: whether the shadow's side reads the
				// table of rows set aside too.
				if err := r.tx.QueryRow(ctx, "SELECT EXISTS (SELECT FROM "+c.aside+")").Scan(&r.aside); err != nil {
					return readers, fmt.Errorf("checksum: read the table of rows set aside %s: %w", c.aside, err)
				}
			}
		}
		r.aside = readers[0].aside
	}
	return readers, nil
}

// pgSnapshotID is the form of pg_export_snapshot's ids (such as
// 00000003-0000001B-1), quoted into SET TRANSACTION SNAPSHOT.
var pgSnapshotID = regexp.MustCompile(`^[0-9A-Fa-f-]+$`)

// openReader begins a REPEATABLE READ READ ONLY transaction on a dedicated
// connection, on the exported snapshot unless it is "".
func (c *Postgres) openReader(ctx context.Context, snapshot string) (*pgReader, error) {
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire a connection: %w", err)
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		conn.Release()
		return nil, fmt.Errorf("begin: %w", err)
	}
	r := &pgReader{c: c, conn: conn, tx: tx}
	if snapshot != "" {
		if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+snapshot+"'"); err != nil {
			_ = r.Close()
			return nil, fmt.Errorf("import the snapshot: %w", err)
		}
	}
	return r, nil
}

// Recopy deletes the shadow's rows in the chunk (and those set aside) and
// copies the original's into it with the copy's INSERT, in one transaction.
func (c *Postgres) Recopy(ctx context.Context, chunks []engine.ChecksumChunk) error {
	if err := c.init(ctx); err != nil {
		return fmt.Errorf("checksum: recopy: %w", err)
	}
	if c.unordered != "" {
		return fmt.Errorf("checksum: the chunk cannot be repaired: %s, so the shadow's rows are not in the original's key order", c.unordered)
	}
	type stmt struct {
		q    string
		args []any
	}
	var dels, inss []stmt
	for _, ch := range chunks {
		var args, sargs []any
		conds, err := c.ranges(ch, c.sql.Keys, &args)
		if err != nil {
			return fmt.Errorf("checksum: recopy: %w", err)
		}
		sconds, err := c.ranges(ch, c.sql.SKeys, &sargs)
		if err != nil {
			return fmt.Errorf("checksum: recopy: %w", err)
		}
		dels = append(dels, stmt{"DELETE FROM " + c.sql.Shadow + pgWhere(sconds), sargs})
		if c.aside != "" {
			// The rows set aside are the shadow's: the chunk's keys leave
			// both tables and come back into the shadow (a row a unique
			// index then refuses fails the recopy, as a clash does).
			dels = append(dels, stmt{"DELETE FROM " + c.aside + pgWhere(sconds), sargs})
		}
		inss = append(inss, stmt{c.sql.Insert + pgWhere(conds), args})
	}
	tx, err := c.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("checksum: recopy: begin: %w", err)
	}
	// A no-op after Commit.
	defer tx.Rollback(context.WithoutCancel(ctx))
	for _, d := range dels {
		if _, err := tx.Exec(ctx, d.q, d.args...); err != nil {
			return fmt.Errorf("checksum: recopy: delete the shadow's rows: %w", err)
		}
	}
	for _, in := range inss {
		if _, err := tx.Exec(ctx, in.q, in.args...); err != nil {
			return fmt.Errorf("checksum: recopy: %w", table.PostgresShadowRefusal(err, c.plan))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("checksum: recopy: commit: %w", err)
	}
	return nil
}

// ranges returns the chunk's conditions on cols (the original's key
// columns, sql.Keys, or the shadow's, sql.SKeys), appending their values to
// args.
func (c *Postgres) ranges(ch engine.ChecksumChunk, cols []string, args *[]any) ([]string, error) {
	var conds []string
	for _, b := range []struct {
		op  string
		key []any
	}{{">", ch.After}, {"<=", ch.Upto}} {
		if b.key == nil {
			continue
		}
		cond, err := c.sql.Compare(cols, b.op, b.key, args)
		if err != nil {
			return nil, fmt.Errorf("chunk bound: %w", err)
		}
		conds = append(conds, cond)
	}
	return conds, nil
}

func pgWhere(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// Close releases nothing: Open holds its lock only while it runs, and the
// readers are closed by the caller.
func (c *Postgres) Close() error { return nil }

// pgReader is one snapshot transaction on a dedicated connection.
type pgReader struct {
	c    *Postgres
	conn *pgxpool.Conn
	tx   pgx.Tx
	// aside: the table of rows set aside holds rows in the snapshot,
	// which the shadow's side of every chunk then includes.
	aside bool
}

func (r *pgReader) Bound(ctx context.Context, after []any, size int) ([]any, error) {
	if r.c.unordered != "" {
		return nil, nil
	}
	var conds []string
	var args []any
	if after != nil {
		cond, err := r.c.sql.Compare(r.c.sql.Keys, ">", after, &args)
		if err != nil {
			return nil, fmt.Errorf("checksum: bound: %w", err)
		}
		conds = append(conds, cond)
	}
	key, err := r.c.sql.Edge(ctx, r.tx, conds, args, "", max(size, 1)-1)
	if err != nil {
		return nil, fmt.Errorf("checksum: bound: %w", err)
	}
	return key, nil
}

func (r *pgReader) Sum(ctx context.Context, ch engine.ChecksumChunk) (original, shadow engine.ChecksumSum, err error) {
	var args, sargs []any
	conds, err := r.c.ranges(ch, r.c.sql.Keys, &args)
	if err != nil {
		return original, shadow, fmt.Errorf("checksum: sum: %w", err)
	}
	sconds, err := r.c.ranges(ch, r.c.sql.SKeys, &sargs)
	if err != nil {
		return original, shadow, fmt.Errorf("checksum: sum: %w", err)
	}
	sum := func(row, from string, conds []string, args []any, aside string) (engine.ChecksumSum, error) {
		var s engine.ChecksumSum
		var hash int64
		q := "SELECT count(*), coalesce(bit_xor(" + row + "), 0) FROM " + from + pgWhere(conds)
		if aside != "" {
			// The rows set aside are the shadow's: their hashes join
			// the shadow's (count and XOR combine, so the fingerprint
			// is the two tables' rows together, doc.go's odds unchanged).
			h := "SELECT " + row + " AS h FROM "
			q = "SELECT count(*), coalesce(bit_xor(h), 0) FROM (" + h + from + pgWhere(conds) + " UNION ALL " +
				h + aside + pgWhere(conds) + ") AS osc_rows"
		}
		if err := r.tx.QueryRow(ctx, q, args...).Scan(&s.Rows, &hash); err != nil {
			return s, err
		}
		s.Hash = uint64(hash)
		return s, nil
	}
	aside := ""
	if r.aside {
		aside = r.c.aside
	}
	if original, err = sum(r.c.origHash, r.c.sql.Source, conds, args, ""); err != nil {
		return original, shadow, fmt.Errorf("checksum: sum of the original: %w", err)
	}
	if shadow, err = sum(r.c.shadHash, r.c.sql.Shadow, sconds, sargs, aside); err != nil {
		return original, shadow, fmt.Errorf("checksum: sum of the shadow: %w", err)
	}
	return original, shadow, nil
}

// pgRow is one side's row in Diff: its key and values as text (nil: NULL).
type pgRow struct {
	shadow bool
	key    []*string
	vals   []*string
}

func (r *pgReader) Diff(ctx context.Context, ch engine.ChecksumChunk) (string, error) {
	d, err := r.Diffs(ctx, ch, 1)
	if len(d) == 0 {
		return "", err
	}
	return d[0], err
}

// Diffs reads both sides of the chunk in one key order and returns their
// first most differences (at most one per key), as Diff describes them.
func (r *pgReader) Diffs(ctx context.Context, ch engine.ChecksumChunk, most int) ([]string, error) {
	c := r.c
	// One statement's parameters for both sides' ranges.
	var args []any
	conds, err := c.ranges(ch, c.sql.Keys, &args)
	if err != nil {
		return nil, fmt.Errorf("checksum: diff: %w", err)
	}
	sconds, err := c.ranges(ch, c.sql.SKeys, &args)
	if err != nil {
		return nil, fmt.Errorf("checksum: diff: %w", err)
	}
	// Both sides in one key order: the original's key brought to the
	// shadow's types (origKeys).
	side := func(s int, keys, vals []string, from string, conds []string) string {
		sel := []string{fmt.Sprint(s)}
		for i, k := range keys {
			sel = append(sel, k+" AS k"+fmt.Sprint(i))
		}
		for i, v := range vals {
			sel = append(sel, "("+v+")::text AS v"+fmt.Sprint(i))
		}
		return "SELECT " + strings.Join(sel, ", ") + " FROM " + from + pgWhere(conds)
	}
	var out, order []string
	for i := range c.origKeys {
		out = append(out, fmt.Sprintf("u.k%d::text", i))
		order = append(order, fmt.Sprintf("u.k%d", i))
	}
	for i := range c.origVals {
		out = append(out, fmt.Sprintf("u.v%d", i))
	}
	shadowSide := side(1, c.shadKeys, c.shadVals, c.sql.Shadow, sconds)
	if r.aside {
		// The rows set aside are the shadow's (same parameters).
		shadowSide += " UNION ALL " + side(1, c.shadKeys, c.shadVals, c.aside, sconds)
	}
	q := "SELECT u.s, " + strings.Join(out, ", ") + " FROM (" + side(0, c.origKeys, c.origVals, c.sql.Source, conds) +
		" UNION ALL " + shadowSide + ") AS u(s" + pgColumnList(len(c.origKeys), len(c.origVals)) +
		") ORDER BY " + strings.Join(order, ", ") + ", u.s"
	rows, err := r.tx.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("checksum: diff: %w", err)
	}
	defer rows.Close()
	var diffs []string
	var prev *pgRow
	for len(diffs) < most && rows.Next() {
		cur := &pgRow{key: make([]*string, len(c.origKeys)), vals: make([]*string, len(c.origVals))}
		var s int
		dest := []any{&s}
		for i := range cur.key {
			dest = append(dest, &cur.key[i])
		}
		for i := range cur.vals {
			dest = append(dest, &cur.vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("checksum: diff: %w", err)
		}
		cur.shadow = s == 1
		if prev == nil {
			prev = cur
			continue
		}
		if !prev.shadow && cur.shadow && pgSameText(prev.key, cur.key) {
			if d := c.rowDiff(prev, cur); d != "" {
				diffs = append(diffs, d)
			}
			prev = nil
			continue
		}
		diffs = append(diffs, c.lone(prev))
		prev = cur
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("checksum: diff: %w", err)
	}
	if prev != nil && len(diffs) < most {
		diffs = append(diffs, c.lone(prev))
	}
	return diffs, nil
}

// pgColumnList is ", k0, …, v0, …" for the union's column aliases.
func pgColumnList(keys, vals int) string {
	var b strings.Builder
	for i := range keys {
		fmt.Fprintf(&b, ", k%d", i)
	}
	for i := range vals {
		fmt.Fprintf(&b, ", v%d", i)
	}
	return b.String()
}

func pgSameText(a, b []*string) bool {
	for i := range a {
		if (a[i] == nil) != (b[i] == nil) || a[i] != nil && *a[i] != *b[i] {
			return false
		}
	}
	return true
}

// keyText is "(id=17)" or "(a=1, b=x)".
func (c *Postgres) keyText(key []*string) string {
	parts := make([]string, len(key))
	for i, k := range key {
		parts[i] = c.plan.Key[i] + "=" + pgShorten(k)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func (c *Postgres) lone(r *pgRow) string {
	if r.shadow {
		return "key " + c.keyText(r.key) + " is in the shadow but not in the original"
	}
	return "key " + c.keyText(r.key) + " is missing from the shadow"
}

func (c *Postgres) rowDiff(o, s *pgRow) string {
	for i := range o.vals {
		if pgSameText(o.vals[i:i+1], s.vals[i:i+1]) {
			continue
		}
		return fmt.Sprintf("key %s: column %q differs: original %s, shadow %s", c.keyText(o.key), c.plan.Mapping[i].Shadow,
			pgQuoted(o.vals[i]), pgQuoted(s.vals[i]))
	}
	return ""
}

// pgShown is how many characters of a value a difference shows.
const pgShown = 60

func pgShorten(v *string) string {
	if v == nil {
		return "NULL"
	}
	if r := []rune(*v); len(r) > pgShown {
		return string(r[:pgShown]) + "…"
	}
	return *v
}

func pgQuoted(v *string) string {
	if v == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", pgShorten(v))
}

// Close rolls the snapshot back and returns the connection to the pool.
func (r *pgReader) Close() error {
	if r.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := r.tx.Rollback(ctx)
	if err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		// The connection's state is unknown: it does not go back.
		_ = r.conn.Conn().Close(ctx)
	}
	r.conn.Release()
	r.conn = nil
	if err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return fmt.Errorf("checksum: close a reader: %w", err)
	}
	return nil
}
