package table

import (
	"fmt"
	"strings"
)

// Three sql_mode flags would make osc's copy and applier disagree with each
// other or with the ALTER; each is handled where the session mode is set
// (mysqlSessionSQLMode), the fills are written (mysql_fill.go) or the plan is
// checked (padCharRefusal):
//
//   - without STRICT_TRANS_TABLES or STRICT_ALL_TABLES, a value the target
//     column cannot hold is converted with a warning by a statement that
//     writes several rows but fails one that writes a single row (NULL into
//     NOT NULL: error 1048), so the applier's outcome would depend on its
//     batch size. osc's sessions are strict: such a value fails the
//     migration, where the non-strict ALTER would have converted it.
//   - PAD_CHAR_TO_FULL_LENGTH pads CHAR values read with spaces, where the
//     binlog carries them unpadded. osc's sessions drop the flag, so both
//     paths read CHAR values alike; an --alter that changes a CHAR column to
//     another type, which the ALTER would fill padded, is refused.
//   - EMPTY_STRING_IS_NULL turns the literal '' into NULL: the fills write
//     the empty string as SPACE(0), which is not a literal.

// padCharRefusal refuses a CHAR column changed to another type under a
// global sql_mode with PAD_CHAR_TO_FULL_LENGTH.
func padCharRefusal(globalMode string, p *Plan) error {
	if !strings.Contains(","+strings.ToUpper(globalMode)+",", ",PAD_CHAR_TO_FULL_LENGTH,") {
		return nil
	}
	for _, m := range p.Mapping {
		src := p.Source.Columns[m.SourceIndex]
		j := columnIndexFold(p.Shadow, m.Shadow)
		if src.DataType != "char" || j < 0 || p.Shadow.Columns[j].DataType == "char" {
			continue
		}
		return fmt.Errorf("the server's sql_mode has PAD_CHAR_TO_FULL_LENGTH, under which the ALTER pads the values of the CHAR "+
			"column %s with spaces as it changes it to %s; the binlog carries them unpadded, so osc cannot write what the ALTER "+
			"would: remove PAD_CHAR_TO_FULL_LENGTH from the global sql_mode (it is deprecated), or run a plain ALTER TABLE",
			src.Name, p.Shadow.Columns[j].ColumnType)
	}
	return nil
}
