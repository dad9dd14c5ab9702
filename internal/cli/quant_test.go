package cli

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/examples"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/quant"
	"github.com/bidora/bidora/safetensors"
)

func TestQuantizationFlagExit2(t *testing.T) {
	fakeHardware(t, 22)
	for _, args := range [][]string{
		{"train", "--train-file", "d.jsonl", "--quantization", "nf5"},
		{"eval", "--model", "m", "--data", "d.jsonl", "--quantization", "nf5"},
		{"bench", "--quantization", "nf5"},
	} {
		code, _, stderr := run(t, args...)
		if code != ExitUsage || !strings.Contains(stderr, "--quantization nf5") || !strings.Contains(stderr, "nf4, int8") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming --quantization nf5 and the choices", args, code, stderr)
		}
	}
}

// QLoRA / QDoRA from the command line: train on NF4 weights, then eval with and
// without the adapter on the same NF4 base.
func TestTrainQuantizedEndToEnd(t *testing.T) {
	fakeHardware(t, 22)
	t.Setenv("HF_HUB_OFFLINE", "1")
	modelDir := tinyModelDir(t, "qwen2")
	trainFile, valFile, err := examples.Write(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"nf4", "int8"} {
		t.Run(q, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			code, stdout, stderr := run(t, "train", "--model", modelDir, "--train-file", trainFile, "--val-file", valFile,
				"--output", out, "--quantization", q, "--dora", "--targets", "all-linear", "--rank", "4", "--max-steps", "8",
				"--batch-size", "2", "--grad-accum", "1", "--lr", "5e-3", "--warmup-steps", "1", "--max-seq-len", "128")
			if code != ExitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stderr, "projections quantised to "+q+" while loading") || strings.Contains(stderr, "not available") {
				t.Errorf("stderr lacks the quantisation line:\n%s", stderr)
			}
			if data, err := os.ReadFile(filepath.Join(out, "config.yaml")); err != nil || !strings.Contains(string(data), "quantization: "+q+"\n") {
				t.Errorf("config.yaml: %v\n%s", err, data)
			}
			evalLoss := func(extra ...string) float64 {
				t.Helper()
				args := append([]string{"eval", "--model", modelDir, "--data", valFile, "--json", "--max-seq-len", "128"}, extra...)
				code, out, stderr := run(t, args...)
				var r evalResult
				if code != ExitOK || json.Unmarshal([]byte(out), &r) != nil || r.Tokens == 0 {
					t.Fatalf("eval exit %d: %s %s", code, out, stderr)
				}
				return r.Loss
			}
			base, qbase := evalLoss("--quantization", "none"), evalLoss("--quantization", q)
			tuned := evalLoss("--quantization", q, "--adapter", out)
			t.Logf("eval: bf16 base %.5f, %s base %.5f, %s + adapter %.5f", base, q, qbase, q, tuned)
			if qbase == base || math.Abs(qbase-base) > 0.05 {
				t.Errorf("%s base loss %.6f vs bf16 %.6f", q, qbase, base)
			}
			if !(tuned < qbase) {
				t.Errorf("adapter loss %.5f not below the %s base's %.5f", tuned, q, qbase)
			}
		})
	}
}

// eval of a checkpoint saved by bitsandbytes in 4-bit form uses the stored weights
// and says so when another --quantization was asked for.
func TestEvalBnb4bitCheckpoint(t *testing.T) {
	fakeHardware(t, 22)
	t.Setenv("HF_HUB_OFFLINE", "1")
	src := tinyModelDir(t, "llama")
	dst := filepath.Join(t.TempDir(), "bnb")
	writeBnbDir(t, src, dst)
	_, valFile, err := examples.Write(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	losses := map[string]string{}
	for _, c := range []struct{ dir, q, note string }{
		{src, "nf4", "quantised to nf4"},
		{dst, "nf4", "used as stored (frozen"},
		{dst, "int8", "not as --quantization int8"},
	} {
		code, out, stderr := run(t, "eval", "--model", c.dir, "--data", valFile, "--json", "--quantization", c.q)
		if code != ExitOK || !strings.Contains(stderr, c.note) {
			t.Fatalf("eval %s --quantization %s: exit %d, stderr %q (want %q)", c.dir, c.q, code, stderr, c.note)
		}
		losses[c.dir+c.q] = out
	}
	// Quantising the bf16 model gives the bitsandbytes checkpoint's weights exactly.
	if a, b := losses[src+"nf4"], losses[dst+"nf4"]; a != b || losses[dst+"int8"] != b {
		t.Errorf("losses differ: quantised %s, bnb %s, bnb as int8 %s", a, b, losses[dst+"int8"])
	}
}

// writeBnbDir copies the model dir src to dst with its projections in bitsandbytes'
// NF4 layout (double-quantised).
func writeBnbDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasSuffix(e.Name(), ".safetensors") {
			data, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := safetensors.OpenDir(src)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var tensors []safetensors.Tensor
	for _, name := range st.Names() {
		proj := false
		for _, p := range modelcfg.Projections {
			proj = proj || strings.HasSuffix(name, "."+p+".weight")
		}
		if proj {
			m, err := quant.QuantizeTensor(st, name, quant.KindNF4, quant.NF4Options{DoubleQuant: true})
			if err != nil {
				t.Fatal(err)
			}
			ts, err := m.(*quant.NF4).Tensors(name)
			if err != nil {
				t.Fatal(err)
			}
			tensors = append(tensors, ts...)
			continue
		}
		info, _ := st.Info(name)
		raw, err := st.Bytes(name)
		if err != nil {
			t.Fatal(err)
		}
		tensors = append(tensors, safetensors.Tensor{Name: name, DType: info.DType, Shape: info.Shape, Data: append([]byte(nil), raw...)})
	}
	if err := safetensors.WriteFile(filepath.Join(dst, safetensors.SingleFileName), tensors, nil); err != nil {
		t.Fatal(err)
	}
}
