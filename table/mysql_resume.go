package table

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MySQLSentryComment marks the cut-over's sentry table (cutover.MySQL), so
// that osc only ever drops a table named like the old table when it is its
// own sentry.
const MySQLSentryComment = "osc cut-over sentry"

// MySQLCheckpointName is the name of the table where a migration of table
// name keeps its checkpoint (one row), for --resume.
func MySQLCheckpointName(name string) string { return name + "_osc_ckp" }

// mysqlCheckpointDDL defines the checkpoint table: what the migration was
// started with (the server's identity, the conversions' time zone, the
// server's sql_mode, the definitions of both tables, the names of the
// foreign keys and triggers it carries) and, once saved, the checkpoint
// itself. It is utf8mb4 whatever the schema's default: identifiers, and so
// the definitions and the names, are UTF-8 (a trigger named in CJK in a
// latin1 schema).
const mysqlCheckpointDDL = `(id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), server_id INT UNSIGNED NOT NULL, server_uuid VARCHAR(64) NOT NULL,
time_zone VARCHAR(64) NOT NULL, sql_mode VARCHAR(1024) NOT NULL,
original_definition MEDIUMTEXT NOT NULL, shadow_definition MEDIUMTEXT NOT NULL,
saved TIMESTAMP(6) NULL, checkpoint MEDIUMTEXT NULL, carried_names MEDIUMTEXT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`

// MySQLCheckpointRow is the checkpoint table's row.
type MySQLCheckpointRow struct {
	// Server is the server whose binlog the checkpoint's position is in.
	Server   MySQLServerIdentity
	TimeZone string // Plan.TimeZone
	Created  string // Plan.AlterTime
	SQLMode  string // the server's global sql_mode
	// Original and Shadow are the tables' definitions (MySQLDefinition)
	// when the shadow was made.
	Original, Shadow string
	// Checkpoint is the dialect's encoding of the last checkpoint saved, ""
	// before the first.
	Checkpoint string
	Saved      string // when it was saved, UTC, "" before the first
	// Carried are the names of the foreign keys and triggers the cut-over
	// carries to the new table; nil in a checkpoint table made by an osc
	// that did not keep them.
	Carried *MySQLCarriedNames
}

// MySQLCarriedNames maps the planned name of each foreign key and trigger
// the cut-over carries to the new table to its own name
// (MySQLInspection.CarriedNames): what a run resumed after the swap gives
// back (cutover.MySQLOwnNames) once the old table, and so its own, may be
// gone.
type MySQLCarriedNames struct {
	ForeignKeys map[string]string `json:"foreign_keys"`
	Triggers    map[string]string `json:"triggers"`
}

// CarriedNames returns the names of the foreign keys and triggers the
// cut-over carries, by planned name.
func (in *MySQLInspection) CarriedNames() MySQLCarriedNames {
	n := MySQLCarriedNames{ForeignKeys: map[string]string{}, Triggers: map[string]string{}}
	for _, f := range in.CarriedForeignKeys {
		n.ForeignKeys[f.Shadow] = f.Name
	}
	for _, t := range in.CarriedTriggers {
		n.Triggers[t.Shadow] = t.Name
	}
	return n
}

// CreateMySQLCheckpoint creates the checkpoint table of the plan's
// migration with its row (no checkpoint yet) and the names of what its
// cut-over carries.
func CreateMySQLCheckpoint(ctx context.Context, db *sql.DB, p *Plan, carried MySQLCarriedNames) error {
	schema := p.Source.Schema
	name := MySQLCheckpointName(p.Source.Name)
	orig, err := MySQLDefinition(ctx, db, schema, p.Source.Name)
	if err != nil {
		return err
	}
	shadow, err := MySQLDefinition(ctx, db, schema, p.Shadow.Name)
	if err != nil {
		return err
	}
	var mode string
	if err := db.QueryRowContext(ctx, "SELECT @@global.sql_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read the server's sql_mode: %w", err)
	}
	srv, err := ReadMySQLServerIdentity(ctx, db)
	if err != nil {
		return err
	}
	names, err := json.Marshal(carried)
	if err != nil {
		return fmt.Errorf("encode the carried names: %w", err)
	}
	q := QuoteMySQL(schema, name)
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+q+" "+mysqlCheckpointDDL); err != nil {
		return fmt.Errorf("create checkpoint table %s: %w", name, err)
	}
	//nolint:gosec // G202: the checkpoint table's name, quoted; values are parameters
	if _, err := db.ExecContext(ctx, "INSERT INTO "+q+` (id, created, server_id, server_uuid, time_zone, sql_mode, original_definition, shadow_definition, carried_names)
		VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)`, p.AlterTime, srv.ID, srv.UUID, p.TimeZone, mode, orig, shadow, string(names)); err != nil {
		return fmt.Errorf("fill checkpoint table %s: %w", name, err)
	}
	return nil
}

// SaveMySQLCheckpoint replaces the checkpoint in the table of the migration
// of schema.name: one short autocommitted statement.
func SaveMySQLCheckpoint(ctx context.Context, db *sql.DB, schema, name, checkpoint string, saved time.Time) error {
	n := MySQLCheckpointName(name)
	res, err := db.ExecContext(ctx, "UPDATE "+QuoteMySQL(schema, n)+" SET checkpoint = ?, saved = ? WHERE id = 1", //nolint:gosec // G202: the checkpoint table's name, quoted; values are parameters
		checkpoint, saved.UTC().Format("2006-01-02 15:04:05.000000"))
	if err != nil {
		return fmt.Errorf("save checkpoint into %s: %w", n, err)
	}
	if rows, err := res.RowsAffected(); err != nil || rows == 0 {
		return fmt.Errorf("save checkpoint into %s: its row is missing (%v)", n, err)
	}
	return nil
}

// ReadMySQLCheckpoint reads the checkpoint table of the migration of
// schema.name; nil when the table or its row does not exist.
func ReadMySQLCheckpoint(ctx context.Context, db *sql.DB, schema, name string) (*MySQLCheckpointRow, error) {
	n := MySQLCheckpointName(name)
	var exists, hasNames int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*), (SELECT COUNT(*) FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = 'carried_names')
		FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
		schema, n, schema, n).Scan(&exists, &hasNames); err != nil {
		return nil, fmt.Errorf("look for checkpoint table %s: %w", n, err)
	}
	if exists == 0 {
		return nil, nil
	}
	// A table an earlier osc made has no carried_names.
	namesCol := "NULL"
	if hasNames > 0 {
		namesCol = "carried_names"
	}
	var r MySQLCheckpointRow
	var ck, saved, names sql.NullString
	err := db.QueryRowContext(ctx, `SELECT server_id, server_uuid, time_zone, DATE_FORMAT(created, '%Y-%m-%d %H:%i:%s.%f'), sql_mode,
		original_definition, shadow_definition, checkpoint, DATE_FORMAT(saved, '%Y-%m-%d %H:%i:%s UTC'), `+namesCol+` FROM `+QuoteMySQL(schema, n)+` WHERE id = 1`).
		Scan(&r.Server.ID, &r.Server.UUID, &r.TimeZone, &r.Created, &r.SQLMode, &r.Original, &r.Shadow, &ck, &saved, &names)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read checkpoint table %s: %w", n, err)
	}
	r.Checkpoint, r.Saved = ck.String, saved.String
	if names.Valid {
		r.Carried = &MySQLCarriedNames{}
		if err := json.Unmarshal([]byte(names.String), r.Carried); err != nil {
			return nil, fmt.Errorf("read checkpoint table %s: the carried names: %w", n, err)
		}
	}
	return &r, nil
}

// MySQLServerIdentity tells one server from another, its replicas
// included: @@server_id (which replication requires to differ) and, on
// MySQL, @@server_uuid (MariaDB has none: "").
type MySQLServerIdentity struct {
	ID   uint32
	UUID string
}

func (i MySQLServerIdentity) String() string {
	if i.UUID == "" {
		return fmt.Sprintf("server_id %d", i.ID)
	}
	return fmt.Sprintf("server_id %d, server_uuid %s", i.ID, i.UUID)
}

// ReadMySQLServerIdentity reads the identity of db's server.
func ReadMySQLServerIdentity(ctx context.Context, db *sql.DB) (MySQLServerIdentity, error) {
	var i MySQLServerIdentity
	if err := db.QueryRowContext(ctx, "SELECT @@global.server_id").Scan(&i.ID); err != nil {
		return i, fmt.Errorf("read the server's server_id: %w", err)
	}
	// SHOW rather than @@server_uuid, which MariaDB refuses as unknown.
	var name string
	err := db.QueryRowContext(ctx, "SHOW GLOBAL VARIABLES LIKE 'server_uuid'").Scan(&name, &i.UUID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return i, fmt.Errorf("read the server's server_uuid: %w", err)
	}
	return i, nil
}

// mysqlAutoIncrementOption is the table option that holds the counter,
// which writes move.
var mysqlAutoIncrementOption = regexp.MustCompile(` AUTO_INCREMENT=[0-9]+`)

// MySQLDefinition returns SHOW CREATE TABLE of schema.name without its name
// and its AUTO_INCREMENT counter: two tables with the same definition have
// the same text.
func MySQLDefinition(ctx context.Context, db *sql.DB, schema, name string) (string, error) {
	var n, def string
	if err := db.QueryRowContext(ctx, "SHOW CREATE TABLE "+QuoteMySQL(schema, name)).Scan(&n, &def); err != nil {
		return "", fmt.Errorf("read the definition of %s.%s: %w", schema, name, err)
	}
	def = strings.Replace(def, "CREATE TABLE "+QuoteMySQL(name)+" ", "CREATE TABLE ", 1)
	return mysqlAutoIncrementOption.ReplaceAllString(def, ""), nil
}

// mysqlForeignKeyLine is a foreign key's line of SHOW CREATE TABLE.
var mysqlForeignKeyLine = regexp.MustCompile("^\\s*CONSTRAINT `(?:[^`]|``)*` FOREIGN KEY ")

// MySQLDefinitionWithoutForeignKeys is def (MySQLDefinition) without its
// foreign keys: what the cut-over's carrying of them, their renaming and
// the dropping of the old table's leave as it was.
func MySQLDefinitionWithoutForeignKeys(def string) string {
	var out []string
	for _, l := range strings.Split(def, "\n") {
		if !mysqlForeignKeyLine.MatchString(l) {
			out = append(out, strings.TrimSuffix(l, ","))
		}
	}
	return strings.Join(out, "\n")
}

// ResumeMySQLShadow builds the plan for the shadow table a killed run of
// the same migration made (CreateMySQLShadow's plan, read back from the
// existing shadow), in the time zone that run converted in.
func ResumeMySQLShadow(ctx context.Context, db *sql.DB, in *MySQLInspection, zone, alterTime string) (*Plan, error) {
	if err := CheckMySQLTimeZone(ctx, db, zone); err != nil {
		return nil, err
	}
	if in.Alter.unread != nil {
		return nil, in.Alter.unread
	}
	return planMySQLShadow(ctx, db, in, zone, alterTime)
}

// mysqlKeyValue is one key value of a checkpoint's copy watermark, tagged
// with its Go type: the copier's prepared key queries return int64,
// uint64 (as text above int64), float32, float64 or []byte, and it takes
// them back as arguments of the same type.
type mysqlKeyValue struct {
	T string `json:"t"`
	V string `json:"v,omitempty"`
}

// EncodeMySQLKey encodes key values as the copier returned them (Chunk.Last)
// for a checkpoint; DecodeMySQLKey gives them back with the same types.
func EncodeMySQLKey(vals []any) (json.RawMessage, error) {
	if vals == nil {
		return json.RawMessage("null"), nil
	}
	out := make([]mysqlKeyValue, len(vals))
	for i, v := range vals {
		switch x := v.(type) {
		case nil:
			out[i] = mysqlKeyValue{T: "null"}
		case int64:
			out[i] = mysqlKeyValue{T: "int64", V: strconv.FormatInt(x, 10)}
		case uint64:
			out[i] = mysqlKeyValue{T: "uint64", V: strconv.FormatUint(x, 10)}
		case float32:
			out[i] = mysqlKeyValue{T: "float32", V: strconv.FormatUint(uint64(math.Float32bits(x)), 10)}
		case float64:
			out[i] = mysqlKeyValue{T: "float64", V: strconv.FormatUint(math.Float64bits(x), 10)}
		case []byte:
			out[i] = mysqlKeyValue{T: "bytes", V: base64.StdEncoding.EncodeToString(x)}
		case string:
			out[i] = mysqlKeyValue{T: "string", V: x}
		default:
			return nil, fmt.Errorf("checkpoint: key value %d has type %T, which osc cannot save", i, v)
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: encode key: %w", err)
	}
	return b, nil
}

// DecodeMySQLKey decodes EncodeMySQLKey's encoding.
func DecodeMySQLKey(b json.RawMessage) ([]any, error) {
	var in []mysqlKeyValue
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("checkpoint: decode key: %w", err)
	}
	if in == nil {
		return nil, nil
	}
	out := make([]any, len(in))
	for i, v := range in {
		var err error
		switch v.T {
		case "null":
		case "int64":
			out[i], err = strconv.ParseInt(v.V, 10, 64)
		case "uint64":
			out[i], err = strconv.ParseUint(v.V, 10, 64)
		case "float32":
			var u uint64
			u, err = strconv.ParseUint(v.V, 10, 32)
			out[i] = math.Float32frombits(uint32(u))
		case "float64":
			var u uint64
			u, err = strconv.ParseUint(v.V, 10, 64)
			out[i] = math.Float64frombits(u)
		case "bytes":
			out[i], err = base64.StdEncoding.DecodeString(v.V)
		case "string":
			out[i] = v.V
		default:
			err = fmt.Errorf("unknown type %q", v.T)
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint: decode key value %d: %w", i, err)
		}
	}
	return out, nil
}

// MySQLLeftovers is what earlier osc runs left of the migration of a table.
type MySQLLeftovers struct {
	// Ghost lists what a killed run of this migration left (shadow,
	// changelog, checkpoint table, cut-over sentry), which
	// --initially-drop-ghost-table drops.
	Ghost []string
	// Sentry is the old table's name when it is a cut-over sentry (in Ghost).
	Sentry string
	// Old is the old table an earlier migration kept ("" when none), with
	// its estimated rows.
	Old     string
	OldRows int64
	// Checkpoint is the checkpoint table's row (nil when none).
	Checkpoint *MySQLCheckpointRow
}

// FindMySQLLeftovers looks for what earlier runs left of the migration of
// schema.name.
func FindMySQLLeftovers(ctx context.Context, db *sql.DB, schema, name string) (*MySQLLeftovers, error) {
	shadow, changelog, old := MySQLNames(name)
	ckp := MySQLCheckpointName(name)
	rows, err := db.QueryContext(ctx, `SELECT TABLE_NAME, COALESCE(TABLE_COMMENT, ''), COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?, ?, ?, ?, ?) ORDER BY TABLE_NAME`, schema, shadow, changelog, old, ckp, MySQLAsideName(name))
	if err != nil {
		return nil, fmt.Errorf("look for leftover tables of %s.%s: %w", schema, name, err)
	}
	defer rows.Close()
	var l MySQLLeftovers
	for rows.Next() {
		var n, comment string
		var est int64
		if err := rows.Scan(&n, &comment, &est); err != nil {
			return nil, fmt.Errorf("look for leftover tables of %s.%s: %w", schema, name, err)
		}
		switch {
		case n == old && comment == MySQLSentryComment:
			l.Sentry = n
			l.Ghost = append(l.Ghost, n)
		case n == old:
			l.Old, l.OldRows = n, est
		default:
			l.Ghost = append(l.Ghost, n)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look for leftover tables of %s.%s: %w", schema, name, err)
	}
	if l.Checkpoint, err = ReadMySQLCheckpoint(ctx, db, schema, name); err != nil {
		return nil, err
	}
	return &l, nil
}

// Refusal is why a new migration cannot start, naming both ways out: nil
// when nothing is left.
func (l *MySQLLeftovers) Refusal(schema, name string) error {
	var msgs []string
	if len(l.Ghost) > 0 {
		m := fmt.Sprintf("tables left by an earlier osc run on %s.%s exist (%s): ", schema, name, strings.Join(l.Ghost, ", "))
		if l.Checkpoint != nil && l.Checkpoint.Checkpoint != "" {
			m += fmt.Sprintf("run again with --resume to continue it (checkpoint saved %s), or with --initially-drop-ghost-table to drop them and start afresh", l.Checkpoint.Saved)
		} else {
			m += "it saved no checkpoint (--resume cannot continue it): run again with --initially-drop-ghost-table to drop them and start afresh"
		}
		msgs = append(msgs, m)
	}
	if l.Old != "" {
		msgs = append(msgs, fmt.Sprintf("%s.%s (about %d rows) exists: an earlier migration of %s.%s kept its original table there, "+
			"and it may be the only copy of that data: check it, then run again with --initially-drop-old-table to drop it (or rename it)",
			schema, l.Old, l.OldRows, schema, name))
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

// MySQLQueuedRename returns the id of a session whose statement is a RENAME
// TABLE naming schema's shadow (a killed run's cut-over may leave one waiting
// for a lock on the server), or 0: one naming it qualified, as osc's cut-over
// does, or unqualified from a session in schema. Another database's table of
// the same name (another migration cutting over) is not it.
func MySQLQueuedRename(ctx context.Context, db *sql.DB, schema, shadow string) (int64, error) {
	var id int64
	err := db.QueryRowContext(ctx, `SELECT ID FROM information_schema.PROCESSLIST
		WHERE ID <> CONNECTION_ID() AND UPPER(INFO) LIKE 'RENAME TABLE%'
			AND (LOCATE(?, INFO) > 0 OR (DB = ? AND LOCATE(?, INFO) > 0)) LIMIT 1`,
		QuoteMySQL(schema)+"."+QuoteMySQL(shadow), schema, shadow).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("look for a cut-over rename of %s: %w", shadow, err)
	}
	return id, nil
}
