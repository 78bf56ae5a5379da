package cdc

import "testing"

// TestMyEpochFraction: a TIMESTAMP of 0 seconds and a fraction is the first
// second of the epoch, not the zero value; the zero value and every other
// value pass as go-mysql renders them.
func TestMyEpochFraction(t *testing.T) {
	for _, tc := range []struct {
		in, want any
	}{
		{"0000-00-00 00:00:00.000001", "1970-01-01 00:00:00.000001"},
		{"0000-00-00 00:00:00.5", "1970-01-01 00:00:00.5"},
		{"0000-00-00 00:00:00.250", "1970-01-01 00:00:00.250"},
		{"0000-00-00 00:00:00", "0000-00-00 00:00:00"},
		{"0000-00-00 00:00:00.000", "0000-00-00 00:00:00.000"},
		{"1970-01-01 00:00:01.5", "1970-01-01 00:00:01.5"},
		{nil, nil},
	} {
		if got := myEpochFraction(tc.in); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.in, got, tc.want)
		}
	}
}
