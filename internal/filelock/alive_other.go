//go:build !unix && !windows

package filelock

import "os"

// ProcessAlive reports whether a process with this pid exists. Where that
// cannot be told, it answers true, so leftovers are kept rather than removed
// from under a live process.
var ProcessAlive = func(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}
