package throttle

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// HeartbeatInterval is how often osc writes its heartbeat on the primary.
const HeartbeatInterval = 100 * time.Millisecond

// Probe is what the throttler measures on one database.
type Probe interface {
	// Heartbeat records on the primary that osc was alive at now; replicas
	// read it back to measure their lag.
	Heartbeat(ctx context.Context, now time.Time) error
	// ReplicaLags reads the lag of each replica to watch: those given
	// (host:port, or for PostgreSQL a connection string) and those the
	// primary knows of. A replica that cannot be read has Err set.
	ReplicaLags(ctx context.Context, given []string) []ReplicaLag
	// Load reads the named load metrics on the primary, in order. An unknown
	// name is an error.
	Load(ctx context.Context, names []string) ([]int64, error)
	// Query runs the throttle query on the primary and returns its first
	// column as an integer.
	Query(ctx context.Context, query string) (int64, error)
	// RetainedWAL returns the bytes of WAL the change capture keeps on the
	// server; ok is false where that does not apply (MySQL).
	RetainedWAL(ctx context.Context) (bytes int64, ok bool, err error)
	// Close releases the probe's own connections (not the primary's pool).
	Close() error
}

// ReplicaLag is one replica's measured lag.
type ReplicaLag struct {
	Name string
	Lag  time.Duration
	Err  error
}

// Settings are the throttle thresholds in force. Zero values disable a check.
type Settings struct {
	MaxLag               time.Duration // replica lag above which the copy waits; 0: not checked
	Replicas             []string      // replicas to watch besides those discovered
	MaxLoad              Thresholds    // throttle while a metric >= its threshold
	CriticalLoad         Thresholds    // abort the migration when a metric >= its threshold
	CriticalLoadInterval time.Duration // re-check critical load after this before aborting; 0: abort at once
	FlagFile             string        // throttle while this file exists
	AdditionalFlagFile   string        // same
	Query                string        // throttle while it returns a value > 0
	HTTP                 string        // throttle unless a HEAD of this URL answers 200
	MaxRetainedWAL       int64         // bytes; PostgreSQL only
	Manual               bool          // the operator's throttle command
}

// Threshold is one name=value of --max-load or --critical-load.
type Threshold struct {
	Name  string
	Value int64
}

// Thresholds is a list of thresholds in the order given.
type Thresholds []Threshold

var metricName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// IsMetricName reports whether name has the form of a load metric (a
// status variable name): a probe may put it into SQL.
func IsMetricName(name string) bool { return metricName.MatchString(name) }

// ParseThresholds parses "Threads_running=25,Threads_connected=500". The
// empty string is no thresholds.
func ParseThresholds(s string) (Thresholds, error) {
	var out Thresholds
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !metricName.MatchString(name) {
			return nil, fmt.Errorf("%q: want name=value, e.g. Threads_running=25", part)
		}
		v, err := strconv.ParseInt(value, 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%q: the threshold must be a non-negative integer", part)
		}
		if seen[strings.ToLower(name)] {
			return nil, fmt.Errorf("%q: %s is given twice", s, name)
		}
		seen[strings.ToLower(name)] = true
		out = append(out, Threshold{Name: name, Value: v})
	}
	return out, nil
}

func (t Thresholds) String() string {
	parts := make([]string, len(t))
	for i, x := range t {
		parts[i] = x.Name + "=" + strconv.FormatInt(x.Value, 10)
	}
	return strings.Join(parts, ",")
}

// Names returns the metric names in order.
func (t Thresholds) Names() []string {
	names := make([]string, len(t))
	for i, x := range t {
		names[i] = x.Name
	}
	return names
}

// ParseReplicas splits a comma-separated replica list. An entry is host:port,
// or, when dsnAllowed (PostgreSQL), a connection string: a URL
// (postgres://…) or key=value pairs.
func ParseReplicas(s string, dsnAllowed bool) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if err := checkReplica(part, dsnAllowed); err != nil {
			return nil, err
		}
		if !seen[part] {
			seen[part] = true
			out = append(out, part)
		}
	}
	return out, nil
}

func checkReplica(r string, dsnAllowed bool) error {
	if IsDSN(r) {
		if !dsnAllowed {
			return fmt.Errorf("replica %q: want host:port", r)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(r)
	if err != nil || host == "" {
		return fmt.Errorf("replica %q: want host:port", r)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("replica %q: port %q is not a number in 1-65535", r, port)
	}
	return nil
}

// IsDSN reports whether a replica entry is a PostgreSQL connection string
// rather than host:port.
func IsDSN(r string) bool {
	return strings.Contains(r, "://") || strings.Contains(r, "=")
}

// ParseBytes parses a size such as 1GB, 512MB, 1048576 (powers of 1024).
func ParseBytes(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 1GB, 512MB, 1048576)", s)
	}
	return int64(v * float64(mult)), nil
}

// FormatBytes renders a byte count for humans.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

// ErrCriticalLoad is wrapped by the error Run returns when critical load
// aborts the migration.
var ErrCriticalLoad = errors.New("critical load")
