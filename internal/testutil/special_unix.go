//go:build unix

package testutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// SpecialFiles makes, in dir, a regular file "real"+ext holding "keep", a symlink
// "link"+ext to it and a FIFO "fifo"+ext: the targets a writer must refuse to
// replace.
func SpecialFiles(t testing.TB, dir, ext string) (real, link, fifo string) {
	t.Helper()
	real = filepath.Join(dir, "real"+ext)
	if err := os.WriteFile(real, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	link = filepath.Join(dir, "link"+ext)
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	fifo = filepath.Join(dir, "fifo"+ext)
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	return real, link, fifo
}
