//go:build unix

package gguf

import (
	"errors"
	"github.com/bidora/bidora/internal/testutil"
	"os"
	"testing"

	"github.com/bidora/bidora/internal/atomicfile"
)

// WriteFile refuses to replace a symlink or a FIFO and leaves it as it was.
func TestWriteFileRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	real, link, fifo := testutil.SpecialFiles(t, dir, ".gguf")
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
