//go:build unix

package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// specialTargets makes a symlink to a regular file, a FIFO and a directory in
// a fresh temp dir and returns them by kind.
func specialTargets(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	target := filepath.Join(dir, "real.txt")
	if err := os.WriteFile(target, []byte("real"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.txt")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"symlink": link, "named pipe": fifo, "directory": sub}
}

func TestWriteRefusesSpecialFiles(t *testing.T) {
	for kindName, path := range specialTargets(t) {
		before, _ := os.Lstat(path)
		called := false
		err := Write(path, func(w io.Writer) error { called = true; return nil })
		var nr *NotReplaceableError
		if !errors.As(err, &nr) || nr.Kind != kindName || !errors.Is(err, ErrNotReplaceable) {
			t.Fatalf("%s: err = %v, want a NotReplaceableError of kind %s", kindName, err, kindName)
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "refusing to replace it") {
			t.Errorf("%s: message %q", kindName, err)
		}
		if called {
			t.Errorf("%s: the content was produced before the target was checked", kindName)
		}
		after, err := os.Lstat(path)
		if err != nil || after.Mode() != before.Mode() {
			t.Errorf("%s: target changed: %v %v", kindName, after, err)
		}
		if err := WriteSet(filepath.Dir(path), []File{{Name: filepath.Base(path), Write: func(io.Writer) error { return nil }}}); !errors.Is(err, ErrNotReplaceable) {
			t.Errorf("%s: WriteSet err = %v", kindName, err)
		}
	}
	// The symlink's target is untouched too.
	dir := filepath.Dir(specialTargets(t)["symlink"])
	if b, _ := os.ReadFile(filepath.Join(dir, "real.txt")); string(b) != "real" {
		t.Fatalf("symlink target changed: %q", b)
	}
}

func TestCommitRefusesSpecialFiles(t *testing.T) {
	for kindName, path := range specialTargets(t) {
		tmp := filepath.Join(t.TempDir(), "tmp")
		if err := os.WriteFile(tmp, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Commit(tmp, path); !errors.Is(err, ErrNotReplaceable) {
			t.Errorf("%s: err = %v", kindName, err)
		}
	}
}

func TestReplaceDirRefusesNonDirectory(t *testing.T) {
	for kindName, path := range specialTargets(t) {
		if kindName == "directory" {
			continue
		}
		tmp, err := TempDir(path)
		if err != nil {
			t.Fatal(err)
		}
		err = ReplaceDir(tmp, path)
		var nr *NotReplaceableError
		if !errors.As(err, &nr) || nr.Kind != kindName || nr.Want != "directory" {
			t.Errorf("%s: err = %v", kindName, err)
		}
		if fi, _ := os.Lstat(path); fi == nil || fi.IsDir() {
			t.Errorf("%s was replaced", kindName)
		}
	}
	// A symlink to a directory is refused as well.
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	link := filepath.Join(dir, "link")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	tmp, err := TempDir(link)
	if err != nil {
		t.Fatal(err)
	}
	if err := ReplaceDir(tmp, link); !errors.Is(err, ErrNotReplaceable) {
		t.Fatalf("symlink to a directory: err = %v", err)
	}
}

// A device node is reported as one (only inspected, never written).
func TestCheckFileDevice(t *testing.T) {
	if _, err := os.Lstat("/dev/null"); err != nil {
		t.Skip("no /dev/null")
	}
	var nr *NotReplaceableError
	if err := CheckFile("/dev/null"); !errors.As(err, &nr) || nr.Kind != "device" {
		t.Fatalf("err = %v", err)
	}
	if err := CheckFile(filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Fatalf("missing path: %v", err)
	}
}
