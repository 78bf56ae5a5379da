package cdc

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/throttle"
)

// PostgresSlot is what pg_replication_slots says of a slot.
type PostgresSlot struct {
	Exists    bool
	Active    bool
	ActivePID int32
	Temporary bool
	Plugin    string
	Database  bool   // the slot is of the connection's database
	DBName    string // the slot's database
	Confirmed LSN    // confirmed_flush_lsn
	WALStatus string
	Retained  int64 // bytes of WAL the slot keeps (current position − restart_lsn)
}

// ReadPostgresSlot reads the slot's state; a missing slot is Exists false.
func ReadPostgresSlot(ctx context.Context, pool *pgxpool.Pool, slot string) (PostgresSlot, error) {
	var (
		s         PostgresSlot
		confirmed *string
		status    *string
		retained  *int64
		pid       *int32
		plugin    *string
		dbName    *string
	)
	err := pool.QueryRow(ctx, `SELECT s.active, s.active_pid, s.temporary, s.plugin, s.database = current_database(), s.database::text,
		s.confirmed_flush_lsn::text, s.wal_status, (pg_current_wal_insert_lsn() - s.restart_lsn)::bigint
		FROM pg_replication_slots s WHERE s.slot_name = $1`, slot).Scan(&s.Active, &pid, &s.Temporary, &plugin, &s.Database, &dbName,
		&confirmed, &status, &retained)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read replication slot %s: %w", slot, err)
	}
	s.Exists = true
	if pid != nil {
		s.ActivePID = *pid
	}
	if plugin != nil {
		s.Plugin = *plugin
	}
	if dbName != nil {
		s.DBName = *dbName
	}
	if status != nil {
		s.WALStatus = *status
	}
	if retained != nil {
		s.Retained = *retained
	}
	if confirmed != nil {
		l, err := pglogrepl.ParseLSN(*confirmed)
		if err != nil {
			return s, fmt.Errorf("replication slot %s: confirmed_flush_lsn %q: %w", slot, *confirmed, err)
		}
		s.Confirmed = LSN(l)
	}
	return s, nil
}

// CheckPostgresResume checks that a capture can continue from cfg.ResumeFrom
// with the slot and the publication cfg names, which a killed run left, and
// returns the position: the slot exists, is a pgoutput slot of this
// database, nothing streams from it, it still has the WAL (wal_status is not
// lost) and it was confirmed no further than the position (the server
// does not stream again what was confirmed: the changes in between would be
// lost); the publication publishes exactly schema.name, every kind of
// change, every column, every row. Every refusal keeps everything and
// says why.
func CheckPostgresResume(ctx context.Context, pool *pgxpool.Pool, cfg PostgresConfig, schema, name string) (pglogrepl.LSN, error) {
	pos, err := pglogrepl.ParseLSN(cfg.ResumeFrom)
	if err != nil {
		return 0, fmt.Errorf("the checkpoint's capture position %q is no LSN: %w", cfg.ResumeFrom, err)
	}
	slot, err := ReadPostgresSlot(ctx, pool, cfg.Slot)
	if err != nil {
		return 0, err
	}
	switch {
	case !slot.Exists:
		return 0, fmt.Errorf("replication slot %s is gone: the changes since the checkpoint cannot be read again", cfg.Slot)
	case slot.Temporary || slot.Plugin != "pgoutput" || !slot.Database:
		return 0, fmt.Errorf("replication slot %s is not the one osc made (temporary %t, plugin %q, of this database %t)",
			cfg.Slot, slot.Temporary, slot.Plugin, slot.Database)
	case slot.Active:
		return 0, fmt.Errorf("replication slot %s is in use by process %d: if that is not a running osc, end it (SELECT pg_terminate_backend(%d)) and resume again",
			cfg.Slot, slot.ActivePID, slot.ActivePID)
	case slot.WALStatus == "lost":
		return 0, fmt.Errorf("replication slot %s has lost the WAL it needs (wal_status lost, max_slot_wal_keep_size exceeded): the changes since the checkpoint cannot be read again", cfg.Slot)
	case slot.Confirmed > LSN(pos):
		return 0, fmt.Errorf("replication slot %s was confirmed up to %s, past the checkpoint's position %s: the changes in between cannot be read again", cfg.Slot, slot.Confirmed, LSN(pos))
	}
	if err := checkPostgresPublication(ctx, pool, cfg.Publication, schema, name); err != nil {
		return 0, err
	}
	return pos, nil
}

// checkPostgresPublication checks that the publication publishes exactly
// schema.name, with every kind of change, every column and every row, as
// Start creates it.
func checkPostgresPublication(ctx context.Context, pool *pgxpool.Pool, pub, schema, name string) error {
	var all, ins, upd, del, trunc bool
	err := pool.QueryRow(ctx, `SELECT puballtables, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = $1`,
		pub).Scan(&all, &ins, &upd, &del, &trunc)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("publication %s is gone", pub)
	}
	if err != nil {
		return fmt.Errorf("read publication %s: %w", pub, err)
	}
	if all || !ins || !upd || !del || !trunc {
		return fmt.Errorf("publication %s was changed: it must publish inserts, updates, deletes and truncates of %s.%s only", pub, schema, name)
	}
	rows, err := pool.Query(ctx, `SELECT t.schemaname::text, t.tablename::text, to_jsonb(t)->>'rowfilter' IS NOT NULL,
		coalesce((SELECT to_jsonb(r)->>'prattrs' IS NOT NULL FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
			WHERE p.pubname = t.pubname AND r.prrelid = format('%I.%I', t.schemaname, t.tablename)::regclass), false)
		FROM pg_publication_tables t WHERE t.pubname = $1`, pub)
	if err != nil {
		return fmt.Errorf("read publication %s: %w", pub, err)
	}
	type pubTable struct {
		schema, name    string
		filter, columns bool
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pubTable, error) {
		var t pubTable
		return t, r.Scan(&t.schema, &t.name, &t.filter, &t.columns)
	})
	if err != nil {
		return fmt.Errorf("read publication %s: %w", pub, err)
	}
	if len(tables) != 1 || tables[0].schema != schema || tables[0].name != name || tables[0].filter || tables[0].columns {
		return fmt.Errorf("publication %s was changed: it must publish all rows and columns of %s.%s and no other table", pub, schema, name)
	}
	return nil
}

// ReadPostgresPublicationID identifies the publication pub and its entry for
// schema.name as "<publication oid>/<entry oid>" ("" without the
// publication; nothing after the slash without the entry). Both oids are new
// when the publication is made again, or the table is dropped from it and
// added back (ALTER PUBLICATION … DROP TABLE / ADD TABLE): pgoutput decodes a
// transaction with the catalog as of its commit, so a change committed
// meanwhile was never published, also not when the slot streams that WAL
// again. The same identity now as when the capture started proves that the
// publication published the table all along.
func ReadPostgresPublicationID(ctx context.Context, pool *pgxpool.Pool, pub, schema, name string) (string, error) {
	var id string
	err := pool.QueryRow(ctx, `SELECT p.oid::text || '/' || coalesce((SELECT r.oid::text FROM pg_publication_rel r
			WHERE r.prpubid = p.oid AND r.prrelid = to_regclass($2)), '')
		FROM pg_publication p WHERE p.pubname = $1`, pub, pgx.Identifier{schema, name}.Sanitize()).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read publication %s: %w", pub, err)
	}
	return id, nil
}

// DropPostgresCapture drops a slot and a publication a killed run left
// (--initially-drop-ghost-table); a slot something streams from, or one of
// another database (slot names are cluster-wide: not this database's run's),
// is refused, not dropped. It reports what it dropped.
func DropPostgresCapture(ctx context.Context, pool *pgxpool.Pool, slot, pub string) ([]string, error) {
	var dropped []string
	s, err := ReadPostgresSlot(ctx, pool, slot)
	if err != nil {
		return nil, err
	}
	if s.Exists {
		if !s.Database {
			return nil, fmt.Errorf("replication slot %s is of database %q, not this one: it is not a leftover of this migration, not dropped", slot, s.DBName)
		}
		if s.Active {
			return nil, fmt.Errorf("replication slot %s is in use by process %d, not dropped: if that is not a running osc, end it (SELECT pg_terminate_backend(%d)) and run again",
				slot, s.ActivePID, s.ActivePID)
		}
		if _, err := pool.Exec(ctx, "SELECT pg_drop_replication_slot($1)", slot); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "55006" { // object_in_use: taken meanwhile
				return nil, fmt.Errorf("replication slot %s was taken into use, not dropped: %w", slot, err)
			}
			return nil, fmt.Errorf("drop replication slot %s: %w", slot, err)
		}
		dropped = append(dropped, fmt.Sprintf("replication slot %s (retained %s)", slot, throttle.FormatBytes(s.Retained)))
	}
	tag, err := pool.Exec(ctx, `SELECT 1 FROM pg_publication WHERE pubname = $1`, pub)
	if err != nil {
		return dropped, fmt.Errorf("read publication %s: %w", pub, err)
	}
	if tag.RowsAffected() > 0 {
		if _, err := pool.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{pub}.Sanitize()); err != nil {
			return dropped, fmt.Errorf("drop publication %s: %w", pub, err)
		}
		dropped = append(dropped, "publication "+pub)
	}
	return dropped, nil
}
