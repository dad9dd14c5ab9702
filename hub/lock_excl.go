package hub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// lockFileExcl is lockFile where the system has no file locks: the lock is the
// existence of path+".excl", created with O_EXCL. A lock left by a crashed
// process is considered stale after staleLock and taken over. It uses only
// portable calls, so its tests run everywhere.
func lockFileExcl(ctx context.Context, path string) (unlock func(), err error) {
	const staleLock = 10 * time.Minute
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("hub: creating lock folder: %w", err)
	}
	excl := path + ".excl"
	for {
		f, err := os.OpenFile(excl, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			f.Close()
			return func() { os.Remove(excl) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("hub: locking %s: %w", path, err)
		}
		if fi, err := os.Stat(excl); err == nil && time.Since(fi.ModTime()) > staleLock {
			os.Remove(excl)
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("hub: waiting for lock %s (another download of the same file is running): %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
