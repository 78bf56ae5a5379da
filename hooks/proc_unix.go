//go:build unix

package hooks

import (
	"os/exec"
	"syscall"
)

// killGroup runs the hook in a process group of its own and makes a timeout
// kill the whole group, so that a shell script's children die with it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
