package cdc

import (
	"context"
	"testing"
	"time"

	"osc/internal/testdb"
)

// TestMySQLCheckpointBounds: the checkpoint moves to a transaction boundary
// only once every change before it was acked, also when an ack ends inside
// a transaction or inside one rows event.
func TestMySQLCheckpointBounds(t *testing.T) {
	s := &MySQLSource{safe: MySQLPos{File: "b.1", Pos: 4}}
	r := &myReader{s: s, file: "b.1", lastPos: 4}
	at := func(pos uint32) { r.lastPos = pos }
	change := func() MySQLPos {
		r.seq++
		return MySQLPos{File: r.file, Pos: r.lastPos, seq: r.seq}
	}
	check := func(want string) {
		t.Helper()
		if got := s.Checkpoint(nil); got != want {
			t.Errorf("checkpoint %s, want %s", got, want)
		}
	}
	// Transaction 1: one rows event with three rows, committed at 300.
	at(100)
	r.boundary()
	check("b.1:100") // nothing sent yet: the boundary is safe at once
	at(250)
	c1, c2, c3 := change(), change(), change()
	at(300)
	r.boundary()
	// Transaction 2: two events, committed at 500.
	at(400)
	c4 := change()
	at(450)
	c5 := change()
	at(500)
	r.boundary()
	check("b.1:100")
	s.Ack(c1)
	s.Ack(c2)
	check("b.1:100") // inside the rows event
	s.Ack(c3)
	check("b.1:300")
	s.Ack(c4)
	check("b.1:300") // inside transaction 2
	s.Ack(c1)        // an older ack does not move it back
	check("b.1:300")
	// A rotate is a boundary too; nothing unacked before it but c5.
	r.file = "b.2"
	at(4)
	r.boundary()
	s.Ack(c5)
	check("b.2:4")
	if len(s.bounds) != 0 {
		t.Errorf("bounds kept: %v", s.bounds)
	}
	if p, err := ParseMySQLPos(s.Checkpoint(nil)); err != nil || p != (MySQLPos{File: "b.2", Pos: 4}) {
		t.Errorf("parse %q: %v %v", s.Checkpoint(nil), p, err)
	}
	for _, bad := range []string{"", "b.1", "b.1:", ":4", "b.1:x", "b.1:2", "b.1:99999999999"} {
		if _, err := ParseMySQLPos(bad); err == nil {
			t.Errorf("ParseMySQLPos(%q) accepted", bad)
		}
	}
}

// TestMySQLCheckpointRestart: a source started at another's checkpoint
// delivers again exactly the transactions not acked whole.
func TestMySQLCheckpointRestart(t *testing.T) {
	db, cfg := myOpenTestDB(t)
	p := myTestTable(t, db, "rsmy_ckpt")
	s := myStart(t, db, cfg, p)
	if s.Checkpoint(nil) == "" {
		t.Fatal("no checkpoint after Start")
	}
	testdb.ExecMySQL(t, db, "INSERT INTO tbl_mysqldata_rsmy_ckpt VALUES (1, 'a')")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"INSERT INTO tbl_mysqldata_rsmy_ckpt VALUES (2, 'b'), (3, 'c')", "UPDATE tbl_mysqldata_rsmy_ckpt SET v = 'x' WHERE id = 1"} {
		if _, err := tx.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	testdb.ExecMySQL(t, db, "DELETE FROM tbl_mysqldata_rsmy_ckpt WHERE id = 3")
	cs := myNext(t, s, 5)
	s.Ack(cs[0].Pos)
	// A checkpoint is taken only from the reader's bookkeeping: give the
	// reader time to reach the second transaction's end.
	time.Sleep(200 * time.Millisecond)
	afterFirst := s.Checkpoint(nil)
	s.Ack(cs[2].Pos) // inside the second transaction
	if got := s.Checkpoint(nil); got != afterFirst {
		t.Errorf("checkpoint moved to %s inside a transaction (from %s)", got, afterFirst)
	}
	from, err := ParseMySQLPos(afterFirst)
	if err != nil {
		t.Fatal(err)
	}
	cfg2 := cfg
	cfg2.ServerID++
	cfg2.From = from
	s2 := myStart(t, db, cfg2, p)
	again := myNext(t, s2, 4)
	want := []string{"insert [2 b]", "insert [3 c]", "update [1 a] [1 x]", "delete [3 c]"}
	for i, c := range again {
		got := c.Op.String() + " "
		switch c.Op {
		case Insert:
			got += myFmtRow(c.After)
		case Update:
			got += myFmtRow(c.Before) + " " + myFmtRow(c.After)
		case Delete:
			got += myFmtRow(c.Before)
		}
		if got != want[i] {
			t.Errorf("restarted change %d = %s, want %s", i, got, want[i])
		}
	}
	s.Ack(cs[4].Pos)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for ctx.Err() == nil && s.Checkpoint(nil) == afterFirst {
		time.Sleep(10 * time.Millisecond)
	}
	end, err := ParseMySQLPos(s.Checkpoint(nil))
	if err != nil || end.File == from.File && end.Pos <= from.Pos {
		t.Errorf("checkpoint %s after acking everything (from %s): %v", s.Checkpoint(nil), afterFirst, err)
	}
}
