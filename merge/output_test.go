package merge

import (
	"context"
	"errors"
	"github.com/bidora/bidora/internal/testutil"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/atomicfile"
	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/peft"
	"github.com/bidora/bidora/safetensors"
)

// listFiles maps every file under dir (relative path) to its content.
func listFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&os.ModeSymlink != 0 {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// An output that is, contains or lies inside an input is refused before
// anything is written, even with Overwrite, and the inputs stay as they were.
func TestMergeRefusesOverlappingOutput(t *testing.T) {
	srcBase, mcfg := writeBase(t, tinymodel.Options{NumLayers: 1})
	srcAdapter, _ := writeAdapter(t, mcfg, peft.NewConfig("b", 2, 4, 0, []string{"v_proj"}), 3)
	root := t.TempDir()
	for _, tc := range []struct {
		name           string
		base, ad, out  string
		role, relation string
	}{
		{"adapter inside output", "base", "out/adapter", "out", "adapter", "contains"},
		{"model inside output", "out/base", "adapter", "out", "model", "contains"},
		{"output is the model", "base", "adapter", "base", "model", "is"},
		{"output is the adapter", "base", "adapter", "adapter", "adapter", "is"},
		{"output inside the model", "base", "adapter", "base/merged", "model", "is inside"},
		{"output is the model through a symlink", "base", "adapter", "link", "model", "is"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(root, strings.ReplaceAll(tc.name, " ", "-"))
			base, ad, out := filepath.Join(dir, tc.base), filepath.Join(dir, tc.ad), filepath.Join(dir, tc.out)
			testutil.CopyDir(t, srcBase, base)
			testutil.CopyDir(t, srcAdapter, ad)
			if tc.out == "link" {
				if err := os.Symlink(base, out); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "unrelated.txt"), []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			before := listFiles(t, dir)
			_, err := Merge(context.Background(), base, ad, out, Options{Overwrite: true})
			var oe *OverlapError
			if !errors.As(err, &oe) || oe.Role != tc.role || oe.Relation != tc.relation {
				t.Fatalf("err = %v, want an OverlapError (%s %s)", err, tc.relation, tc.role)
			}
			if !strings.Contains(err.Error(), out) {
				t.Errorf("message %q does not name the output", err)
			}
			after := listFiles(t, dir)
			if len(after) != len(before) {
				t.Fatalf("files changed: %d before, %d after", len(before), len(after))
			}
			for k, v := range before {
				if after[k] != v {
					t.Fatalf("%s changed", k)
				}
			}
		})
	}
}

// Overwriting replaces only what Merge writes: files of an earlier merge that
// the new layout drops go, everything else stays.
func TestMergeOverwriteKeepsOtherFiles(t *testing.T) {
	baseDir, mcfg := writeBase(t, tinymodel.Options{NumLayers: 2})
	adDir, _ := writeAdapter(t, mcfg, peft.NewConfig("b", 2, 4, 0, []string{"q_proj"}), 3)
	out := filepath.Join(t.TempDir(), "out")
	// A sharded merge first, then a single-file one over it.
	if _, err := Merge(context.Background(), baseDir, adDir, out, Options{MaxShardSize: 1000}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, safetensors.IndexFileName)); err != nil {
		t.Fatalf("first merge is not sharded: %v", err)
	}
	mine := map[string]string{"notes.txt": "keep me", "train/metrics.jsonl": "{}", "model.bin": "not ours"}
	for name, s := range mine {
		p := filepath.Join(out, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Merge(context.Background(), baseDir, adDir, out, Options{Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 1 {
		t.Fatalf("second merge wrote %v", res.Files)
	}
	got := listFiles(t, out)
	for name, s := range mine {
		if got[name] != s {
			t.Errorf("%s: %q, want it kept", name, got[name])
		}
	}
	for name := range got {
		if isWeightFile(name) && name != safetensors.SingleFileName {
			t.Errorf("%s of the earlier merge is still there", name)
		}
		if strings.HasPrefix(name, ".") {
			t.Errorf("left behind %s", name)
		}
	}
	m, err := safetensors.OpenDir(out)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
}

// Another run holding the output directory makes Merge fail at once, naming it.
func TestMergeOutputLocked(t *testing.T) {
	baseDir, mcfg := writeBase(t, tinymodel.Options{NumLayers: 1})
	adDir, _ := writeAdapter(t, mcfg, peft.NewConfig("b", 2, 4, 0, []string{"v_proj"}), 3)
	out := filepath.Join(t.TempDir(), "out")
	unlock, err := atomicfile.LockDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	_, err = Merge(context.Background(), baseDir, adDir, out, Options{})
	if !errors.Is(err, atomicfile.ErrBusy) {
		t.Fatalf("err = %v", err)
	}
}

// The output, or a file Merge would replace in it, must not be a symlink or
// other special file.
func TestMergeRefusesSpecialOutput(t *testing.T) {
	baseDir, mcfg := writeBase(t, tinymodel.Options{NumLayers: 1})
	adDir, _ := writeAdapter(t, mcfg, peft.NewConfig("b", 2, 4, 0, []string{"v_proj"}), 3)
	dir := t.TempDir()
	elsewhere := filepath.Join(dir, "elsewhere")
	if err := os.Mkdir(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(elsewhere, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(context.Background(), baseDir, adDir, link, Options{Overwrite: true}); !errors.Is(err, atomicfile.ErrNotReplaceable) {
		t.Fatalf("symlinked output: err = %v", err)
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "precious.json")
	if err := os.WriteFile(target, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(out, "config.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(context.Background(), baseDir, adDir, out, Options{Overwrite: true}); !errors.Is(err, atomicfile.ErrNotReplaceable) {
		t.Fatalf("symlinked config.json: err = %v", err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Fatalf("output changed: %v", entries)
	}
	if fi, err := os.Lstat(filepath.Join(out, "config.json")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v", err)
	}
}

func TestIsWeightFile(t *testing.T) {
	for name, want := range map[string]bool{
		"model.safetensors":                  true,
		"model.safetensors.index.json":       true,
		"model-00001-of-00002.safetensors":   true,
		"model-00003-of-00002.safetensors":   false,
		"model-1-of-2.safetensors":           false,
		"adapter_model.safetensors":          false,
		"model-00001-of-00002.safetensors.x": false,
	} {
		if got := isWeightFile(name); got != want {
			t.Errorf("%s: %v", name, got)
		}
	}
}
