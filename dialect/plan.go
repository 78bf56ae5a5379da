package dialect

import (
	"osc/engine"
	"osc/table"
)

// enginePlan is what the engine needs to know of the plan p; the dialect
// keeps p itself.
func enginePlan(p *table.Plan) *engine.Plan {
	return &engine.Plan{
		Schema:        p.Source.Schema,
		Table:         p.Source.Name,
		Shadow:        p.Shadow.Name,
		Old:           p.OldName,
		KeyIndex:      p.KeyIndex,
		EstimatedRows: p.EstimatedRows,
		Notes:         p.Notes,
	}
}
