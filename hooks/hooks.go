package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The hooks, with gh-ost's names.
const (
	OnStartup            = "on-startup"
	OnValidated          = "on-validated"
	OnRowCountComplete   = "on-rowcount-complete"
	OnBeforeRowCopy      = "on-before-row-copy"
	OnRowCopyComplete    = "on-row-copy-complete"
	OnBeginPostponed     = "on-begin-postponed"
	OnBeforeChecksum     = "on-before-checksum"
	OnChecksumComplete   = "on-checksum-complete"
	OnBeforeCutOver      = "on-before-cut-over"
	OnInteractiveCommand = "on-interactive-command"
	OnSuccess            = "on-success"
	OnFailure            = "on-failure"
	OnStatus             = "on-status"
	// osc never stops or starts replication (it always works on the primary,
	// without gh-ost's --test-on-replica), so these two never run; their files
	// are accepted for compatibility.
	OnStopReplication  = "on-stop-replication"
	OnStartReplication = "on-start-replication"
)

// DefaultTimeout bounds one hook's run unless configured otherwise.
const DefaultTimeout = time.Minute

// maxOutput is how much of a hook's output is logged.
const maxOutput = 16 << 10

// Runner runs the hooks of one directory. The zero Dir runs nothing.
type Runner struct {
	Dir     string
	Timeout time.Duration // per executable; 0: DefaultTimeout
	Log     *slog.Logger
}

// Check verifies that the directory exists.
func (r *Runner) Check() error {
	if r.Dir == "" {
		return nil
	}
	fi, err := os.Stat(r.Dir)
	if err != nil {
		return fmt.Errorf("hooks path: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("hooks path %s is not a directory", r.Dir)
	}
	return nil
}

// Find lists the files that run for hook name, in order.
func (r *Runner) Find(name string) ([]string, error) {
	if r.Dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(r.Dir)
	if err != nil {
		return nil, fmt.Errorf("hooks path: %w", err)
	}
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), name) || e.IsDir() {
			continue
		}
		out = append(out, filepath.Join(r.Dir, e.Name()))
	}
	sort.Strings(out)
	return out, nil
}

// Run runs the executables of hook name with env added to osc's
// environment, one after the other, and returns the first failure: an exit
// status other than 0, a timeout, or a matching file that is not executable.
func (r *Runner) Run(ctx context.Context, name string, env []string) error {
	files, err := r.Find(name)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := r.runOne(ctx, name, f, env); err != nil {
			return err
		}
	}
	return nil
}

// secretVars are the environment variables that hold a password osc may
// connect with: osc's own, libpq's (pgx reads it) and the mysql client's.
var secretVars = []string{"OSC_PASSWORD", "PGPASSWORD", "MYSQL_PWD"}

// environ is osc's environment without the passwords: a hook gets what it
// needs as OSC_* variables, never a secret.
func environ() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(secretVars, name)
	})
}

func (r *Runner) runOne(ctx context.Context, name, file string, env []string) error {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("hook %s: %w", file, err)
	}
	if fi.Mode()&0o111 == 0 || !fi.Mode().IsRegular() {
		return fmt.Errorf("hook %s: not an executable file (chmod +x it, or move it out of the hooks path)", file)
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(hctx, file)
	cmd.Dir = r.Dir
	cmd.Env = append(append(environ(), "OSC_HOOK="+name), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	killGroup(cmd)
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	log.Info("running hook", "hook", name, "file", file)
	err = cmd.Run()
	if text := strings.TrimSpace(out.String()); text != "" {
		if len(text) > maxOutput {
			text = text[:maxOutput] + "…"
		}
		log.Info("hook output", "hook", name, "file", file, "output", text)
	}
	switch {
	case hctx.Err() != nil && ctx.Err() == nil:
		return fmt.Errorf("hook %s: killed after the %s timeout", file, timeout)
	case err != nil:
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return fmt.Errorf("hook %s: %s%s", file, exitErr.ProcessState, lastLine(out.String()))
		}
		return fmt.Errorf("hook %s: %w", file, err)
	}
	log.Debug("hook done", "hook", name, "file", file, "elapsed", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// lastLine is ": <the output's last line>", or "" without output.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return ": " + s
}

// Env describes the migration to a hook, in the variables gh-ost passes
// (GH_OST_* there, OSC_* here).
type Env struct {
	Database      string // MySQL database, PostgreSQL schema
	Table         string
	GhostTable    string // the shadow table
	OldTable      string // the name the original gets at cut-over
	DDL           string // the --alter
	Elapsed       time.Duration
	ElapsedCopy   time.Duration
	EstimatedRows int64
	CopiedRows    int64
	AppliedEvents int64
	MigratedHost  string // the server osc migrates on
	InspectedHost string // the server osc inspects (the same: osc works on the primary)
	ExecutingHost string // the machine osc runs on
	Hint          string // --hooks-hint
	Driver        string // mysql or postgres
	State         string // the migration's state
	Status        string // on-status: the status line
	Command       string // on-interactive-command: the command
	Error         string // on-failure: why
}

// Vars returns the environment variables.
func (e Env) Vars() []string {
	vars := []string{
		"OSC_DATABASE_NAME=" + e.Database,
		"OSC_TABLE_NAME=" + e.Table,
		"OSC_GHOST_TABLE_NAME=" + e.GhostTable,
		"OSC_OLD_TABLE_NAME=" + e.OldTable,
		"OSC_DDL=" + e.DDL,
		"OSC_ELAPSED_SECONDS=" + strconv.FormatFloat(e.Elapsed.Seconds(), 'f', 6, 64),
		"OSC_ELAPSED_COPY_SECONDS=" + strconv.FormatFloat(e.ElapsedCopy.Seconds(), 'f', 6, 64),
		"OSC_ESTIMATED_ROWS=" + strconv.FormatInt(e.EstimatedRows, 10),
		"OSC_COPIED_ROWS=" + strconv.FormatInt(e.CopiedRows, 10),
		"OSC_APPLIED_EVENTS=" + strconv.FormatInt(e.AppliedEvents, 10),
		"OSC_MIGRATED_HOST=" + e.MigratedHost,
		"OSC_INSPECTED_HOST=" + e.InspectedHost,
		"OSC_EXECUTING_HOST=" + e.ExecutingHost,
		"OSC_HOOKS_HINT=" + e.Hint,
		"OSC_DRIVER=" + e.Driver,
		"OSC_STATE=" + e.State,
	}
	for _, v := range []struct{ name, value string }{
		{"OSC_STATUS", e.Status}, {"OSC_COMMAND", e.Command}, {"OSC_ERROR", e.Error},
	} {
		if v.value != "" {
			vars = append(vars, v.name+"="+v.value)
		}
	}
	return vars
}
