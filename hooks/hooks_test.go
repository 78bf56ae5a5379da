package hooks

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeHook(t *testing.T, dir, name, script string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script+"\n"), mode); err != nil {
		t.Fatal(err)
	}
}

func TestRunOrderAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	writeHook(t, dir, "on-startup-2", `echo "second $OSC_HOOK" >> `+out, 0o755)
	writeHook(t, dir, "on-startup-1.sh", `echo "first $OSC_TABLE_NAME $OSC_COPIED_ROWS $OSC_ELAPSED_SECONDS $OSC_STATUS" >> `+out, 0o755)
	writeHook(t, dir, "on-status", `echo "not me" >> `+out, 0o755)
	if err := os.Mkdir(filepath.Join(dir, "on-startup-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &Runner{Dir: dir}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	env := Env{Table: "t1", CopiedRows: 42, Elapsed: 1500 * time.Millisecond, Status: "Copy: 1/2"}
	if err := r.Run(context.Background(), OnStartup, env.Vars()); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "first t1 42 1.500000 Copy: 1/2\nsecond on-startup\n"; string(got) != want {
		t.Errorf("hooks wrote %q, want %q", got, want)
	}
	// No matching file: nothing runs, no error.
	if err := r.Run(context.Background(), OnSuccess, nil); err != nil {
		t.Error(err)
	}
	if err := (&Runner{}).Run(context.Background(), OnStartup, nil); err != nil {
		t.Error(err)
	}
}

func TestEnvVars(t *testing.T) {
	vars := strings.Join(Env{Database: "d", Table: "t", GhostTable: "_t_gho", OldTable: "_t_del", DDL: "ADD COLUMN c INT",
		EstimatedRows: 10, CopiedRows: 5, MigratedHost: "h:1", ExecutingHost: "me", Hint: "hint", Driver: "mysql",
		State: "migrating", Error: "boom"}.Vars(), "\n")
	for _, want := range []string{"OSC_DATABASE_NAME=d", "OSC_TABLE_NAME=t", "OSC_GHOST_TABLE_NAME=_t_gho",
		"OSC_OLD_TABLE_NAME=_t_del", "OSC_DDL=ADD COLUMN c INT", "OSC_ESTIMATED_ROWS=10", "OSC_COPIED_ROWS=5",
		"OSC_MIGRATED_HOST=h:1", "OSC_EXECUTING_HOST=me", "OSC_HOOKS_HINT=hint", "OSC_DRIVER=mysql", "OSC_STATE=migrating",
		"OSC_ERROR=boom", "OSC_ELAPSED_COPY_SECONDS=0.000000"} {
		if !strings.Contains(vars+"\n", want+"\n") {
			t.Errorf("missing %s in\n%s", want, vars)
		}
	}
	if strings.Contains(vars, "OSC_STATUS") || strings.Contains(vars, "OSC_COMMAND") {
		t.Errorf("empty optional variables set:\n%s", vars)
	}
}

func TestFailures(t *testing.T) {
	dir := t.TempDir()
	writeHook(t, dir, "on-before-cut-over", `echo "checking"; echo "replica not ready" >&2; exit 3`, 0o755)
	writeHook(t, dir, "on-validated", `echo hi`, 0o644)
	writeHook(t, dir, "on-row-copy-complete", `sleep 30 & sleep 30`, 0o755)
	r := &Runner{Dir: dir, Timeout: 300 * time.Millisecond}
	err := r.Run(context.Background(), OnBeforeCutOver, nil)
	if err == nil || !strings.Contains(err.Error(), "exit status 3: replica not ready") {
		t.Errorf("failing hook: %v", err)
	}
	if err := r.Run(context.Background(), OnValidated, nil); err == nil || !strings.Contains(err.Error(), "not an executable file") {
		t.Errorf("non-executable hook: %v", err)
	}
	start := time.Now()
	err = r.Run(context.Background(), OnRowCopyComplete, nil)
	if err == nil || !strings.Contains(err.Error(), "killed after the 300ms timeout") {
		t.Errorf("slow hook: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a timed-out hook (and its child) took %s to be killed", d)
	}
	if err := (&Runner{Dir: filepath.Join(dir, "nope")}).Check(); err == nil {
		t.Error("missing hooks path accepted")
	}
	if err := (&Runner{Dir: filepath.Join(dir, "on-validated")}).Check(); err == nil {
		t.Error("a file as hooks path accepted")
	}
}

// TestRunHidesPasswords: a hook never sees a password osc connects with.
func TestRunHidesPasswords(t *testing.T) {
	for _, v := range secretVars {
		t.Setenv(v, "s3cret-"+v)
	}
	t.Setenv("OSC_HOOKS_TEST_KEPT", "kept")
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	writeHook(t, dir, "on-startup", "env >> "+out, 0o755)
	if err := (&Runner{Dir: dir}).Run(context.Background(), OnStartup, nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), "s3cret") || !strings.Contains(string(got), "OSC_HOOKS_TEST_KEPT=kept") {
		t.Errorf("the hook's environment:\n%s", got)
	}
}
