//go:build unix

package cli

import (
	"github.com/bidora/bidora/internal/testutil"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bidora/bidora/internal/tinymodel"
)

// merge --overwrite must never delete or overwrite its own inputs: an output
// that contains, is, or lies inside --model or --adapter is a usage error
// naming both flags, and nothing changes.
func TestMergeCmdRefusesOutputOverlappingInputs(t *testing.T) {
	srcBase, srcAdapter := writeTestAdapter(t, tinymodel.Options{NumLayers: 1}, false)
	for _, tc := range []struct {
		name, base, adapter, out, flag string
	}{
		{"adapter inside output", "base", "out/adapter", "out", "--adapter"},
		{"model inside output", "out/base", "adapter", "out", "--model"},
		{"output is the model", "base", "adapter", "base", "--model"},
		{"output inside the adapter", "base", "adapter", "adapter/merged", "--adapter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			base, adapter, out := filepath.Join(dir, tc.base), filepath.Join(dir, tc.adapter), filepath.Join(dir, tc.out)
			testutil.CopyDir(t, srcBase, base)
			testutil.CopyDir(t, srcAdapter, adapter)
			before := map[string]int64{}
			filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
				if err == nil {
					before[p] = fi.Size()
				}
				return nil
			})
			code, _, stderr := runCLI(t, "", "merge", "--model", base, "--adapter", adapter, "--output", out, "--overwrite")
			if code != ExitUsage || !strings.Contains(stderr, "--output") || !strings.Contains(stderr, tc.flag) {
				t.Fatalf("exit %d, stderr %q; want exit %d naming --output and %s", code, stderr, ExitUsage, tc.flag)
			}
			after := 0
			filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
				if err == nil {
					after++
					if size, ok := before[p]; !ok || (!fi.IsDir() && size != fi.Size()) {
						t.Errorf("%s appeared or changed", p)
					}
				}
				return nil
			})
			if after != len(before) {
				t.Errorf("%d paths before, %d after", len(before), after)
			}
		})
	}
}

// merge --overwrite replaces what merge writes and keeps every other file.
func TestMergeCmdOverwriteKeepsUnrelatedFiles(t *testing.T) {
	base, adapter := writeTestAdapter(t, tinymodel.Options{NumLayers: 1}, false)
	out := filepath.Join(t.TempDir(), "merged")
	if err := os.MkdirAll(filepath.Join(out, "notes"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"README.md": "my notes", "notes/run.txt": "x", "config.json": "{}"} {
		if err := os.WriteFile(filepath.Join(out, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, _, stderr := runCLI(t, "", "merge", "--model", base, "--adapter", adapter, "--output", out, "--overwrite")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for name, s := range map[string]string{"README.md": "my notes", "notes/run.txt": "x"} {
		if b, err := os.ReadFile(filepath.Join(out, name)); err != nil || string(b) != s {
			t.Errorf("%s: %q, %v; want it kept", name, b, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(out, "config.json")); string(b) == "{}" {
		t.Error("config.json was not replaced")
	}
	if _, err := os.Stat(filepath.Join(out, "model.safetensors")); err != nil {
		t.Error(err)
	}
}

// export --overwrite refuses to replace a FIFO or a symlink (or a device such
// as /dev/full) with a regular file: a usage error, and the path stays as it was.
func TestExportCmdRefusesSpecialOutput(t *testing.T) {
	base, adapter := writeTestAdapter(t, tinymodel.Options{NumLayers: 1}, false)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe.gguf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(dir, "real.gguf")
	if err := os.WriteFile(real, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.gguf")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	for path, kind := range map[string]string{fifo: "named pipe", link: "symlink", dir: "directory"} {
		before, _ := os.Lstat(path)
		code, _, stderr := runCLI(t, "", "export", "--adapter", adapter, "--base-model-config", base, "--output", path, "--overwrite")
		if code != ExitUsage || !strings.Contains(stderr, "--output") || !strings.Contains(stderr, kind) || !strings.Contains(stderr, "refusing to replace it") {
			t.Errorf("%s: exit %d, stderr %q", kind, code, stderr)
		}
		if after, _ := os.Lstat(path); after == nil || after.Mode() != before.Mode() {
			t.Errorf("%s was replaced", kind)
		}
	}
	if b, _ := os.ReadFile(real); string(b) != "keep" {
		t.Errorf("the symlink's target changed: %q", b)
	}
}
