package table

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// PostgresInspection is what InspectPostgresTable found out about the original.
type PostgresInspection struct {
	Names         PostgresNames
	Server        PostgresServer
	OID           uint32
	Source        *Table
	EstimatedRows int64
	SizeBytes     int64
	Notes         []string // long transactions, views re-created and foreign keys moved at cut-over
	// PartitionKey is a partitioned table's (pg_get_partkeydef; "" for an
	// ordinary table), Partitions its partitions (postgres_partition.go).
	PartitionKey string
	Partitions   []PostgresPartition
}

// pgTableFacts is what the refusals are decided on.
type pgTableFacts struct {
	Exists            bool
	Kind, Persistence string // relkind, relpersistence
	Owner             string
	Owns              bool // the user is (a member of) the owner
	RowSecurity       bool // row security enabled (ENABLE ROW LEVEL SECURITY)
	ForceRowSecurity  bool // row security forced on the owner (FORCE ROW LEVEL SECURITY)
	Policies          []string
	Parents, Children int    // pg_inherits both ways
	OfType            string // a typed table's composite type (CREATE TABLE … OF); "" otherwise
	HasKey            bool
	UnusableKeys      []string // unique indexes and a primary key osc cannot key rows by, with why
	HasPrimary        bool     // a primary key (usable or not)
	ReplIdent         string   // relreplident
	AllTablesPubs     []string // FOR ALL TABLES
	SchemaPubs        []string // FOR TABLES IN SCHEMA of the table's schema
	TablePubs         []string // publications listing the table
	// TablePubsReAdd are the ALTER PUBLICATION … ADD TABLE statements that
	// list the table again with its column list or row filter, for the
	// publications that have one (PostgreSQL 15 on).
	TablePubsReAdd []string
	Subscriptions  []string // subscriptions applying changes into the table
	// Grantors are the roles, other than the owner, that granted
	// privileges on the table, its columns or its identity sequences
	// (which the new table has afresh) and that the cut-over cannot
	// grant them again as: osc's user is not a member, or the role has no
	// USAGE on the schema (it names the table).
	Grantors     []string
	Rules        []string
	MatViews     []string // materialized views reading the table
	OtherRules   []string // rules of other relations reading the table (not a view's _RETURN)
	ForeignViews []string // views reading the table that the user does not own
	RowTypeUsers []string // objects using the table's row type
	Functions    []string // functions whose body is bound to the table (BEGIN ATOMIC)
	// BoundElsewhere are objects outside the table bound to its oid, or to
	// its identity sequences' (which the new table has afresh), that the
	// swap does not move: a constraint trigger of another table FROM it,
	// another table's default, CHECK or policy naming it, a function
	// calling an identity sequence.
	BoundElsewhere []string
	// OtherSchema are the table's extended statistics objects in another
	// schema than its own: LIKE makes the new table's in its own schema.
	OtherSchema     []string
	SelfForeignKeys []string
	PartitionedFKs  []string        // foreign keys to the table from partitioned tables
	Partitioning    *pgPartitioning // a partitioned table's key and partitions
	ForeignChildren []string        // foreign keys to the table from tables the user does not own
	LeftoverPub     bool
	LeftoverSlot    bool
	LeftoverSlotPID int32
	// LeftoverSlotRetained is the WAL the leftover slot keeps, in bytes.
	LeftoverSlotRetained int64
	LeftoverShadow       bool
	LeftoverOld          bool
	OldRows              int64 // the old table's row estimate
	LeftoverCheckpoint   bool
	// LeftoverAside: the table of rows set aside of a plan with new unique
	// keys (postgres_aside.go), which the run creates with its shadow.
	LeftoverAside   bool
	CheckpointSaved string // when the killed run saved its checkpoint ("" if it saved none)
	// Resume: the user resumes the killed run, whose leftovers are then no
	// refusal (the dialect's Resume checks them).
	Resume bool
}

// problems lists every refusal, each naming its fix.
func (f *pgTableFacts) problems(n PostgresNames) []string {
	t := n.Schema + "." + n.Table
	if !f.Exists {
		return []string{fmt.Sprintf("table %s does not exist", t)}
	}
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	list := func(s []string) string { return strings.Join(s, ", ") }
	switch f.Kind {
	case "r":
	case "p":
		if f.Partitioning == nil {
			add("%s is a partitioned table whose partitions were not read", t)
			break
		}
		for _, problem := range f.Partitioning.Problems {
			add("%s is a partitioned table and %s", t, problem)
		}
	default:
		add("%s is not an ordinary table (relkind %q)", t, f.Kind)
	}
	if f.Persistence != "p" {
		add("%s is unlogged or temporary: its changes are not written to the WAL, so logical decoding cannot capture them; ALTER TABLE %s SET LOGGED first",
			t, QuotePostgres(n.Schema, n.Table))
	}
	if !f.Owns {
		add("%s is owned by %s: run osc as the owner (or a member of its role), as the swap renames the table", t, f.Owner)
	}
	if f.Parents > 0 || f.Children > 0 && f.Kind != "p" {
		add("%s takes part in inheritance (%d parents, %d children): osc does not migrate inherited tables or partitions", t, f.Parents, f.Children)
	}
	if f.OfType != "" {
		add("%s is a typed table (OF %s), which osc's new table would not be: ALTER TABLE %s NOT OF first (and OF %s again after the migration, if the columns still match)",
			t, f.OfType, QuotePostgres(n.Schema, n.Table), f.OfType)
	}
	switch {
	case f.HasKey:
	case len(f.UnusableKeys) > 0:
		add("%s has no PRIMARY KEY or UNIQUE index osc can use (valid, not deferrable, not partial, no expression, all columns NOT NULL): %s; "+
			"osc needs one to copy and apply rows: add one first", t, strings.Join(f.UnusableKeys, "; "))
	default:
		add("%s has no PRIMARY KEY and no usable UNIQUE index (valid, not deferrable, not partial, no expression, all columns NOT NULL); "+
			"osc needs one to copy and apply rows: add a PRIMARY KEY first", t)
	}
	switch {
	case f.ReplIdent == "n", f.ReplIdent == "d" && !f.HasPrimary:
		add("the replica identity of %s carries no key (%s), so logical replication cannot tell which row an UPDATE or DELETE changed: "+
			"ALTER TABLE %s REPLICA IDENTITY USING INDEX <a unique index on NOT NULL columns> (or REPLICA IDENTITY FULL)",
			t, map[string]string{"n": "NOTHING", "d": "DEFAULT, and no primary key"}[f.ReplIdent], QuotePostgres(n.Schema, n.Table))
	}
	if len(f.AllTablesPubs) > 0 {
		add("publication %s is FOR ALL TABLES: it would publish osc's shadow table too; osc refuses to run while one exists (DROP PUBLICATION %s, or migrate outside osc)",
			list(f.AllTablesPubs), QuotePostgres(f.AllTablesPubs[0]))
	}
	if len(f.SchemaPubs) > 0 {
		add("publication %s publishes every table of schema %s (FOR TABLES IN SCHEMA): it would publish osc's shadow table too; ALTER PUBLICATION %s DROP TABLES IN SCHEMA %s first",
			list(f.SchemaPubs), n.Schema, QuotePostgres(f.SchemaPubs[0]), QuotePostgres(n.Schema))
	}
	if len(f.TablePubs) > 0 {
		back := "add the table back after the migration"
		if len(f.TablePubsReAdd) > 0 {
			back += " with its column list or row filter: " + strings.Join(f.TablePubsReAdd, "; ")
		}
		add("%s is in publication %s, which would keep publishing the old table after the swap: ALTER PUBLICATION %s DROP TABLE %s first and %s",
			t, list(f.TablePubs), QuotePostgres(f.TablePubs[0]), QuotePostgres(n.Schema, n.Table), back)
	}
	if len(f.Grantors) > 0 {
		add("privileges on %s were granted by %s, through a grant option; the cut-over grants them again on the new table as that role "+
			"(SET ROLE), so that it keeps its grants, which it cannot here: grant osc's user membership in the role (and the role USAGE on the schema), "+
			"or revoke those privileges and grant them again after the migration", t, list(f.Grantors))
	}
	if len(f.Subscriptions) > 0 {
		add("%s is a table of subscription %s, whose apply worker would skip every change for the new table after the swap (the subscription "+
			"lists the table by its oid, in pg_subscription_rel): run the ALTER TABLE directly (on a subscriber it holds up only the apply worker)",
			t, list(f.Subscriptions))
	}
	if !f.Resume {
		p = append(p, f.leftovers(n)...)
	}
	if f.RowSecurity || f.ForceRowSecurity || len(f.Policies) > 0 {
		var what, undo []string
		if f.RowSecurity {
			what, undo = append(what, "enabled"), append(undo, "DISABLE ROW LEVEL SECURITY")
		}
		if f.ForceRowSecurity {
			what, undo = append(what, "forced"), append(undo, "NO FORCE ROW LEVEL SECURITY")
		}
		way := "ALTER TABLE " + QuotePostgres(n.Schema, n.Table) + " " + strings.Join(undo, ", ")
		if len(f.Policies) > 0 {
			what = append(what, "policies "+list(f.Policies))
			if len(undo) == 0 {
				way = "drop the policies"
			} else {
				way += " and drop the policies"
			}
		}
		add("%s has row level security (%s), which osc does not carry over yet: %s first, and restore it after the migration",
			t, strings.Join(what, ", "), way)
	}
	if len(f.Rules) > 0 {
		add("%s has rules (%s), which osc does not carry over yet: drop them first and re-create them after the migration", t, list(f.Rules))
	}
	if len(f.MatViews) > 0 {
		add("materialized views read %s (%s), which osc does not carry over yet: drop them first and re-create them after the migration", t, list(f.MatViews))
	}
	if len(f.OtherRules) > 0 {
		add("rules of other relations read %s (%s), which osc does not carry over yet: drop them first", t, list(f.OtherRules))
	}
	if len(f.ForeignViews) > 0 {
		add("views read %s (%s) that the user does not own; osc re-creates them on the new table at cut-over and must own them: run osc as their owner or ALTER VIEW ... OWNER TO the user",
			t, list(f.ForeignViews))
	}
	if len(f.RowTypeUsers) > 0 {
		add("the row type of %s is used by %s, which would stay bound to the old table: drop them first", t, list(f.RowTypeUsers))
	}
	if len(f.Functions) > 0 {
		add("functions %s have bodies bound to %s (BEGIN ATOMIC), which would keep using the old table: drop them first and re-create them after the migration", list(f.Functions), t)
	}
	if len(f.BoundElsewhere) > 0 {
		add("objects bound to %s or to its identity sequences by oid (%s) would stay on the old table, or be dropped with it: drop them first and re-create them after the migration",
			t, list(f.BoundElsewhere))
	}
	if len(f.OtherSchema) > 0 {
		add("%s has extended statistics in another schema (%s), which osc's new table would have in its own schema: "+
			"ALTER STATISTICS … SET SCHEMA %s first, or drop them and re-create them after the migration",
			t, list(f.OtherSchema), QuotePostgres(n.Schema))
	}
	if len(f.SelfForeignKeys) > 0 {
		add("%s has self-referencing foreign keys (%s), which osc does not carry over yet: drop them first and re-add them after the migration", t, list(f.SelfForeignKeys))
	}
	if len(f.ForeignChildren) > 0 {
		add("foreign keys reference %s from tables the user does not own (%s); osc moves them to the new table at cut-over and must own those tables: run osc as their owner",
			t, list(f.ForeignChildren))
	}
	if len(f.PartitionedFKs) > 0 {
		add("partitioned tables reference %s (%s), which osc cannot move to the new table yet: drop those foreign keys first", t, list(f.PartitionedFKs))
	}
	return p
}

// InspectPostgresTable checks the server and the table named by n, and reads
// the table. Every refusal names its fix; all are reported at once.
func InspectPostgresTable(ctx context.Context, q PostgresQuerier, n PostgresNames) (*PostgresInspection, error) {
	return InspectPostgresTableFor(ctx, q, n, false)
}

// InspectPostgresTableFor is InspectPostgresTable; resume: what a killed run
// of this migration left is no refusal (the user resumes it).
func InspectPostgresTableFor(ctx context.Context, q PostgresQuerier, n PostgresNames, resume bool) (*PostgresInspection, error) {
	srv, err := ReadPostgresServer(ctx, q)
	if err != nil {
		return nil, err
	}
	in := &PostgresInspection{Names: n, Server: srv}
	f, err := pgReadFacts(ctx, q, n, srv.Version, in)
	if err != nil {
		return nil, fmt.Errorf("inspect %s.%s: %w", n.Schema, n.Table, err)
	}
	f.Resume = resume
	check := srv
	if resume && f.LeftoverSlot {
		// The resumed run takes up the killed run's slot: it needs no other.
		check.ReplicationSlots--
	}
	var problems []string
	if err := check.Check(); err != nil {
		problems = append(problems, err.Error())
	}
	problems = append(problems, f.problems(n)...)
	if len(problems) > 0 {
		return nil, fmt.Errorf("osc cannot migrate %s.%s:\n  - %s", n.Schema, n.Table, strings.Join(problems, "\n  - "))
	}
	cols, err := pgReadColumns(ctx, q, in.OID)
	if err != nil {
		return nil, err
	}
	in.Source = pgTable(n.Schema, n.Table, cols)
	if in.EstimatedRows < 0 {
		if err := q.QueryRow(ctx, "SELECT count(*) FROM "+QuotePostgres(n.Schema, n.Table)).Scan(&in.EstimatedRows); err != nil {
			return nil, fmt.Errorf("count rows: %w", err)
		}
	}
	notes, err := pgLongTransactions(ctx, q)
	if err != nil {
		return nil, err
	}
	in.Notes = append(in.Notes, notes...)
	views, err := pgStrings(ctx, q, `SELECT DISTINCT v.oid::regclass::text FROM pg_depend d
		JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
		JOIN pg_class v ON v.oid = r.ev_class
		WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND v.oid <> $1 AND v.relkind = 'v' ORDER BY 1`, in.OID)
	if err != nil {
		return nil, fmt.Errorf("read views: %w", err)
	}
	if len(views) > 0 {
		in.Notes = append(in.Notes, "views re-created on the new table at cut-over: "+strings.Join(views, ", "))
	}
	fks, err := pgStrings(ctx, q, `SELECT con.conname || ' on ' || con.conrelid::regclass::text FROM pg_constraint con
		WHERE con.contype = 'f' AND con.confrelid = $1 AND con.conrelid <> $1 AND con.conparentid = 0 ORDER BY 1`, in.OID)
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	if len(fks) > 0 {
		in.Notes = append(in.Notes, "foreign keys moved to the new table at cut-over (NOT VALID, validated right after): "+strings.Join(fks, ", "))
	}
	return in, nil
}

// RecheckPostgresTable repeats the inspection's refusals on a table being
// migrated, for the cut-over to run with the table locked: a rule,
// policy, publication or dependent object added during the run would
// otherwise be left on the old table or break the swap. osc's own
// publication, slot and shadow exist by now and are not refusals.
func RecheckPostgresTable(ctx context.Context, q PostgresQuerier, n PostgresNames) error {
	srv, err := ReadPostgresServer(ctx, q)
	if err != nil {
		return err
	}
	f, err := pgReadFacts(ctx, q, n, srv.Version, &PostgresInspection{Names: n})
	if err != nil {
		return fmt.Errorf("inspect %s.%s again: %w", n.Schema, n.Table, err)
	}
	f.LeftoverPub, f.LeftoverSlot, f.LeftoverShadow, f.LeftoverCheckpoint, f.LeftoverAside = false, false, false, false, false
	if problems := f.problems(n); len(problems) > 0 {
		return fmt.Errorf("%s.%s changed during the migration; osc cannot swap it:\n  - %s",
			n.Schema, n.Table, strings.Join(problems, "\n  - "))
	}
	return nil
}

func pgReadFacts(ctx context.Context, q PostgresQuerier, n PostgresNames, version int, in *PostgresInspection) (*pgTableFacts, error) {
	f := &pgTableFacts{}
	var reltuples float64
	var nsp uint32
	err := q.QueryRow(ctx, `SELECT c.oid, n.oid, c.relkind::text, c.relpersistence::text, pg_get_userbyid(c.relowner),
		pg_has_role(c.relowner, 'USAGE'), c.relrowsecurity, c.relforcerowsecurity, c.reltuples::float8,
		pg_total_relation_size(c.oid), c.relreplident::text, CASE WHEN c.reloftype <> 0 THEN c.reloftype::regtype::text ELSE '' END
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
		n.Schema, n.Table).Scan(&in.OID, &nsp, &f.Kind, &f.Persistence, &f.Owner, &f.Owns, &f.RowSecurity, &f.ForceRowSecurity, &reltuples, &in.SizeBytes, &f.ReplIdent, &f.OfType)
	if errors.Is(err, pgx.ErrNoRows) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read table: %w", err)
	}
	f.Exists = true
	in.EstimatedRows = int64(reltuples)
	if reltuples < 0 {
		in.EstimatedRows = -1
	}
	oid := in.OID

	if err := q.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_inherits WHERE inhrelid = $1)::int,
		(SELECT count(*) FROM pg_inherits WHERE inhparent = $1)::int`, oid).Scan(&f.Parents, &f.Children); err != nil {
		return nil, fmt.Errorf("read inheritance: %w", err)
	}
	if f.Kind == "p" {
		var unknown bool
		if f.Partitioning, err = pgReadPartitioning(ctx, q, oid); err != nil {
			return nil, err
		}
		in.PartitionKey, in.Partitions = f.Partitioning.Key, f.Partitioning.Partitions
		// The root holds no rows: the leaf partitions' estimates and sizes.
		if err := q.QueryRow(ctx, `SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::int8, coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8,
			coalesce(bool_or(c.reltuples < 0), false) FROM pg_partition_tree($1::oid) t JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf`, oid).Scan(
			&in.EstimatedRows, &in.SizeBytes, &unknown); err != nil {
			return nil, fmt.Errorf("read the partitions' sizes: %w", err)
		}
		if unknown { // a partition never analyzed: counted
			in.EstimatedRows = -1
		}
	}
	cols, err := pgReadColumns(ctx, q, oid)
	if err != nil {
		return nil, err
	}
	idx, err := pgReadIndexes(ctx, q, oid, version)
	if err != nil {
		return nil, err
	}
	for _, ix := range idx {
		if ix.keyUsable(cols) {
			f.HasKey = true
		}
		if why := ix.unusable(cols); why != "" {
			f.UnusableKeys = append(f.UnusableKeys, why)
		}
		if ix.Primary {
			f.HasPrimary = true
		}
	}

	type list struct {
		dst  *[]string
		what string
		sql  string
		args []any
	}
	lists := []list{
		{&f.AllTablesPubs, "publications", `SELECT pubname FROM pg_publication WHERE puballtables ORDER BY 1`, nil},
		{&f.TablePubs, "publications", `SELECT p.pubname FROM pg_publication p JOIN pg_publication_rel r ON r.prpubid = p.oid
			WHERE r.prrelid = $1 ORDER BY 1`, []any{oid}},
		{&f.Subscriptions, "subscriptions", `SELECT s.subname FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid
			WHERE r.srrelid = $1 ORDER BY 1`, []any{oid}},
		{&f.Grantors, "grantors", `SELECT DISTINCT pg_get_userbyid(a.grantor) || CASE WHEN NOT pg_has_role(a.grantor, 'MEMBER')
				THEN ' (osc''s user is not a member of it)' ELSE ' (it has no USAGE on the schema)' END
			FROM pg_class c, LATERAL (SELECT x.grantor FROM aclexplode(c.relacl) x
				UNION ALL SELECT x.grantor FROM pg_attribute t, aclexplode(t.attacl) x
				WHERE t.attrelid = c.oid AND t.attnum > 0 AND NOT t.attisdropped
				UNION ALL SELECT x.grantor FROM pg_depend d JOIN pg_class q ON q.oid = d.objid AND q.relkind = 'S', aclexplode(q.relacl) x
				WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid AND d.deptype = 'i') a
			WHERE c.oid = $1 AND a.grantor <> c.relowner
			AND (NOT pg_has_role(a.grantor, 'MEMBER') OR NOT has_schema_privilege(a.grantor, c.relnamespace, 'USAGE')) ORDER BY 1`, []any{oid}},
		{&f.Policies, "policies", `SELECT polname FROM pg_policy WHERE polrelid = $1 ORDER BY 1`, []any{oid}},
		{&f.Rules, "rules", `SELECT rulename FROM pg_rewrite WHERE ev_class = $1 ORDER BY 1`, []any{oid}},
		{&f.MatViews, "materialized views", `SELECT DISTINCT v.oid::regclass::text FROM pg_depend d
			JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
			JOIN pg_class v ON v.oid = r.ev_class
			WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND v.oid <> $1 AND v.relkind = 'm' ORDER BY 1`, []any{oid}},
		{&f.OtherRules, "rules", `SELECT DISTINCT r.rulename || ' on ' || v.oid::regclass::text FROM pg_depend d
			JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
			JOIN pg_class v ON v.oid = r.ev_class
			WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND v.oid <> $1 AND v.relkind <> 'm'
			AND r.rulename <> '_RETURN' ORDER BY 1`, []any{oid}},
		{&f.ForeignViews, "views", `SELECT DISTINCT v.oid::regclass::text || ' (owner ' || pg_get_userbyid(v.relowner) || ')' FROM pg_depend d
			JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
			JOIN pg_class v ON v.oid = r.ev_class
			WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND v.oid <> $1 AND v.relkind = 'v'
			AND NOT pg_has_role(v.relowner, 'USAGE') ORDER BY 1`, []any{oid}},
		// Its array type (t[]) too: a function or column of type t[]
		// depends on the array type only.
		{&f.RowTypeUsers, "row type users", `SELECT pg_describe_object(d.classid, d.objid, d.objsubid) FROM pg_depend d
			JOIN pg_type rt ON rt.oid = (SELECT reltype FROM pg_class WHERE oid = $1)
			WHERE d.refclassid = 'pg_type'::regclass AND d.refobjid IN (rt.oid, rt.typarray)
			AND d.deptype = 'n' ORDER BY 1`, []any{oid}},
		{&f.Functions, "functions", `SELECT DISTINCT d.objid::regprocedure::text FROM pg_depend d
			WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 ORDER BY 1`, []any{oid}},
		// What depends on the table besides its own parts and what other
		// lists cover (views and rules, functions, publications,
		// foreign keys, inheritance), and what depends on its identity
		// sequences besides views re-created on the new table by name.
		{&f.BoundElsewhere, "dependent objects", `SELECT DISTINCT pg_describe_object(d.classid, d.objid, 0) FROM pg_depend d
			WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND d.deptype IN ('n', 'a')
			AND d.classid NOT IN ('pg_rewrite'::regclass, 'pg_proc'::regclass, 'pg_publication_rel'::regclass, 'pg_statistic_ext'::regclass)
			AND NOT (d.classid = 'pg_class'::regclass AND (d.deptype = 'a' OR d.objid IN (SELECT indexrelid FROM pg_index WHERE indrelid = $1)
				OR d.objid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1)))
			AND NOT (d.classid = 'pg_constraint'::regclass AND d.objid IN (SELECT oid FROM pg_constraint WHERE conrelid = $1 OR contype = 'f' AND confrelid = $1))
			AND NOT (d.classid = 'pg_trigger'::regclass AND d.objid IN (SELECT oid FROM pg_trigger WHERE tgrelid = $1))
			AND NOT (d.classid = 'pg_attrdef'::regclass AND d.objid IN (SELECT oid FROM pg_attrdef WHERE adrelid = $1))
			AND NOT (d.classid = 'pg_policy'::regclass AND d.objid IN (SELECT oid FROM pg_policy WHERE polrelid = $1))
			UNION SELECT pg_describe_object(d.classid, d.objid, 0) FROM pg_depend i
			JOIN pg_class q ON q.oid = i.objid AND q.relkind = 'S'
			JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = q.oid AND d.deptype = 'n'
			WHERE i.classid = 'pg_class'::regclass AND i.refclassid = 'pg_class'::regclass AND i.refobjid = $1 AND i.deptype = 'i'
			AND NOT (d.classid = 'pg_rewrite'::regclass AND d.objid IN (SELECT v.objid FROM pg_depend v
				WHERE v.classid = 'pg_rewrite'::regclass AND v.refclassid = 'pg_class'::regclass AND v.refobjid = $1))
			ORDER BY 1`, []any{oid}},
		{&f.OtherSchema, "extended statistics", `SELECT format('%I.%I', n.nspname, s.stxname) FROM pg_statistic_ext s
			JOIN pg_namespace n ON n.oid = s.stxnamespace
			WHERE s.stxrelid = $1 AND s.stxnamespace <> (SELECT relnamespace FROM pg_class WHERE oid = $1) ORDER BY 1`, []any{oid}},
		{&f.SelfForeignKeys, "foreign keys", `SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = $1 AND confrelid = $1 ORDER BY 1`, []any{oid}},
		{&f.PartitionedFKs, "foreign keys", `SELECT con.conname || ' on ' || con.conrelid::regclass::text FROM pg_constraint con
			JOIN pg_class c ON c.oid = con.conrelid
			WHERE con.contype = 'f' AND con.confrelid = $1 AND con.conrelid <> $1 AND (c.relkind = 'p' OR c.relispartition) ORDER BY 1`, []any{oid}},
		{&f.ForeignChildren, "foreign keys", `SELECT con.conname || ' on ' || con.conrelid::regclass::text || ' (owner ' || pg_get_userbyid(c.relowner) || ')'
			FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
			WHERE con.contype = 'f' AND con.confrelid = $1 AND con.conrelid <> $1 AND NOT pg_has_role(c.relowner, 'USAGE') ORDER BY 1`, []any{oid}},
	}
	if version >= 150000 {
		// As pg_dump spells them; osc's own publication has neither.
		lists = append(lists, list{&f.TablePubsReAdd, "publications", `SELECT format('ALTER PUBLICATION %I ADD TABLE %I.%I', p.pubname, n.nspname, c.relname)
				|| coalesce(' (' || (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.i)
					FROM unnest(r.prattrs::int2[]) WITH ORDINALITY k(num, i) JOIN pg_attribute a ON a.attrelid = r.prrelid AND a.attnum = k.num) || ')', '')
				|| coalesce(' WHERE (' || pg_get_expr(r.prqual, r.prrelid) || ')', '')
			FROM pg_publication p JOIN pg_publication_rel r ON r.prpubid = p.oid JOIN pg_class c ON c.oid = r.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE r.prrelid = $1 AND (r.prattrs IS NOT NULL OR r.prqual IS NOT NULL) ORDER BY 1`, []any{oid}})
		lists = append(lists, list{&f.SchemaPubs, "publications", `SELECT p.pubname FROM pg_publication p JOIN pg_publication_namespace s ON s.pnpubid = p.oid
			WHERE s.pnnspid = $1 ORDER BY 1`, []any{nsp}})
	}
	for _, l := range lists {
		if *l.dst, err = pgStrings(ctx, q, l.sql, l.args...); err != nil {
			return nil, fmt.Errorf("read %s: %w", l.what, err)
		}
	}
	// osc's own publication is reported as a leftover, not as a user's.
	f.TablePubs = pgWithout(f.TablePubs, n.Publication)

	err = q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1),
		EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $2 AND database = current_database()),
		coalesce((SELECT active_pid FROM pg_replication_slots WHERE slot_name = $2 AND database = current_database()), 0),
		coalesce((SELECT (pg_current_wal_insert_lsn() - restart_lsn)::int8 FROM pg_replication_slots
			WHERE slot_name = $2 AND database = current_database() AND NOT pg_is_in_recovery()), 0),
		EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = $3 AND relname = $4),
		EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = $3 AND relname = $5),
		coalesce((SELECT reltuples::int8 FROM pg_class WHERE relnamespace = $3 AND relname = $5), 0),
		EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = $3 AND relname = $6),
		EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = $3 AND relname = $7)`,
		n.Publication, n.Slot, nsp, n.Shadow, n.Old, n.Checkpoint, n.Aside).Scan(&f.LeftoverPub, &f.LeftoverSlot, &f.LeftoverSlotPID,
		&f.LeftoverSlotRetained, &f.LeftoverShadow, &f.LeftoverOld, &f.OldRows, &f.LeftoverCheckpoint, &f.LeftoverAside)
	if err != nil {
		return nil, fmt.Errorf("look for leftovers: %w", err)
	}
	if f.LeftoverCheckpoint {
		if f.CheckpointSaved, err = pgCheckpointSaved(ctx, q, n); err != nil {
			return nil, fmt.Errorf("look for leftovers: %w", err)
		}
	}
	return f, nil
}

func pgWithout(s []string, drop string) []string {
	out := s[:0:0]
	for _, v := range s {
		if v != drop {
			out = append(out, v)
		}
	}
	return out
}

// pgLongTransactions describes transactions open for more than a minute.
func pgLongTransactions(ctx context.Context, q PostgresQuerier) ([]string, error) {
	notes, err := pgStrings(ctx, q, `SELECT format('long transaction: pid %s (%s, %s) open for %s: %s',
			pid, coalesce(usename, backend_type), coalesce(state, ''), date_trunc('second', now() - xact_start),
			left(regexp_replace(coalesce(query, ''), '\s+', ' ', 'g'), 80))
		FROM pg_stat_activity WHERE xact_start < now() - interval '1 minute' AND pid <> pg_backend_pid()
		ORDER BY xact_start`)
	if err != nil {
		return nil, fmt.Errorf("read long transactions: %w", err)
	}
	if len(notes) > 0 {
		notes = append(notes,
			"change capture starts only once transactions open now have ended (creating a logical replication slot waits for them)",
			"long transactions holding locks on the table will hold the cut-over lock queue: the cut-over retries until they end")
	}
	return notes, nil
}

func pgSize(b int64) string {
	units := []string{"bytes", "kB", "MB", "GB", "TB"}
	v, u := float64(b), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d bytes", b)
	}
	return fmt.Sprintf("%.1f %s", v, units[u])
}
