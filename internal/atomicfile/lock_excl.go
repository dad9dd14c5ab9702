package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// lockDirExcl is LockDir where the system has no file locks: the lock is the
// existence of dir/.bidora.lock, created with O_EXCL and holding the holder's
// pid. A lock whose pid no longer runs was left by a crashed run and is taken
// over. When the directory is held, it fails at once with a *BusyError naming
// the holder's pid. It uses only portable calls, so its tests run everywhere.
//
// unlock removes the lock file; calling it again does nothing.
func lockDirExcl(dir string) (unlock func() error, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockFileName)
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			pid := readPID(path)
			if pid > 0 && !processAlive(pid) && attempt < 3 {
				_ = os.Remove(path)
				continue
			}
			return nil, &BusyError{Dir: dir, PID: pid}
		}
		if err != nil {
			return nil, fmt.Errorf("locking %s: %w", dir, err)
		}
		_, werr := f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			_ = os.Remove(path)
			return nil, fmt.Errorf("locking %s: writing %s: %w", dir, path, werr)
		}
		var once sync.Once
		var uerr error
		return func() error {
			once.Do(func() {
				if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
					uerr = fmt.Errorf("unlocking %s: %w", dir, err)
				}
			})
			return uerr
		}, nil
	}
}
