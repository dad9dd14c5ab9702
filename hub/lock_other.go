//go:build !unix && !windows

package hub

import "context"

// lockFile takes an exclusive lock on path, waiting until it is free or ctx
// ends. This system has no file locks, so the lock is a lock file created
// with O_EXCL (see lockFileExcl).
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	return lockFileExcl(ctx, path)
}
