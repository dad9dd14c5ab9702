package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/examples"
)

func TestResumeAdapter(t *testing.T) {
	fakeHardware(t, 22)
	t.Setenv("HF_HUB_OFFLINE", "1")
	modelDir := tinyModelDir(t, "llama")
	trainFile, _, err := examples.Write(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(t.TempDir(), "first")
	common := []string{"--model", modelDir, "--train-file", trainFile, "--val-split", "0", "--max-seq-len", "64", "--batch-size", "4"}
	code, _, stderr := run(t, append([]string{"train", "--output", first, "--max-steps", "2", "--dora", "--rank", "4",
		"--alpha", "8", "--targets", "q_proj,v_proj", "--rslora=false"}, common...)...)
	if code != ExitOK {
		t.Fatalf("first run: exit %d %s", code, stderr)
	}
	// The adapter's shape wins and is shown by --print-config.
	code, out, stderr := run(t, append([]string{"train", "--print-config", "--resume-adapter", first}, common...)...)
	if code != ExitOK || !strings.Contains(out, "rank: 4\n") || !strings.Contains(out, "method: dora\n") ||
		!strings.Contains(out, "targets: [q_proj, v_proj]") || !strings.Contains(out, "rslora: false\n") {
		t.Fatalf("print-config: exit %d %s\n%s", code, stderr, out)
	}
	// Contradicting flags are usage errors naming them.
	code, _, stderr = run(t, append([]string{"train", "--print-config", "--resume-adapter", first, "--rank", "8", "--targets", "all-linear"}, common...)...)
	if code != ExitUsage || !strings.Contains(stderr, "--rank") || !strings.Contains(stderr, "--targets") || !strings.Contains(stderr, "the adapter has 4") {
		t.Fatalf("contradiction: exit %d %s", code, stderr)
	}
	// Training continues from the adapter's weights.
	second := filepath.Join(t.TempDir(), "second")
	code, _, stderr = run(t, append([]string{"train", "--output", second, "--max-steps", "1", "--resume-adapter", first}, common...)...)
	if code != ExitOK {
		t.Fatalf("second run: exit %d %s", code, stderr)
	}
	cfg, _ := os.ReadFile(filepath.Join(second, "adapter_config.json"))
	if !strings.Contains(string(cfg), `"use_dora": true`) || !strings.Contains(string(cfg), `"r": 4`) {
		t.Fatalf("adapter_config.json of the continued run:\n%s", cfg)
	}
	if code, _, stderr = run(t, append([]string{"train", "--print-config", "--resume-adapter", filepath.Join(t.TempDir(), "nope")}, common...)...); code == ExitOK || !strings.Contains(stderr, "nope") {
		t.Fatalf("missing adapter: exit %d %s", code, stderr)
	}
}
