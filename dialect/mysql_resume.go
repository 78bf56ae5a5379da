package dialect

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"osc/cdc"
	"osc/cutover"
	"osc/engine"
	"osc/table"
)

// mysqlCheckpoint is an engine.Checkpoint as the checkpoint table stores it
// (table.MySQLCheckpointRow.Checkpoint): the copy's watermark with its
// values' types (table.EncodeMySQLKey), the capture position as file:pos.
type mysqlCheckpoint struct {
	Version  string          `json:"version"`
	Alter    string          `json:"alter"`
	After    json.RawMessage `json:"after"`
	CopyDone bool            `json:"copy_done"`
	Position string          `json:"position"`
	Copied   int64           `json:"copied"`
	Applied  int64           `json:"applied"`
	Saved    time.Time       `json:"saved"`
}

func encodeMySQLCheckpoint(ck *engine.Checkpoint) (string, error) {
	after, err := table.EncodeMySQLKey(ck.After)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(mysqlCheckpoint{Version: ck.Version, Alter: ck.Alter, After: after, CopyDone: ck.CopyDone,
		Position: ck.Position, Copied: ck.Copied, Applied: ck.Applied, Saved: ck.Saved})
	if err != nil {
		return "", fmt.Errorf("encode checkpoint: %w", err)
	}
	return string(b), nil
}

func decodeMySQLCheckpoint(s string) (*engine.Checkpoint, error) {
	var c mysqlCheckpoint
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return nil, fmt.Errorf("decode checkpoint: %w", err)
	}
	after, err := table.DecodeMySQLKey(c.After)
	if err != nil {
		return nil, err
	}
	return &engine.Checkpoint{Version: c.Version, Alter: c.Alter, After: after, CopyDone: c.CopyDone,
		Position: c.Position, Copied: c.Copied, Applied: c.Applied, Saved: c.Saved}, nil
}

// SaveCheckpoint replaces the checkpoint in the checkpoint table (one
// UPDATE); the tables' definitions were stored when it was created.
func (d *mysqlDialect) SaveCheckpoint(ctx context.Context, ck *engine.Checkpoint) error {
	plan, err := d.made()
	if err != nil {
		return err
	}
	if ck.Position == "" {
		return errors.New("mysql: checkpoint without a binlog position")
	}
	s, err := encodeMySQLCheckpoint(ck)
	if err != nil {
		return err
	}
	return table.SaveMySQLCheckpoint(ctx, d.db, plan.Source.Schema, plan.Source.Name, s, ck.Saved)
}

// Resume takes up what a killed run of this migration left: its shadow,
// changelog and checkpoint table. It refuses, changing nothing, unless the
// run can continue exactly: the checkpoint table holds a checkpoint, both
// tables have the definitions they had when the shadow was made, the
// server's sql_mode and the conversions' time zone are the same, and the
// capture can restart at the checkpoint's position on this server
// (checkResumePosition); and no rename of the killed run's cut-over is
// queued on the server. A cut-over sentry the killed run left stays until
// this run's cut-over.
// When the killed run had swapped the tables (the shadow's name is gone,
// the table has the shadow's definition, the old table, if still there,
// the original's), the checkpoint says CutOver.
func (d *mysqlDialect) Resume(ctx context.Context) (*engine.Plan, *engine.Checkpoint, error) {
	if d.insp == nil && !d.cleanupOnly {
		return nil, nil, errors.New("mysql: Resume before a successful Inspect")
	}
	schema, name := d.cfg.Schema, d.cfg.Table
	shadow, changelog, old := table.MySQLNames(name)
	const keep = "; nothing was changed"
	afresh := "run again without --resume and with --initially-drop-ghost-table to drop what is left and start afresh" + keep
	// A RENAME of the killed run's cut-over still queued (its host lost, its
	// sessions linger: one holds LOCK TABLES, the rename waits behind it)
	// swaps the shadow in as soon as the lock goes, whatever this run has
	// done to the shadow by then, and the sentry that would make it fail may
	// be gone already. Refused before anything, whatever was left.
	if id, err := table.MySQLQueuedRename(ctx, d.db, d.cfg.Schema, shadow); err != nil {
		return nil, nil, err
	} else if id != 0 {
		return nil, nil, fmt.Errorf("a RENAME TABLE of the killed run's cut-over still waits on the server (session %d) and would swap the tables "+
			"as soon as it gets its lock: KILL %d (and the killed run's session that holds the lock on %s.%s, if its host is gone), "+
			"then run again with --resume%s", id, id, schema, name, keep)
	}
	l, err := table.FindMySQLLeftovers(ctx, d.db, schema, name)
	if err != nil {
		return nil, nil, err
	}
	row := l.Checkpoint
	switch {
	case row == nil && len(l.Ghost) == 0:
		return nil, nil, fmt.Errorf("nothing to resume on %s.%s: no osc run left anything (run without --resume to migrate it)%s", schema, name, keep)
	case row == nil:
		return nil, nil, fmt.Errorf("nothing to resume on %s.%s: the killed run left %v but no checkpoint table %s (it ran with --checkpoint=false, or died before making it): %s",
			schema, name, l.Ghost, table.MySQLCheckpointName(name), afresh)
	case row.Checkpoint == "":
		return nil, nil, fmt.Errorf("nothing to resume on %s.%s: the killed run saved no checkpoint (it died within --checkpoint-seconds of starting): %s", schema, name, afresh)
	}
	ck, err := decodeMySQLCheckpoint(row.Checkpoint)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s", err, afresh)
	}
	if !slices.Contains(l.Ghost, shadow) {
		return d.resumeSwapped(ctx, l, row, ck, afresh)
	}
	if d.insp == nil {
		// Inspect found the shadow gone; under the advisory lock no osc
		// made it since.
		return nil, nil, fmt.Errorf("the shadow table %s.%s appeared since osc inspected %s.%s: run again with --resume%s", schema, shadow, schema, name, keep)
	}
	switch {
	case l.Old != "":
		return nil, nil, fmt.Errorf("%s.%s exists and is not osc's cut-over sentry: the killed run cannot have made it; check it and rename or drop it%s", schema, old, keep)
	case !slices.Contains(l.Ghost, changelog):
		return nil, nil, fmt.Errorf("the changelog table %s.%s of the killed run is gone: %s", schema, changelog, afresh)
	}
	// A run killed in its cut-over between adding the carried foreign keys
	// and triggers to the shadow and the swap left them there: they belong
	// on the shadow only while writes are blocked (cutover/mysql_fk.go,
	// cutover/mysql_trigger.go); a trigger would fire for the applier.
	if err := d.dropShadowForeignKeys(ctx, schema, shadow); err != nil {
		return nil, nil, err
	}
	if err := d.dropShadowTriggers(ctx, schema, shadow); err != nil {
		return nil, nil, err
	}
	for _, t := range []struct{ name, saved, what string }{{name, row.Original, "table"}, {shadow, row.Shadow, "shadow table"}} {
		def, err := table.MySQLDefinition(ctx, d.db, schema, t.name)
		if err != nil {
			return nil, nil, err
		}
		if def != t.saved {
			return nil, nil, fmt.Errorf("the definition of the %s %s.%s changed since the killed run made the shadow, which it cannot have done itself "+
				"(now:\n%s\nthen:\n%s): %s", t.what, schema, t.name, def, t.saved, afresh)
		}
	}
	if z := d.insp.TimeZone; z != "" && z != row.TimeZone {
		return nil, nil, fmt.Errorf("the killed run converted times in the zone %q, not %q: resume with --time-zone %q%s", row.TimeZone, z, row.TimeZone, keep)
	}
	var mode string
	if err := d.db.QueryRowContext(ctx, "SELECT @@global.sql_mode").Scan(&mode); err != nil {
		return nil, nil, fmt.Errorf("read the server's sql_mode: %w", err)
	}
	if mode != row.SQLMode {
		return nil, nil, fmt.Errorf("the server's sql_mode is %q, the killed run's was %q, and the copy's conversions depend on it: "+
			"set it back to resume, or %s", mode, row.SQLMode, afresh)
	}
	pos, err := d.checkResumePosition(ctx, row, ck, afresh)
	if err != nil {
		return nil, nil, err
	}
	plan, err := table.ResumeMySQLShadow(ctx, d.db, d.insp, row.TimeZone, row.Created)
	if err != nil {
		return nil, nil, fmt.Errorf("the shadow table %s.%s: %w%s", schema, shadow, err, keep)
	}
	// The rows the new unique keys turned away wait in the aside table,
	// which the killed run made with the shadow and wrote in the same
	// transactions: the shadow without it is not the killed run's.
	aside, err := table.NewMySQLAside(plan)
	if err != nil {
		return nil, nil, err
	}
	if aside != nil && !slices.Contains(l.Ghost, table.MySQLAsideName(name)) {
		return nil, nil, fmt.Errorf("the aside table %s.%s of the killed run, where the rows its new unique key turned away wait, is gone: %s",
			schema, table.MySQLAsideName(name), afresh)
	}
	d.aside, d.asideLeft = aside, slices.Contains(l.Ghost, table.MySQLAsideName(name))
	d.plan, d.from, d.sentry = plan, pos, l.Sentry != ""
	return enginePlan(plan), ck, nil
}

// shadowGone reports whether a killed run of this migration left its
// checkpoint table but no shadow: it swapped the tables, or lost the
// shadow (resumeSwapped tells which).
func (d *mysqlDialect) shadowGone(ctx context.Context) (bool, error) {
	l, err := table.FindMySQLLeftovers(ctx, d.db, d.cfg.Schema, d.cfg.Table)
	if err != nil {
		return false, err
	}
	shadow, _, _ := table.MySQLNames(d.cfg.Table)
	return l.Checkpoint != nil && !slices.Contains(l.Ghost, shadow), nil
}

// resumeSwapped is Resume when the shadow's name is gone: the killed run
// either swapped the tables or lost the shadow.
func (d *mysqlDialect) resumeSwapped(ctx context.Context, l *table.MySQLLeftovers, row *table.MySQLCheckpointRow, ck *engine.Checkpoint, afresh string) (*engine.Plan, *engine.Checkpoint, error) {
	schema, name := d.cfg.Schema, d.cfg.Table
	shadow, changelog, old := table.MySQLNames(name)
	cur, err := table.MySQLDefinition(ctx, d.db, schema, name)
	if err != nil {
		return nil, nil, err
	}
	// The definitions are compared without their foreign keys: the swapped
	// table has those the cut-over carried (under their planned names, or
	// their own once the cleanup gave them back), and the old table may
	// have lost its own to the cleanup.
	bare := table.MySQLDefinitionWithoutForeignKeys
	// An --alter that leaves the definition as it was (but for its
	// foreign keys: one that only drops some) makes the table look
	// swapped; only the old table can tell then, or, once it is dropped,
	// a carried foreign key or trigger still under its planned name: the
	// table cannot have had one before the swap (the inspection refuses a
	// planned name taken in the schema).
	swapped := bare(cur) == bare(row.Shadow) && l.Sentry == "" && l.Old != ""
	if !swapped && bare(cur) == bare(row.Shadow) && l.Sentry == "" {
		if bare(row.Shadow) != bare(row.Original) {
			swapped = true
		} else if swapped, err = d.hasPlannedNames(ctx, schema, name, row.Carried); err != nil {
			return nil, nil, err
		}
	}
	if swapped && l.Old != "" {
		def, err := table.MySQLDefinition(ctx, d.db, schema, old)
		if err != nil {
			return nil, nil, err
		}
		swapped = bare(def) == bare(row.Original)
	}
	if !swapped {
		return nil, nil, fmt.Errorf("nothing to resume on %s.%s: the shadow table %s is gone, and the tables were not swapped "+
			"(or it cannot be told: %s does not have the shadow's definition, or the --alter did not change it but for its foreign keys, "+
			"%s is gone and no carried foreign key or trigger is under its planned name): %s",
			schema, name, shadow, name, old, afresh)
	}
	d.plan = &table.Plan{
		Source:  &table.Table{Schema: schema, Name: name},
		Shadow:  &table.Table{Schema: schema, Name: shadow},
		OldName: old,
	}
	if slices.Contains(l.Ghost, changelog) {
		d.plan.ChangelogName = changelog
	}
	d.asideLeft = slices.Contains(l.Ghost, table.MySQLAsideName(name))
	d.carried = row.Carried
	ck.CutOver = true
	return enginePlan(d.plan), ck, nil
}

// hasPlannedNames reports whether schema.name has a foreign key or trigger
// under one of the planned names carried keeps (nil: none known).
func (d *mysqlDialect) hasPlannedNames(ctx context.Context, schema, name string, carried *table.MySQLCarriedNames) (bool, error) {
	if carried == nil {
		return false, nil
	}
	fks, err := table.ReadMySQLForeignKeys(ctx, d.db, schema, name)
	if err != nil {
		return false, err
	}
	for _, f := range fks {
		if _, ok := carried.ForeignKeys[f.Name]; ok {
			return true, nil
		}
	}
	trgs, err := table.ReadMySQLTriggers(ctx, d.db, schema, name)
	if err != nil {
		return false, err
	}
	for _, t := range trgs {
		if _, ok := carried.Triggers[t.Name]; ok {
			return true, nil
		}
	}
	return false, nil
}

// checkResumePosition returns where the resumed capture restarts, ck's
// position, once it is sure that it is a place in this server's binlog
// where an event starts: the checkpoint was saved on this server (after a
// failover, the promoted replica's binlog files may have the same names,
// but other contents at other offsets), the file is still there, and an
// event starts at the offset (or the file ends there). All this before
// anything is accepted: a resumed run that fails later cleans up, dropping
// the killed run's work.
func (d *mysqlDialect) checkResumePosition(ctx context.Context, row *table.MySQLCheckpointRow, ck *engine.Checkpoint, afresh string) (cdc.MySQLPos, error) {
	pos, err := cdc.ParseMySQLPos(ck.Position)
	if err != nil {
		return pos, fmt.Errorf("checkpoint: %w: %s", err, afresh)
	}
	srv, err := table.ReadMySQLServerIdentity(ctx, d.db)
	if err != nil {
		return pos, err
	}
	if srv != row.Server {
		return pos, fmt.Errorf("the killed run read the binlog of another server (%s; this one is %s), and its checkpoint's position %s "+
			"names a place in that server's binlog only (after a failover, the promoted replica's binlog has other contents at other offsets): "+
			"resume against that server if it is still the primary, or %s", row.Server, srv, ck.Position, afresh)
	}
	logs, err := mysqlBinaryLogs(ctx, d.db)
	if err != nil {
		return pos, err
	}
	i := slices.IndexFunc(logs, func(f mysqlBinlogFile) bool { return f.name == pos.File })
	if i < 0 {
		names := make([]string, len(logs))
		for i, f := range logs {
			names[i] = f.name
		}
		return pos, fmt.Errorf("the binlog file %s, where the checkpoint's capture restarts (%s), is no longer on the server (purged; it has %v): "+
			"the changes since cannot be read again, so the run cannot be resumed: %s", pos.File, ck.Position, names, afresh)
	}
	if err := mysqlEventStart(ctx, d.db, pos, logs[i].size); err != nil {
		return pos, fmt.Errorf("the checkpoint's position %s is no place in this server's binlog where the capture can restart (%v): "+
			"the binlog was reset or rewritten since the killed run, so the run cannot be resumed: %s", ck.Position, err, afresh)
	}
	return pos, nil
}

// mysqlEventStart checks that an event of the binlog file pos.File (size
// bytes when listed) starts at pos.Pos, or the file ends there.
func mysqlEventStart(ctx context.Context, db *sql.DB, pos cdc.MySQLPos, size uint64) error {
	if uint64(pos.Pos) > size {
		return fmt.Errorf("the file has %d bytes", size)
	}
	if strings.ContainsAny(pos.File, `'\`) {
		return fmt.Errorf("file name %q", pos.File)
	}
	q := fmt.Sprintf("SHOW BINLOG EVENTS IN '%s' FROM %d LIMIT 1", pos.File, pos.Pos) //nolint:gosec // G201: the file name is checked above to hold no quote or backslash; the offset is a number
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	if !rows.Next() {
		// The file ends there (it grew since it was listed, or not).
		return rows.Err()
	}
	cols, err := rows.Columns()
	if err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	vals := make([]any, len(cols))
	var at uint64
	for i := range vals {
		vals[i] = new(any)
	}
	vals[1] = &at // Log_name, Pos, Event_type, …
	if err := rows.Scan(vals...); err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	if at != uint64(pos.Pos) {
		return fmt.Errorf("%s: the event there starts at %d", q, at)
	}
	return rows.Err()
}

// mysqlBinlogFile is a binlog file the server still has.
type mysqlBinlogFile struct {
	name string
	size uint64
}

// mysqlBinaryLogs lists the binlog files the server still has.
func mysqlBinaryLogs(ctx context.Context, db *sql.DB) ([]mysqlBinlogFile, error) {
	rows, err := db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, fmt.Errorf("SHOW BINARY LOGS: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("SHOW BINARY LOGS: %w", err)
	}
	var out []mysqlBinlogFile
	for rows.Next() {
		vals := make([]any, len(cols))
		var f mysqlBinlogFile
		vals[0], vals[1] = &f.name, &f.size // Log_name, File_size, …
		for i := 2; i < len(vals); i++ {
			vals[i] = new(any)
		}
		if err := rows.Scan(vals...); err != nil {
			return nil, fmt.Errorf("SHOW BINARY LOGS: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("SHOW BINARY LOGS: %w", err)
	}
	return out, nil
}

// dropResumedSentry drops the cut-over sentry a killed run left, right
// before this run's cut-over makes its own. Resume refused any rename of
// the killed run still queued, and a dead run issues no new one; should
// one wait on the server all the same, it would run once the sentry is
// gone, so the cut-over is refused (and this run, failed, cleans up: the
// rename then fails on the missing shadow).
func (d *mysqlDialect) dropResumedSentry(ctx context.Context, plan *table.Plan) error {
	if !d.sentry {
		return nil
	}
	id, err := table.MySQLQueuedRename(ctx, d.db, plan.Source.Schema, plan.Shadow.Name)
	if err != nil {
		return err
	}
	if id != 0 {
		return fmt.Errorf("a RENAME TABLE that this run did not issue waits on the server (session %d) and would swap the tables once the "+
			"killed run's cut-over sentry %s.%s is dropped: the cut-over is refused and this run cleans up as a failed one; KILL %d before migrating again",
			id, plan.Source.Schema, plan.OldName, id)
	}
	if err := cutover.DropMySQLSentry(ctx, d.db, plan.Source.Schema, plan.OldName); err != nil {
		return err
	}
	d.log.Info("dropped the cut-over sentry the killed run left", "table", plan.Source.Schema+"."+plan.OldName)
	d.sentry = false
	return nil
}

// initiallyDrop carries out --initially-drop-ghost-table (what a killed run
// of this migration left) and --initially-drop-old-table (the old table an
// earlier migration kept), with --execute only. The advisory lock is held:
// no osc owns them.
func (d *mysqlDialect) initiallyDrop(ctx context.Context) error {
	dropOld := d.cfg.InitiallyDropOld
	if dropOld && d.cfg.Resume {
		// The old table is then the killed run's, which Resume judges.
		d.log.Warn("--initially-drop-old-table is ignored with --resume")
		dropOld = false
	}
	if !d.cfg.InitiallyDropShadow && !dropOld {
		return nil
	}
	schema, name := d.cfg.Schema, d.cfg.Table
	l, err := table.FindMySQLLeftovers(ctx, d.db, schema, name)
	if err != nil {
		return err
	}
	if !d.cfg.Execute {
		// A dry run changes nothing: it says what would go, and then
		// refuses the leftovers as without the flags.
		if d.cfg.InitiallyDropShadow && len(l.Ghost) > 0 {
			d.log.Info("dry run (--noop): --initially-drop-ghost-table would drop what a killed run left", "tables", l.Ghost)
		}
		if dropOld && l.Old != "" {
			d.log.Info("dry run (--noop): --initially-drop-old-table would drop the old table an earlier migration kept",
				"table", schema+"."+l.Old, "estimated rows", l.OldRows)
		}
		return nil
	}
	if d.cfg.InitiallyDropShadow {
		// The shadow first: a rename of the killed run's cut-over that may
		// still wait on the server then fails without it.
		shadow, _, _ := table.MySQLNames(name)
		order := slices.Clone(l.Ghost)
		slices.SortStableFunc(order, func(a, b string) int {
			switch {
			case a == shadow:
				return -1
			case b == shadow:
				return 1
			}
			return 0
		})
		for _, n := range order {
			if n == l.Sentry {
				err = cutover.DropMySQLSentry(ctx, d.db, schema, n)
			} else {
				err = table.DropMySQLTable(ctx, d.db, schema, n)
			}
			if err != nil {
				return fmt.Errorf("--initially-drop-ghost-table: %w", err)
			}
			d.log.Info("--initially-drop-ghost-table: dropped what a killed run left", "table", schema+"."+n)
		}
	}
	if dropOld && l.Old != "" {
		if err := table.DropMySQLTable(ctx, d.db, schema, l.Old); err != nil {
			return fmt.Errorf("--initially-drop-old-table: %w", err)
		}
		d.log.Info("--initially-drop-old-table: dropped the old table an earlier migration kept", "table", schema+"."+l.Old, "estimated rows", l.OldRows)
	}
	return nil
}
