package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/examples"
)

func TestTrainBiDoRAEndToEnd(t *testing.T) {
	fakeHardware(t, 22)
	t.Setenv("HF_HUB_OFFLINE", "1")
	modelDir := tinyModelDir(t, "llama")
	trainFile, valFile, err := examples.Write(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		extra []string
		log   string
	}{
		{"split", []string{"--epochs", "1"}, "seeded 80/20 split of the"},
		{"val-file", []string{"--val-file", valFile, "--max-steps", "3", "--hypergrad", "first-order"}, "validation data is only evaluated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"train", "--model", modelDir, "--train-file", trainFile, "--output", out, "--method", "bidora",
				"--batch-size", "4", "--grad-accum", "1", "--lr", "5e-3", "--warmup-steps", "1", "--save-steps", "2",
				"--max-seq-len", "96", "--rank", "4", "--auto-hardware=false", "--quantization", "none"}, tc.extra...)
			code, stdout, stderr := run(t, args...)
			if code != ExitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stderr, tc.log) || !strings.Contains(stderr, "[retrain]") || !strings.Contains(stderr, "upper_loss") {
				t.Errorf("log:\n%s", stderr)
			}
			var ac map[string]any
			data, _ := os.ReadFile(filepath.Join(out, "adapter_config.json"))
			if err := json.Unmarshal(data, &ac); err != nil || ac["use_dora"] != true {
				t.Errorf("adapter_config.json: %v %s", err, data)
			}
			f, err := os.Open(filepath.Join(out, "metrics.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			phases := map[string]int{}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var m struct {
					Phase     string   `json:"phase"`
					Lower     *float64 `json:"lower_loss"`
					UpperLoss *float64 `json:"upper_loss"`
				}
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.Lower == nil || (m.Phase == "search") != (m.UpperLoss != nil) {
					t.Errorf("metrics line %s (%v)", sc.Bytes(), err)
				}
				phases[m.Phase]++
			}
			if phases["search"] == 0 || phases["retrain"] == 0 {
				t.Errorf("phases in metrics.jsonl: %v", phases)
			}
			// The adapter is a plain PEFT DoRA adapter: eval loads it.
			if code, o, e := run(t, "eval", "--model", modelDir, "--adapter", out, "--data", valFile, "--json", "--max-seq-len", "96"); code != ExitOK {
				t.Errorf("eval exit %d: %s %s", code, o, e)
			}
		})
	}
}

// TestBiDoRAValidationIsHeldOut: validation data is only evaluated — two runs with the
// same training rows and seed and different validation files learn byte-identical
// adapters, and a run without validation data trains too.
func TestBiDoRAValidationIsHeldOut(t *testing.T) {
	fakeHardware(t, 22)
	modelDir := tinyModelDir(t, "llama")
	trainFile, valFile, err := examples.Write(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	otherVal := filepath.Join(t.TempDir(), "other.jsonl")
	if err := os.WriteFile(otherVal, []byte(`{"text":"module gear(n) { circle(n); }"}`+"\n"+`{"prompt":"fn add","completion":"(a: i32) -> i32 { a }"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	train := func(extra ...string) []byte {
		t.Helper()
		out := filepath.Join(t.TempDir(), "out")
		args := append([]string{"train", "--model", modelDir, "--train-file", trainFile, "--output", out, "--method", "bidora",
			"--batch-size", "4", "--grad-accum", "1", "--lr", "5e-3", "--max-steps", "3", "--max-seq-len", "96", "--rank", "4",
			"--dropout", "0.1", "--auto-hardware=false", "--quantization", "none"}, extra...)
		code, stdout, stderr := run(t, args...)
		if code != ExitOK {
			t.Fatalf("%v: exit %d\n%s\n%s", extra, code, stdout, stderr)
		}
		data, err := os.ReadFile(filepath.Join(out, "adapter_model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	a, b := train("--val-file", valFile), train("--val-file", otherVal)
	if !bytes.Equal(a, b) {
		t.Error("two validation files gave different adapters: BiDoRA learned from validation data")
	}
	if c := train("--val-split", "0"); !bytes.Equal(a, c) {
		t.Error("the run without validation data learned a different adapter")
	}
}
