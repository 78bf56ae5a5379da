package table

import (
	"reflect"
	"testing"
)

// TestMySQLHashKey: the unique keys USING HASH of a SHOW CREATE TABLE, as
// MariaDB 10.11 prints them, and not a key whose COMMENT reads like one.
func TestMySQLHashKey(t *testing.T) {
	def := "CREATE TABLE `t` (\n" +
		"  `id` int(11) NOT NULL,\n" +
		"  `a) USING HASH` int(11) DEFAULT NULL,\n" +
		"  PRIMARY KEY (`id`),\n" +
		"  UNIQUE KEY `u 1,x` (`b`(5),`a`) USING HASH,\n" +
		"  UNIQUE KEY `uh` (`h`) USING HASH,\n" +
		"  UNIQUE KEY `it``s` (`id`,`a) USING HASH`) USING HASH COMMENT 'x, y',\n" +
		"  UNIQUE KEY `ud` (`id`,`a` DESC) USING HASH IGNORED,\n" +
		"  UNIQUE KEY `uc` (`id`) COMMENT 'x) USING HASH',\n" +
		"  KEY `k` (`a`) USING HASH,\n" +
		"  UNIQUE KEY `last` (`id`) USING HASH COMMENT 'z,'\n" +
		") ENGINE=InnoDB"
	var got [][2]string
	for _, m := range mysqlHashKey.FindAllStringSubmatch(def, -1) {
		got = append(got, [2]string{m[1], m[2]})
	}
	want := [][2]string{
		{"UNIQUE KEY `u 1,x` (`b`(5),`a`) USING HASH", "`u 1,x`"},
		{"UNIQUE KEY `uh` (`h`) USING HASH", "`uh`"},
		{"UNIQUE KEY `it``s` (`id`,`a) USING HASH`) USING HASH COMMENT 'x, y'", "`it``s`"},
		{"UNIQUE KEY `ud` (`id`,`a` DESC) USING HASH IGNORED", "`ud`"},
		{"UNIQUE KEY `last` (`id`) USING HASH COMMENT 'z,'", "`last`"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
