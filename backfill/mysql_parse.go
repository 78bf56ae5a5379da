package backfill

import (
	"fmt"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // the parser's literal values
)

// mysqlLexModes are the sql_mode flags that change how MySQL splits text
// into tokens or binds operators; the statements are parsed under the
// session's.
var mysqlLexModes = []string{"ANSI_QUOTES", "NO_BACKSLASH_ESCAPES", "PIPES_AS_CONCAT", "HIGH_NOT_PRECEDENCE", "IGNORE_SPACE"}

// mysqlParser parses the backfill's statements under the session's
// sql_mode, to check their shape.
type mysqlParser struct {
	mode mysql.SQLMode
}

func newMySQLParser(sessionMode string) (*mysqlParser, error) {
	var keep []string
	for _, m := range strings.Split(strings.ToUpper(sessionMode), ",") {
		for _, l := range mysqlLexModes {
			if m == l {
				keep = append(keep, m)
			}
		}
	}
	mode, err := mysql.GetSQLMode(strings.Join(keep, ","))
	if err != nil {
		return nil, fmt.Errorf("sql_mode %q: %w", sessionMode, err)
	}
	return &mysqlParser{mode: mode}, nil
}

func (p *mysqlParser) parse(what, q string) (ast.StmtNode, error) {
	ps := parser.New()
	ps.SetSQLMode(p.mode)
	stmts, _, err := ps.Parse(q, "", "")
	if err != nil {
		return nil, fmt.Errorf("%s: osc's SQL parser (TiDB's) does not read the statement it makes of it: %w", what, err)
	}
	if len(stmts) != 1 {
		return nil, fmt.Errorf("%s: one expression, not statements (the statement osc makes of it parses as %d)", what, len(stmts))
	}
	return stmts[0], nil
}

// checkUpdate checks that q, made as "UPDATE t … SET <set> WHERE (<key
// range>) AND (<where>)", is one single-table UPDATE whose WHERE is still
// that conjunction: the expressions did not reach outside their places;
// and that the SET assigns none of the key's columns keys.
func (p *mysqlParser) checkUpdate(q string, keys []string) error {
	st, err := p.parse("--set/--where", q)
	if err != nil {
		return err
	}
	u, ok := st.(*ast.UpdateStmt)
	if !ok || u.MultipleTable || u.Order != nil || u.Limit != nil || u.With != nil || len(u.List) == 0 {
		return fmt.Errorf("--set/--where: the statement osc makes of them is not a single-table UPDATE of the rows of a chunk")
	}
	and, ok := u.Where.(*ast.BinaryOperationExpr)
	if !ok || and.Op != opcode.LogicAnd || !isParen(and.L) || !isParen(and.R) {
		return fmt.Errorf("--where reaches outside its parentheses in the statement osc makes of it")
	}
	for _, a := range u.List {
		for _, k := range keys {
			if strings.EqualFold(a.Column.Name.O, k) {
				return refuseKeyAssignment(a.Column.Name.O, keys)
			}
		}
	}
	return nil
}

// checkVerify checks that q, made as "SELECT … FROM t WHERE NOT
// COALESCE((<verify>), FALSE) …", still has that WHERE.
func (p *mysqlParser) checkVerify(q string) error {
	st, err := p.parse("--verify", q)
	if err != nil {
		return err
	}
	s, ok := st.(*ast.SelectStmt)
	if !ok || s.GroupBy != nil || s.Having != nil {
		return fmt.Errorf("--verify: the statement osc makes of it is not a plain SELECT")
	}
	not, ok := s.Where.(*ast.UnaryOperationExpr)
	if !ok || not.Op != opcode.Not {
		return fmt.Errorf("--verify reaches outside its parentheses in the statement osc makes of it")
	}
	fn, ok := not.V.(*ast.FuncCallExpr)
	if !ok || fn.FnName.L != "coalesce" || len(fn.Args) != 2 || !isParen(fn.Args[0]) {
		return fmt.Errorf("--verify reaches outside its parentheses in the statement osc makes of it")
	}
	return nil
}

func isParen(e ast.ExprNode) bool {
	_, ok := e.(*ast.ParenthesesExpr)
	return ok
}
