package cutover

import (
	"fmt"
	"slices"
	"strings"

	"osc/table"
)

// carryTriggers makes the table's triggers (PostgresOptions.Triggers, as the
// --alter left them) on the shadow, in the transaction that swaps the tables,
// before the renames, which the triggers follow. The drain has applied every
// change up to the barrier, the table is locked since, and this transaction
// holds the shadow: no change is applied to the shadow after them, so they
// fire for the application's writes only, on the table before the swap and
// on the new table after it. A trigger added to, changed on or dropped from
// the table since the shadow was made is refused: it is not the one the
// --alter was checked with.
func (s *pgSwap) carryTriggers() error {
	now, err := table.ReadPostgresTriggers(s.ctx, s.tx, s.oldOID)
	if err != nil {
		return err
	}
	var then []table.PostgresTrigger
	for _, t := range s.opts.Triggers {
		if t.Source != "" {
			then = append(then, t)
		}
	}
	same := slices.EqualFunc(now, then, func(a, b table.PostgresTrigger) bool { return a.Name == b.Name && a.Source == b.Source })
	if !same {
		names := func(ts []table.PostgresTrigger) string {
			var n []string
			for _, t := range ts {
				n = append(n, t.Name)
			}
			return "(" + strings.Join(n, ", ") + ")"
		}
		return fmt.Errorf("the triggers of %s changed during the migration (now %s, when the shadow was made %s): "+
			"osc carries the ones the --alter was checked with; run the migration again", s.orig, names(now), names(then))
	}
	for _, t := range s.opts.Triggers {
		if err := s.exec(t.Def); err != nil {
			return fmt.Errorf("make trigger %s on the new table: %w", t.Name, err)
		}
		if c := t.EnableClause(); c != "" {
			if err := s.exec("ALTER TABLE " + s.shadow + " " + c); err != nil {
				return err
			}
		}
		if t.Comment != "" {
			if err := s.exec(fmt.Sprintf("COMMENT ON TRIGGER %s ON %s IS %s", table.QuotePostgres(t.Name), s.shadow, t.Comment)); err != nil {
				return err
			}
		}
	}
	return nil
}
