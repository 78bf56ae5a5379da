package apply

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"osc/cdc"
	"osc/change"
	"osc/internal/testdb"
)

// A DEFERRABLE INITIALLY IMMEDIATE unique key lets one statement swap two
// rows' values: between its two row changes both rows hold 'B'. A batch cut
// there, whose rows hold both (row 2's earlier change is in it too), cannot
// be written, and deleting either row would lose one that no later change
// may write (which of the two gives the value up is in the changes to
// come): Apply fails with change.ErrMidTransaction and leaves the shadow as
// it was, and the batch applies with the change after it. Where the rows
// are followed by a partial update in the batch, more changes do not help:
// that fails, naming the index.
func TestPostgresApplyDeferrableSwapCut(t *testing.T) {
	for _, retyped := range []bool{false, true} {
		name := "same_type"
		if retyped {
			name = "retyped"
		}
		t.Run(name, func(t *testing.T) {
			pool := pgTestPool(t)
			testdb.ExecPostgres(t, pool,
				"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, a int, b text, big text, CONSTRAINT t_b_u UNIQUE (b) DEFERRABLE INITIALLY IMMEDIATE)",
				"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)")
			if retyped {
				testdb.ExecPostgres(t, pool, "ALTER TABLE "+pgTestSchema+"._t_new ALTER COLUMN b TYPE varchar(60)")
			}
			testdb.ExecPostgres(t, pool, "INSERT INTO "+pgTestSchema+"._t_new VALUES (1, 0, 'A', 'x'), (2, 0, 'B', 'y'), (3, 0, 'C', 'z')")
			ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
			changes := []cdc.Change{
				{Op: cdc.Update, After: cdc.Row{"2", "1", "B", "y"}, Xid: 10},
				{Op: cdc.Update, After: cdc.Row{"1", "0", "B", "x"}, Xid: 11},
				{Op: cdc.Update, After: cdc.Row{"2", "1", "A", "y"}, Xid: 11},
			}
			ctx := context.Background()
			before := shadowRows(t, ap)
			err := ap.Apply(ctx, changes[:2])
			if !errors.Is(err, change.ErrMidTransaction) {
				t.Fatalf("apply of the cut batch: %v, want change.ErrMidTransaction", err)
			}
			if got := shadowRows(t, ap); got != before {
				t.Errorf("shadow after the failed apply %s, want %s", got, before)
			}
			partial := append(changes[:2:2], cdc.Change{Op: cdc.Update, After: cdc.Row{"3", "1", "C", nil}, Unchanged: []bool{false, false, false, true}, Xid: 11})
			err = ap.Apply(ctx, partial)
			if err == nil || errors.Is(err, change.ErrMidTransaction) || !strings.Contains(err.Error(), "_t_new_b_key") {
				t.Fatalf("apply of rows holding a value twice before a partial update: %v, want a failure naming the index", err)
			}
			if err := ap.Apply(ctx, changes); err != nil {
				t.Fatal(err)
			}
			if got, want := shadowRows(t, ap), "(1,0,B,x);(2,1,A,y);(3,0,C,z)"; got != want {
				t.Errorf("shadow %s, want %s", got, want)
			}
			if len(ap.cleared) != 0 {
				t.Errorf("keys still cleared: %v", ap.cleared)
			}
		})
	}
}

// The same changes as the capture delivers them: row 2 updated, then one
// statement swapping rows 1 and 2, read at most two changes at a time. The
// capture hands over whole transactions (a larger one only is cut, at its
// queue's bound), so the swap's two changes come together and apply.
func TestPostgresApplyDeferrableSwapCaptured(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, a int, b text, CONSTRAINT t_b_u UNIQUE (b) DEFERRABLE INITIALLY IMMEDIATE)",
		"INSERT INTO "+pgTestSchema+".t VALUES (1, 0, 'A'), (2, 0, 'B')",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+"._t_new SELECT * FROM "+pgTestSchema+".t")
	plan := pgTestPlan(t, pool, "t", "_t_new")
	src := startSource(t, pool, plan)
	ap := NewPostgres(pool, plan)
	tbl := pgTestSchema + ".t"
	sourceTx(t, pool, "UPDATE "+tbl+" SET a = a + 1 WHERE id = 2")
	sourceTx(t, pool, "UPDATE "+tbl+" SET b = CASE id WHEN 1 THEN 'B' ELSE 'A' END WHERE id IN (1, 2)")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var batch []cdc.Change
	for len(batch) < 3 {
		cs, err := src.Next(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) > 0 && batch[len(batch)-1].Xid == cs[0].Xid {
			t.Fatalf("a transaction came cut: %+v, then %+v", batch, cs)
		}
		batch = append(batch, cs...)
	}
	if err := ap.Apply(ctx, batch); err != nil {
		t.Fatal(err)
	}
	assertSameRows(t, pool, "t", "_t_new", "id")
}

// A DEFERRED unique key lets a transaction give row 1 the value row 2
// holds and then another: row 2, which the transaction never touches, holds
// 'B' at every commit. A batch cut after row 1's first change (a
// transaction larger than the capture's queue is cut at its bound) leaves
// both holding 'B' at the batch's commit (the source marks its last change
// Cut). The shadow row of row 2 is older
// than the change, not newer: deleting it for clashing would lose it, as no
// later change writes it. Apply fails with change.ErrMidTransaction, the
// shadow as it was, and the batch applies with the rest of the transaction.
func TestPostgresApplyDeferredCutClashWithUntouchedRow(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, b text, CONSTRAINT t_b_u UNIQUE (b) DEFERRABLE INITIALLY DEFERRED)",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+"._t_new VALUES (1, 'A'), (2, 'B')")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	changes := []cdc.Change{
		{Op: cdc.Update, After: cdc.Row{"1", "B"}, Xid: 11},
		{Op: cdc.Update, After: cdc.Row{"1", "C"}, Xid: 11},
	}
	ctx := context.Background()
	before := shadowRows(t, ap)
	cut := []cdc.Change{changes[0]}
	cut[0].Cut = true
	err := ap.Apply(ctx, cut)
	if !errors.Is(err, change.ErrMidTransaction) {
		t.Errorf("apply of the cut batch: %v, want change.ErrMidTransaction", err)
	}
	if got := shadowRows(t, ap); got != before {
		t.Errorf("shadow after the failed apply %s, want %s", got, before)
	}
	if err := ap.Apply(ctx, changes); err != nil {
		t.Fatal(err)
	}
	if got, want := shadowRows(t, ap), "(1,C);(2,B)"; got != want {
		t.Errorf("shadow %s, want %s", got, want)
	}
}

// The same under a DEFERRED unique key within one whole batch: a move (a
// key change that leaves an out-of-line value unchanged) between row 1's
// two changes commits what comes before it in a transaction of its own,
// where rows 1 and 2 hold 'B'. Row 2, which the transaction never writes
// again, must not be deleted for it: more changes do not help there (the
// move commits on its own), so Apply fails, naming the index, and loses
// nothing.
func TestPostgresApplyDeferredClashBeforeMove(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, b text, big text, CONSTRAINT t_b_u UNIQUE (b) DEFERRABLE INITIALLY DEFERRED)",
		"INSERT INTO "+pgTestSchema+".t VALUES (1, 'A', 'x'), (2, 'B', 'y'), (30, 'C', 'z')",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+"._t_new VALUES (1, 'A', 'x'), (2, 'B', 'y'), (3, 'C', 'z')")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	ap.CopyDone()
	changes := []cdc.Change{
		{Op: cdc.Update, After: cdc.Row{"1", "B", "x"}, Xid: 11},
		{Op: cdc.Update, Before: cdc.Row{"3", "C", nil}, After: cdc.Row{"30", "C", nil}, Unchanged: []bool{false, false, true}, Xid: 11},
		{Op: cdc.Update, After: cdc.Row{"1", "A2", "x"}, Xid: 11},
	}
	err := ap.Apply(context.Background(), changes)
	if err == nil || errors.Is(err, change.ErrMidTransaction) || !strings.Contains(err.Error(), "_t_new_b_key") {
		t.Errorf("apply: %v, want a failure naming the index", err)
	}
	if got, want := shadowRows(t, ap), "(1,A,x);(2,B,y);(3,C,z)"; got != want {
		t.Errorf("shadow %s, want it as it was, %s", got, want)
	}
}

// The same when the batch, one transaction of the shadow, clashes with a
// newer row (row 5, which a chunk copied after it took 'D' from row 6) and
// holds a partial update: the clash resolution then writes one statement
// per transaction, and the one before the partial update ends inside row
// 1's transaction, where rows 1 and 2 hold 'B'. Row 2 must not be deleted:
// the statement is written without the clash deletion, and its clash fails
// the batch, the shadow as it was (row 5's deletion is in the statement).
func TestPostgresApplyDeferredClashBeforePartialUpdate(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, b text, big text, CONSTRAINT t_b_u UNIQUE (b) DEFERRABLE INITIALLY DEFERRED)",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+"._t_new VALUES (1, 'A', 'x'), (2, 'B', 'y'), (3, 'C', 'z'), (5, 'D', 'w')")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	changes := []cdc.Change{
		{Op: cdc.Insert, After: cdc.Row{"6", "D", "v"}, Xid: 10},
		{Op: cdc.Update, After: cdc.Row{"1", "B", "x"}, Xid: 11},
		{Op: cdc.Update, Before: cdc.Row{"3", nil, nil}, After: cdc.Row{"3", "C2", nil}, Unchanged: []bool{false, false, true}, Xid: 11},
		{Op: cdc.Update, After: cdc.Row{"1", "A2", "x"}, Xid: 11},
	}
	err := ap.Apply(context.Background(), changes)
	if err == nil || !strings.Contains(err.Error(), "_t_new_b_key") {
		t.Errorf("apply: %v, want a failure naming the index", err)
	}
	if got, want := shadowRows(t, ap), "(1,A,x);(2,B,y);(3,C,z);(5,D,w)"; got != want {
		t.Errorf("shadow %s, want it as it was, %s", got, want)
	}
}

// A partial update inside its transaction whose new value clashes, under a
// DEFERRED unique key, with a row the transaction never writes again (row
// 1 takes 'B', its out-of-line value unchanged, and then 'A2'), in a batch
// the clash resolution writes one statement per transaction (row 5 is a
// newer row a chunk copied): the update must not delete row 2, within the
// shadow or as a move (which writes the change's values, 'B', with the
// source's unsent ones). It fails, naming the index, and loses nothing.
func TestPostgresApplyDeferredPartialUpdateInsideTransaction(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, b text, big text, CONSTRAINT t_b_u UNIQUE (b) DEFERRABLE INITIALLY DEFERRED)",
		"INSERT INTO "+pgTestSchema+".t VALUES (1, 'A2', 'x'), (2, 'B', 'y'), (6, 'D', 'v')",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+"._t_new VALUES (1, 'A', 'x'), (2, 'B', 'y'), (5, 'D', 'w')")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	changes := []cdc.Change{
		{Op: cdc.Insert, After: cdc.Row{"6", "D", "v"}, Xid: 10},
		{Op: cdc.Update, Before: cdc.Row{"1", nil, nil}, After: cdc.Row{"1", "B", nil}, Unchanged: []bool{false, false, true}, Xid: 11},
		{Op: cdc.Update, After: cdc.Row{"1", "A2", "x"}, Xid: 11},
	}
	err := ap.Apply(context.Background(), changes)
	if err == nil || !strings.Contains(err.Error(), "_t_new_b_key") {
		t.Errorf("apply: %v, want a failure naming the index", err)
	}
	if got := shadowRows(t, ap); !strings.Contains(got, "(2,B,y)") {
		t.Errorf("shadow %s, want row 2 in it", got)
	}
}

// A move (a key change that leaves an out-of-line value unchanged) commits
// in a transaction of its own. Under a DEFERRED unique key the source may
// hold the moved row's new value in another row too until later in the
// transaction: row 3 moves to 30 taking 'B', which row 2 holds, and then
// either row 30 gives 'B' up (to 'C2', by a whole or a partial update, or
// moving on to 40: row
// 2, never written by the transaction, holds it at the commit, and the move
// must not delete it, as nothing writes it again; it was deleted, and lost)
// or row 2 does (it takes 'C', row 30 keeps 'B': its later change writes it
// again; also when row 30 changes later too). A batch cut after the move
// (the rest of the transaction not read yet) fails with
// change.ErrMidTransaction, the shadow as it was, and applies with the
// rest. Both with the copy running (the move reads the source) and over (it
// moves within the shadow).
func TestPostgresApplyDeferredMoveInsideTransaction(t *testing.T) {
	move := cdc.Change{Op: cdc.Update, Before: cdc.Row{"3", "C", nil}, After: cdc.Row{"30", "B", nil}, Unchanged: []bool{false, false, true}, Xid: 11}
	for _, c := range []struct {
		name   string
		source string // the source's rows after the transaction
		rest   []cdc.Change
		want   string // the shadow after applying
		// gone: the source holds no row 30, so while the copy runs the
		// cut batch's move, reading the source, writes none and applies
		gone bool
	}{
		{"moved_row_gives_up", "(1, 'A', 'x'), (2, 'B', 'y'), (30, 'C2', 'z')",
			[]cdc.Change{{Op: cdc.Update, After: cdc.Row{"30", "C2", "z"}, Xid: 11}}, "(1,A,x);(2,B,y);(30,C2,z)", false},
		{"moved_row_gives_up_partial", "(1, 'A', 'x'), (2, 'B', 'y'), (30, 'C2', 'z')",
			[]cdc.Change{{Op: cdc.Update, Before: cdc.Row{"30", nil, nil}, After: cdc.Row{"30", "C2", nil}, Unchanged: []bool{false, false, true}, Xid: 11}}, "(1,A,x);(2,B,y);(30,C2,z)", false},
		{"moved_row_moves_on", "(1, 'A', 'x'), (2, 'B', 'y'), (40, 'C2', 'z')",
			[]cdc.Change{{Op: cdc.Update, Before: cdc.Row{"30", nil, nil}, After: cdc.Row{"40", "C2", nil}, Unchanged: []bool{false, false, true}, Xid: 11}},
			"(1,A,x);(2,B,y);(40,C2,z)", true},
		{"other_row_gives_up", "(1, 'A', 'x'), (2, 'C', 'y'), (30, 'B', 'z')",
			[]cdc.Change{{Op: cdc.Update, Before: cdc.Row{"2", nil, nil}, After: cdc.Row{"2", "C", nil}, Unchanged: []bool{false, false, true}, Xid: 11}},
			"(1,A,x);(2,C,y);(30,B,z)", false},
		{"both_change", "(1, 'A', 'x'), (2, 'C', 'y'), (30, 'B2', 'z')",
			[]cdc.Change{
				{Op: cdc.Update, Before: cdc.Row{"2", nil, nil}, After: cdc.Row{"2", "C", nil}, Unchanged: []bool{false, false, true}, Xid: 11},
				{Op: cdc.Update, After: cdc.Row{"30", "B2", "z"}, Xid: 11},
			},
			"(1,A,x);(2,C,y);(30,B2,z)", false},
	} {
		for _, done := range []bool{false, true} {
			name := c.name + "/copying"
			if done {
				name = c.name + "/copy_done"
			}
			t.Run(name, func(t *testing.T) {
				pool := pgTestPool(t)
				testdb.ExecPostgres(t, pool,
					"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, b text, big text, CONSTRAINT t_b_u UNIQUE (b) DEFERRABLE INITIALLY DEFERRED)",
					"INSERT INTO "+pgTestSchema+".t VALUES "+c.source,
					"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
					"INSERT INTO "+pgTestSchema+"._t_new VALUES (1, 'A', 'x'), (2, 'B', 'y'), (3, 'C', 'z')")
				ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
				if done {
					ap.CopyDone()
				}
				ctx := context.Background()
				before := shadowRows(t, ap)
				cut := move
				cut.Cut = true
				err := ap.Apply(ctx, []cdc.Change{cut})
				if c.gone && !done {
					if err != nil {
						t.Fatal(err)
					}
					before = "(1,A,x);(2,B,y)"
				} else if !errors.Is(err, change.ErrMidTransaction) {
					t.Errorf("apply of the batch cut after the move: %v, want change.ErrMidTransaction", err)
				}
				if got := shadowRows(t, ap); got != before {
					t.Errorf("shadow after the cut batch %s, want it as it was, %s", got, before)
				}
				if err := ap.Apply(ctx, append([]cdc.Change{move}, c.rest...)); err != nil {
					t.Fatal(err)
				}
				if got := shadowRows(t, ap); got != c.want {
					t.Errorf("shadow %s, want %s", got, c.want)
				}
				if len(ap.cleared) != 0 {
					t.Errorf("keys still cleared: %v", ap.cleared)
				}
			})
		}
	}
}
