package dialect

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"osc/engine"
	"osc/internal/testdb"
)

// TestPostgresPartitionWidenedKeyIdentity: the --alter widens the primary
// key of a partitioned table (id) to (id, owner). ALTER TABLE … REPLICA
// IDENTITY FULL on the root, as osc's refusal advised, does not recurse:
// the partitions keep DEFAULT (their primary key, id), so an UPDATE of
// owner logs no old row, and the stream cannot say which shadow row (id,
// old owner) it left; the migration cut over to a table holding both rows.
// It must refuse, naming the partition; with every partition FULL it
// migrates the updates exactly.
func TestPostgresPartitionWidenedKeyIdentity(t *testing.T) {
	for _, tc := range []struct {
		name     string
		identity []string // run on the table before the migration
		refused  string   // "": the migration must succeed
	}{
		{"root only", []string{"ALTER TABLE rv2_pri REPLICA IDENTITY FULL"}, "its partition rv2_pri_hi's replica identity"},
		{"every partition", []string{"ALTER TABLE rv2_pri REPLICA IDENTITY FULL", "ALTER TABLE rv2_pri_lo REPLICA IDENTITY FULL",
			"ALTER TABLE rv2_pri_mid REPLICA IDENTITY FULL", "ALTER TABLE rv2_pri_hi REPLICA IDENTITY FULL", "ALTER TABLE rv2_pri_rest REPLICA IDENTITY FULL"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const schema, name = "rv2_partition_ri", "rv2_pri"
			pool := pgSchemaDB(t, schema, append(pgPartitionSetup(name), tc.identity...)...)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			flag := filepath.Join(t.TempDir(), "postpone")
			if err := os.WriteFile(flag, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := engine.Config{Schema: schema, Table: name, Execute: true, ChunkSize: 2000, NoChecksum: true,
				Alter:                   "DROP CONSTRAINT " + name + "_pkey, ADD PRIMARY KEY (id, owner)",
				PostponeCutOverFlagFile: flag, CutOverLockTimeout: time.Second, CutOverRetries: 3, StatusInterval: time.Hour, OkToDropTable: true}
			d, err := NewPostgres(cfg, PostgresOptions{DSN: pgEngineDSN()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			m := engine.New(cfg, d, slog.New(slog.DiscardHandler), io.Discard)
			done := make(chan error, 1)
			go func() { done <- m.Run(ctx) }()
			for m.State() != engine.StatePostponed {
				select {
				case err := <-done:
					if tc.refused == "" || err == nil || !strings.Contains(err.Error(), tc.refused) {
						t.Fatalf("migration ended before its cut-over: %v, want a refusal with %q", err, tc.refused)
					}
					return
				case <-ctx.Done():
					t.Fatal(ctx.Err())
				case <-time.After(20 * time.Millisecond):
				}
			}
			testdb.ExecPostgresIn(t, pool, schema, "UPDATE "+name+" SET owner = owner + 10 WHERE id <= 100")
			if err := os.Remove(flag); err != nil {
				t.Fatal(err)
			}
			err = <-done
			var rows, ids, updated int64
			if qerr := pool.QueryRow(ctx, "SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE owner >= 10) FROM "+schema+"."+name).Scan(&rows, &ids, &updated); qerr != nil {
				t.Fatal(qerr)
			}
			if err != nil {
				t.Fatalf("migration: %v", err)
			}
			if tc.refused != "" {
				t.Errorf("migration cut over, want a refusal with %q", tc.refused)
			}
			if rows != 20000 || ids != 20000 || updated != 100 {
				t.Errorf("the new table has %d rows for %d ids, %d of them updated; want 20000, 20000 and 100", rows, ids, updated)
			}
		})
	}
}
