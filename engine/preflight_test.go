package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func testPreflight() *Preflight {
	return &Preflight{Server: "PostgreSQL 15.18", Rows: 1234567, DataBytes: 3 << 30, IndexBytes: 512 << 20, ChangeLog: "WAL",
		Writes: 41.6, WritesOver: 2 * time.Second, WritesScope: "the table",
		Transactions: []OpenTransaction{{ID: "pid 7", Who: "app", Age: 95 * time.Second, Holds: "yes"}},
		Retention:    "a replication slot keeps at most 4GB of WAL", Replicas: []string{"standby at 10.0.0.2 (streaming), replay lag 0s"}}
}

// TestPreflightText: the report names every figure a DBA checks, in the
// units they read.
func TestPreflightText(t *testing.T) {
	cfg := Config{CutOverLockTimeout: 3 * time.Second, CutOverRetries: 60}
	got := testPreflight().text(cfg, "public.t", &NativePlan{Why: "--strategy copy"}, "postgres")
	for _, want := range []string{
		"Preflight: public.t on PostgreSQL 15.18\n",
		"table:         ~1,234,567 rows; data 3.0 GiB, indexes 512.0 MiB\n",
		"a copy needs:  about 3.5 GiB free for the new table, and about 3.0 GiB more WAL while the copy runs\n",
		"writes now:    42 rows/s on the table (sampled over 2s)\n",
		"transactions:  oldest open: pid 7 for 1m35s (app), holds the table: yes\n",
		"replicas:      standby at 10.0.0.2 (streaming), replay lag 0s\n",
		"plan:          copy the table: --strategy copy\n",
		"locks:         the checksum and the cut-over each block writes at most 3s per attempt, up to 60 attempts (3m0s at worst)\n",
		// 1,234,567 rows at 256,000 rows/s, and 30 % more.
		"estimate:      ~6.3s, plus any lock waits: the copy of ~1,234,567 rows at ~256,000 rows/s and the checksum (~30% more)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	unknown := (&Preflight{Server: "x", ChangeLog: "WAL", Rows: -1, DataBytes: 2048}).text(cfg, "d.t", &NativePlan{Why: "--strategy copy"}, "mysql")
	if want := "table:         rows unknown (never analyzed); data 2.0 KiB"; !strings.Contains(unknown, want) {
		t.Errorf("report lacks %q:\n%s", want, unknown)
	}
	empty := (&Preflight{Server: "x", ChangeLog: "binlog"}).text(cfg, "d.t", &NativePlan{Why: "--strategy copy"}, "mysql")
	for _, want := range []string{"not sampled (--preflight-sample 0: by default a dry run samples 2s, an --execute run none)", "transactions:  none open for a second or more", "replicas:      none found"} {
		if !strings.Contains(empty, want) {
			t.Errorf("report lacks %q:\n%s", want, empty)
		}
	}
}

// TestPreflightJSON: --output json prints the report as one object.
func TestPreflightJSON(t *testing.T) {
	var out bytes.Buffer
	d := &preflightFake{fakeDialect: newFake(1), r: testPreflight()}
	cfg := fakeConfig()
	cfg.Control.JSONStatus = true
	m := New(cfg, d, slog.New(slog.DiscardHandler), &out)
	m.preflight(context.Background(), &NativePlan{Why: "--strategy copy"})
	var j map[string]map[string]any
	if err := json.Unmarshal(out.Bytes(), &j); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	p := j["preflight"]
	if p["table"] != "fake.t" || p["rows_estimated"] != 1234567.0 || p["writes_per_second"] != 41.6 ||
		p["needs_free_bytes"] != float64(3<<30+512<<20) || len(p["transactions"].([]any)) != 1 {
		t.Errorf("preflight %v", p)
	}
	// No estimate is null, not -1 or 0.
	rows := testPreflight()
	rows.Rows = -1
	out.Reset()
	m = New(cfg, &preflightFake{fakeDialect: newFake(1), r: rows}, slog.New(slog.DiscardHandler), &out)
	m.preflight(context.Background(), &NativePlan{Why: "--strategy copy"})
	if err := json.Unmarshal(out.Bytes(), &j); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if v, ok := j["preflight"]["rows_estimated"]; !ok || v != nil {
		t.Errorf("rows_estimated %v (present %v) without an estimate, want null", v, ok)
	}
}

// preflightFake is the fake dialect with a preflight report.
type preflightFake struct {
	*fakeDialect
	r *Preflight
}

func (d *preflightFake) Preflight(context.Context, time.Duration) (*Preflight, error) {
	return d.r, nil
}

// TestPreflightUnread: a fact the server did not tell is said so on its line.
func TestPreflightUnread(t *testing.T) {
	r := testPreflight()
	r.Unread = map[string]string{"transactions": "Access denied; you need the PROCESS privilege", "replicas": "denied"}
	got := r.text(Config{CutOverLockTimeout: time.Second, CutOverRetries: 1}, "d.t", &NativePlan{Why: "--strategy copy"}, "mysql")
	for _, want := range []string{"transactions:  cannot read: Access denied; you need the PROCESS privilege\n", "replicas:      cannot read: denied\n",
		"writes now:    42 rows/s"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

// TestPreflightPlan: the report gives the plan clause by clause, each
// step's locks and how long it may hold writers, and an estimate.
func TestPreflightPlan(t *testing.T) {
	cfg := Config{CutOverLockTimeout: 2 * time.Second, CutOverRetries: 10}
	np := &NativePlan{
		Steps: []NativeStep{
			{SQL: "CREATE UNIQUE INDEX CONCURRENTLY t_b_key ON t USING btree (b)", Lock: "SHARE UPDATE EXCLUSIVE", Reads: true},
			{SQL: "ALTER TABLE t ADD CONSTRAINT t_b_key UNIQUE USING INDEX t_b_key; ALTER TABLE t ADD COLUMN n int", Lock: "ACCESS EXCLUSIVE", BlocksWriters: true},
		},
		Clauses: []ClausePlan{{Clause: "ADD UNIQUE (b)", Path: PathOnline, Detail: "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … USING INDEX"},
			{Clause: "ADD COLUMN n int", Path: PathMetadata}},
	}
	r := testPreflight()
	got := r.text(cfg, "public.t", np, "postgres")
	for _, want := range []string{
		"plan:          native, no copy: 2 step(s)\n",
		"clause:        ADD UNIQUE (b): online native: CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … USING INDEX\n",
		"clause:        ADD COLUMN n int: metadata-only\n",
		"step 1:        CREATE UNIQUE INDEX CONCURRENTLY t_b_key ON t USING btree (b) [SHARE UPDATE EXCLUSIVE: writers go on; reads the whole table]\n",
		"step 2:        ALTER TABLE t ADD CONSTRAINT t_b_key UNIQUE USING INDEX t_b_key; ALTER TABLE t ADD COLUMN n int [ACCESS EXCLUSIVE: blocks writers at most 2s per attempt, up to 10 attempts (20s at worst)]\n",
		// One read of 1,234,567 rows at 410,000 rows/s.
		"estimate:      ~3s, plus any lock waits: 1 read(s) of ~1,234,567 rows at ~410,000 rows/s",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "locks:") {
		t.Errorf("a native plan's report has the copy's locks line:\n%s", got)
	}
	r.Rows = -1
	if got := r.text(cfg, "public.t", np, "postgres"); !strings.Contains(got, "estimate:      none: the row count is unknown") {
		t.Errorf("no estimate without rows:\n%s", got)
	}
	var j map[string]map[string]any
	if err := json.Unmarshal([]byte(testPreflight().json(cfg, "public.t", np, "postgres")), &j); err != nil {
		t.Fatal(err)
	}
	plan := j["preflight"]["plan"].(map[string]any)
	steps := plan["steps"].([]any)
	if plan["path"] != "native" || len(plan["clauses"].([]any)) != 2 || len(steps) != 2 ||
		steps[1].(map[string]any)["max_block_seconds_per_attempt"] != 2.0 || steps[0].(map[string]any)["reads_table"] != true ||
		plan["estimated_seconds"].(float64) < 3 {
		t.Errorf("plan %v", plan)
	}
}
