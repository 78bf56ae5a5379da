package copier

import (
	"context"
	"strings"
	"testing"
	"time"

	"osc/internal/testdb"
)

// TestPostgresExactKey: the plain INSERT leaves out the shadow's keys by an
// anti-join only where "=" on the key is the shadow's unique index's
// equality; elsewhere the chunk keeps the probe and ON CONFLICT. Either way
// the rows already in the shadow are kept and the others copied.
func TestPostgresExactKey(t *testing.T) {
	pool := pgTestPool(t)
	ctx := context.Background()
	s := pgTestSchema
	for _, tc := range []struct {
		name, src, shadow string
		exact             bool
	}{
		{"same", "(k text COLLATE \"C\" PRIMARY KEY, v int)", "(k text COLLATE \"C\" PRIMARY KEY, v int)", true},
		{"collation", "(k text COLLATE \"C\" PRIMARY KEY, v int)", "(k text COLLATE \"POSIX\" PRIMARY KEY, v int)", false},
		{"type", "(k varchar(10) PRIMARY KEY, v int)", "(k text PRIMARY KEY, v int)", false},
		{"opclass", "(k text COLLATE \"C\" PRIMARY KEY, v int)", "(k text COLLATE \"C\" NOT NULL, v int)", false},
		{"unique index", "(k text COLLATE \"C\" PRIMARY KEY, v int)", "(k text COLLATE \"C\" NOT NULL UNIQUE, v int)", true},
		// The source named as the anti-join's alias would be: another
		// alias, or the condition would compare the shadow with itself.
		{"osc_s", "(k text PRIMARY KEY, v int)", "(k text PRIMARY KEY, v int)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, sh := "x_"+strings.ReplaceAll(tc.name, " ", "_"), "y_"+strings.ReplaceAll(tc.name, " ", "_")
			if tc.name == "osc_s" {
				src = "osc_s"
			}
			testdb.ExecPostgres(t, pool,
				"CREATE TABLE "+s+"."+src+" "+tc.src,
				"CREATE TABLE "+s+"."+sh+" "+tc.shadow,
				"INSERT INTO "+s+"."+src+" SELECT 'k' || g, g FROM generate_series(1, 300) g",
				"INSERT INTO "+s+"."+sh+" VALUES ('k17', -1), ('k200', -1)",
			)
			if tc.name == "opclass" {
				testdb.ExecPostgres(t, pool, "CREATE UNIQUE INDEX ON "+s+"."+sh+" (k text_pattern_ops)")
			}
			c := NewPostgres(pool, pgTestPlan(t, pool, src, sh, "k"))
			var after []any
			for {
				ch, err := c.CopyChunk(ctx, after, 40)
				if err != nil {
					t.Fatal(err)
				}
				if ch.Done {
					break
				}
				after = ch.Last
			}
			if got := c.antiKeys != nil; got != tc.exact {
				t.Errorf("anti-join %v, want %v", got, tc.exact)
			}
			var n, kept int
			if err := pool.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE v = -1) FROM "+s+"."+sh).Scan(&n, &kept); err != nil {
				t.Fatal(err)
			}
			if n != 300 || kept != 2 {
				t.Errorf("the shadow holds %d rows, %d of them the applier's; want 300 and 2", n, kept)
			}
		})
	}
}

// TestPostgresAntiJoinRace: a row another session inserts into the shadow
// in the chunk's range after the INSERT's snapshot is not left out by the
// anti-join; the INSERT meets it, fails whole, and the chunk is copied with
// ON CONFLICT: that row is kept, every other row copied.
func TestPostgresAntiJoinRace(t *testing.T) {
	pool := pgTestPool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := pgTestSchema
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+s+".r (id int PRIMARY KEY, v int)",
		"CREATE TABLE "+s+".r2 (LIKE "+s+".r INCLUDING ALL)",
		"INSERT INTO "+s+".r SELECT g, g FROM generate_series(1, 1000) g",
	)
	c := NewPostgres(pool, pgTestPlan(t, pool, "r", "r2", "id"))
	// The first call reads the highest key; a first chunk of one row.
	first, err := c.CopyChunk(ctx, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if c.antiKeys == nil {
		t.Fatal("no anti-join for an int primary key")
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "INSERT INTO "+s+".r2 VALUES (500, -1)"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.CopyChunk(ctx, first.Last, 5000)
		done <- err
	}()
	// The chunk's INSERT waits for the uncommitted row, then meets it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting bool
		if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%NOT EXISTS%')").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the chunk's INSERT never waited for the other session's row")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var n, kept int
	if err := pool.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE v = -1 AND id = 500) FROM "+s+".r2").Scan(&n, &kept); err != nil {
		t.Fatal(err)
	}
	if n != 1000 || kept != 1 {
		t.Errorf("the shadow holds %d rows, the other session's kept %d times; want 1000 and 1", n, kept)
	}
}
