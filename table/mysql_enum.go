package table

// A fractional number into an ENUM or a SET. A plain ALTER converts a
// DECIMAL, FLOAT or DOUBLE column into an ENUM's index or a SET's bitmask by
// rounding it to the nearest integer (a DECIMAL half away from zero, a
// floating-point number half to even), where an INSERT … SELECT truncates the
// value (1.50 becomes 1, and 0.5 fails). ROUND rounds as the ALTER does, so
// the copy selects ROUND(column) and the applier writes ROUND(value), the
// value typed as the source column (see apply/mysql.go).

// MySQLEnumRounding returns the expression that turns expr, a value of the
// source column src, into what the server's ALTER stores in the shadow column
// dst when src is a fractional number and dst an ENUM or a SET; expr itself
// otherwise.
func MySQLEnumRounding(expr string, src, dst Column) string {
	if dst.DataType != "enum" && dst.DataType != "set" {
		return expr
	}
	switch src.DataType {
	case "decimal", "numeric", "float", "double", "real":
		return "ROUND(" + expr + ")"
	}
	return expr
}
