package hub

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bidora/bidora/internal/filelock"
)

// lockFile takes an exclusive lock on path (created if needed), as huggingface_hub
// does on .locks/<repo>/<etag>.lock, waiting until it is free or ctx ends. It is a
// file lock (internal/filelock) on the file's first byte, the byte huggingface_hub's
// lock (Python filelock: flock on Unix, msvcrt.locking on Windows) takes, so the two
// exclude each other; the lock file is left in place, as huggingface_hub leaves it.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	return lockWith(ctx, path, filelock.Options{})
}

// lockFileExcl is lockFile with the O_EXCL lock file that systems without file
// locks use (removed on unlock), so its tests run everywhere.
func lockFileExcl(ctx context.Context, path string) (unlock func(), err error) {
	return lockWith(ctx, path, filelock.Options{Excl: true})
}

func lockWith(ctx context.Context, path string, o filelock.Options) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("hub: creating lock folder: %w", err)
	}
	l, err := filelock.Wait(ctx, path, o)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("hub: another download of the same file is running: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	return func() { _ = l.Release() }, nil
}
