package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestBackfillCommandLine: osc backfill's help and its command line errors
// (exit 2, one line naming the problem, no database touched).
func TestBackfillCommandLine(t *testing.T) {
	my := []string{"backfill", "--user", "u", "--database", "d", "--table", "t"}
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"backfill", "--help"}, 0, "osc backfill --dsn", ""},
		{[]string{"backfill", "--set", "a = 1"}, 2, "", "--table is required"},
		{my, 2, "", "--set is required (or --verify alone"},
		{append(my[:len(my):len(my)], "--where", "a IS NULL", "--verify", "a = 1"), 2, "", "--where and --resume go with --set"},
		{append(my[:len(my):len(my)], "--set", "a = 1", "--noop", "--execute"), 2, "", "contradict"},
		{append(my[:len(my):len(my)], "--set", "a = 1", "--lock-wait-timeout", "0s"), 2, "", "--lock-wait-timeout must be"},
		{append(my[:len(my):len(my)], "--set", "a = 1", "--chunk-retries", "0"), 2, "", "--chunk-retries must be at least 1"},
		{append(my[:len(my):len(my)], "--set", "a = 1", "extra"), 2, "", "quote the expressions"},
		{[]string{"backfill", "--table", "t", "--set", "a = 1"}, 2, "", "--database is required"},
		{[]string{"backfill", "--dsn", "postgres://x@127.0.0.1:1/db", "--table", "t", "--set", "a = 1", "--ssl"}, 2, "", "--ssl is for MySQL"},
	} {
		var stdout, stderr bytes.Buffer
		code := exitCode(run(tc.args, &stdout, &stderr), &stderr)
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr.String())
		}
		if !strings.Contains(stdout.String(), tc.stdout) {
			t.Errorf("%q: stdout %q, want %q in it", tc.args, stdout.String(), tc.stdout)
		}
		if tc.stderr != "" && !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("%q: stderr %q, want %q in it", tc.args, stderr.String(), tc.stderr)
		}
	}
}
