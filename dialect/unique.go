package dialect

import (
	"errors"

	"osc/engine"
	"osc/table"
)

// checkNewUnique runs, for a plan with new unique keys, the look for
// duplicates the original holds now (dups): a dry run reports what it finds
// in the plan's notes, a run with --execute refuses it before the copy. A
// duplicate written later stops the migration under the cut-over's lock
// (step 5 of "Why nothing is lost"), with or without the checksum.
func checkNewUnique(cfg engine.Config, plan *table.Plan, dups func() error) error {
	if len(plan.NewUnique) == 0 {
		return nil
	}
	err := dups()
	var dup *table.DuplicateError
	if err != nil && !errors.As(err, &dup) {
		return err
	}
	if cfg.Execute && err != nil {
		return err
	}
	plan.Notes = append(plan.Notes, table.DuplicatesNote(err, plan.NewUnique))
	return nil
}
