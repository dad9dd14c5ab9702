package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bidora/bidora/internal/filelock"
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

// lockOffset is the byte a Windows lock covers: 2^40, far past the pid, which
// Windows' mandatory byte-range locks would otherwise hide from a second run
// that reads it to name the holder.
const lockOffset = 1 << 40

// LockDir takes an exclusive lock on dir (created if missing): a file lock
// (internal/filelock) on dir/.bidora.lock, which holds the holder's pid. It
// does not wait: when the directory is held it fails at once with a
// *BusyError naming the holder's pid. The kernel drops the lock when its
// process dies, however it dies, so a crashed run never leaves the directory
// locked. Two LockDir calls in one process exclude each other as two
// processes do.
//
// unlock releases the lock and removes the lock file; calling it again does
// nothing.
func LockDir(dir string) (unlock func() error, err error) { return lockDir(dir, false) }

// lockDirExcl is LockDir with the O_EXCL lock file that systems without file
// locks use, so its tests run everywhere.
func lockDirExcl(dir string) (unlock func() error, err error) { return lockDir(dir, true) }

func lockDir(dir string, excl bool) (unlock func() error, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	l, err := filelock.TryLock(filepath.Join(dir, LockFileName),
		filelock.Options{Offset: lockOffset, WritePID: true, Remove: true, Excl: excl})
	var busy *filelock.BusyError
	if errors.As(err, &busy) {
		return nil, &BusyError{Dir: dir, PID: busy.PID}
	}
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}
