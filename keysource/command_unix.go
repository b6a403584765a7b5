//go:build unix

package keysource

import (
	"os/exec"
	"syscall"
)

// killGroup runs the command in its own process group and, when its context
// ends, kills the whole group: a script's children die with it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
