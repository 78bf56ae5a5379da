package checksum

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"osc/engine"
	"osc/table"
)

// MySQL is the checksum of a MySQL/MariaDB migration. Open takes LOCK TABLES
// <original> READ on a connection of its own (writers wait, readers do not;
// it is granted once every transaction that wrote the table has ended),
// calls blocked, starts the readers' consistent-snapshot transactions and
// unlocks. A chunk's fingerprint is its count and the sums of c and c² over
// its rows, c the CRC32 of the row's rendering (see mysql_canon.go, and
// doc.go for what it finds).
type MySQL struct {
	db   *sql.DB
	plan *table.Plan
	opt  Options
	log  *slog.Logger

	mu    sync.Mutex
	ready bool
	copy  *table.MySQLCopy
	// original and shadow render each copied column (see mysql_canon.go);
	// columns are their names, encodings how they enter the row's, and
	// nullable whether either side's may be NULL.
	original, shadow []string
	columns          []string
	encodings        []mysqlEncoding
	nullable         []bool
	// keyAt holds the positions in columns of the key's columns.
	keyAt []int
	// unordered says why the shadow's key may order rows otherwise than
	// the original's ("" when it does not): one chunk, no repair.
	unordered string
	// aside is the aside table of a plan with new unique keys (quoted;
	// "" for other plans and osc verify): its rows are rows of the shadow
	// (README, "Why nothing is lost", step 5), so the shadow's side of a
	// chunk is the shadow and the aside table together.
	aside string
}

var _ engine.Checksum = (*MySQL)(nil)

// NewMySQL returns the checksum of the plan; it reads the columns'
// collations on first use.
func NewMySQL(db *sql.DB, plan *table.Plan, o Options) (*MySQL, error) {
	if err := plan.Usable(); err != nil {
		return nil, fmt.Errorf("checksum: %w", err)
	}
	o = o.defaults()
	return &MySQL{db: db, plan: plan, opt: o, log: o.Log}, nil
}

func (m *MySQL) init(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ready {
		return nil
	}
	p := m.plan
	c, err := table.NewMySQLCopy(p)
	if err != nil {
		return fmt.Errorf("checksum: %w", err)
	}
	srcColl, err := m.collations(ctx, p.Source)
	if err != nil {
		return err
	}
	shadowSchema := p.Shadow.Schema
	if shadowSchema == "" {
		shadowSchema = p.Source.Schema
	}
	dstColl, err := m.collations(ctx, &table.Table{Schema: shadowSchema, Name: p.Shadow.Name})
	if err != nil {
		return err
	}
	m.copy = c
	m.aside = ""
	if !m.opt.Unlocked {
		a, err := table.NewMySQLAside(p)
		if err != nil {
			return fmt.Errorf("checksum: %w", err)
		}
		if a != nil {
			m.aside = a.Table
		}
	}
	m.original, m.shadow, m.columns, m.encodings, m.nullable, m.keyAt = nil, nil, nil, nil, nil, make([]int, len(p.Key))
	for k := range m.keyAt {
		m.keyAt[k] = -1
	}
	for i, col := range c.Columns {
		sc := ""
		if col.Source != nil {
			sc = srcColl[col.Source.Name]
		}
		r := mysqlCanonicalOf(col, sc, dstColl[col.Shadow.Name])
		if r.Exact && col.Shadow.DataType == "float" {
			// A FLOAT shows 6 significant digits as text: 1.0000001 and
			// 1.0000002 both show as 1. As a DOUBLE it shows exactly.
			r.Original, r.Shadow = "CAST("+r.Original+" AS DOUBLE)", "CAST("+r.Shadow+" AS DOUBLE)"
		}
		if !r.Exact {
			m.log.Warn("checksum: osc cannot reproduce the conversion of this column into the altered type; it compares only whether it is NULL",
				"column", col.Shadow.Name, "type", col.Shadow.ColumnType, "copied as", col.Expr)
		}
		m.original = append(m.original, r.Original)
		m.shadow = append(m.shadow, r.Shadow)
		m.columns = append(m.columns, col.Shadow.Name)
		m.encodings = append(m.encodings, r.Encoding)
		// A column NOT NULL on both sides, compared as it is, needs no
		// NULL mark.
		m.nullable = append(m.nullable, col.Source == nil || col.Source.Nullable || col.Shadow.Nullable ||
			r.Original != table.QuoteMySQL(col.Source.Name) || r.Shadow != table.QuoteMySQL(col.Shadow.Name))
		if col.Source == nil {
			continue
		}
		for k, name := range p.Key {
			if col.Source.Name == name {
				m.keyAt[k] = i
				if !mysqlOrderKept(*col.Source, col.Shadow, sc, dstColl[col.Shadow.Name]) && m.unordered == "" {
					m.unordered = fmt.Sprintf("the --alter changes key column %s (%s %s -> %s %s), so the altered table may order the keys otherwise",
						name, col.Source.ColumnType, sc, col.Shadow.ColumnType, dstColl[col.Shadow.Name])
				}
			}
		}
	}
	for k, at := range m.keyAt {
		if at < 0 {
			return fmt.Errorf("checksum: key column %s is not copied", p.Key[k])
		}
	}
	m.ready = true
	return nil
}

// collations reads the collation of each text column of t.
func (m *MySQL) collations(ctx context.Context, t *table.Table) (map[string]string, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLLATION_NAME IS NOT NULL`, t.Schema, t.Name)
	if err != nil {
		return nil, fmt.Errorf("checksum: read the collations of %s.%s: %w", t.Schema, t.Name, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var col, coll string
		if err := rows.Scan(&col, &coll); err != nil {
			return nil, fmt.Errorf("checksum: read the collations of %s.%s: %w", t.Schema, t.Name, err)
		}
		out[col] = coll
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("checksum: read the collations of %s.%s: %w", t.Schema, t.Name, err)
	}
	return out, nil
}

// errLockAttempt marks a lock wait that timed out: the attempt is retried.
var errLockAttempt = errors.New("checksum lock attempt timed out")

// Open locks the original against writes, calls blocked, opens n snapshot
// readers and unlocks, retrying a lock wait that times out.
func (m *MySQL) Open(ctx context.Context, n int, ready, blocked func(context.Context) error) ([]engine.ChecksumReader, error) {
	if n < 1 {
		return nil, fmt.Errorf("checksum: %d readers", n)
	}
	// The readers, the lock's connection, and one for the applier and the
	// drain: a pool too small for them would wait for a connection with
	// the writers blocked.
	if most := m.db.Stats().MaxOpenConnections; most > 0 {
		var err error
		if n, err = readers(n, most, m.log); err != nil {
			return nil, err
		}
	}
	if err := m.init(ctx); err != nil {
		return nil, err
	}
	if m.opt.Unlocked {
		return m.openReaders(ctx, n)
	}
	retries := max(m.opt.Retries, 1)
	for attempt := 1; ; attempt++ {
		if ready != nil {
			if err := ready(ctx); err != nil {
				return nil, fmt.Errorf("checksum lock attempt %d: %w", attempt, err)
			}
		}
		readers, err := m.open(ctx, n, blocked)
		if err == nil {
			return readers, nil
		}
		if !errors.Is(err, errLockAttempt) || attempt >= retries || ctx.Err() != nil {
			return nil, fmt.Errorf("checksum lock attempt %d of %d: %w", attempt, retries, err)
		}
		backoff := min(time.Duration(attempt)*250*time.Millisecond, 2*time.Second)
		m.log.Warn("checksum: lock attempt failed; retrying", "attempt", attempt, "err", err, "backoff", backoff.String())
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("checksum: %w", ctx.Err())
		case <-time.After(backoff):
		}
	}
}

// open is one attempt of Open.
func (m *MySQL) open(ctx context.Context, n int, blocked func(context.Context) error) (readers []engine.ChecksumReader, err error) {
	p := m.plan
	lock, err := m.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("checksum lock connection: %w", err)
	}
	// Its session's lock_wait_timeout and lock must not outlive the attempt.
	defer discard(lock)
	secs := max(int(math.Ceil(m.opt.LockTimeout.Seconds())), 1)
	if _, err := lock.ExecContext(ctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d", secs)); err != nil {
		return nil, fmt.Errorf("checksum lock connection: %w", err)
	}
	if _, err := lock.ExecContext(ctx, "LOCK TABLES "+table.QuoteMySQL(p.Source.Schema, p.Source.Name)+" READ"); err != nil {
		err = fmt.Errorf("lock %s: %w", p.Source.Name, err)
		if table.MySQLTransient(err) {
			err = fmt.Errorf("%w: %w", errLockAttempt, err)
		}
		return nil, err
	}
	start := time.Now()
	defer func() {
		// The readers' snapshots are open (or closed on error): let the
		// writers go.
		_, uerr := lock.ExecContext(context.WithoutCancel(ctx), "UNLOCK TABLES")
		switch {
		case uerr != nil && err == nil:
			for _, r := range readers {
				_ = r.Close()
			}
			readers, err = nil, fmt.Errorf("checksum: unlock %s: %w", p.Source.Name, uerr)
		case err == nil:
			m.log.Info("checksum: writes blocked", "for", time.Since(start).Round(time.Millisecond).String(),
				"table", p.Source.Schema+"."+p.Source.Name, "readers", len(readers))
		}
	}()
	// Like the cut-over's drain, blocked has the lock timeout: writers wait
	// at most about twice that (the lock's wait, then blocked).
	bctx, cancel := context.WithTimeout(ctx, m.opt.LockTimeout)
	err = blocked(bctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: the last changes were not applied (and chunks recopied) within the lock timeout: %w", errLockAttempt, err)
		}
		return nil, fmt.Errorf("checksum: while writes are blocked: %w", err)
	}
	return m.openReaders(ctx, n)
}

// openReaders opens n snapshot readers; on error none stays open.
func (m *MySQL) openReaders(ctx context.Context, n int) ([]engine.ChecksumReader, error) {
	var readers []engine.ChecksumReader
	for range n {
		r, err := m.reader(ctx)
		if err != nil {
			for _, r := range readers {
				_ = r.Close()
			}
			return nil, err
		}
		readers = append(readers, r)
	}
	return readers, nil
}

// reader opens a connection in a consistent-snapshot transaction.
func (m *MySQL) reader(ctx context.Context) (*mysqlReader, error) {
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("checksum reader: %w", err)
	}
	for _, q := range []string{"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
		"START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			discard(conn)
			return nil, fmt.Errorf("checksum reader: %s: %w", q, err)
		}
	}
	r := &mysqlReader{m: m, conn: conn}
	if m.aside != "" {
		// In the snapshot: whether the shadow's side reads the aside
		// table too (none of its rows in an empty one).
		if err := conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM "+m.aside+")").Scan(&r.aside); err != nil {
			discard(conn)
			return nil, fmt.Errorf("checksum reader: read the aside table %s: %w", m.aside, err)
		}
	}
	return r, nil
}

// chunkConds returns the conditions of the chunk's range on key.
func chunkConds(key table.MySQLKeyRange, c engine.ChecksumChunk) ([]string, []any) {
	var conds []string
	var args []any
	if c.After != nil {
		cond, a := key.Cond(c.After, ">", false)
		conds, args = append(conds, cond), append(args, a...)
	}
	if c.Upto != nil {
		cond, a := key.Cond(c.Upto, "<", true)
		conds, args = append(conds, cond), append(args, a...)
	}
	return conds, args
}

// where is " WHERE conds", or "" when there are none.
func where(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

func (m *MySQL) checkChunk(c engine.ChecksumChunk) error {
	k := m.copy.Key.Len()
	if c.After != nil && len(c.After) != k || c.Upto != nil && len(c.Upto) != k {
		return fmt.Errorf("checksum: chunk bounds %v, %v for a %d-column key", c.After, c.Upto, k)
	}
	return nil
}

// Recopy deletes the shadow's rows of every chunk (and the aside table's),
// then copies the original's again, as the copy does, in one transaction.
func (m *MySQL) Recopy(ctx context.Context, chunks []engine.ChecksumChunk) error {
	if err := m.init(ctx); err != nil {
		return err
	}
	if m.unordered != "" {
		return fmt.Errorf("checksum: the chunk cannot be repaired: %s", m.unordered)
	}
	for _, c := range chunks {
		if err := m.checkChunk(c); err != nil {
			return err
		}
	}
	tx, err := m.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return fmt.Errorf("recopy: begin: %w", err)
	}
	defer tx.Rollback() // after Commit it is a no-op
	for _, c := range chunks {
		conds, args := chunkConds(m.copy.ShadowKey, c)
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+m.copy.Shadow+where(conds), args...); err != nil { //nolint:gosec // G202: the quoted shadow; the chunk's bounds are parameters
			return fmt.Errorf("recopy: delete the shadow's rows: %w", err)
		}
		// The rows aside are the shadow's: the chunk's keys leave both
		// tables, and come back into the shadow. A row the new unique
		// key then refuses is missing from both, which the next pass
		// finds: the run fails rather than set aside under the lock what
		// the applier does not know of.
		if m.aside != "" {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+m.aside+where(conds), args...); err != nil { //nolint:gosec // G202: the quoted aside table; the chunk's bounds are parameters
				return fmt.Errorf("recopy: delete the aside table's rows: %w", err)
			}
		}
	}
	for _, c := range chunks {
		conds, args := chunkConds(m.copy.Key, c)
		if err := m.copy.RefuseRenumbered(ctx, tx, conds, args); err != nil {
			return fmt.Errorf("recopy: %w", err)
		}
		if _, err := m.copy.Exec(ctx, tx, m.copy.Insert()+m.copy.From+where(conds)+m.copy.OnDuplicate, args, func() error {
			// --panic-on-warnings' message first, as in the copy.
			if m.opt.PanicOnWarnings {
				if err := table.MySQLWarnings(ctx, tx, "the recopy of a chunk that differed"); err != nil {
					return err
				}
			}
			return m.copy.RefuseCutSpaces(ctx, tx, conds, args)
		}); err != nil {
			return fmt.Errorf("recopy: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("recopy: commit: %w", err)
	}
	return nil
}

// Close releases nothing of its own: readers and locks are per Open.
func (m *MySQL) Close() error { return nil }

// mysqlReader is one snapshot connection.
type mysqlReader struct {
	m    *MySQL
	conn *sql.Conn
	// aside: the aside table holds rows in the snapshot, which the
	// shadow's side of every chunk then includes.
	aside bool
}

// Bound returns the size-th key of the original after after, or nil.
func (r *mysqlReader) Bound(ctx context.Context, after []any, size int) ([]any, error) {
	m := r.m
	if size < 1 {
		return nil, fmt.Errorf("checksum bound: size %d", size)
	}
	if m.unordered != "" {
		return nil, nil
	}
	key := m.copy.Key
	conds, args := chunkConds(key, engine.ChecksumChunk{After: after})
	q := "SELECT " + strings.Join(key.Select(), ", ") + " " + m.copy.From + where(conds) +
		" ORDER BY " + key.OrderBy("") + fmt.Sprintf(" LIMIT 1 OFFSET %d", size-1)
	vals, err := key.QueryKey(ctx, r.conn, q, args...)
	if err != nil {
		return nil, fmt.Errorf("checksum bound: %w", err)
	}
	return vals, nil
}

// sides returns the original's and the shadow's FROM … WHERE of the chunk,
// and the aside table's when the reader sees rows there ("" otherwise:
// its arguments are the shadow's).
func (r *mysqlReader) sides(c engine.ChecksumChunk) (origFrom string, origArgs []any, shadowFrom string, shadowArgs []any, asideFrom string) {
	m := r.m
	conds, args := chunkConds(m.copy.Key, c)
	sconds, sargs := chunkConds(m.copy.ShadowKey, c)
	if r.aside {
		asideFrom = "FROM " + m.aside + where(sconds)
	}
	return m.copy.From + where(conds), args, "FROM " + m.copy.Shadow + where(sconds), sargs, asideFrom
}

// Sum fingerprints the chunk on both sides.
func (r *mysqlReader) Sum(ctx context.Context, c engine.ChecksumChunk) (original, shadow engine.ChecksumSum, err error) {
	m := r.m
	if err := m.checkChunk(c); err != nil {
		return original, shadow, err
	}
	of, oa, sf, sa, af := r.sides(c)
	sum := func(cols []string, from string, args []any, aside string) (engine.ChecksumSum, error) {
		// The derived table, which LIMIT keeps from being merged into the
		// query, computes each row's CRC once for both sums. The rows
		// aside are the shadow's too: their CRCs join the shadow's (the
		// sums and the count add up, so the fingerprint is the one of
		// the two tables' rows together, doc.go's odds unchanged).
		crc := "SELECT CRC32(" + mysqlRowText(cols, m.encodings, m.nullable) + ") AS c "
		inner := crc + from + " LIMIT 18446744073709551615"
		if aside != "" {
			inner = crc + from + " UNION ALL " + crc + aside
			args = append(args[:len(args):len(args)], args...)
		}
		q := "SELECT COUNT(*), COALESCE(SUM(c), 0), COALESCE(SUM(c * c), 0) FROM (" + inner + ") AS rows_crc"
		var s engine.ChecksumSum
		var sum, squares []byte
		if err := r.conn.QueryRowContext(ctx, q, args...).Scan(&s.Rows, &sum, &squares); err != nil {
			return s, err
		}
		s.Hash = sumsHash(sum, squares)
		return s, nil
	}
	if original, err = sum(m.original, of, oa, ""); err != nil {
		return original, shadow, fmt.Errorf("checksum of the original: %w", err)
	}
	if shadow, err = sum(m.shadow, sf, sa, af); err != nil {
		return original, shadow, fmt.Errorf("checksum of the shadow: %w", err)
	}
	return original, shadow, nil
}

// mysqlRow is a row's rendering, one value per column (nil: NULL).
type mysqlRow [][]byte

func (m *MySQL) rowKey(row mysqlRow) string {
	var b strings.Builder
	for _, at := range m.keyAt {
		v := row[at]
		if v == nil {
			b.WriteString("N")
			continue
		}
		b.WriteString(strconv.Itoa(len(v)) + ":")
		b.Write(v)
	}
	return b.String()
}

// describeKey is "(id=17, b='x')".
func (m *MySQL) describeKey(row mysqlRow) string {
	parts := make([]string, len(m.keyAt))
	for k, at := range m.keyAt {
		parts[k] = m.plan.Key[k] + "=" + shortValue(row[at])
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

var mysqlNumber = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// shortValue shows a value quoted and shortened, a number as it is, NULL as
// NULL.
func shortValue(v []byte) string {
	if v == nil {
		return "NULL"
	}
	if mysqlNumber.Match(v) {
		return string(v)
	}
	const most = 40
	s := string(v)
	if len(v) > most {
		s = string(v[:most]) + "…"
	}
	return strconv.Quote(s)
}

// Diff reads both sides of the chunk in key order and returns their first
// difference.
func (r *mysqlReader) Diff(ctx context.Context, c engine.ChecksumChunk) (string, error) {
	d, err := r.Diffs(ctx, c, 1)
	if len(d) == 0 {
		return "", err
	}
	return d[0], err
}

// Diffs reads both sides of the chunk in key order and returns their first
// most differences (at most one per key), as Diff describes them.
func (r *mysqlReader) Diffs(ctx context.Context, c engine.ChecksumChunk, most int) ([]string, error) {
	m := r.m
	if err := m.checkChunk(c); err != nil {
		return nil, err
	}
	of, oa, sf, sa, af := r.sides(c)
	orig, err := r.conn.QueryContext(ctx, "SELECT "+binaries(m.original)+" "+of+" ORDER BY "+m.copy.Key.OrderBy(""), oa...) //nolint:gosec // G202: quoted columns and table; the chunk's bounds are parameters
	if err != nil {
		return nil, fmt.Errorf("checksum diff: read the original: %w", err)
	}
	defer orig.Close()
	// A second result set on one connection needs the first read whole
	// first; the shadow is read on a second statement after it.
	origRows, err := scanRows(orig, len(m.original))
	if err != nil {
		return nil, fmt.Errorf("checksum diff: read the original: %w", err)
	}
	shadow, err := r.conn.QueryContext(ctx, "SELECT "+binaries(m.shadow)+" "+sf+" ORDER BY "+m.copy.ShadowKey.OrderBy(""), sa...) //nolint:gosec // G202: quoted columns and table; the chunk's bounds are parameters
	if err != nil {
		return nil, fmt.Errorf("checksum diff: read the shadow: %w", err)
	}
	defer shadow.Close()
	shadowRows, err := scanRows(shadow, len(m.shadow))
	if err != nil {
		return nil, fmt.Errorf("checksum diff: read the shadow: %w", err)
	}
	if af != "" {
		// After the shadow's rows, out of key order: diffRows finds a
		// key by its value where the orders differ.
		aside, err := r.conn.QueryContext(ctx, "SELECT "+binaries(m.shadow)+" "+af+" ORDER BY "+m.copy.ShadowKey.OrderBy(""), sa...) //nolint:gosec // G202: quoted columns and table; the chunk's bounds are parameters
		if err != nil {
			return nil, fmt.Errorf("checksum diff: read the aside table: %w", err)
		}
		defer aside.Close()
		asideRows, err := scanRows(aside, len(m.shadow))
		if err != nil {
			return nil, fmt.Errorf("checksum diff: read the aside table: %w", err)
		}
		shadowRows = append(shadowRows, asideRows...)
	}
	return m.diffRows(origRows, shadowRows, most), nil
}

// binaries selects the renderings as bytes.
func binaries(cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = "CAST(" + c + " AS BINARY)"
	}
	return strings.Join(out, ", ")
}

func scanRows(rows *sql.Rows, n int) ([]mysqlRow, error) {
	var out []mysqlRow
	ptrs := make([]any, n)
	for rows.Next() {
		row := make(mysqlRow, n)
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// diffRows compares two key-ordered row lists and describes their first
// most differences, none when they are equal.
func (m *MySQL) diffRows(orig, shadow []mysqlRow, most int) []string {
	var out []string
	inShadow := make(map[string]mysqlRow, len(shadow))
	for _, row := range shadow {
		inShadow[m.rowKey(row)] = row
	}
	inOrig := make(map[string]bool, len(orig))
	for _, row := range orig {
		inOrig[m.rowKey(row)] = true
	}
	differs := func(o, s mysqlRow) string {
		for c := range o {
			if !bytes.Equal(o[c], s[c]) || (o[c] == nil) != (s[c] == nil) {
				return fmt.Sprintf("key %s: column %q differs: original %s, shadow %s", m.describeKey(o), m.columns[c],
					shortValue(o[c]), shortValue(s[c]))
			}
		}
		return ""
	}
	for i, j := 0, 0; (i < len(orig) || j < len(shadow)) && len(out) < most; {
		var ok, sk string
		if i < len(orig) {
			ok = m.rowKey(orig[i])
		}
		if j < len(shadow) {
			sk = m.rowKey(shadow[j])
		}
		switch {
		case i < len(orig) && j < len(shadow) && ok == sk:
			if d := differs(orig[i], shadow[j]); d != "" {
				out = append(out, d)
			}
			i, j = i+1, j+1
		case i < len(orig) && inShadow[ok] == nil:
			out = append(out, "key "+m.describeKey(orig[i])+" is missing from the shadow")
			i++
		case j < len(shadow) && !inOrig[sk]:
			out = append(out, "key "+m.describeKey(shadow[j])+" is in the shadow but not in the original")
			j++
		case i < len(orig):
			// The sides order this key otherwise.
			if d := differs(orig[i], inShadow[ok]); d != "" {
				out = append(out, d)
			}
			i++
		default:
			j++
		}
	}
	return out
}

// Close ends the snapshot and drops the connection.
func (r *mysqlReader) Close() error {
	_, err := r.conn.ExecContext(context.Background(), "ROLLBACK")
	discard(r.conn)
	if err != nil {
		return fmt.Errorf("checksum reader: rollback: %w", err)
	}
	return nil
}

// discard closes the connection without returning it to the pool: its
// session settings, snapshot and locks must not outlive it.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	_ = c.Close()
}
