package dialect

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"osc/engine"
	"osc/table"
)

// rsmyBinlogEvent describes the first binlog event at pos ("file:pos") on
// db's server, or the error the server gives for that offset.
func rsmyBinlogEvent(db *sql.DB, pos string) string {
	i := strings.LastIndexByte(pos, ':')
	rows, err := db.Query("SHOW BINLOG EVENTS IN '" + pos[:i] + "' FROM " + pos[i+1:] + " LIMIT 1")
	if err != nil {
		return "error: " + err.Error()
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return "error: " + err.Error()
		}
		return "no event"
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return "error: " + err.Error()
	}
	var out []string
	for _, v := range vals {
		out = append(out, v.String)
	}
	return strings.Join(out, " | ")
}

// TestMySQLResumeOnAnotherServer: after a failover the killed run's tables
// (checkpoint row included) are on the promoted replica, whose binlog files
// have the same names (the sandbox's replica: binlog.0000NN, as on the
// primary) but other contents at other offsets. The checkpoint's file:pos
// names a place in the primary's binlog only; a resume against the other
// server must refuse (or translate through a GTID saved with it), not
// start reading the other server's binlog at that offset.
func TestMySQLResumeOnAnotherServer(t *testing.T) {
	const name = "rvmy_failover"
	db := mysqlTestDB(t, name)
	mustExec(t, db, "CREATE TABLE "+name+" (id INT PRIMARY KEY, v INT) ENGINE=InnoDB", "INSERT INTO "+name+" VALUES (1, 1)")
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN w INT", Execute: true, Version: "test"}
	pos := rsmyBinlogPos(t, db)
	rsmyKilled(t, cfg, &engine.Checkpoint{Version: "test", Alter: cfg.Alter, After: []any{int64(1)}, Position: pos, Saved: time.Now()})

	conn := mysqlTestConn(t)
	port := 13307
	if p := os.Getenv("OSC_MYSQL_REPLICA_PORT"); p != "" {
		var err error
		if port, err = strconv.Atoi(p); err != nil {
			t.Fatal(err)
		}
	}
	conn.Port = port
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rdb, err := table.OpenMySQL(ctx, conn, mysqlTestSchema)
	if err != nil {
		t.Skipf("replica: %v", err)
	}
	defer rdb.Close()
	// Wait for the killed run's tables and checkpoint to reach the replica.
	for {
		var ck sql.NullString
		err := rdb.QueryRowContext(ctx, "SELECT checkpoint FROM "+table.MySQLCheckpointName(name)).Scan(&ck)
		if err == nil && ck.Valid {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the checkpoint did not reach the replica: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rcfg := cfg
	rcfg.Resume = true
	dd, err := NewMySQL(rcfg, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := dd.(*mysqlDialect)
	defer d.Close()
	if err := d.Inspect(ctx); err != nil {
		t.Fatalf("inspect on the replica: %v", err)
	}
	_, ck, err := d.Resume(ctx)
	if err == nil {
		t.Errorf("a resume on another server (port %d) accepted the checkpoint's binlog position %s of the server that saved it "+
			"(it would restart the capture there, from %v):\n  that server's event at %s: %s\n  this server's event at %s: %s",
			port, ck.Position, d.from, pos, rsmyBinlogEvent(db, pos), pos, rsmyBinlogEvent(rdb, pos))
	}
}

// TestMySQLResumeWithQueuedRename: a run killed in its cut-over after it
// dropped the sentry but before UNLOCK TABLES (with the host lost, its
// sessions linger: connection A keeps LOCK TABLES t WRITE, connection B's
// RENAME waits behind it) leaves the shadow, no sentry, and a rename that
// runs as soon as A's session goes (killed by the DBA, or wait_timeout).
// Resume takes that for a run killed before its cut-over: the resumed run
// re-applies changes from the checkpoint (older row images first) to the
// shadow, and the killed run's rename then swaps that half re-applied
// shadow in. Resume must refuse while such a rename is queued, naming the
// session to KILL, before it changes anything.
func TestMySQLResumeWithQueuedRename(t *testing.T) {
	const name = "rvmy_qrename"
	db := mysqlTestDB(t, name)
	shadow, _, old, _ := rsmyNames(name)
	mustExec(t, db, "CREATE TABLE "+name+" (id INT PRIMARY KEY, v INT) ENGINE=InnoDB", "INSERT INTO "+name+" VALUES (1, 1)")
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN w INT", Execute: true, Version: "test"}
	rsmyKilled(t, cfg, &engine.Checkpoint{Version: "test", Alter: cfg.Alter, CopyDone: true, Position: rsmyBinlogPos(t, db), Saved: time.Now()})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var bID int64
	if err := b.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&bID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ExecContext(ctx, "LOCK TABLES "+name+" WRITE"); err != nil {
		t.Fatal(err)
	}
	renamed := make(chan error, 1)
	go func() {
		_, err := b.ExecContext(context.Background(), "RENAME TABLE "+name+" TO "+old+", "+shadow+" TO "+name)
		renamed <- err
	}()
	defer func() {
		// Never let the rename run: stop it, then unlock.
		// The rename's error is the kill's; UNLOCK TABLES fails only
		// with a's session, which ends the lock too.
		_, _ = db.Exec("KILL QUERY " + strconv.FormatInt(bID, 10))
		_ = <-renamed
		_, _ = a.ExecContext(context.Background(), "UNLOCK TABLES")
	}()
	for {
		if id, err := table.MySQLQueuedRename(ctx, db, mysqlTestSchema, shadow); err == nil && id == bID {
			// Another database's table of the same name is not this one.
			if id, err := table.MySQLQueuedRename(ctx, db, mysqlTestSchema+"_other", shadow); err != nil || id != 0 {
				t.Fatalf("a rename in %s was taken for one in %s_other (session %d, %v)", mysqlTestSchema, mysqlTestSchema, id, err)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the rename was not seen queued")
		}
		time.Sleep(10 * time.Millisecond)
	}

	rcfg := cfg
	rcfg.Resume = true
	d, err := rsmyDialect(t, rcfg)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	before := rsmyState(t, db, name)
	_, ck, err := d.Resume(rctx)
	switch {
	case err == nil:
		t.Errorf("resume accepted (checkpoint %+v, sentry left: %v) while the killed run's RENAME (session %d) waits to swap the shadow in", *ck, d.sentry, bID)
	case !strings.Contains(err.Error(), fmt.Sprintf("(session %d)", bID)) || !strings.Contains(err.Error(), fmt.Sprintf("KILL %d", bID)) ||
		!strings.Contains(err.Error(), "nothing was changed"):
		t.Errorf("the refusal does not name the session to KILL (%d) and that nothing was changed: %v", bID, err)
	}
	if after := rsmyState(t, db, name); after != before {
		t.Errorf("the refused resume changed what the killed run left:\n%s\nnow:\n%s", before, after)
	}
}

// TestMySQLResumeSwappedCompressed: a run killed after its cut-over swapped
// the tables leaves only cleanup to --resume (Resume's CutOver). But Inspect
// runs first, on the table as it is now, the altered one: an --alter that
// osc accepts for the shadow (here COMPRESSED columns, which it only warns
// about) makes Inspect refuse, and the leftovers can never be cleaned up by
// osc; the refusal even tells the operator to migrate with a plain ALTER.
func TestMySQLResumeSwappedCompressed(t *testing.T) {
	const name = "rvmy_swapcomp"
	db := mysqlTestDB(t, name)
	shadow, _, old, _ := rsmyNames(name)
	mustExec(t, db, "CREATE TABLE "+name+" (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB", "INSERT INTO "+name+" VALUES (1, 'a')")
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "MODIFY v TEXT COMPRESSED", Execute: true, Version: "test"}
	rsmyKilled(t, cfg, &engine.Checkpoint{Version: "test", Alter: cfg.Alter, CopyDone: true, Position: rsmyBinlogPos(t, db), Saved: time.Now()})
	mustExec(t, db, "RENAME TABLE "+name+" TO "+old+", "+shadow+" TO "+name) // the killed run's swap
	rcfg := cfg
	rcfg.Resume = true
	d, err := rsmyDialect(t, rcfg)
	if err != nil {
		t.Fatalf("resume after the swap refused by Inspect, so the killed run's leftovers cannot be cleaned up: %v", err)
	}
	if _, ck, err := d.Resume(context.Background()); err != nil || !ck.CutOver {
		t.Errorf("resume after the swap: %v", err)
	}
}
