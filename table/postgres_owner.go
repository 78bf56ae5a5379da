package table

// pgAlterSetsOwner reports whether an --alter clause gives the table an
// owner (OWNER TO role): the cut-over then keeps the new table's owner,
// where it otherwise gives it the original's (the shadow is created by
// osc's user, which may be only a member of the owner's role).
func pgAlterSetsOwner(clauses []string) bool {
	for _, c := range clauses {
		for _, sub := range pgSubcommands(pgLex(c)) {
			if len(sub) >= 2 && sub[0].is("owner") && sub[1].is("to") {
				return true
			}
		}
	}
	return false
}
