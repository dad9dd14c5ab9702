//go:build !unix && !windows

package atomicfile

import "os"

// processAlive reports whether a process with this pid exists. Where that
// cannot be told, it answers true, so leftovers are kept rather than removed
// from under a live process.
var processAlive = func(pid int) bool {
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
