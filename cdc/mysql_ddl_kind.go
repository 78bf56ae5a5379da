package cdc

import "strings"

// myObjectKinds are the words that name the kind of object a DDL statement
// (ALTER, CREATE, DROP, RENAME) acts on.
var myObjectKinds = map[string]bool{
	"TABLE": true, "INDEX": true, "TRIGGER": true, "VIEW": true, "EVENT": true, "PROCEDURE": true,
	"FUNCTION": true, "PACKAGE": true, "DATABASE": true, "SCHEMA": true, "USER": true, "ROLE": true,
	"SERVER": true, "SEQUENCE": true, "TABLESPACE": true, "LOGFILE": true, "INSTANCE": true,
	"RESOURCE": true,
}

// myObjectKind returns the kind of object a DDL statement acts on: the first
// word after its verb that names a kind, skipping modifiers (OR REPLACE,
// ONLINE, IGNORE, TEMPORARY, UNIQUE, DEFINER = user@host, ALGORITHM = …, SQL
// SECURITY …). It returns "" when it finds none (TRUNCATE t, or a statement
// it does not know), which the caller takes for the table.
func myObjectKind(toks []myToken) string {
	for i := 1; i < len(toks); i++ {
		t := toks[i]
		if t.quoted || t.punct {
			continue
		}
		// A value (DEFINER = name@host, ALGORITHM = MERGE) is no kind.
		if prev := toks[i-1]; prev.punct && (prev.text == "=" || prev.text == "@") {
			continue
		}
		w := strings.ToUpper(t.text)
		if myObjectKinds[w] {
			return w
		}
	}
	return ""
}

// myDDLOnTable reports whether a DDL statement of this verb and object kind
// can change or remove a table it names: ALTER, DROP and RENAME of a TABLE
// (or of a DATABASE, or of what myObjectKind does not know), DROP INDEX …
// ON, and the CREATE statements that change an existing table: CREATE OR
// REPLACE TABLE, CREATE INDEX … ON, CREATE TRIGGER … ON. An event,
// procedure, function, view, user… that shares the table's name is another
// object: DDL on it leaves the table alone (a view's definition may read
// the table, which no write of it changes).
func myDDLOnTable(verb, kind string, orReplace bool) bool {
	switch verb {
	case "CREATE":
		return kind == "INDEX" || kind == "TRIGGER" || kind == "TABLE" && orReplace
	case "TRUNCATE":
		return true
	}
	switch kind {
	case "", "TABLE", "INDEX", "DATABASE", "SCHEMA":
		return true
	}
	return false
}

// myOnTarget returns the tokens of CREATE INDEX … ON and CREATE TRIGGER … ON
// from the ON on: the table they change is the name after it (a trigger's
// body may name other tables, which it writes when it fires, as row events).
// Other statements are returned whole.
func myOnTarget(toks []myToken, kind string) []myToken {
	if kind != "INDEX" && kind != "TRIGGER" {
		return toks
	}
	for i, t := range toks {
		if !t.quoted && !t.punct && strings.EqualFold(t.text, "ON") {
			return toks[i:min(i+4, len(toks))]
		}
	}
	return toks
}

// myAlterTarget returns the table an ALTER [ONLINE] [IGNORE] TABLE [IF
// EXISTS] [schema.]name statement alters ("" schema: the default one), or
// ok false for another statement.
func myAlterTarget(toks []myToken) (schema, name string, ok bool) {
	if len(toks) == 0 || toks[0].quoted || !strings.EqualFold(toks[0].text, "ALTER") {
		return "", "", false
	}
	i := 1
	for i < len(toks) && !toks[i].quoted && (strings.EqualFold(toks[i].text, "ONLINE") || strings.EqualFold(toks[i].text, "IGNORE")) {
		i++
	}
	if i >= len(toks) || toks[i].quoted || !strings.EqualFold(toks[i].text, "TABLE") {
		return "", "", false
	}
	i++
	if i+1 < len(toks) && !toks[i].quoted && strings.EqualFold(toks[i].text, "IF") && strings.EqualFold(toks[i+1].text, "EXISTS") {
		i += 2
	}
	if i >= len(toks) || toks[i].punct {
		return "", "", false
	}
	if i+2 < len(toks) && toks[i+1].punct && toks[i+1].text == "." && !toks[i+2].punct {
		return toks[i].text, toks[i+2].text, true
	}
	return "", toks[i].text, true
}
