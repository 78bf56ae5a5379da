package apply

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"

	"osc/cdc"
	"osc/table"
)

// pgNewUnique is the applier's check of the plan's new unique keys. The clash
// resolution (postgres_clash.go) deletes a shadow row of another key that
// holds a written row's value, as it must under the original's own unique
// keys; under a new one both rows may be the original's. So after a batch or
// a refresh whose resolution deleted rows (clashed), or that failed on a
// unique violation, the original is asked whether two of the rows it deleted
// and wrote hold one value of a new unique key now
// (table.PostgresUniqueCheck); the migration then fails with a
// *table.DuplicateError naming them. Otherwise each deleted row was older or
// newer than the original's, and a later change writes it again; a row lost
// to a clash with a duplicate the original held for a moment only is copied
// again by the checksum, which a migration with a new unique key requires.
type pgNewUnique struct {
	once  sync.Once
	check *table.PostgresUniqueCheck // nil: no new unique key

	mu    sync.Mutex
	keys  [][]string // rows the clash resolution deleted since the last check
	names map[string]bool
}

func (u *pgNewUnique) init(plan *table.Plan) {
	u.once.Do(func() {
		u.check = table.NewPostgresUniqueCheck(plan)
		u.names = map[string]bool{}
		for _, k := range plan.NewUnique {
			u.names[k.Name] = true
		}
	})
}

// clashed notes the keys of rows the clash resolution deleted.
func (u *pgNewUnique) clashed(keys [][]string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.check != nil {
		u.keys = append(u.keys, keys...)
	}
}

// take returns the keys noted since the last call.
func (u *pgNewUnique) take() [][]string {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := u.keys
	u.keys = nil
	return k
}

// violated reports whether err is a unique violation of a new unique key.
func (u *pgNewUnique) violated(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && u.names[pgErr.ConstraintName]
}

// afterUnique runs the check once a batch or refresh ended with err: when its
// clash resolution deleted rows, or err is a unique violation of a new
// unique key, it asks the original about those rows and the ones written
// (keys) and returns the *table.DuplicateError found, else err.
func (a *Postgres) afterUnique(ctx context.Context, err error, written func() [][]string, when string) error {
	u := &a.newUnique
	if u.check == nil {
		return err
	}
	deleted := u.take()
	if len(deleted) == 0 && !u.violated(err) {
		return err
	}
	if cerr := u.check.Check(ctx, a.pool, append(deleted, written()...), when); cerr != nil {
		return fmt.Errorf("apply: %w", cerr)
	}
	return err
}

// Apply writes the changes (see applyChanges) and checks the clashes they
// met under the plan's new unique keys (see pgNewUnique).
func (a *Postgres) Apply(ctx context.Context, changes []cdc.Change) error {
	a.newUnique.init(a.plan)
	err := a.applyChanges(ctx, changes)
	return a.afterUnique(ctx, err, func() [][]string {
		var keys [][]string
		for _, c := range changes {
			for _, r := range []cdc.Row{c.Before, c.After} {
				if k := a.keyStrings(r); k != nil {
					keys = append(keys, k)
				}
			}
		}
		return keys
	}, "applying captured changes")
}

// Refresh writes the rows of keys as the source holds them (see
// refreshRows) and checks the clashes they met under the plan's new unique
// keys (see pgNewUnique).
func (a *Postgres) Refresh(ctx context.Context, keys [][]string) error {
	a.newUnique.init(a.plan)
	err := a.refreshRows(ctx, keys)
	return a.afterUnique(ctx, err, func() [][]string { return keys }, "the copy of a chunk (refreshing the rows it skipped for a clash)")
}

// keyStrings is the key of row r as texts, or nil when r has none (no row,
// or a key value not sent).
func (a *Postgres) keyStrings(r cdc.Row) []string {
	if r == nil {
		return nil
	}
	for _, k := range a.keys {
		if k.index >= len(r) {
			return nil
		}
	}
	p, err := a.keyParams(r)
	if err != nil {
		return nil
	}
	out := make([]string, len(p))
	for i, v := range p {
		out[i] = *v
	}
	return out
}
