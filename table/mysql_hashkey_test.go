package table

import (
	"reflect"
	"testing"
)

// TestMySQLHashKey: the unique keys of a SHOW CREATE TABLE, as MariaDB
// 10.11 prints them, and which are USING HASH (not a key whose COMMENT reads
// like one).
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
	var got [][3]string
	for _, m := range mysqlUniqueKey.FindAllStringSubmatch(def, -1) {
		if m[1] != m[2]+m[4]+m[5] {
			t.Errorf("%q: parts %q %q %q", m[1], m[2], m[4], m[5])
		}
		got = append(got, [3]string{m[1], m[3], m[4]})
	}
	want := [][3]string{
		{"UNIQUE KEY `u 1,x` (`b`(5),`a`) USING HASH", "`u 1,x`", " USING HASH"},
		{"UNIQUE KEY `uh` (`h`) USING HASH", "`uh`", " USING HASH"},
		{"UNIQUE KEY `it``s` (`id`,`a) USING HASH`) USING HASH COMMENT 'x, y'", "`it``s`", " USING HASH"},
		{"UNIQUE KEY `ud` (`id`,`a` DESC) USING HASH IGNORED", "`ud`", " USING HASH"},
		{"UNIQUE KEY `uc` (`id`) COMMENT 'x) USING HASH'", "`uc`", ""},
		{"UNIQUE KEY `last` (`id`) USING HASH COMMENT 'z,'", "`last`", " USING HASH"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
