package table

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
)

// The shadow's DDL and the time zone. A plain ALTER TABLE reads the time
// literals of its DDL in its session's time zone, the server's global one
// for a DBA: a TIMESTAMP column's DEFAULT '2000-01-01 00:00:00' is that local
// time's instant, and so is a TIMESTAMP literal that the server evaluates
// once, when it runs the DDL (a partition bound such as VALUES LESS THAN
// (UNIX_TIMESTAMP('2024-01-01 00:00:00'))). osc's sessions are in UTC (see
// MySQLTimeConversion), so every statement that defines the shadow (CREATE
// TABLE … LIKE, the AUTO_INCREMENT carried over, the --alter) runs on a
// connection of its own whose session is in the ALTER's zone; the copy and
// the applier keep their UTC sessions. (What the server evaluates for each
// row instead, a generated column's or a CHECK constraint's expression, it
// evaluates in the writing session's zone: see the README.)

// mysqlDDLSession is a connection of db whose session time_zone is zone,
// for the statements that define the shadow.
type mysqlDDLSession struct {
	conn *sql.Conn
}

func openMySQLDDLSession(ctx context.Context, db *sql.DB, zone string) (*mysqlDDLSession, error) {
	if !mysqlZoneName.MatchString(zone) {
		return nil, fmt.Errorf("time zone %q is not a zone name or offset", zone)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("open a connection for the shadow table's DDL: %w", err)
	}
	s := &mysqlDDLSession{conn: conn}
	if _, err := conn.ExecContext(ctx, "SET SESSION time_zone = ?", zone); err != nil {
		return nil, errors.Join(fmt.Errorf("set time_zone %s for the shadow table's DDL: %w", zone, err), s.discard())
	}
	return s, nil
}

func (s *mysqlDDLSession) exec(ctx context.Context, stmt string) error {
	_, err := s.conn.ExecContext(ctx, stmt)
	return err
}

// discard closes the connection instead of returning it to the pool, whose
// sessions must stay in UTC: a Raw function that answers ErrBadConn makes
// database/sql close the driver's connection and the Conn.
func (s *mysqlDDLSession) discard() error {
	err := s.conn.Raw(func(any) error { return driver.ErrBadConn })
	if !errors.Is(err, driver.ErrBadConn) {
		return fmt.Errorf("close the shadow table's DDL connection: %w", err)
	}
	return nil
}
