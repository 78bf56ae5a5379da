package apply

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/cdc"
	"osc/internal/testdb"
)

// Tests of the clash resolution's speed paths: batches sent straight to
// applyClashingBatch (clashFirst), keys whose text needs no query
// (verbatim), and the key's own index left out of the clash deletion.

const clashFirstSchema = "clashfirst_apply"

// clashFirstPool is pgTestPool with this file's own schema.
func clashFirstPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	cfg := testdb.PostgresConfig(t)
	cfg.ConnConfig.RuntimeParams["TimeZone"] = "America/St_Johns"
	cfg.ConnConfig.RuntimeParams["DateStyle"] = "SQL, DMY"
	cfg.ConnConfig.RuntimeParams["extra_float_digits"] = "0"
	cfg.ConnConfig.RuntimeParams["IntervalStyle"] = "sql_standard"
	cfg.ConnConfig.RuntimeParams["bytea_output"] = "escape"
	pool := testdb.OpenPostgres(t, cfg)
	testdb.ResetPostgresSchema(t, pool, clashFirstSchema)
	return pool
}

// clashFirstModel is a table (id int key, n int, u text UNIQUE) that a
// writer changes at random as the stress test's unique_moves writers do:
// values moved between rows, swapped via NULL, rows deleted and re-created
// under another key with the value, keys changed. It records the changes.
type clashFirstModel struct {
	rng     *rand.Rand
	rows    map[int][2]string // id → n, u ("" is NULL)
	fresh   int
	changes []cdc.Change
}

func (m *clashFirstModel) row(id int) cdc.Row {
	r := m.rows[id]
	var u any
	if r[1] != "" {
		u = r[1]
	}
	return cdc.Row{strconv.Itoa(id), r[0], u}
}

// ids returns the model's keys in order (map order is random).
func (m *clashFirstModel) ids() []int {
	ids := make([]int, 0, len(m.rows))
	for id := range m.rows {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

func (m *clashFirstModel) pick() int {
	ids := m.ids()
	return ids[m.rng.Intn(len(ids))]
}

func (m *clashFirstModel) freeKey() int {
	for {
		if id := 1 + m.rng.Intn(400); m.rows[id] == ([2]string{}) {
			return id
		}
	}
}

func (m *clashFirstModel) set(id int, u string) {
	r := m.rows[id]
	n, _ := strconv.Atoi(r[0])
	m.rows[id] = [2]string{strconv.Itoa(n + 1), u}
	m.changes = append(m.changes, cdc.Change{Op: cdc.Update, After: m.row(id)})
}

// step makes one random change (or a swap, three).
func (m *clashFirstModel) step() {
	a := m.pick()
	switch m.rng.Intn(6) {
	case 0: // a fresh value
		m.fresh++
		m.set(a, "f"+strconv.Itoa(m.fresh))
	case 1: // swap with another row via NULL
		b := m.pick()
		if a == b {
			return
		}
		ua, ub := m.rows[a][1], m.rows[b][1]
		m.set(a, "")
		m.set(b, ua)
		m.set(a, ub)
	case 2: // deleted, and re-created under a new key with its value
		u := m.rows[a][1]
		m.changes = append(m.changes, cdc.Change{Op: cdc.Delete, Before: cdc.Row{strconv.Itoa(a), nil, nil}})
		delete(m.rows, a)
		id := m.freeKey()
		m.rows[id] = [2]string{"0", u}
		m.changes = append(m.changes, cdc.Change{Op: cdc.Insert, After: m.row(id)})
	case 3: // the key changes
		id := m.freeKey()
		m.rows[id] = m.rows[a]
		delete(m.rows, a)
		m.changes = append(m.changes, cdc.Change{Op: cdc.Update, Before: cdc.Row{strconv.Itoa(a), nil, nil}, After: m.row(id)})
	case 4: // the value goes to another row, which gives its own up
		b := m.pick()
		if a == b {
			return
		}
		ua := m.rows[a][1]
		m.set(a, "")
		m.set(b, ua)
	default: // rewritten as it is
		m.set(a, m.rows[a][1])
	}
}

// values is the model's rows as a VALUES list.
func (m *clashFirstModel) values() string {
	var vals []string
	for _, id := range m.ids() {
		r := m.rows[id]
		u := "NULL"
		if r[1] != "" {
			u = "'" + r[1] + "'"
		}
		vals = append(vals, fmt.Sprintf("(%d, %s, %s)", id, r[0], u))
	}
	return strings.Join(vals, ", ")
}

// text is the model's rows as schemaRows shows a table's.
func (m *clashFirstModel) text() string {
	var parts []string
	for _, id := range m.ids() {
		r := m.rows[id]
		parts = append(parts, fmt.Sprintf("(%d,%s,%s)", id, r[0], r[1]))
	}
	return strings.Join(parts, ";")
}

// The applier catches up from an older position over a shadow that a later
// read of the source filled (a chunk ahead of the applier, a resumed run):
// most batches clash. Sent straight to the clash resolution or tried first,
// the batches leave the shadow as the source ends, and both ways meet
// clashes.
func TestPostgresClashFirstSameShadow(t *testing.T) {
	for _, first := range []bool{false, true} {
		t.Run(fmt.Sprintf("clash_first_%v", first), func(t *testing.T) {
			pool := clashFirstPool(t)
			m := &clashFirstModel{rng: rand.New(rand.NewSource(7)), rows: map[int][2]string{}}
			for id := 1; id <= 60; id++ {
				m.rows[id*3] = [2]string{"0", "u" + strconv.Itoa(id)}
			}
			testdb.ExecPostgres(t, pool,
				"CREATE TABLE "+clashFirstSchema+".t (id int PRIMARY KEY, n int NOT NULL, u text UNIQUE)",
				"CREATE TABLE "+clashFirstSchema+"._t_new (LIKE "+clashFirstSchema+".t INCLUDING ALL)")
			for range 150 {
				m.step()
			}
			start := len(m.changes)
			for range 150 {
				m.step()
			}
			// The shadow as a read of the source saw it halfway through.
			testdb.ExecPostgres(t, pool, "INSERT INTO "+clashFirstSchema+"._t_new VALUES "+m.values())
			for range 150 {
				m.step()
			}
			ap := NewPostgres(pool, schemaPlan(t, pool, clashFirstSchema, "t", "_t_new"))
			rng := rand.New(rand.NewSource(11))
			clashes, direct := 0, 0
			for i := 0; i < len(m.changes); {
				if i < start {
					i = start
				}
				end := min(len(m.changes), i+1+rng.Intn(40))
				if first {
					ap.clashRecent = pgClashRecent
				} else {
					ap.clashRecent = 0
				}
				if err := ap.Apply(context.Background(), m.changes[i:end]); err != nil {
					t.Fatalf("apply changes %d to %d: %v", i, end, err)
				}
				if ap.clashRecent == pgClashRecent {
					clashes++
				}
				if first {
					direct++
				}
				i = end
			}
			if got, want := schemaRows(t, pool, clashFirstSchema, "_t_new"), m.text(); got != want {
				t.Errorf("shadow\n%s\nwant\n%s", got, want)
			}
			if clashes < 3 {
				t.Errorf("%d batches clashed: the test no longer makes clashes", clashes)
			}
			if len(ap.cleared) != 0 {
				t.Errorf("keys still cleared: %v", ap.cleared)
			}
			t.Logf("%d batches clashed (%d sent straight to the clash resolution)", clashes, direct)
		})
	}
}

// After a batch that clashed, the next pgClashRecent batches of whole rows
// go straight to the clash resolution (one that clashes keeps it so); then
// batches are tried as they are first again. A batch with a partial update
// is never sent there. A table whose only unique index is its key never
// clashes.
func TestPostgresClashFirstAfterClash(t *testing.T) {
	pool := clashFirstPool(t)
	big := strings.Repeat(randomText(64), 100)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+clashFirstSchema+".t (id int PRIMARY KEY, u text UNIQUE, big text)",
		"CREATE TABLE "+clashFirstSchema+"._t_new (LIKE "+clashFirstSchema+".t INCLUDING ALL)",
		"INSERT INTO "+clashFirstSchema+".t VALUES (9, 'p', '"+big+"')",
		"INSERT INTO "+clashFirstSchema+"._t_new VALUES (2, 'x', 'new'), (5, 'w', 'new5'), (9, 'p', '"+big+"')")
	ap := NewPostgres(pool, schemaPlan(t, pool, clashFirstSchema, "t", "_t_new"))
	ctx := context.Background()
	apply := func(changes ...cdc.Change) {
		t.Helper()
		if err := ap.Apply(ctx, changes); err != nil {
			t.Fatal(err)
		}
	}
	apply(cdc.Change{Op: cdc.Insert, After: cdc.Row{"3", "y", "v"}})
	if ap.clashRecent != 0 {
		t.Fatalf("clashRecent %d after a batch that did not clash, want 0", ap.clashRecent)
	}
	// Rows 1 and 4 held 'x' and 'w' before rows 2 and 5, which a chunk
	// copied. A batch with a partial update clashes too: it is applied one
	// statement at a time.
	apply(cdc.Change{Op: cdc.Insert, After: cdc.Row{"1", "x", "old"}},
		cdc.Change{Op: cdc.Update, After: cdc.Row{"9", "p2", nil}, Unchanged: []bool{false, false, true}})
	if ap.clashRecent != pgClashRecent {
		t.Fatalf("clashRecent %d after a clash, want %d", ap.clashRecent, pgClashRecent)
	}
	ap.clashRecent--
	// Sent straight to the clash resolution, which deletes row 5.
	apply(cdc.Change{Op: cdc.Insert, After: cdc.Row{"4", "w", "old4"}})
	if ap.clashRecent != pgClashRecent {
		t.Fatalf("clashRecent %d after a batch sent straight to the clash resolution that clashed, want %d", ap.clashRecent, pgClashRecent)
	}
	// A partial update: tried first, and no batch of whole rows.
	apply(cdc.Change{Op: cdc.Update, After: cdc.Row{"9", "q", nil}, Unchanged: []bool{false, false, true}})
	if ap.clashRecent != pgClashRecent {
		t.Fatalf("clashRecent %d after a partial update, want %d", ap.clashRecent, pgClashRecent)
	}
	later := [][]cdc.Change{
		{{Op: cdc.Delete, Before: cdc.Row{"1", nil, nil}}, {Op: cdc.Insert, After: cdc.Row{"2", "x", "new"}}},
		{{Op: cdc.Delete, Before: cdc.Row{"4", nil, nil}}, {Op: cdc.Insert, After: cdc.Row{"5", "w", "new5"}}},
	}
	for i := 2; i < pgClashRecent; i++ {
		later = append(later, []cdc.Change{{Op: cdc.Update, After: cdc.Row{"2", "x", strconv.Itoa(i)}}})
	}
	for i, changes := range later {
		if !ap.clashFirst([]pgOp{{kind: pgUpsert}}) {
			t.Fatalf("batch %d after the clash is not sent straight to the clash resolution", i+1)
		}
		apply(changes...)
	}
	if ap.clashRecent != 0 || ap.clashFirst([]pgOp{{kind: pgUpsert}}) {
		t.Fatalf("clashRecent %d after %d batches that did not clash, want 0", ap.clashRecent, pgClashRecent)
	}
	if ap.clashFirst([]pgOp{{kind: pgUpsert}, {kind: pgUpdate}}) {
		t.Fatal("a batch with a partial update goes to the clash resolution")
	}
	if got, want := schemaRows(t, pool, clashFirstSchema, "_t_new"), "(2,x,7);(3,y,v);(5,w,new5);(9,q,"+big+")"; got != want {
		t.Errorf("shadow %.80s, want %.80s", got, want)
	}
	if len(ap.cleared) != 0 {
		t.Errorf("keys still cleared: %v", ap.cleared)
	}

	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+clashFirstSchema+".k (id int PRIMARY KEY, v text)",
		"CREATE TABLE "+clashFirstSchema+"._k_new (LIKE "+clashFirstSchema+".k INCLUDING ALL)")
	ak := NewPostgres(pool, schemaPlan(t, pool, clashFirstSchema, "k", "_k_new"))
	if err := ak.Apply(ctx, []cdc.Change{{Op: cdc.Insert, After: cdc.Row{"1", "a"}}, {Op: cdc.Insert, After: cdc.Row{"1", "b"}}}); err != nil {
		t.Fatal(err)
	}
	ak.clashed(true)
	if ak.clashFirst([]pgOp{{kind: pgUpsert}}) {
		t.Error("a table without unique indexes but its key's goes to the clash resolution")
	}
}

// The unique indexes whose clashes the applier resolves leave out those over
// the key columns alone, compared as the key is (ON CONFLICT (key) arbitrates
// on them), and keep the others.
func TestPostgresUniqueLeavesKeyIndexes(t *testing.T) {
	pool := clashFirstPool(t)
	for _, c := range []struct {
		create, index string
		want          string // the kept indexes' expressions
	}{
		{"(id int PRIMARY KEY, u text UNIQUE)", "", `(u) COLLATE pg_catalog."default"`},
		{"(id int PRIMARY KEY, v text, UNIQUE (id))", "", ""},
		{"(id int PRIMARY KEY, v text, UNIQUE (id) INCLUDE (v))", "", ""},
		{"(a int, b int, v text, PRIMARY KEY (a, b), UNIQUE (b, a))", "", ""},
		{"(a int, b int, v text, PRIMARY KEY (a, b), UNIQUE (b))", "", "(b)"},
		{"(a int, b int, v text, PRIMARY KEY (a, b), UNIQUE (a, b, v))", "", `(a),(b),(v) COLLATE pg_catalog."default"`},
		{"(id int PRIMARY KEY, v text, UNIQUE (id) DEFERRABLE)", "", "(id)"},
		{"(id text PRIMARY KEY, v text)", `(id COLLATE "C")`, `(id) COLLATE pg_catalog."C"`},
		{"(id int PRIMARY KEY, v text)", "(id) WHERE id > 0", "(id)"},
		{"(id int PRIMARY KEY, v text)", "((id + 0))", "(((id + 0)))"},
	} {
		stmts := []string{
			"DROP TABLE IF EXISTS " + clashFirstSchema + ".t, " + clashFirstSchema + "._t_new",
			"CREATE TABLE " + clashFirstSchema + ".t " + c.create,
		}
		if c.index != "" {
			stmts = append(stmts, "CREATE UNIQUE INDEX ON "+clashFirstSchema+".t "+c.index)
		}
		stmts = append(stmts, "CREATE TABLE "+clashFirstSchema+"._t_new (LIKE "+clashFirstSchema+".t INCLUDING ALL)")
		testdb.ExecPostgres(t, pool, stmts...)
		ap := NewPostgres(pool, schemaPlan(t, pool, clashFirstSchema, "t", "_t_new"))
		if err := ap.init(context.Background()); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range ap.unique {
			got = append(got, strings.Join(u.exprs, ","))
		}
		if strings.Join(got, ";") != c.want {
			t.Errorf("%s %s: unique indexes %q, want %q", c.create, c.index, got, c.want)
		}
	}
}

// A key of a verbatim type is its text as pgoutput sends it, without a
// query: normKeys gives what the session's casts give, in a session whose
// settings change how dates, floats, intervals and bytea print. Keys of
// other types (their text follows a setting, or reads back otherwise) are
// normalised by the server.
func TestPostgresVerbatimKeys(t *testing.T) {
	pool := clashFirstPool(t)
	ctx := context.Background()
	for _, c := range []struct {
		typ      string
		verbatim bool
		texts    []string // as pgoutput sends them
	}{
		{"smallint", true, []string{"-32768", "0", "7"}},
		{"integer", true, []string{"-2147483648", "42"}},
		{"bigint", true, []string{"9223372036854775807", "-1"}},
		{"numeric", true, []string{"1.50", "-0.000100", "NaN", "Infinity", "100000000000000000000"}},
		{"numeric(7,2)", true, []string{"12.30", "-0.05"}},
		{"text", true, []string{"a b\tc", "ünï", "", "x  "}},
		{"character varying(10)", true, []string{"x  ", "ab"}},
		{"uuid", true, []string{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}},
		{"boolean", false, []string{"t", "f"}},
		{"character(4)", false, []string{"ab  "}},
		{"timestamp with time zone", false, []string{"2024-01-02 03:04:05.5+00"}},
		{"date", false, []string{"2024-01-02"}},
		{"interval", false, []string{"1 day 02:00:00"}},
		{"double precision", false, []string{"0.1", "1e+300"}},
		{"bytea", false, []string{`\x00ff`}},
		{"clashfirst_apply.posint", false, []string{"5"}},
	} {
		testdb.ExecPostgres(t, pool,
			"DROP TABLE IF EXISTS "+clashFirstSchema+".t, "+clashFirstSchema+"._t_new",
			"DROP DOMAIN IF EXISTS "+clashFirstSchema+".posint",
			"CREATE DOMAIN "+clashFirstSchema+".posint AS integer CHECK (VALUE > 0)",
			"CREATE TABLE "+clashFirstSchema+".t (id "+c.typ+" PRIMARY KEY, v text)",
			"CREATE TABLE "+clashFirstSchema+"._t_new (LIKE "+clashFirstSchema+".t INCLUDING ALL)")
		ap := NewPostgres(pool, schemaPlan(t, pool, clashFirstSchema, "t", "_t_new"))
		if err := ap.init(ctx); err != nil {
			t.Fatal(err)
		}
		if ap.verbatim != c.verbatim {
			t.Errorf("%s: verbatim %v, want %v", c.typ, ap.verbatim, c.verbatim)
		}
		var rows [][]*string
		for i := range c.texts {
			rows = append(rows, []*string{&c.texts[i]})
		}
		got, err := ap.normKeys(ctx, rows)
		if err != nil {
			t.Fatal(err)
		}
		ap.verbatim = false
		want, err := ap.normKeys(ctx, rows)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: keys %q, the server's %q", c.typ, got, want)
		}
		if c.verbatim && strings.Join(got, "|") != strings.Join(c.texts, "|") {
			t.Errorf("%s: keys %q, want the texts %q", c.typ, got, c.texts)
		}
	}
}
