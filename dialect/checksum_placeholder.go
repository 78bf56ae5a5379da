package dialect

import (
	"errors"

	"osc/engine"
)

// Placeholders until the checksum implementations merge (branches ck-mysql,
// ck-pg): each replaces its method by the real one and deletes it here.

func (d *postgresDialect) NewChecksum() (engine.Checksum, error) {
	return nil, errors.New("postgres: checksum not implemented on this branch")
}
