package table

import "testing"

func TestDuplicateScanQuery(t *testing.T) {
	u := UniqueKey{Name: "u", Columns: []string{"a", "b"}, Shadow: []string{"a2", "b"}}
	quote := func(c string) string { return "`" + c + "`" }
	text := func(c string) string { return c }
	if got, want := duplicateScanQuery(u, "`d`.`t`", "", quote, text),
		"SELECT `a`, `b`, COUNT(*) FROM `d`.`t` WHERE `a` IS NOT NULL AND `b` IS NOT NULL GROUP BY `a`, `b` HAVING COUNT(*) > 1 LIMIT 10"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got, want := duplicateScanQuery(u, "t", "id = ? OR id = ?", quote, text),
		"SELECT `a`, `b`, COUNT(*) FROM t WHERE (id = ? OR id = ?) AND `a` IS NOT NULL AND `b` IS NOT NULL GROUP BY `a`, `b` HAVING COUNT(*) > 1 LIMIT 10"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestDuplicateError(t *testing.T) {
	err := &DuplicateError{Key: UniqueKey{Name: "u", Columns: []string{"a", "b"}, Shadow: []string{"a2", "b"}},
		Duplicates: []Duplicate{{Values: []string{"it's", "NULL"}, Rows: 2}, {Values: []string{"x", "1"}, Rows: 3}}, When: "before the copy"}
	want := "the original holds rows that duplicate the new unique key u (a2, b) (met before the copy): ('it''s', NULL) in 2 rows; " +
		"('x', '1') in 3 rows; the migration stops rather than drop one of them: remove the duplicates and run osc again"
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	// The rows' keys, as both databases' final restore fills them.
	err = &DuplicateError{Key: UniqueKey{Name: "u", Columns: []string{"a"}, Shadow: []string{"a"}},
		Duplicates: []Duplicate{{Values: []string{"x"}, Rows: 2, Keys: [][]string{{"1", "10"}, {"2", "20"}}}}, When: DuplicateAtCutOver}
	want = "the original holds rows that duplicate the new unique key u (a) (met with the table's writes blocked and every change applied, before the cut-over): " +
		"('x') in 2 rows (keys (1, 10), (2, 20)); the migration stops rather than drop one of them: remove the duplicates and run osc again"
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
}
