//go:build !unix

package hooks

import "os/exec"

// killGroup leaves the default: a timeout kills the hook's process.
func killGroup(*exec.Cmd) {}
