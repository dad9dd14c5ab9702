package filelock

import (
	"errors"

	"golang.org/x/sys/windows"
)

// stillActive is STILL_ACTIVE, the exit code of a process that has not exited.
const stillActive = 259

// ProcessAlive reports whether a process with this pid is running. A process
// this user may not query (ERROR_ACCESS_DENIED) exists; a handle to one that
// has exited answers an exit code other than STILL_ACTIVE.
var ProcessAlive = func(pid int) bool {
	if pid <= 0 {
		return false
	}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return errors.Is(err, windows.ERROR_ACCESS_DENIED)
	}
	defer windows.CloseHandle(h)
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err != nil {
		return true // it exists; keep what it may be using
	}
	return code == stillActive
}
