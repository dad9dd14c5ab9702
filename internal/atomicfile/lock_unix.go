//go:build unix

package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// LockDir takes an exclusive lock on dir (created if missing): an flock on
// dir/.bidora.lock, which holds the holder's pid. It does not wait: when the
// directory is held it fails at once with a *BusyError naming the holder's
// pid. The kernel drops an flock when its process dies, however it dies, so a
// crashed run never leaves the directory locked; its lock file is reused.
// flock locks belong to an open file, so two LockDir calls in one process
// exclude each other as two processes do.
//
// unlock removes the lock file and releases the lock; calling it again does
// nothing.
func LockDir(dir string) (unlock func() error, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockFileName)
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("locking %s: %w", dir, err)
		}
		for {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		if errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, &BusyError{Dir: dir, PID: readPID(path)}
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", dir, err)
		}
		// The holder before us may have removed the file between our open and
		// our flock; then we hold a lock on a file nobody else can see. Start
		// over on the file now at path.
		if !samePath(f, path) {
			f.Close()
			if attempt >= 100 {
				return nil, fmt.Errorf("locking %s: %s keeps being replaced", dir, path)
			}
			continue
		}
		if err := writePID(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: writing %s: %w", dir, path, err)
		}
		var once sync.Once
		var uerr error
		return func() error {
			once.Do(func() {
				// Remove while still holding the lock, so that no one can lock
				// the file we are about to drop.
				if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
					uerr = fmt.Errorf("unlocking %s: %w", dir, err)
				}
				if err := f.Close(); err != nil && uerr == nil { // closing drops the flock
					uerr = fmt.Errorf("unlocking %s: %w", dir, err)
				}
			})
			return uerr
		}, nil
	}
}

// samePath reports whether the open file f is still the file at path.
func samePath(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Lstat(path)
	if err != nil {
		return false
	}
	return os.SameFile(fi, pi)
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}
