package dialect

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// pgRow is a row of a writers' table (id bigserial key, owner int, v, s
// text) as its writer last left it.
type pgRow struct {
	v int64
	s *string
}

// pgWriters are three writers of a table (id bigserial PRIMARY KEY, owner
// int, v, s text), one per owner 0..2: each inserts, deletes, moves (a fresh
// key) and updates only its own rows and remembers them, so that what the
// table must hold at the end is known whatever the interleaving. A
// statement is never cancelled (it could commit unseen).
type pgWriters struct {
	states []map[int64]*pgRow // by owner
	stop   context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error
}

// startPGWriters reads the table's rows (qualified: "schema.table") and
// starts the writers; seed varies their choices.
func startPGWriters(t *testing.T, ctx context.Context, pool *pgxpool.Pool, qualified string, seed uint64) *pgWriters {
	t.Helper()
	w := &pgWriters{states: []map[int64]*pgRow{{}, {}, {}}, errs: make(chan error, 3)}
	rows, err := pool.Query(ctx, "SELECT id, owner, v, s FROM "+qualified)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, v int64
		var owner int
		var s *string
		if err := rows.Scan(&id, &owner, &v, &s); err != nil {
			t.Fatal(err)
		}
		w.states[owner][id] = &pgRow{v, s}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	w.stop = stop
	for n := range 3 {
		own := w.states[n]
		w.wg.Go(func() {
			if err := pgWrite(wctx, ctx, pool, qualified, n, own, rand.New(rand.NewPCG(uint64(n), seed))); err != nil {
				w.errs <- fmt.Errorf("writer %d: %w", n, err)
			}
		})
	}
	return w
}

// pgWrite is writer n's loop over its rows own, until loop ends; its
// statements run on stmt, which the end of loop does not cancel (a statement
// cancelled on the way could commit unseen).
func pgWrite(loop, stmt context.Context, pool *pgxpool.Pool, qualified string, n int, own map[int64]*pgRow, r *rand.Rand) error {
	pick := func() int64 { // one of this writer's rows
		for id := range own {
			if r.IntN(8) == 0 {
				return id
			}
		}
		for id := range own {
			return id
		}
		return 0
	}
	for i := 0; loop.Err() == nil; i++ {
		var err error
		id := pick()
		switch k := r.IntN(10); {
		case k < 3 || id == 0:
			var nid int64
			err = pool.QueryRow(stmt, "INSERT INTO "+qualified+" (owner, s) VALUES ($1, 'new') RETURNING id", n).Scan(&nid)
			if err == nil {
				s := "new"
				own[nid] = &pgRow{1, &s}
			}
		case k < 5:
			_, err = pool.Exec(stmt, "DELETE FROM "+qualified+" WHERE id = $1", id)
			if err == nil {
				delete(own, id)
			}
		case k < 6:
			// A fresh key: shifting by a constant never meets another row.
			nid := id + 10_000_000
			_, err = pool.Exec(stmt, "UPDATE "+qualified+" SET id = $1 WHERE id = $2", nid, id)
			if err == nil {
				own[nid] = own[id]
				delete(own, id)
			}
		default:
			var s *string
			if i%2 == 0 {
				v := fmt.Sprintf("w%d-%d", n, i)
				s = &v
			}
			_, err = pool.Exec(stmt, "UPDATE "+qualified+" SET s = $1 WHERE id = $2", s, id)
			if err == nil {
				own[id].s = s
			}
		}
		if err != nil {
			return err
		}
		time.Sleep(time.Millisecond) // leave the 2-core sandbox some room to apply
	}
	return nil
}

// wait stops the writers, reports their errors and returns the rows the
// table must hold.
func (w *pgWriters) wait(t *testing.T) map[int64]pgRow {
	t.Helper()
	w.stop()
	w.wg.Wait()
	close(w.errs)
	for err := range w.errs {
		t.Error(err)
	}
	want := map[int64]pgRow{}
	for _, own := range w.states {
		for id, r := range own {
			want[id] = *r
		}
	}
	return want
}

// checkPGRows compares the rows query returns (id, v, s) with want.
func checkPGRows(t *testing.T, ctx context.Context, pool *pgxpool.Pool, query string, want map[int64]pgRow) {
	t.Helper()
	got := map[int64]pgRow{}
	rows, err := pool.Query(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, v int64
		var s *string
		if err := rows.Scan(&id, &v, &s); err != nil {
			t.Fatal(err)
		}
		got[id] = pgRow{v, s}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("new table has %d rows, want %d", len(got), len(want))
	}
	diffs := 0
	for id, w := range want {
		g, ok := got[id]
		if !ok || g.v != w.v || (g.s == nil) != (w.s == nil) || g.s != nil && *g.s != *w.s {
			if diffs++; diffs <= 5 {
				t.Errorf("row %d: got %+v (present %v), want %+v", id, g, ok, w)
			}
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			if diffs++; diffs <= 10 {
				t.Errorf("row %d: %+v should not be there", id, g)
			}
		}
	}
}
