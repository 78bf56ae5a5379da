package table

import (
	"strings"
	"testing"
)

// TestTokenizeMySQLCommentsAsServer: for every ASCII byte b, "--" then b
// starts a comment for the tokenizer exactly when it does for the server
// (SELECT 1 --b1, 2 has one column when it does), or the tokenizer refuses
// the text.
func TestTokenizeMySQLCommentsAsServer(t *testing.T) {
	db := testMySQL(t)
	// Every ASCII byte, and a few non-ASCII spaces and controls (UTF-8).
	var after []string
	for b := 0; b < 0x80; b++ {
		after = append(after, string(rune(b)))
	}
	after = append(after, "\u0085", "\u00a0", "\u2028", "\u3000", "\ufeff")
	for _, b := range after {
		probe := "1 --" + b + "1, 2"
		cols := 0
		rows, err := db.Query("SELECT " + probe) //nolint:rowserrcheck // only its columns are read, not its rows
		if err == nil {
			c, _ := rows.Columns()
			cols = len(c)
			rows.Close()
		}
		serverComment := cols == 1
		toks, lexErr := tokenizeMySQL(probe, sqlLexMode{})
		if lexErr != nil {
			continue // refused: osc reads nothing wrong
		}
		comment := len(toks) == 1
		if comment != serverComment {
			t.Errorf("%q after --: tokenizer reads a comment %v, the server %v (%d columns, %v)", b, comment, serverComment, cols, err)
		}
	}
}

func TestTokenizeMySQLControlCharacters(t *testing.T) {
	for _, tc := range []struct {
		text, want string // want: the tokens joined by spaces, or an error's text
	}{
		{"ADD COLUMN n INT --\x01, DROP COLUMN b\n", "ADD COLUMN n INT"},
		{"ADD COLUMN n INT --\x7f, DROP COLUMN b\n, DROP COLUMN c", "ADD COLUMN n INT , DROP COLUMN c"},
		{"ADD COLUMN n INT --\x1f", "ADD COLUMN n INT"},
		{"ADD COLUMN n INT --x, DROP COLUMN b", "ADD COLUMN n INT - - x , DROP COLUMN b"},
		{"ADD COLUMN n INT \x01, DROP COLUMN b", "control character (byte 0x01)"},
		{"ADD COLUMN n INT # c \x00, DROP COLUMN b", "control character (byte 0x00)"},
		{"ADD COLUMN n INT -- c \x00\n, DROP COLUMN b", "control character (byte 0x00)"},
		{"ADD COLUMN n VARCHAR(3) DEFAULT '\x01', DROP COLUMN b", "ADD COLUMN n VARCHAR ( 3 ) DEFAULT \x01 , DROP COLUMN b"},
		{"ADD COLUMN n INT /* \x01 */, DROP COLUMN b", "ADD COLUMN n INT , DROP COLUMN b"},
	} {
		toks, err := tokenizeMySQL(tc.text, sqlLexMode{})
		var got string
		if err != nil {
			got = err.Error()
		} else {
			var parts []string
			for _, tk := range toks {
				parts = append(parts, tk.text)
			}
			got = strings.Join(parts, " ")
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.text, got, tc.want)
		}
	}
	a, err := ParseMySQLAlter("t", "ADD COLUMN n INT --\x01, DROP COLUMN b\n", testSQLMode)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Dropped) != 0 {
		t.Errorf("dropped %v: the server reads the DROP as a comment", a.Dropped)
	}
}

// TestMySQLNameFolding: only the case of ASCII letters is ignored in names
// and keywords. The server does not fold U+1E9E to ß; it does fold the Kelvin
// sign to k and Ä to ä, which osc then refuses from the result (a column
// missing without a clause osc read).
func TestMySQLNameFolding(t *testing.T) {
	a, err := ParseMySQLAlter("t", "DROP COLUMN IF EXISTS `ẞ`, DROP COLUMN \u212A, CHANGE `Ä` `Ä2` INT, DROP COLUMN B", testSQLMode)
	if err != nil {
		t.Fatal(err)
	}
	for col, want := range map[string]string{"ß": "ß", "k": "k", "ä": "ä", "Ä": "Ä2", "b": "", "B": ""} {
		if got := a.ShadowName(col); got != want {
			t.Errorf("ShadowName(%q) = %q, want %q", col, got, want)
		}
	}
	if (sqlToken{kind: tokWord, text: "\u212Aey"}).is("KEY") || !(sqlToken{kind: tokWord, text: "kEy"}).is("KEY") {
		t.Error("keywords: only ASCII letters fold")
	}
}
