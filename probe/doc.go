// Package probe implements throttle.Probe for each database (mysql.go,
// postgres.go): osc's heartbeat on the primary, the lag of each replica, load
// metrics, the throttle query and (PostgreSQL) the WAL the change capture's
// slot retains.
//
// A replica's lag is osc's clock now minus the newest heartbeat the replica
// has applied (MySQL: a row of the changelog table; PostgreSQL: a
// non-transactional logical message and its WAL position), so the servers'
// clocks do not matter. It measures only: package throttle compares the
// measurements with the thresholds.
package probe
