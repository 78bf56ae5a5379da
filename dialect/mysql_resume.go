package dialect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
// binlog file the capture restarts in still exists. A cut-over sentry the
// killed run left stays until this run's cut-over (it keeps a rename of
// the killed run that may still wait on the server from ever running).
// When the killed run had swapped the tables (the shadow's name is gone,
// the table has the shadow's definition, the old table, if still there,
// the original's), the checkpoint says CutOver.
func (d *mysqlDialect) Resume(ctx context.Context) (*engine.Plan, *engine.Checkpoint, error) {
	if d.insp == nil {
		return nil, nil, errors.New("mysql: Resume before a successful Inspect")
	}
	schema, name := d.cfg.Schema, d.cfg.Table
	shadow, changelog, old := table.MySQLNames(name)
	const keep = "; nothing was changed"
	afresh := "run again without --resume and with --initially-drop-ghost-table to drop what is left and start afresh" + keep
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
	switch {
	case l.Old != "":
		return nil, nil, fmt.Errorf("%s.%s exists and is not osc's cut-over sentry: the killed run cannot have made it; check it and rename or drop it%s", schema, old, keep)
	case !slices.Contains(l.Ghost, changelog):
		return nil, nil, fmt.Errorf("the changelog table %s.%s of the killed run is gone: %s", schema, changelog, afresh)
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
	pos, err := cdc.ParseMySQLPos(ck.Position)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint: %w: %s", err, afresh)
	}
	logs, err := mysqlBinaryLogs(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(logs, pos.File) {
		return nil, nil, fmt.Errorf("the binlog file %s, where the checkpoint's capture restarts (%s), is no longer on the server (purged; it has %v): "+
			"the changes since cannot be read again, so the run cannot be resumed: %s", pos.File, ck.Position, logs, afresh)
	}
	plan, err := table.ResumeMySQLShadow(ctx, d.db, d.insp, row.TimeZone)
	if err != nil {
		return nil, nil, fmt.Errorf("the shadow table %s.%s: %w%s", schema, shadow, err, keep)
	}
	d.plan, d.from, d.sentry = plan, pos, l.Sentry != ""
	return enginePlan(plan), ck, nil
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
	// An --alter that leaves the definition as it was makes the table
	// look swapped; only the old table can tell then.
	swapped := cur == row.Shadow && l.Sentry == "" && (l.Old != "" || row.Shadow != row.Original)
	if swapped && l.Old != "" {
		def, err := table.MySQLDefinition(ctx, d.db, schema, old)
		if err != nil {
			return nil, nil, err
		}
		swapped = def == row.Original
	}
	if !swapped {
		return nil, nil, fmt.Errorf("nothing to resume on %s.%s: the shadow table %s is gone, and the tables were not swapped "+
			"(or it cannot be told: %s does not have the shadow's definition, or the --alter did not change it and %s is gone): %s",
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
	ck.CutOver = true
	return enginePlan(d.plan), ck, nil
}

// mysqlBinaryLogs lists the binlog files the server still has.
func mysqlBinaryLogs(ctx context.Context, d *mysqlDialect) ([]string, error) {
	rows, err := d.db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, fmt.Errorf("SHOW BINARY LOGS: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("SHOW BINARY LOGS: %w", err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		var name string
		vals[0] = &name
		for i := 1; i < len(vals); i++ {
			vals[i] = new(any)
		}
		if err := rows.Scan(vals...); err != nil {
			return nil, fmt.Errorf("SHOW BINARY LOGS: %w", err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("SHOW BINARY LOGS: %w", err)
	}
	return out, nil
}

// dropResumedSentry drops the cut-over sentry a killed run left, right
// before this run's cut-over makes its own; refused while a rename of the
// killed run still waits on the server (it would run once the sentry is
// gone).
func (d *mysqlDialect) dropResumedSentry(ctx context.Context, plan *table.Plan) error {
	if !d.sentry {
		return nil
	}
	id, err := table.MySQLQueuedRename(ctx, d.db, plan.Shadow.Name)
	if err != nil {
		return err
	}
	if id != 0 {
		return fmt.Errorf("a RENAME TABLE of the killed run's cut-over still waits on the server (session %d): KILL %d, then run again with --resume", id, id)
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
