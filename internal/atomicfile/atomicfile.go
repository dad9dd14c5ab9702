// Package atomicfile writes files so that a reader, or a crash, sees either the old
// content or the complete new one, never half a file: the data goes to a temporary
// file in the same directory, is synced, and is renamed over the target.
//
// Writers here replace only what a writer may own: a regular file (or, for
// ReplaceDir, a real directory). A symlink is refused rather than followed or
// replaced, and so is a device, a named pipe or a socket: replacing /dev/null or a
// FIFO with a regular file, or silently cutting a link the user made, is never
// what a command meant to do.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrNotReplaceable is matched (errors.Is) by every *NotReplaceableError.
var ErrNotReplaceable = errors.New("refusing to replace a path of the wrong kind")

// NotReplaceableError reports a target that a writer refuses to replace: a
// symlink, device, named pipe or socket where a regular file (or a directory)
// was to be written.
type NotReplaceableError struct {
	Path string
	Kind string // "symlink", "device", "named pipe", "socket", "directory", "regular file", …
	Want string // "regular file" or "directory"
}

func (e *NotReplaceableError) Error() string {
	return fmt.Sprintf("%s is a %s, not a %s; refusing to replace it", e.Path, e.Kind, e.Want)
}

// Is makes errors.Is(err, ErrNotReplaceable) true.
func (e *NotReplaceableError) Is(target error) bool { return target == ErrNotReplaceable }

// kind names a file mode for messages.
func kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// CheckFile returns nil when path does not exist or is a regular file (not a
// symlink to one), a *NotReplaceableError when it is anything else, and the
// Lstat error when it cannot be inspected.
func CheckFile(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return &NotReplaceableError{Path: path, Kind: kind(fi.Mode()), Want: "regular file"}
	}
	return nil
}

// CheckDir returns nil when path does not exist or is a directory (not a
// symlink to one), a *NotReplaceableError when it is anything else.
func CheckDir(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	if !fi.IsDir() {
		return &NotReplaceableError{Path: path, Kind: kind(fi.Mode()), Want: "directory"}
	}
	return nil
}

// Write creates path with mode 0644 from what fn writes. path must be missing or
// a regular file; anything else (a symlink included) is refused with a
// *NotReplaceableError before fn runs. On any error the temporary file is removed
// and path is left as it was.
func Write(path string, fn func(w io.Writer) error) error {
	if err := CheckFile(path); err != nil {
		return err
	}
	tmp, err := writeTemp(path, fn)
	if err != nil {
		return err
	}
	if err := commit(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// WriteFile is Write for data already in memory.
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeTemp writes a complete, synced temporary file beside path and returns
// its name; on error nothing is left behind.
func writeTemp(path string, fn func(w io.Writer) error) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	err = fn(f)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Name(), nil
}

// commit renames the finished temporary file tmp over path, checking path
// again right before, since it may have changed while the data was written.
func commit(tmp, path string) error {
	if err := CheckFile(path); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// Commit renames the complete temporary file tmp over path, refusing (and
// leaving tmp in place) when path is not missing or a regular file. It is for
// writers that stream a file of their own (safetensors.Writer) and want the
// same rule as Write.
func Commit(tmp, path string) error {
	if err := commit(tmp, path); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// syncDir flushes a directory's entries so that a rename survives a power
// loss. Errors are ignored: some filesystems and platforms cannot sync a
// directory, and the data itself is already synced.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
