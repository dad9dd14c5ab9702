package filelock

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

const haveFileLocks = true

// overlapped places a one-byte LockFileEx range at offset.
func overlapped(offset int64) *windows.Overlapped {
	return &windows.Overlapped{Offset: uint32(offset), OffsetHigh: uint32(uint64(offset) >> 32)}
}

// tryLockFile takes an exclusive LockFileEx lock on the byte at offset of f without
// waiting; false when it is held. The lock belongs to the open handle, so two opens
// in one process exclude each other as two processes do, and Windows drops it when
// the process dies.
func tryLockFile(f *os.File, offset int64) (bool, error) {
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, overlapped(offset))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION), errors.Is(err, windows.ERROR_IO_PENDING):
		return false, nil
	}
	return false, err
}

// release closes f, which drops the lock, then (with Options.Remove) removes the
// file. While any process has a file open Windows refuses to delete it (Go opens
// files without FILE_SHARE_DELETE), so it cannot go first as on Unix; a run that
// opened the file meanwhile to take the lock keeps it.
func release(f *os.File, path string, o Options) error {
	err := f.Close()
	if o.Remove {
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) &&
			!errors.Is(rerr, windows.ERROR_SHARING_VIOLATION) && !errors.Is(rerr, windows.ERROR_ACCESS_DENIED) && err == nil {
			err = rerr
		}
	}
	return err
}
