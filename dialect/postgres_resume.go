package dialect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"osc/cdc"
	"osc/engine"
	"osc/table"
	"osc/throttle"
)

// Resume on PostgreSQL. A run with checkpoints keeps its change capture in a
// permanent replication slot and saves, every few seconds, the engine's
// checkpoint into the bookkeeping table _<t>_osk (table.SavePostgresCheckpoint)
// with the descriptions of the shadow and the original. The slot is
// confirmed only up to the last saved checkpoint's position
// (cdc.PostgresSource.Saved), so a killed run's slot can stream again every
// change from there. Resume checks that nothing changed, plans the shadow
// again (table.RebuildPostgresShadow) and starts the capture from the
// checkpoint's position in the same slot and publication.
//
// What the killed applier held in memory is not needed. Its source reads
// ahead of the stream (moves, see apply.Postgres.move) matter only to a move
// made within the shadow, which the resumed applier does only once told
// CopyDone, and the engine tells it that only after draining every change
// committed before then: past every position such a read of the killed run
// saw, which makes the applier forget the read anyway. Until then moves read
// the source, as during any copy. Changes from the checkpoint's position are
// applied again, each apply being idempotent (an upsert of the row image,
// or a delete by key); the replay of a chunk the killed run copied past the
// checkpoint's watermark is redone by applying every change from the
// position paired with that watermark (engine.Checkpoint).

// slotIdleWait bounds how long Resume waits for the killed run's walsender
// to let go of the slot (the server notices the closed connection).
const slotIdleWait = 10 * time.Second

// pgCheckpoint is the saved form of an engine.Checkpoint. The copy's
// watermark is the PostgreSQL copier's own: the key's text forms (strings),
// which it reads back as the source key's types.
type pgCheckpoint struct {
	Version  string    `json:"version"`
	Alter    string    `json:"alter"`
	HasAfter bool      `json:"has_after"`
	After    []string  `json:"after"`
	CopyDone bool      `json:"copy_done"`
	Position string    `json:"position"`
	Copied   int64     `json:"copied"`
	Applied  int64     `json:"applied"`
	Saved    time.Time `json:"saved"`
	// Publication is the capture's publication's identity when the
	// capture started (cdc.ReadPostgresPublicationID).
	Publication string `json:"publication"`
	// Partitions are a partitioned table's partitions as the killed run's
	// inspection found them (table.PostgresPartition.Fingerprint), sorted.
	Partitions []string `json:"partitions,omitempty"`
	// Definition describes the original as the killed run's shadow was
	// made from it (table.PostgresShadow.SourceDefinition): a change since,
	// which the shadow does not have, refuses the resume, and the resumed
	// cut-over compares with it, not with the definition at the resume.
	Definition string `json:"definition,omitempty"`
	// EnumLabels are the values of the enum types the columns hold, as the
	// killed run read them before its capture started
	// (table.PostgresShadow.EnumLabels): one renamed since refuses the
	// resume, and the resumed cut-over checks them again.
	EnumLabels []table.PostgresEnumLabel `json:"enum_labels,omitempty"`
}

func encodePostgresCheckpoint(ck *engine.Checkpoint, publication string, sh *table.PostgresShadow) (string, error) {
	c := pgCheckpoint{Version: ck.Version, Alter: ck.Alter, HasAfter: ck.After != nil, CopyDone: ck.CopyDone,
		Position: ck.Position, Copied: ck.Copied, Applied: ck.Applied, Saved: ck.Saved, Publication: publication}
	if sh != nil {
		c.Partitions, c.Definition, c.EnumLabels = table.PostgresPartitionFingerprints(sh.Partitions), sh.SourceDefinition, sh.EnumLabels
	}
	for i, v := range ck.After {
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("checkpoint: key value %d of the copy's watermark is a %T, not the copier's text form", i, v)
		}
		c.After = append(c.After, s)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	return string(b), nil
}

func decodePostgresCheckpoint(data string) (*engine.Checkpoint, error) {
	c, err := unmarshalPostgresCheckpoint(data)
	if err != nil {
		return nil, err
	}
	ck := &engine.Checkpoint{Version: c.Version, Alter: c.Alter, CopyDone: c.CopyDone, Position: c.Position,
		Copied: c.Copied, Applied: c.Applied, Saved: c.Saved}
	if c.HasAfter {
		ck.After = make([]any, len(c.After))
		for i, s := range c.After {
			ck.After[i] = s
		}
	}
	return ck, nil
}

func unmarshalPostgresCheckpoint(data string) (*pgCheckpoint, error) {
	var c pgCheckpoint
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		return nil, fmt.Errorf("the saved checkpoint is unreadable: %w", err)
	}
	return &c, nil
}

// SaveCheckpoint replaces the checkpoint in one statement (the engine then
// lets the source confirm the slot up to its position: Source.Saved), with
// the identity the publication had when the capture started.
func (d *postgresDialect) SaveCheckpoint(ctx context.Context, ck *engine.Checkpoint) error {
	if d.pool == nil {
		return errors.New("postgres: SaveCheckpoint before a successful Inspect")
	}
	if d.src == nil || d.src.PublicationID() == "" {
		return errors.New("postgres: SaveCheckpoint before the change capture started")
	}
	data, err := encodePostgresCheckpoint(ck, d.src.PublicationID(), d.shadow)
	if err != nil {
		return err
	}
	return table.SavePostgresCheckpoint(ctx, d.pool, d.names, ck.Saved, data)
}

// Resume takes up what a killed run of this migration left; see the
// comment at the top of the file. Every refusal changes nothing.
func (d *postgresDialect) Resume(ctx context.Context) (*engine.Plan, *engine.Checkpoint, error) {
	if d.insp == nil && !d.cleanupOnly {
		return nil, nil, errors.New("postgres: Resume before a successful Inspect")
	}
	n := d.names
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("postgres: cannot resume the migration of %s.%s: %s; nothing was changed "+
			"(to start afresh instead, run without --resume and with --initially-drop-ghost-table)", n.Schema, n.Table, fmt.Sprintf(format, args...))
	}
	left, err := table.ReadPostgresLeftover(ctx, d.pool, n)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case !left.CheckpointTable:
		return nil, nil, refuse("nothing to resume: there is no checkpoint table %s.%s (no run of this migration with checkpoints was killed)", n.Schema, n.Checkpoint)
	case left.Checkpoint == nil:
		return nil, nil, refuse("the killed run saved no checkpoint (it was killed within its first --checkpoint-seconds)")
	}
	ck, err := decodePostgresCheckpoint(left.Checkpoint.Checkpoint)
	if err != nil {
		return nil, nil, refuse("%v", err)
	}
	if !left.Shadow {
		if !left.Old {
			return nil, nil, refuse("nothing to resume: the shadow table %s.%s is gone", n.Schema, n.Shadow)
		}
		// The cut-over swapped the tables in one transaction: the new table
		// has the original's name, the old one _<t>_old; only cleaning up
		// is left, once the killed run's walsender let go of the slot
		// (Cleanup drops it).
		if err := d.waitSlotIdle(ctx); err != nil {
			return nil, nil, err
		}
		if err := d.warnNotValid(ctx); err != nil {
			return nil, nil, err
		}
		plan := &table.Plan{Source: &table.Table{Schema: n.Schema, Name: n.Table}, Shadow: &table.Table{Schema: n.Schema, Name: n.Shadow}, OldName: n.Old}
		d.shadow = &table.PostgresShadow{Plan: plan}
		d.resumedCutOver = true
		ck.CutOver = true
		return enginePlan(plan), ck, nil
	}
	if d.insp == nil {
		// Inspect found the shadow gone; under the advisory lock no osc
		// made it since.
		return nil, nil, refuse("the shadow table %s.%s appeared since osc inspected %s.%s: run again with --resume", n.Schema, n.Shadow, n.Schema, n.Table)
	}
	if err := d.checkPartitions(left.Checkpoint.Checkpoint); err != nil {
		return nil, nil, refuse("%v", err)
	}
	if ck.Position == "" {
		return nil, nil, refuse("the checkpoint has no capture position")
	}
	orig, err := table.DescribePostgresTable(ctx, d.pool, n.Schema, n.Table)
	if err != nil {
		return nil, nil, err
	}
	if orig != left.Checkpoint.Original {
		return nil, nil, refuse("table %s.%s changed since the checkpoint: %s", n.Schema, n.Table, table.FirstDescriptionDifference(left.Checkpoint.Original, orig))
	}
	saved, err := unmarshalPostgresCheckpoint(left.Checkpoint.Checkpoint)
	if err != nil {
		return nil, nil, refuse("%v", err)
	}
	if saved.Definition != "" {
		// The descriptions saved with each checkpoint are as of that save:
		// a comment, statistics target, trigger, statistics object… added
		// to the original after the shadow was made would pass them, and
		// the new table would silently lack it.
		def, err := table.DescribePostgresDefinition(ctx, d.pool, n.Schema, n.Table)
		if err != nil {
			return nil, nil, err
		}
		if def != saved.Definition {
			return nil, nil, refuse("table %s.%s changed since the killed run made the shadow from it (%s), which the shadow would not have",
				n.Schema, n.Table, table.FirstDescriptionDifference(saved.Definition, def))
		}
	}
	// A value renamed while no osc ran: the rows copied and the changes
	// captured before carry the old label.
	if err := table.CheckPostgresEnumLabels(ctx, d.pool, saved.EnumLabels); err != nil {
		return nil, nil, refuse("%v", err)
	}
	shadow, err := table.DescribePostgresTable(ctx, d.pool, n.Schema, n.Shadow)
	if err != nil {
		return nil, nil, err
	}
	// The indexes built after the copy may have been built since the
	// checkpoint; RebuildPostgresShadow compares them exactly.
	if table.WithoutPlainIndexes(shadow) != table.WithoutPlainIndexes(left.Checkpoint.Shadow) {
		return nil, nil, refuse("the shadow table %s.%s changed since the checkpoint: %s", n.Schema, n.Shadow, table.FirstDescriptionDifference(left.Checkpoint.Shadow, shadow))
	}
	capture := cdc.PostgresConfig{DSN: d.opts.DSN, Slot: n.Slot, Publication: n.Publication, Permanent: true, ResumeFrom: ck.Position}
	if err := d.waitSlotIdle(ctx); err != nil {
		return nil, nil, err
	}
	if _, err := cdc.CheckPostgresResume(ctx, d.pool, capture, n.Schema, n.Table); err != nil {
		return nil, nil, refuse("%v", err)
	}
	if err := d.checkPublicationID(ctx, left.Checkpoint.Checkpoint); err != nil {
		return nil, nil, refuse("%v", err)
	}
	sh, err := table.RebuildPostgresShadow(ctx, d.pool, d.insp, d.cfg.Alter, d.cfg.CutOverLockTimeout)
	if err != nil {
		return nil, nil, refuse("%v", err)
	}
	slot, err := cdc.ReadPostgresSlot(ctx, d.pool, n.Slot)
	if err != nil {
		return nil, nil, err
	}
	d.log.Info("resuming from the killed run's replication slot", "slot", n.Slot, "from", ck.Position, "confirmed", slot.Confirmed.String(),
		"retained WAL", throttle.FormatBytes(slot.Retained))
	if saved.Definition != "" {
		sh.SourceDefinition = saved.Definition
	}
	sh.EnumLabels = saved.EnumLabels
	d.shadow = sh
	d.resumeFrom, d.resumed = ck.Position, true
	return enginePlan(sh.Plan), ck, nil
}

// checkPartitions checks that a partitioned table's partitions are those
// the killed run's inspection found: the same oids and names, storage, and
// the transactions that attached them. Rows that a partition's own TRUNCATE
// removes, or that arrive or leave with ATTACH or DETACH PARTITION, are not
// published through the table, so such a change while no osc ran would not
// reach the new table; the resumed run's cut-over compares the partitions
// with its own inspection, which this makes the killed run's.
func (d *postgresDialect) checkPartitions(data string) error {
	c, err := unmarshalPostgresCheckpoint(data)
	if err != nil {
		return err
	}
	now := table.PostgresPartitionFingerprints(d.insp.Partitions)
	if slices.Equal(now, c.Partitions) {
		return nil
	}
	if len(c.Partitions) == 0 {
		return fmt.Errorf("%s.%s is partitioned, and the checkpoint does not list its partitions (an osc that did not resume partitioned tables saved it): "+
			"a partition truncated, attached or detached since would go unnoticed", d.names.Schema, d.names.Table)
	}
	return fmt.Errorf("the partitions of %s.%s changed since the killed run inspected them (a partition truncated, attached, detached, renamed, or rewritten by VACUUM FULL or CLUSTER: "+
		"oid, name, relfilenode and attaching transaction then %s; now %s): rows that arrive or leave so are not published through the table, and the new table would miss them",
		d.names.Schema, d.names.Table, strings.Join(c.Partitions, ", "), strings.Join(now, ", "))
}

// checkPublicationID checks that the publication is the one, publishing the
// table through the same entry, that the killed run's capture started with:
// the check of what it publishes now (CheckPostgresResume) says nothing of
// the time between the kill and now, in which the table may have been out of
// it, its changes then never published (cdc.ReadPostgresPublicationID).
func (d *postgresDialect) checkPublicationID(ctx context.Context, data string) error {
	c, err := unmarshalPostgresCheckpoint(data)
	if err != nil {
		return err
	}
	now, err := cdc.ReadPostgresPublicationID(ctx, d.pool, d.names.Publication, d.names.Schema, d.names.Table)
	if err != nil {
		return err
	}
	if c.Publication == "" || now != c.Publication {
		return fmt.Errorf("publication %s is not the one the killed run's capture started with (publication/entry oids %s then, %s now): "+
			"it was made again, or %s.%s was dropped from it and added back, and changes committed meanwhile were never published",
			d.names.Publication, c.Publication, now, d.names.Schema, d.names.Table)
	}
	return nil
}

// warnNotValid names the foreign keys of the migrated table, or referencing
// it, that are NOT VALID: the killed run may have swapped the tables without
// validating those the cut-over adds NOT VALID and validates right after
// (cutover.PostgresNotValidError); some may be NOT VALID on purpose, as the
// original had them.
func (d *postgresDialect) warnNotValid(ctx context.Context) error {
	rows, err := d.pool.Query(ctx, `SELECT format('ALTER TABLE %s VALIDATE CONSTRAINT %I', c.conrelid::regclass, c.conname)
		FROM pg_constraint c WHERE c.contype = 'f' AND NOT c.convalidated AND to_regclass($1) IN (c.conrelid, c.confrelid) ORDER BY 1`,
		table.QuotePostgres(d.names.Schema, d.names.Table))
	if err != nil {
		return fmt.Errorf("postgres: read foreign keys not validated: %w", err)
	}
	stmts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("postgres: read foreign keys not validated: %w", err)
	}
	if len(stmts) > 0 {
		d.log.Warn("foreign keys of the migrated table are NOT VALID (checking new rows only): the killed run may have swapped the tables before validating them; "+
			"unless the original had them NOT VALID, validate them", "statements", strings.Join(stmts, "; "))
	}
	return nil
}

// waitSlotIdle waits, at most slotIdleWait, until nothing streams from the
// slot: a killed run's walsender exits once the server notices the closed
// connection. A slot still in use is left to CheckPostgresResume to refuse.
func (d *postgresDialect) waitSlotIdle(ctx context.Context) error {
	deadline := time.Now().Add(slotIdleWait)
	for {
		s, err := cdc.ReadPostgresSlot(ctx, d.pool, d.names.Slot)
		if err != nil || !s.Active || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// initiallyDrop drops, when asked and with --execute, what a killed run of
// this migration left (--initially-drop-ghost-table: slot, publication,
// shadow, checkpoint table; a slot in use is refused before anything is
// dropped) and the old table an earlier migration kept
// (--initially-drop-old-table). A dry run drops nothing: it says what would
// go, and Inspect then refuses the leftovers as without the flags. The
// advisory lock is held: no live osc owns them.
func (d *postgresDialect) initiallyDrop(ctx context.Context) error {
	dropOld := d.cfg.InitiallyDropOld
	if dropOld && d.cfg.Resume {
		// The old table is then the killed run's (it swapped the tables),
		// which Resume judges.
		d.log.Warn("--initially-drop-old-table is ignored with --resume")
		dropOld = false
	}
	if !d.cfg.InitiallyDropShadow && !dropOld {
		return nil
	}
	if !d.cfg.Execute {
		return d.wouldDrop(ctx, dropOld)
	}
	if d.cfg.InitiallyDropShadow {
		dropped, err := cdc.DropPostgresCapture(ctx, d.pool, d.names.Slot, d.names.Publication)
		if err == nil {
			// A run killed in its revert window leaves the reverse
			// capture's publication (its slot is temporary).
			var rev []string
			rev, err = cdc.DropPostgresCapture(ctx, d.pool, d.names.ReverseCapture(), d.names.ReverseCapture())
			dropped = append(dropped, rev...)
		}
		for _, what := range dropped {
			d.log.Info("--initially-drop-ghost-table: dropped what a killed run left: " + what)
		}
		if err != nil {
			return fmt.Errorf("postgres: --initially-drop-ghost-table: %w", err)
		}
		tables, err := table.DropPostgresRunTables(ctx, d.pool, d.names)
		for _, what := range tables {
			d.log.Info("--initially-drop-ghost-table: dropped what a killed run left: " + what)
		}
		if err != nil {
			return fmt.Errorf("postgres: --initially-drop-ghost-table: %w", err)
		}
		if len(dropped)+len(tables) == 0 {
			d.log.Info("--initially-drop-ghost-table: no killed run of this migration left anything")
		}
	}
	if dropOld {
		rows, dropped, err := table.DropPostgresOld(ctx, d.pool, d.names)
		if err != nil {
			return fmt.Errorf("postgres: --initially-drop-old-table: %w", err)
		}
		if dropped {
			d.log.Info("--initially-drop-old-table: dropped the old table an earlier migration kept", "table", d.names.Schema+"."+d.names.Old, "estimated rows", rows)
		} else {
			d.log.Info("--initially-drop-old-table: there is no old table", "table", d.names.Schema+"."+d.names.Old)
		}
	}
	return nil
}

// wouldDrop logs what initiallyDrop would drop, in a dry run.
func (d *postgresDialect) wouldDrop(ctx context.Context, dropOld bool) error {
	n := d.names
	left, err := table.ReadPostgresLeftover(ctx, d.pool, n)
	if err != nil {
		return err
	}
	if d.cfg.InitiallyDropShadow {
		var what []string
		slot, err := cdc.ReadPostgresSlot(ctx, d.pool, n.Slot)
		if err != nil {
			return err
		}
		if slot.Exists {
			what = append(what, fmt.Sprintf("replication slot %s (retains %s)", n.Slot, throttle.FormatBytes(slot.Retained)))
		}
		var pub bool
		if err := d.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", n.Publication).Scan(&pub); err != nil {
			return fmt.Errorf("postgres: look for publication %s: %w", n.Publication, err)
		}
		if pub {
			what = append(what, "publication "+n.Publication)
		}
		if err := d.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", n.ReverseCapture()).Scan(&pub); err != nil {
			return fmt.Errorf("postgres: look for publication %s: %w", n.ReverseCapture(), err)
		}
		if pub {
			what = append(what, "publication "+n.ReverseCapture()+" (a revert window's)")
		}
		if left.Shadow {
			what = append(what, "shadow table "+n.Schema+"."+n.Shadow)
		}
		if left.Aside {
			what = append(what, "table of rows set aside "+n.Schema+"."+n.Aside)
		}
		if left.CheckpointTable {
			what = append(what, "checkpoint table "+n.Schema+"."+n.Checkpoint)
		}
		if len(what) > 0 {
			d.log.Info("dry run (--noop): --initially-drop-ghost-table would drop what a killed run left: " + strings.Join(what, ", "))
		}
	}
	if dropOld && left.Old {
		d.log.Info("dry run (--noop): --initially-drop-old-table would drop the old table an earlier migration kept", "table", n.Schema+"."+n.Old)
	}
	return nil
}

// warnRetainedWAL warns, when checkpoints keep the slot permanent, that a
// killed osc leaves a slot that retains WAL until resumed or dropped, when
// the server sets no bound to it (max_slot_wal_keep_size = -1).
func (d *postgresDialect) warnRetainedWAL(ctx context.Context) error {
	if d.cfg.NoCheckpoint {
		return nil
	}
	var keep string
	if err := d.pool.QueryRow(ctx, "SELECT current_setting('max_slot_wal_keep_size')").Scan(&keep); err != nil {
		return fmt.Errorf("postgres: read max_slot_wal_keep_size: %w", err)
	}
	if keep == "-1" {
		d.log.Warn(fmt.Sprintf("checkpoints keep the change capture in a permanent replication slot (%s), so that a killed osc can be resumed: "+
			"until it is resumed or dropped (SELECT pg_drop_replication_slot('%s')), the slot retains all WAL written since, and max_slot_wal_keep_size is unset (-1), "+
			"so nothing bounds that but the disk; set max_slot_wal_keep_size, watch the retained WAL (status), or run with --checkpoint=false (temporary slot, no resume)",
			d.names.Slot, d.names.Slot))
	}
	return nil
}

// dropBookkeeping drops the checkpoint table, the table of rows set aside
// and, after a resume that found the tables swapped, the killed run's slot
// and publication.
func (d *postgresDialect) dropBookkeeping(ctx context.Context) error {
	if d.resumedCutOver {
		dropped, err := cdc.DropPostgresCapture(ctx, d.pool, d.names.Slot, d.names.Publication)
		for _, what := range dropped {
			d.log.Info("dropped what the killed run left: " + what)
		}
		if err != nil {
			return err
		}
	}
	// The table of rows set aside (a plan with new unique keys): empty
	// after a cut-over, its rows of no use after a failure.
	if err := table.DropPostgresTable(ctx, d.pool, d.names.Schema, d.names.Aside); err != nil {
		return err
	}
	if err := table.DropPostgresTable(ctx, d.pool, d.names.Schema, d.names.Checkpoint); err != nil {
		return err
	}
	return nil
}
