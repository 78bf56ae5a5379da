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
		KeyIndex:      rowKeyIndex(p),
		EstimatedRows: p.EstimatedRows,
		Notes:         p.Notes,
	}
}

// rowKeyIndex is where the key that tells rows of the shadow apart lies in
// row images: the replay window keys its entries by it, as the applier
// deletes and upserts by it.
func rowKeyIndex(p *table.Plan) []int {
	_, index := p.Identity()
	return index
}
