package dialect

import (
	"errors"

	"osc/engine"
)

// Placeholder until the MySQL checksum implementation merges (branch
// ck-mysql): it replaces the method by the real one and deletes it here.

func (d *mysqlDialect) NewChecksum() (engine.Checksum, error) {
	return nil, errors.New("mysql: checksum not implemented on this branch")
}
