package dialect

import (
	"errors"

	"osc/engine"
	"osc/table"
)

// checkNewUnique runs, for a plan with new unique keys, the look for
// duplicates the original holds now (dups): a dry run reports what it finds
// in the plan's notes, a run with --execute refuses it before the copy.
// Without the checksum a migration adding a unique key is refused: a row
// dropped at a clash with another row that the original held with the
// same value for a moment only (step 5 of "Why nothing is lost") is found
// and copied again by the checksum alone.
func checkNewUnique(cfg engine.Config, plan *table.Plan, dups func() error) error {
	if len(plan.NewUnique) == 0 {
		return nil
	}
	if cfg.NoChecksum {
		return errors.New("the --alter adds the unique key " + plan.NewUnique[0].Describe() + ", which needs the checksum before the cut-over: " +
			"a row that clashed with one the original held with the same value for a moment only is copied again by it; drop --checksum=false")
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
