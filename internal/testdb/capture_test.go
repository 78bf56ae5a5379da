package testdb

import (
	"testing"

	"osc/table"
)

// A namespace's capture names are told from those of a namespace whose name
// starts with its own and an underscore.
func TestPostgresCaptureOf(t *testing.T) {
	name := func(schema, tbl string) string {
		return table.NewPostgresNames(schema, tbl).InDatabase("osc_test").Slot
	}
	for _, c := range []struct {
		name, schema string
		want         bool
	}{
		{name("osct_resume_twice", "t"), "osct_resume_twice", true},
		{name("osct_resume_twice", "t_ctl"), "osct_resume_twice", true},
		{name("osct_resume_twice_threads", "t"), "osct_resume_twice", false},
		{name("osct_resume_twice_threads", "t"), "osct_resume_twice_threads", true},
		{name("osct_resume_twice", "t"), "osct_resume", false},
		{"osc_osct_resume_twice_t", "osct_resume_twice", false},
	} {
		if got := postgresCaptureOf(c.name, "osc_test", c.schema); got != c.want {
			t.Errorf("postgresCaptureOf(%s, %s) = %v, want %v", c.name, c.schema, got, c.want)
		}
	}
}
