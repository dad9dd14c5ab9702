package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/windows"
)

// lockOffsetHigh places the locked byte at 2^40 (the high half of a 64-bit
// offset): far past the pid, which Windows' mandatory byte-range locks would
// otherwise hide from a second run that reads it to name the holder.
const lockOffsetHigh = 1 << 8

// LockDir takes an exclusive lock on dir (created if missing): a LockFileEx
// byte-range lock on dir/.bidora.lock, which holds the holder's pid. It does
// not wait: when the directory is held it fails at once with a *BusyError
// naming the holder's pid. Windows drops the lock when its process dies,
// however it dies, so a crashed run never leaves the directory locked; its
// lock file is reused. The lock belongs to an open file handle, so two
// LockDir calls in one process exclude each other as two processes do.
//
// While any process has the file open, Windows refuses to delete it (Go opens
// files without FILE_SHARE_DELETE), so the lock file cannot be replaced under
// its holder as it can on Unix.
//
// unlock releases the lock and removes the lock file (unless another run has
// opened it meanwhile to take the lock); calling it again does nothing.
func LockDir(dir string) (unlock func() error, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	ol := windows.Overlapped{OffsetHigh: lockOffsetHigh}
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) || errors.Is(err, windows.ERROR_IO_PENDING) {
		f.Close()
		return nil, &BusyError{Dir: dir, PID: readPID(path)}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: writing %s: %w", dir, path, err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: writing %s: %w", dir, path, err)
	}
	var once sync.Once
	var uerr error
	return func() error {
		once.Do(func() {
			if err := f.Close(); err != nil { // closing drops the lock
				uerr = fmt.Errorf("unlocking %s: %w", dir, err)
			}
			// Another run may have opened the file between our close and this
			// remove; then it is theirs and stays.
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) &&
				!errors.Is(err, windows.ERROR_SHARING_VIOLATION) && !errors.Is(err, windows.ERROR_ACCESS_DENIED) && uerr == nil {
				uerr = fmt.Errorf("unlocking %s: %w", dir, err)
			}
		})
		return uerr
	}, nil
}
