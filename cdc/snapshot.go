package cdc

import (
	"fmt"
	"strconv"
	"strings"
)

// PostgresSnapshot is a snapshot as pg_current_snapshot() shows it: xmin,
// xmax and the transactions in progress, as 64-bit transaction ids.
type PostgresSnapshot struct {
	Xmin, Xmax uint64
	Xip        map[uint64]bool
}

// ParsePostgresSnapshot reads pg_snapshot's text form "xmin:xmax:xip,…".
func ParsePostgresSnapshot(s string) (*PostgresSnapshot, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return nil, fmt.Errorf("snapshot %q: want xmin:xmax:xip", s)
	}
	var snap PostgresSnapshot
	var err error
	if snap.Xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return nil, fmt.Errorf("snapshot %q: xmin: %w", s, err)
	}
	if snap.Xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return nil, fmt.Errorf("snapshot %q: xmax: %w", s, err)
	}
	if parts[2] != "" {
		snap.Xip = map[uint64]bool{}
		for _, x := range strings.Split(parts[2], ",") {
			n, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("snapshot %q: xip: %w", s, err)
			}
			snap.Xip[n] = true
		}
	}
	return &snap, nil
}

// Sees reports whether transaction xid (32 bits, as pgoutput sends it) had
// committed when the snapshot was taken. The full id is the one within 2^31
// of xmax, as PostgreSQL's wraparound rules guarantee for a running
// transaction.
func (s *PostgresSnapshot) Sees(xid uint32) bool {
	if xid == 0 {
		return false
	}
	full := int64(s.Xmax) + int64(int32(xid-uint32(s.Xmax)))
	if full < 0 {
		return false
	}
	f := uint64(full)
	switch {
	case f >= s.Xmax:
		return false
	case f < s.Xmin:
		return true
	}
	return !s.Xip[f]
}
