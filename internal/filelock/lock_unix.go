//go:build unix

package filelock

import (
	"errors"
	"os"
	"syscall"
)

const haveFileLocks = true

// tryLockFile takes an exclusive flock on f without waiting; false when it is held.
// flock locks belong to the open file, so two opens in one process exclude each other
// as two processes do.
func tryLockFile(f *os.File, _ int64) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		}
		return false, err
	}
}

// release removes the lock file (with Options.Remove) while still holding the lock,
// so that no one can lock the file about to be dropped, then closes it, which drops
// the flock.
func release(f *os.File, path string, o Options) error {
	var err error
	if o.Remove {
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = rerr
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
