package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Preflight is what a DBA checks before a schema change touches anything:
// the table's size, what the copy needs, the writes on the table now, the
// transactions that could hold up osc's locks, how long the server keeps
// the change log osc reads, and the replicas. osc prints it before it
// changes anything (preflight.go's report), in a dry run and before a
// migration alike.
type Preflight struct {
	Server     string // the server's product and version
	Rows       int64  // estimated rows (-1: the server has no estimate)
	DataBytes  int64  // the table's data (PostgreSQL: with its TOAST table)
	IndexBytes int64  // its indexes
	// ChangeLog names what capture reads ("binlog", "WAL"): the copy
	// writes about the table's data through it again.
	ChangeLog string
	// Writes is the rows written per second over WritesOver (0: not
	// sampled); WritesScope says what was counted: the table, or the
	// whole server when it counts no table's writes.
	Writes      float64
	WritesOver  time.Duration
	WritesScope string
	// Transactions are the oldest transactions open for a second or
	// more, oldest first.
	Transactions []OpenTransaction
	// Retention says how long the server keeps the change log.
	Retention string
	// Replicas are the replicas found, with their lag where the server
	// reports it.
	Replicas []string
	// ForeignKeys says what the migration does with the table's foreign
	// keys and what that locks ("": nothing to say).
	ForeignKeys string
	// Triggers says what the migration does with the table's triggers
	// ("": nothing to say).
	Triggers string
	// Unread holds, by the report's line ("writes now", "transactions",
	// "change log", "replicas"), why the server did not tell (a missing
	// privilege, say): the report says so on that line.
	Unread map[string]string
}

// OpenTransaction is a transaction open on the server.
type OpenTransaction struct {
	ID  string        // thread id (MySQL) or backend pid (PostgreSQL)
	Who string        // user, host or application
	Age time.Duration // since the transaction began
	// Holds is "yes" or "no" when the server tells whether the
	// transaction holds a lock on the table, else "".
	Holds string
}

// preflighter is a Dialect that can report the preflight: it reads the
// server's write counters, waits sample (0: samples none), and reads them
// again. It is called after Inspect.
type preflighter interface {
	Preflight(ctx context.Context, sample time.Duration) (*Preflight, error)
}

// preflight prints the preflight report. A fact the server does not tell is
// reported as unread; a report that cannot be made at all only warns: it is
// a report, not a precondition (Inspect checked those).
func (m *Migration) preflight(ctx context.Context, np *NativePlan) {
	p, ok := m.d.(preflighter)
	if !ok || m.out == nil {
		return
	}
	r, err := p.Preflight(ctx, m.cfg.PreflightSample)
	if err != nil {
		m.log.Warn("preflight report: " + err.Error())
		return
	}
	if m.cfg.Control.JSONStatus {
		fmt.Fprintln(m.out, r.json(m.cfg, m.tableName(), np, m.d.Driver()))
		return
	}
	fmt.Fprint(m.out, r.text(m.cfg, m.tableName(), np, m.d.Driver()))
}

// tableName is the table as the report names it.
func (m *Migration) tableName() string {
	if m.cfg.Schema == "" {
		return m.cfg.Table
	}
	return m.cfg.Schema + "." + m.cfg.Table
}

// text renders the report as lines for people; np is the plan (nil: a
// resumed copy), driver the dialect's.
func (r *Preflight) text(cfg Config, table string, np *NativePlan, driver string) string {
	var b strings.Builder
	line := func(name, format string, a ...any) {
		fmt.Fprintf(&b, "  %-14s %s\n", name+":", fmt.Sprintf(format, a...))
	}
	fmt.Fprintf(&b, "Preflight: %s on %s\n", table, r.Server)
	rows := "~" + thousands(r.Rows) + " rows"
	if r.Rows < 0 {
		rows = "rows unknown (never analyzed)"
	}
	line("table", "%s; data %s, indexes %s", rows, bytesText(r.DataBytes), bytesText(r.IndexBytes))
	line("a copy needs", "about %s free for the new table, and about %s more %s while the copy runs",
		bytesText(r.DataBytes+r.IndexBytes), bytesText(r.DataBytes), r.ChangeLog)
	unread := func(name string) bool {
		if why, ok := r.Unread[name]; ok {
			line(name, "cannot read: %s", why)
			return true
		}
		return false
	}
	switch {
	case unread("writes now"):
	case r.WritesOver > 0:
		line("writes now", "%s rows/s on %s (sampled over %s)", thousands(int64(r.Writes+0.5)), r.WritesScope, r.WritesOver)
	default:
		line("writes now", "not sampled (--preflight-sample 0: by default a dry run samples 2s, an --execute run none)")
	}
	switch {
	case unread("transactions"):
	case len(r.Transactions) == 0:
		line("transactions", "none open for a second or more")
	default:
		var ts []string
		for _, t := range r.Transactions {
			s := fmt.Sprintf("%s for %s (%s)", t.ID, t.Age.Round(time.Second), t.Who)
			if t.Holds != "" {
				s += ", holds the table: " + t.Holds
			}
			ts = append(ts, s)
		}
		line("transactions", "oldest open: %s", strings.Join(ts, "; "))
	}
	if !unread("change log") {
		line("change log", "%s", r.Retention)
	}
	switch {
	case unread("replicas"):
	case len(r.Replicas) == 0:
		line("replicas", "none found")
	default:
		line("replicas", "%s", strings.Join(r.Replicas, "; "))
	}
	if r.ForeignKeys != "" {
		line("foreign keys", "%s", r.ForeignKeys)
	}
	if r.Triggers != "" {
		line("triggers", "%s", r.Triggers)
	}
	planText(line, np, cfg, r.Rows, driver)
	return b.String()
}

// preflightJSON is the report as one JSON object (--output json).
type preflightJSON struct {
	Preflight struct {
		Table               string            `json:"table"`
		Server              string            `json:"server"`
		Rows                *int64            `json:"rows_estimated"` // null: no estimate
		DataBytes           int64             `json:"data_bytes"`
		IndexBytes          int64             `json:"index_bytes"`
		ChangeLog           string            `json:"change_log"`
		WritesPerSecond     *float64          `json:"writes_per_second"`
		WritesScope         string            `json:"writes_scope,omitempty"`
		SampleSeconds       float64           `json:"sample_seconds"`
		Transactions        []transactionJSON `json:"transactions"`
		Retention           string            `json:"change_log_retention"`
		Replicas            []string          `json:"replicas"`
		ForeignKeys         string            `json:"foreign_keys,omitempty"`
		Triggers            string            `json:"triggers,omitempty"`
		LockTimeoutSeconds  float64           `json:"lock_timeout_seconds"`
		LockAttempts        int               `json:"lock_attempts"`
		NeedsFreeBytes      int64             `json:"needs_free_bytes"`
		NeedsChangeLogBytes int64             `json:"needs_change_log_bytes"`
		Unread              map[string]string `json:"unread,omitempty"`
		Plan                *planJSON         `json:"plan"`
	} `json:"preflight"`
}

type transactionJSON struct {
	ID         string  `json:"id"`
	Who        string  `json:"who"`
	AgeSeconds float64 `json:"age_seconds"`
	Holds      string  `json:"holds_table,omitempty"`
}

func (r *Preflight) json(cfg Config, table string, np *NativePlan, driver string) string {
	var j preflightJSON
	p := &j.Preflight
	p.Table, p.Server, p.DataBytes, p.IndexBytes = table, r.Server, r.DataBytes, r.IndexBytes
	if r.Rows >= 0 {
		rows := r.Rows
		p.Rows = &rows
	}
	p.ChangeLog, p.Retention = r.ChangeLog, r.Retention
	if r.WritesOver > 0 {
		w := r.Writes
		p.WritesPerSecond, p.WritesScope, p.SampleSeconds = &w, r.WritesScope, r.WritesOver.Seconds()
	}
	p.Transactions = []transactionJSON{}
	for _, t := range r.Transactions {
		p.Transactions = append(p.Transactions, transactionJSON{ID: t.ID, Who: t.Who, AgeSeconds: t.Age.Seconds(), Holds: t.Holds})
	}
	p.Replicas = append([]string{}, r.Replicas...)
	p.ForeignKeys, p.Triggers = r.ForeignKeys, r.Triggers
	p.LockTimeoutSeconds, p.LockAttempts = cfg.CutOverLockTimeout.Seconds(), cfg.CutOverRetries
	p.NeedsFreeBytes, p.NeedsChangeLogBytes = r.DataBytes+r.IndexBytes, r.DataBytes
	p.Unread = r.Unread
	p.Plan = planToJSON(np, cfg, r.Rows, driver)
	out, err := json.Marshal(j)
	if err != nil {
		return fmt.Sprintf(`{"preflight_error": %q}`, err.Error())
	}
	return string(out)
}

// bytesText renders n bytes in binary units, as DBAs read sizes.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, units := float64(n), "KMGTPE"
	i := -1
	for f >= unit && i < len(units)-1 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, units[i])
}

// thousands renders n with thousands separators.
func thousands(n int64) string {
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
