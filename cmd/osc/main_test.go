package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"osc/engine"
)

// TestExitCodes: help is not an error, a bad command line exits 2 with one
// line naming the problem, a failed run exits 1.
func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string // a fragment of standard output
		stderr string // a fragment of standard error ("" = empty)
	}{
		{[]string{"--help"}, 0, "Usage:", ""},
		{[]string{"ctl", "--help"}, 0, "osc ctl --socket PATH COMMAND", ""},
		{[]string{"--version"}, 0, "osc ", ""},
		{[]string{"--bogus"}, 2, "", "osc: unknown flag: --bogus (see --help)\n"},
		{[]string{"--table", "t"}, 2, "", "osc: --alter is required (see --help)\n"},
		{[]string{"--table", "t", "--alter", "ADD c INT"}, 2, "", "--database is required"},
		{[]string{"--table", "t", "--alter", "ADD c INT", "--resume", "--initially-drop-ghost-table"}, 2, "", "--resume and --initially-drop-ghost-table contradict"},
		{[]string{"--table", "t", "--alter", "ADD c INT", "--resume", "--checkpoint=false"}, 2, "", "--resume needs checkpoints"},
		{[]string{"--table", "t", "--alter", "ADD c INT", "--checkpoint-seconds", "0"}, 2, "", "--checkpoint-seconds must be at least 1"},
		{[]string{"--database", "d", "--table", "t", "--alter", "ADD c INT", "--revert-window", "1m", "--strategy", "native"}, 2, "", "contradicts --strategy native"},
		{[]string{"--database", "d", "--table", "t", "--alter", "ADD c INT", "--revert-window", "-1s"}, 2, "", "--revert-window must be 0 or more"},
		{[]string{"ctl", "--nope"}, 2, "", "unknown flag: --nope"},
		{[]string{"ctl"}, 2, "", "no command"},
		{[]string{"ctl", "--socket", "/nonexistent/osc.sock", "status"}, 1, "", "osc: error: "},
	} {
		var stdout, stderr bytes.Buffer
		code := exitCode(run(tc.args, &stdout, &stderr), &stderr)
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr.String())
		}
		if !strings.Contains(stdout.String(), tc.stdout) {
			t.Errorf("%q: stdout %q lacks %q", tc.args, stdout.String(), tc.stdout)
		}
		if tc.stderr == "" && stderr.Len() > 0 || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("%q: stderr %q, want %q", tc.args, stderr.String(), tc.stderr)
		}
		if tc.code == 2 && strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%q: a command line error is one line, got %q", tc.args, stderr.String())
		}
	}
}

// TestExitCodesOfRuns: a refusal exits 3, an interruption or the panic
// command 4, any other failure 1.
func TestExitCodesOfRuns(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{&engine.RefusedError{Err: errors.New("no primary key")}, 3},
		{fmt.Errorf("inspect: %w", &engine.RefusedError{Err: errors.New("binlog_format is STATEMENT")}), 3},
		{interruptedError{errors.New("interrupted; everything osc created was removed: context canceled")}, 4},
		{fmt.Errorf("copy chunk 3: %w", engine.ErrPanic), 4},
		{errors.New("apply 10 changes: deadlock"), 1},
	} {
		if code := exitCode(tc.err, io.Discard); code != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.err, code, tc.code)
		}
	}
}
