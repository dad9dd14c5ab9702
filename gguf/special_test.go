//go:build unix

package gguf

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/bidora/bidora/internal/atomicfile"
)

// WriteFile refuses to replace a symlink or a FIFO and leaves it as it was.
func TestWriteFileRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.gguf")
	if err := os.WriteFile(real, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.gguf")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.gguf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, fifo} {
		before, _ := os.Lstat(p)
		err := WriteFile(p, []KV{{"general.architecture", "llama"}}, nil)
		if !errors.Is(err, atomicfile.ErrNotReplaceable) {
			t.Fatalf("%s: err = %v", p, err)
		}
		if after, _ := os.Lstat(p); after == nil || after.Mode() != before.Mode() {
			t.Fatalf("%s was replaced", p)
		}
	}
	if b, _ := os.ReadFile(real); string(b) != "keep" {
		t.Fatalf("symlink target changed: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Fatalf("temporary files left: %v", entries)
	}
}
