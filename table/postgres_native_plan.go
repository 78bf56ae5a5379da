package table

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Beyond the catalog: a clause that reads the whole table under the
// ACCESS EXCLUSIVE lock (adding a unique or primary key constraint builds its
// index; adding a CHECK or FOREIGN KEY, or SET NOT NULL, scans the rows to
// check them) is split into the steps DBAs run by hand, none of which blocks
// writers for longer than a catalog change does:
//
//   - ADD [CONSTRAINT c] UNIQUE|PRIMARY KEY: CREATE UNIQUE INDEX CONCURRENTLY
//     (writers go on; a build that fails leaves an INVALID index, dropped
//     before it is retried), then ADD CONSTRAINT c … USING INDEX, catalog
//     only; a primary key's nullable columns get a validated
//     CHECK (col IS NOT NULL) first, so that setting them NOT NULL skips the
//     scan.
//   - ADD [CONSTRAINT c] CHECK|FOREIGN KEY: ADD CONSTRAINT c … NOT VALID
//     (catalog only), then VALIDATE CONSTRAINT c, which reads the rows under
//     a SHARE UPDATE EXCLUSIVE lock writers do not wait for.
//   - ALTER COLUMN col SET NOT NULL: a validated CHECK (col IS NOT NULL), as
//     above, then the SET NOT NULL, which the check spares the scan
//     (PostgreSQL 12 and later), then the check dropped.
//
// The building and validating steps run first; then one transaction runs the
// clauses in their order (catalog changes, the USING INDEX attachments, the
// SET NOT NULLs) and drops the helper checks: the --alter's effect still
// appears at once, and a failure before it undoes the steps before (drops
// the index or constraint made). The names are the plain ALTER's
// (pgLearnNames). The server checks the plan on the scratch table: run in
// its steps, the --alter must leave the scratch table's columns, constraints
// and indexes just as the plain ALTER does, else osc copies (a clause that
// needs what an earlier one adds, say).

// pgNativeKind is how the native path carries out one ALTER TABLE clause.
type pgNativeKind int

const (
	pgNativeCatalog  pgNativeKind = iota // in the final transaction, as it is
	pgNativeIndex                        // CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … USING INDEX
	pgNativeValidate                     // ADD CONSTRAINT … NOT VALID, then VALIDATE CONSTRAINT
	pgNativeNotNull                      // a validated CHECK (col IS NOT NULL), then SET NOT NULL
)

// pgNativeClause is one ALTER TABLE clause (a subcommand: the --alter's
// parts split at their top-level commas) and how it runs.
type pgNativeClause struct {
	text  string
	kind  pgNativeKind
	probe string // the index or constraint's name on the scratch table
	name  string // its name on the table: the plain ALTER's
	// def is an index's definition from USING on, or a constraint's.
	def                  string
	primary, foreign     bool
	deferrable, deferred bool
	// notNull are the columns (attnum → quoted name) the clause makes NOT
	// NULL: SET NOT NULL's, a primary key's nullable ones.
	notNull map[int16]string
}

// PostgresNativeStep is one step of a native --alter on PostgreSQL.
type PostgresNativeStep struct {
	// SQL runs in one transaction; a Concurrent step's one statement runs
	// outside any.
	SQL []string
	// Blocking: the step takes a lock writers queue behind (ACCESS
	// EXCLUSIVE, or SHARE ROW EXCLUSIVE for a foreign key): each attempt
	// waits for it at most the lock timeout. A step that is not blocking
	// holds at most SHARE UPDATE EXCLUSIVE, which writers do not wait for.
	Blocking bool
	// Index is the index a Concurrent step builds (CREATE INDEX
	// CONCURRENTLY): a failed build leaves it INVALID, to drop.
	Index string
	Table string // the table (quoted) of Index
	// Lock is the locks the step takes, as the server names them.
	Lock       string
	Concurrent bool
	// Undo undoes the step when a later one fails (a Concurrent statement,
	// or a blocking one).
	Undo string
	// Violated is what a check violation (a helper CHECK's) means, in the
	// plain ALTER's words; "" for the server's own message.
	Violated string
}

// PostgresNative is how the --alter runs natively on PostgreSQL: steps run
// in order (nil: it needs a copy); and clause by clause, as far as the probe
// got.
type PostgresNative struct {
	Steps   []PostgresNativeStep
	Clauses []PostgresNativeClause
}

// PostgresNativeClause is how one clause runs: Path is "metadata-only",
// "online native" (Detail: how) or "copy" (Detail: why).
type PostgresNativeClause struct {
	Text, Path, Detail string
}

// pgClauseInfo describes how the clause c runs, or why (why != "") it needs
// a copy.
func pgClauseInfo(c pgNativeClause, why string) PostgresNativeClause {
	info := PostgresNativeClause{Text: c.text, Path: "online native"}
	switch {
	case why != "":
		info.Path, info.Detail = "copy", why
	case c.kind == pgNativeCatalog:
		info.Path = "metadata-only"
	case c.kind == pgNativeIndex:
		info.Detail = "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … USING INDEX"
	case c.kind == pgNativeValidate:
		info.Detail = "ADD CONSTRAINT … NOT VALID, then VALIDATE CONSTRAINT"
	case c.kind == pgNativeNotNull:
		info.Detail = "a validated CHECK (… IS NOT NULL), then SET NOT NULL without a scan"
	}
	return info
}

// Describe is the plan, one line a step.
func (p *PostgresNative) Describe() []string {
	var out []string
	for _, s := range p.Steps {
		lock := "blocks writers for at most the lock timeout per attempt"
		if !s.Blocking {
			lock = "writers go on"
		}
		out = append(out, strings.Join(s.SQL, "; ")+" ("+lock+")")
	}
	return out
}

// pgSplitSubcommands splits an ALTER TABLE clause list at its top-level
// commas.
func pgSplitSubcommands(part string) []string {
	var out []string
	start, depth := 0, 0
	for _, t := range pgLex(part) {
		switch {
		case t.Kind == pgPunct && (t.Text == "(" || t.Text == "["):
			depth++
		case t.Kind == pgPunct && (t.Text == ")" || t.Text == "]"):
			depth--
		case t.Kind == pgPunct && t.Text == "," && depth == 0:
			out = append(out, strings.TrimSpace(part[start:t.Start]))
			start = t.End
		}
	}
	return append(out, strings.TrimSpace(part[start:]))
}

// pgAddConstraintKind returns what an ADD [CONSTRAINT name] clause adds
// ("unique", "primary", "check", "foreign"), or "".
func pgAddConstraintKind(clause string) string {
	toks := pgLex(clause)
	if len(toks) < 2 || !toks[0].is("add") {
		return ""
	}
	i := 1
	if toks[i].is("constraint") {
		i += 2
	}
	if i >= len(toks) {
		return ""
	}
	next := func(kw string) bool { return i+1 < len(toks) && toks[i+1].is(kw) }
	switch {
	case toks[i].is("unique"):
		return "unique"
	case toks[i].is("primary") && next("key"):
		return "primary"
	case toks[i].is("check"):
		return "check"
	case toks[i].is("foreign") && next("key"):
		return "foreign"
	}
	return ""
}

// pgIsSetNotNull reports whether the clause is ALTER [COLUMN] col SET NOT NULL.
func pgIsSetNotNull(clause string) bool {
	toks := pgLex(clause)
	if len(toks) > 0 && toks[0].is("alter") {
		toks = toks[1:]
		if len(toks) > 0 && toks[0].is("column") {
			toks = toks[1:]
		}
		return len(toks) == 4 && toks[1].is("set") && toks[2].is("not") && toks[3].is("null")
	}
	return false
}

// pgClassify says how the clause that turned before into after on the
// scratch table runs natively, or why it cannot.
func pgClassify(clause string, before, after *pgNativeState, rename func(string) string) (pgNativeClause, string) {
	c := pgNativeClause{text: clause, kind: pgNativeCatalog}
	why := pgNativeWhy(before, after, rename)
	if why == "" {
		return c, ""
	}
	if after.file != before.file || (before.toast != 0 && after.toast != before.toast) || len(after.columns) != len(before.columns) {
		return c, why
	}
	for n, f := range before.indexes {
		if after.indexes[n] != f {
			return c, why
		}
	}
	var newIdx []string
	for n := range after.indexes {
		if _, ok := before.indexes[n]; !ok {
			newIdx = append(newIdx, n)
		}
	}
	var newCons []pgNativeConstraint
	for oid, k := range after.constraints {
		b, ok := before.constraints[oid]
		switch {
		case !ok:
			newCons = append(newCons, k)
		case k.validated != b.validated:
			return c, why
		}
	}
	c.notNull = map[int16]string{}
	for n, nn := range after.notNull {
		if nn && !before.notNull[n] {
			c.notNull[n] = after.columns[n]
		}
	}
	switch kind := pgAddConstraintKind(clause); {
	case (kind == "unique" || kind == "primary") && len(newIdx) == 1 && len(newCons) == 1 && newCons[0].index == newIdx[0] &&
		(kind == "primary" || len(c.notNull) == 0):
		c.kind, c.probe, c.def, c.primary = pgNativeIndex, newIdx[0], after.indexDefs[newIdx[0]], kind == "primary"
		c.deferrable, c.deferred = newCons[0].deferrable, newCons[0].deferred
	case (kind == "check" || kind == "foreign") && len(newIdx) == 0 && len(newCons) == 1 && len(c.notNull) == 0:
		c.kind, c.probe, c.def, c.foreign = pgNativeValidate, newCons[0].name, newCons[0].def, kind == "foreign"
	case pgIsSetNotNull(clause) && len(newIdx) == 0 && len(newCons) == 0 && len(c.notNull) == 1:
		c.kind = pgNativeNotNull
	default:
		return c, why
	}
	return c, ""
}

// pgNativeHelper is the name of the helper CHECK (col IS NOT NULL) of
// column attnum.
func pgNativeHelper(attnum int16) string { return fmt.Sprintf("_osc_nn_%d", attnum) }

// pgNativeSteps is the plan for the clauses on rel (quoted); concurrent
// builds indexes CONCURRENTLY (false on the scratch table, in a transaction).
func pgNativeSteps(clauses []pgNativeClause, rel string, concurrent bool) []PostgresNativeStep {
	var steps []PostgresNativeStep
	alter := "ALTER TABLE " + rel + " "
	var final, helpers []string
	notNull := func(nn map[int16]string) {
		for _, n := range slices.Sorted(maps.Keys(nn)) {
			h := QuotePostgres(pgNativeHelper(n))
			if slices.Contains(helpers, h) {
				continue
			}
			helpers = append(helpers, h)
			steps = append(steps,
				PostgresNativeStep{SQL: []string{alter + "ADD CONSTRAINT " + h + " CHECK (" + nn[n] + " IS NOT NULL) NOT VALID"}, Blocking: true,
					Lock: "ACCESS EXCLUSIVE", Undo: alter + "DROP CONSTRAINT IF EXISTS " + h},
				PostgresNativeStep{SQL: []string{alter + "VALIDATE CONSTRAINT " + h}, Lock: "SHARE UPDATE EXCLUSIVE",
					Violated: fmt.Sprintf("column %s of relation %s contains null values", nn[n], rel)})
		}
	}
	for _, c := range clauses {
		name := QuotePostgres(c.name)
		switch c.kind {
		case pgNativeCatalog:
			final = append(final, alter+c.text)
		case pgNativeIndex:
			notNull(c.notNull)
			create := "CREATE UNIQUE INDEX "
			if concurrent {
				create += "CONCURRENTLY "
			}
			steps = append(steps, PostgresNativeStep{SQL: []string{create + name + " ON " + rel + " " + strings.TrimSpace(c.def)},
				Index: c.name, Table: rel, Concurrent: concurrent, Lock: "SHARE UPDATE EXCLUSIVE", Undo: "DROP INDEX CONCURRENTLY IF EXISTS " + pgSchemaOf(rel) + name})
			kind := "UNIQUE"
			if c.primary {
				kind = "PRIMARY KEY"
			}
			stmt := alter + "ADD CONSTRAINT " + name + " " + kind + " USING INDEX " + name
			if c.deferrable {
				stmt += " DEFERRABLE"
			}
			if c.deferred {
				stmt += " INITIALLY DEFERRED"
			}
			final = append(final, stmt)
		case pgNativeValidate:
			add, validate := "ACCESS EXCLUSIVE", "SHARE UPDATE EXCLUSIVE"
			if c.foreign {
				add, validate = "SHARE ROW EXCLUSIVE on the table and the referenced one", "SHARE UPDATE EXCLUSIVE, and ROW SHARE on the referenced table"
			}
			steps = append(steps,
				PostgresNativeStep{SQL: []string{alter + "ADD CONSTRAINT " + name + " " + c.def + " NOT VALID"}, Blocking: true,
					Lock: add, Undo: alter + "DROP CONSTRAINT IF EXISTS " + name},
				PostgresNativeStep{SQL: []string{alter + "VALIDATE CONSTRAINT " + name}, Lock: validate})
		case pgNativeNotNull:
			notNull(c.notNull)
			final = append(final, alter+c.text)
		}
	}
	for _, h := range helpers {
		final = append(final, alter+"DROP CONSTRAINT "+h)
	}
	if len(final) > 0 {
		steps = append(steps, PostgresNativeStep{SQL: final, Blocking: true, Lock: "ACCESS EXCLUSIVE"})
	}
	return steps
}

// pgSchemaOf is the schema part of a quoted schema.table, with its dot.
func pgSchemaOf(rel string) string {
	toks := pgLex(rel)
	if len(toks) == 3 && toks[1].Text == "." {
		return toks[0].Text + "."
	}
	return ""
}

// pgNativeSignature describes rel's columns, constraints and indexes
// without their names: the plan run in steps on the scratch table must
// leave the signature the plain ALTER leaves.
func pgNativeSignature(ctx context.Context, tx pgx.Tx, rel string) (string, error) {
	var oid uint32
	if err := tx.QueryRow(ctx, "SELECT $1::regclass::oid", rel).Scan(&oid); err != nil {
		return "", err
	}
	named, err := pgReadNamed(ctx, tx, oid)
	if err != nil {
		return "", err
	}
	var cols string
	if err := tx.QueryRow(ctx, `SELECT coalesce(string_agg(format('%s %s %s %s', attname, format_type(atttypid, atttypmod), attnotnull,
			pg_get_expr(d.adbin, d.adrelid)), ', ' ORDER BY attnum), '')
		FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`, oid).Scan(&cols); err != nil {
		return "", err
	}
	var keys []string
	for _, n := range named {
		keys = append(keys, n.kind+" "+n.key)
	}
	slices.Sort(keys)
	return cols + "\n" + strings.Join(keys, "\n"), nil
}

// errPgAlterMovesTable refuses an --alter that renames the table or moves
// it to another schema (RENAME TO, SET SCHEMA): catalog changes that osc's
// swap of two tables under one name cannot make.
var errPgAlterMovesTable = errors.New("the --alter renames the table or moves it to another schema (RENAME TO, SET SCHEMA); " +
	"osc changes a table in place: run that ALTER TABLE directly (it changes the catalog only)")

// PostgresNativePlan returns how the --alter runs natively, or why not (the
// plan's Steps nil, its Clauses saying which clauses need the copy; a nil
// plan when the server refuses the --alter on the scratch table). It changes nothing: the probes on the scratch table run in a
// transaction it rolls back.
func PostgresNativePlan(ctx context.Context, pool *pgxpool.Pool, in *PostgresInspection, alter string, lockTimeout time.Duration) (plan *PostgresNative, why string, err error) {
	parts := SplitPostgresAlter(alter)
	if len(parts) == 0 {
		return nil, "", errors.New("the --alter is empty")
	}
	fail := func(err error) (*PostgresNative, string, error) {
		return nil, "", fmt.Errorf("ask the server whether the --alter can run natively: %w", err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	n := in.Names
	orig, scratch := QuotePostgres(n.Schema, n.Table), QuotePostgres(n.Schema, n.Shadow)
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", max(lockTimeout.Milliseconds(), 1))); err != nil {
		return fail(err)
	}
	// The scratch table where the original is and in its access method,
	// which LIKE does not copy (it takes default_tablespace and
	// default_table_access_method): SET TABLESPACE or SET ACCESS METHOD to
	// where the scratch table already is would change nothing on it, and
	// pass for catalog-only, where on the original it copies the table
	// under an ACCESS EXCLUSIVE lock. The --alter then runs under the
	// session's default_tablespace, as the plain ALTER does. (A partitioned
	// table's tablespace is only where its new partitions go: SET
	// TABLESPACE moves no rows, and the scratch table, which is not
	// partitioned, stays in the default one, where moving it to the
	// default is a no-op.)
	var tablespace, method, defaultSpace string
	if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT spcname::text FROM pg_tablespace WHERE oid = c.reltablespace), ''),
		coalesce((SELECT amname::text FROM pg_am WHERE oid = c.relam), ''), current_setting('default_tablespace')
		FROM pg_class c WHERE c.oid = $1`, in.OID).Scan(&tablespace, &method, &defaultSpace); err != nil {
		return fail(err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL default_tablespace = ''"); err != nil {
		return fail(err)
	}
	create := fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING ALL)", scratch, orig)
	if method != "" {
		create += " USING " + QuotePostgres(method)
	}
	if tablespace != "" && !in.Partitioned() {
		create += " TABLESPACE " + QuotePostgres(tablespace)
	}
	if _, err := tx.Exec(ctx, create); err != nil {
		return nil, "", fmt.Errorf("create a scratch table (rolled back) to ask the server whether the --alter can run natively: %w", err)
	}
	if _, err := tx.Exec(ctx, "SELECT set_config('default_tablespace', $1, true)", defaultSpace); err != nil {
		return fail(err)
	}
	var scratchOID uint32
	if err := tx.QueryRow(ctx, "SELECT $1::regclass::oid", scratch).Scan(&scratchOID); err != nil {
		return fail(err)
	}
	if _, err := tx.Exec(ctx, "SAVEPOINT osc_native"); err != nil {
		return fail(err)
	}
	// exec runs one statement (the extended protocol runs exactly one),
	// and returns the server's refusal as why.
	exec := func(stmt string) (string, error) {
		if _, err := tx.Conn().PgConn().ExecParams(ctx, stmt, nil, nil, nil, nil).Close(); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) {
				return pgErr.Message, nil
			}
			return "", err
		}
		return "", nil
	}
	rename := func(name string) string {
		if rest, ok := strings.CutPrefix(name, n.Shadow); ok {
			return n.Table + rest
		}
		return name
	}
	// The plain ALTER on the scratch table: the result the plan must give.
	for _, p := range parts {
		if pgValidateClause.MatchString(p) {
			// The scratch table's constraints are all valid: validating one
			// changes nothing there, and reads the whole table here.
			return nil, "it validates a constraint, reading the table", nil
		}
		if refused, err := exec("ALTER TABLE " + scratch + " " + p); err != nil || refused != "" {
			if err != nil {
				return fail(err)
			}
			return nil, "the server refuses it on a copy of the table's definition: " + refused, nil
		}
	}
	var moved bool
	if err := tx.QueryRow(ctx, "SELECT relname <> $2 OR relnamespace <> $3::regnamespace FROM pg_class WHERE oid = $1",
		scratchOID, n.Shadow, QuotePostgres(n.Schema)).Scan(&moved); err != nil {
		return fail(err)
	}
	if moved {
		return nil, "", errPgAlterMovesTable
	}
	want, err := pgNativeSignature(ctx, tx, scratch)
	if err != nil {
		return fail(err)
	}
	if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT osc_native"); err != nil {
		return fail(err)
	}
	state, err := readPgNativeState(ctx, tx, scratch)
	if err != nil {
		return nil, "", err
	}
	// Clause by clause, what each does.
	var clauses []pgNativeClause
	var infos []PostgresNativeClause
	catalogOnly, copyWhy := true, ""
	for _, p := range parts {
		for _, sub := range pgSplitSubcommands(p) {
			if refused, err := exec("ALTER TABLE " + scratch + " " + sub); err != nil || refused != "" {
				if err != nil {
					return fail(err)
				}
				// Alone, the subcommand differs from the plain ALTER's list.
				return nil, "its clauses run one by one differ from the plain ALTER: " + refused, nil
			}
			next, err := readPgNativeState(ctx, tx, scratch)
			if err != nil {
				return nil, "", err
			}
			c, why := pgClassify(sub, state, next, rename)
			infos = append(infos, pgClauseInfo(c, why))
			if why != "" && copyWhy == "" {
				copyWhy = why
			}
			catalogOnly = catalogOnly && c.kind == pgNativeCatalog
			clauses, state = append(clauses, c), next
		}
	}
	if copyWhy != "" {
		return &PostgresNative{Clauses: infos}, copyWhy, nil
	}
	if catalogOnly {
		// The --alter as given, in one transaction.
		var stmts []string
		for _, p := range parts {
			stmts = append(stmts, "ALTER TABLE "+orig+" "+p)
		}
		return &PostgresNative{Steps: []PostgresNativeStep{{SQL: stmts, Blocking: true, Lock: "ACCESS EXCLUSIVE"}}, Clauses: infos}, "", nil
	}
	if in.Partitioned() {
		// CREATE INDEX CONCURRENTLY cannot build an index on a partitioned
		// table, nor does the scratch table (an ordinary one) show what
		// validating a constraint does to each partition.
		why := "the table is partitioned: osc runs natively on a partitioned table only what changes the catalog alone, not index builds or validations in steps"
		for i, c := range clauses {
			if c.kind != pgNativeCatalog {
				infos[i] = pgClauseInfo(c, why)
			}
		}
		return &PostgresNative{Clauses: infos}, why, nil
	}
	if why, err := pgNativeNames(ctx, tx, in, scratch, parts, clauses); err != nil || why != "" {
		return &PostgresNative{Clauses: infos}, why, err
	}
	// The plan on the scratch table as it was (pgNativeNames rolled it
	// back): the plain ALTER's result?
	for _, s := range pgNativeSteps(clauses, scratch, false) {
		for _, stmt := range s.SQL {
			if refused, err := exec(stmt); err != nil || refused != "" {
				if err != nil {
					return fail(err)
				}
				return &PostgresNative{Clauses: infos}, "run in steps (building and validating first) it fails: " + refused, nil
			}
		}
	}
	got, err := pgNativeSignature(ctx, tx, scratch)
	if err != nil {
		return fail(err)
	}
	if got != want {
		return &PostgresNative{Clauses: infos}, "run in steps (building and validating first) it does not give the plain ALTER's table", nil
	}
	return &PostgresNative{Steps: pgNativeSteps(clauses, orig, true), Clauses: infos}, "", nil
}

// pgNativeNames gives the clauses that add an index or a constraint the
// name the plain ALTER would (pgLearnNames), the scratch table having run
// them all; it leaves the scratch table rolled back to savepoint osc_native.
func pgNativeNames(ctx context.Context, tx pgx.Tx, in *PostgresInspection, scratch string, parts []string, clauses []pgNativeClause) (why string, err error) {
	var oid uint32
	if err := tx.QueryRow(ctx, "SELECT $1::regclass::oid", scratch).Scan(&oid); err != nil {
		return "", fmt.Errorf("learn names: %w", err)
	}
	probed, err := pgReadNamed(ctx, tx, oid)
	if err != nil {
		return "", err
	}
	// The scratch table's new indexes would hold their names in the
	// schema: the names are learned without them.
	if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT osc_native"); err != nil {
		return "", fmt.Errorf("learn names: %w", err)
	}
	naming, err := pgLearnNames(ctx, tx, in, parts)
	if err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		return "osc cannot learn the names the plain ALTER gives: " + err.Error(), nil
	}
	names := pgMatchNamed(probed, naming.named)
	for i, c := range clauses {
		kind := "constraint"
		switch c.kind {
		case pgNativeCatalog, pgNativeNotNull:
			continue
		case pgNativeIndex:
			kind = "index"
		}
		for _, o := range probed {
			if o.kind == kind && o.name == c.probe {
				clauses[i].name = names[o]
			}
		}
		if clauses[i].name == "" {
			return "osc cannot tell the name the plain ALTER gives " + c.probe, nil
		}
	}
	return "", nil
}
