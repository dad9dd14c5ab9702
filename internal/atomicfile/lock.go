package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// LockFileName is the file LockDir creates in the directory it locks. Checks
// for an empty output directory should not count it.
const LockFileName = ".bidora.lock"

// ErrBusy is matched (errors.Is) by every *BusyError.
var ErrBusy = errors.New("directory is in use by another bidora run")

// BusyError is returned by LockDir when another process (or another LockDir
// in this one) holds the directory.
type BusyError struct {
	Dir string
	PID int // the holder's pid as written in the lock file; 0 if not known yet
}

func (e *BusyError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s is in use by another bidora run (pid %d)", e.Dir, e.PID)
	}
	return fmt.Sprintf("%s is in use by another bidora run", e.Dir)
}

// Is makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// readPID reads the pid a holder wrote into a lock file (0 if none).
func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
