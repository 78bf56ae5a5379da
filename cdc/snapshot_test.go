package cdc

import "testing"

func TestPostgresSnapshotSees(t *testing.T) {
	snap, err := ParsePostgresSnapshot("100:110:103,107")
	if err != nil {
		t.Fatal(err)
	}
	for xid, want := range map[uint32]bool{0: false, 50: true, 99: true, 100: true, 103: false, 105: true, 107: false, 110: false, 200: false} {
		if got := snap.Sees(xid); got != want {
			t.Errorf("Sees(%d) = %v, want %v", xid, got, want)
		}
	}
	// Across a wraparound of the 32-bit id: epoch 1, xmax = 2^32 + 5.
	snap, err = ParsePostgresSnapshot("4294967290:4294967301:")
	if err != nil {
		t.Fatal(err)
	}
	for xid, want := range map[uint32]bool{4294967280: true, 4294967295: true, 3: true, 5: false, 6: false} {
		if got := snap.Sees(xid); got != want {
			t.Errorf("after wraparound: Sees(%d) = %v, want %v", xid, got, want)
		}
	}
	for _, bad := range []string{"", "1:2", "a:2:", "1:b:", "1:2:x"} {
		if _, err := ParsePostgresSnapshot(bad); err == nil {
			t.Errorf("ParsePostgresSnapshot(%q) accepted", bad)
		}
	}
}
