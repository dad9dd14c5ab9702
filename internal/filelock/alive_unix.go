//go:build unix

package filelock

import (
	"errors"
	"syscall"
)

// ProcessAlive reports whether a process with this pid exists (signal 0 checks
// without sending anything; EPERM means it exists under another user).
var ProcessAlive = func(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
