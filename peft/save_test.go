package peft

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bidora/bidora/internal/atomicfile"
	"github.com/bidora/bidora/safetensors"
)

func savedAdapter(t *testing.T, rank int) (*Config, []safetensors.Tensor) {
	t.Helper()
	cfg := NewConfig("tiny", rank, 8, 0, []string{"q_proj"})
	st, err := ToTensors(adapter(cfg), safetensors.F32)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, st
}

func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = b
	}
	return out
}

func sameSnapshot(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(b[k], v) {
			return false
		}
	}
	return true
}

// Save writes weights and config as a set: when one of the two cannot be
// written, the adapter already in dir stays whole and nothing new appears.
func TestSaveIsASet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "adapter")
	cfg, st := savedAdapter(t, 4)
	if err := Save(dir, cfg, st); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)

	// The weights cannot be encoded (data shorter than the shape says).
	cfg2, st2 := savedAdapter(t, 2)
	st2[0].Data = st2[0].Data[:4]
	if err := Save(dir, cfg2, st2); err == nil {
		t.Fatal("Save with truncated tensor data succeeded")
	}
	if after := snapshot(t, dir); !sameSnapshot(before, after) {
		t.Fatalf("failed Save changed the adapter: %d files", len(after))
	}

	// The config's place is taken by a symlink: refused before the weights
	// are replaced.
	cfgPath := filepath.Join(dir, ConfigFileName)
	realCfg := filepath.Join(t.TempDir(), "elsewhere.json")
	if err := os.WriteFile(realCfg, before[ConfigFileName], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(cfgPath); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(realCfg, cfgPath); err != nil {
		t.Fatal(err)
	}
	cfg3, st3 := savedAdapter(t, 2)
	if err := Save(dir, cfg3, st3); !errors.Is(err, atomicfile.ErrNotReplaceable) {
		t.Fatalf("Save over a symlinked config: err = %v", err)
	}
	if after := snapshot(t, dir); !bytes.Equal(after[WeightsFileName], before[WeightsFileName]) || len(after) != 2 {
		t.Fatal("the weights were replaced although the config could not be")
	}
	if fi, err := os.Lstat(cfgPath); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("symlink replaced: %v", err)
	}
}
