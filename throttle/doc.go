// Package throttle decides when osc's row copy must pause: replica lag, server
// load, flag files, a throttle query or HTTP endpoint, the operator's command,
// and (PostgreSQL) the WAL the change capture retains. Change capture and apply
// never pause; only the copy waits. Critical load aborts the migration
// (ErrCriticalLoad): at once, or when it is still met after an interval.
//
// The database-specific measurements (heartbeat, replica lag, load, retained
// WAL) are behind Probe, implemented by package probe (probe/mysql.go,
// probe/postgres.go). This package imports no database driver: the engine
// runs the throttler.
package throttle
