package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestGhostFlags(t *testing.T) {
	// Accepted: what osc already does, or settings of its own.
	o, err := parse(t, "--database", "d", "--assume-rbr", "--approve-renamed-columns", "--cut-over", "default",
		"--default-retries", "7", "--exact-rowcount", "--panic-flag-file", "/tmp/p")
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.Retries != 7 || o.cfg.CutOverRetries != 7 || !o.cfg.ExactRowCount || !o.cfg.ConcurrentRowCount ||
		o.cfg.Control.PanicFlagFile != "/tmp/p" {
		t.Errorf("accepted flags: retries %d, cut-over retries %d, exact %v concurrent %v, panic flag file %q",
			o.cfg.Retries, o.cfg.CutOverRetries, o.cfg.ExactRowCount, o.cfg.ConcurrentRowCount, o.cfg.Control.PanicFlagFile)
	}
	// --cut-over-retries, given, wins over --default-retries.
	if o, err = parse(t, "--database", "d", "--default-retries", "7", "--cut-over-retries", "9"); err != nil || o.cfg.Retries != 7 || o.cfg.CutOverRetries != 9 {
		t.Errorf("--default-retries with --cut-over-retries: %v", err)
	}
	if o, err = parse(t, "--database", "d"); err != nil || o.cfg.Retries != 0 || o.cfg.CutOverRetries != 60 || o.cfg.ExactRowCount {
		t.Errorf("defaults: %+v, %v", o.cfg, err)
	}

	// A refused flag given the value that asks for nothing (gh-ost's
	// default, as generated command lines spell it out) is accepted, and
	// so is --cut-over "", which gh-ost takes as atomic.
	if _, err := parse(t, "--database", "d", "--switch-to-rbr=false", "--test-on-replica=false", "--migrate-on-replica=false",
		"--skip-renamed-columns=false", "--timestamp-old-table=false", "--critical-load-hibernate-seconds", "0", "--cut-over="); err != nil {
		t.Errorf("refused flags at their defaults: %v", err)
	}

	// Refused, saying why.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--switch-to-rbr"}, "does not change the server's binlog_format"},
		{[]string{"--test-on-replica"}, "migrates on the primary only"},
		{[]string{"--migrate-on-replica"}, "migrates on the primary only"},
		{[]string{"--skip-renamed-columns"}, "cannot leave them out"},
		{[]string{"--timestamp-old-table"}, "--initially-drop-old-table"},
		{[]string{"--critical-load-hibernate-seconds", "60"}, "osc does not hibernate"},
		{[]string{"--cut-over", "two-step"}, "one step only"},
		{[]string{"--cut-over", "sideways"}, "osc has one cut-over, atomic"},
		{[]string{"--default-retries", "0"}, "--default-retries must be at least 1"},
	} {
		_, err := parse(t, append([]string{"--database", "d"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}

	// --check-flag: nothing else is checked or done.
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--check-flag", "--exact-rowcount", "--panic-flag-file", "x"}, true},
		{[]string{"--check-flag", "--timestamp-old-table"}, false},
		{[]string{"--check-flag", "--no-such-flag"}, false},
	} {
		_, _, err := parseFlags(tc.args, io.Discard)
		if got := errors.Is(err, errCheckFlag); got != tc.ok {
			t.Errorf("%v: %v, want ok=%v", tc.args, err, tc.ok)
		}
	}
}
