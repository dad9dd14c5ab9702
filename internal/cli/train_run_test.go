package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/examples"
	"github.com/bidora/bidora/internal/tinymodel"
)

// tinyModelDir writes a small random model with the built-in tokenizer.
func tinyModelDir(t *testing.T, arch string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := tinymodel.Write(dir, tinymodel.Options{Arch: arch, HiddenSize: 32, IntermediateSize: 48, NumLayers: 2,
		NumHeads: 4, NumKVHeads: 2, Tied: true, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTrainEndToEnd(t *testing.T) {
	fakeHardware(t, 22)
	t.Setenv("HF_HUB_OFFLINE", "1")
	modelDir := tinyModelDir(t, "qwen2")
	trainFile, valFile, err := examples.Write(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"train", "--model", modelDir, "--train-file", trainFile, "--val-file", valFile, "--output", out,
		"--max-steps", "12", "--batch-size", "2", "--grad-accum", "2", "--lr", "5e-3", "--warmup-steps", "2",
		"--save-steps", "5", "--eval-steps", "6", "--max-seq-len", "128", "--targets", "all-linear", "--dora", "--rank", "4"}
	code, stdout, stderr := run(t, args...)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors", "metrics.jsonl", "loss.png", "config.yaml",
		"README.md", "checkpoint-5/adapter_model.safetensors", "checkpoint-5/optimizer.safetensors", "checkpoint-10/trainer_state.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	var ac map[string]any
	data, _ := os.ReadFile(filepath.Join(out, "adapter_config.json"))
	if err := json.Unmarshal(data, &ac); err != nil || ac["use_dora"] != true || ac["peft_type"] != "LORA" {
		t.Errorf("adapter_config.json: %v %s", err, data)
	}
	if !strings.Contains(stdout, "adapter: "+out) || !strings.Contains(stdout, "validation loss:") {
		t.Errorf("summary:\n%s", stdout)
	}
	if !strings.Contains(stderr, "data: 30 training and 6 validation examples (template chat)") {
		t.Errorf("data report:\n%s", stderr)
	}
	// eval reads the same text formats and reports the adapter's improvement.
	evalLoss := func(extra ...string) float64 {
		t.Helper()
		code, out, stderr := run(t, append([]string{"eval", "--model", modelDir, "--data", valFile, "--json", "--max-seq-len", "128"}, extra...)...)
		var r evalResult
		if code != ExitOK || json.Unmarshal([]byte(out), &r) != nil || r.Tokens == 0 {
			t.Fatalf("eval exit %d: %s %s", code, out, stderr)
		}
		return r.Loss
	}
	if base, tuned := evalLoss(), evalLoss("--adapter", out); !(tuned < base) {
		t.Errorf("eval: adapter loss %.4f not below base %.4f", tuned, base)
	}
	// A second run into the same dir is refused without --overwrite (exit 2).
	if code, _, stderr := run(t, args...); code != ExitUsage || !strings.Contains(stderr, "--overwrite") {
		t.Errorf("reuse of output: exit %d %s", code, stderr)
	}
	// The resolved config.yaml feeds back in.
	if code, out2, stderr := run(t, "train", "--print-config", "--config", filepath.Join(out, "config.yaml")); code != ExitOK || !strings.Contains(out2, "method: dora") {
		t.Errorf("config.yaml round trip: exit %d %s", code, stderr)
	}
}

func TestTrainBadRows(t *testing.T) {
	fakeHardware(t, 22)
	modelDir := tinyModelDir(t, "llama")
	data := filepath.Join(t.TempDir(), "d.jsonl")
	rows := `{"text":"cube(10);"}` + "\n" + `{"oops":1}` + "\n" + `not json` + "\n" + `{"prompt":"p","completion":"sphere(2);"}` + "\n"
	if err := os.WriteFile(data, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := run(t, "train", "--model", modelDir, "--train-file", data, "--output", out, "--max-steps", "1",
		"--val-split", "0", "--batch-size", "1", "--max-seq-len", "64")
	if code != ExitOK || !strings.Contains(stderr, "2 skipped") || !strings.Contains(stderr, data+":2: no known keys") || !strings.Contains(stderr, data+":3: invalid JSON") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	code, _, stderr = run(t, "train", "--model", modelDir, "--train-file", data, "--output", filepath.Join(t.TempDir(), "o2"),
		"--max-steps", "1", "--val-split", "0", "--strict")
	if code != ExitUsage || !strings.Contains(stderr, data+":2: no known keys") {
		t.Fatalf("strict: exit %d\n%s", code, stderr)
	}
	code, _, stderr = run(t, "train", "--model", modelDir, "--train-file", filepath.Join(t.TempDir(), "missing.jsonl"), "--output", filepath.Join(t.TempDir(), "o3"))
	if code != ExitError || !strings.Contains(stderr, "missing.jsonl") {
		t.Fatalf("missing file: exit %d\n%s", code, stderr)
	}
}
