package table

import (
	"slices"
	"testing"
)

func TestMySQLWithoutOverlaps(t *testing.T) {
	def := "CREATE TABLE (\n" +
		"  `id` int(11) NOT NULL,\n" +
		"  `c` varchar(40) DEFAULT NULL COMMENT 'UNIQUE KEY `x` (`a` WITHOUT OVERLAPS)',\n" +
		"  PERIOD FOR `p` (`s`, `e`),\n" +
		"  PRIMARY KEY (`id`,`p` WITHOUT OVERLAPS),\n" +
		"  UNIQUE KEY `u``q` (`room`,`p` WITHOUT OVERLAPS),\n" +
		"  UNIQUE KEY `plain` (`room`) COMMENT 'not (`p` WITHOUT OVERLAPS)',\n" +
		"  KEY `k` (`room`)\n" +
		") ENGINE=InnoDB"
	if got, want := mysqlWithoutOverlaps(def), []string{"PRIMARY", "`u``q`"}; !slices.Equal(got, want) {
		t.Errorf("mysqlWithoutOverlaps = %q, want %q", got, want)
	}
	if got := mysqlWithoutOverlaps("CREATE TABLE (\n  `id` int,\n  PRIMARY KEY (`id`)\n)"); got != nil {
		t.Errorf("mysqlWithoutOverlaps of a table without one = %q", got)
	}
}
