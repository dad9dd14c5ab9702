package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/bidora/bidora/internal/golden"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bidora/bidora/config"
	"github.com/bidora/bidora/internal/examples"
	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/quant"
	"github.com/bidora/bidora/safetensors"
	"github.com/bidora/bidora/train"
)

// f32Goldens are the f32 checkpoints of model/testdata/golden, whose case.json holds
// the float64 reference's losses.
var f32Goldens = []string{"llama_lora", "llama_dora", "llama_rslora_all", "qwen2_lora_all", "qwen2_dora_all"}

// eval on an f32 checkpoint holds it as stored (f32) by default and equals the float64
// reference within 1e-6, with and without the adapter, under --quantization auto and
// none; --base-dtype bf16 rounds the weights and is visibly further off.
func TestEvalF32GoldensAsStored(t *testing.T) {
	fakeHardware(t, 22)
	for _, name := range f32Goldens {
		t.Run(name, func(t *testing.T) {
			rows := goldenRows(t, name)
			var want map[string]float64
			data, err := os.ReadFile(filepath.Join(goldenDir(name), "case.json"))
			if err != nil {
				t.Fatal(err)
			}
			json.Unmarshal(data, &want) //nolint:errcheck // non-numeric fields are skipped
			relErr := func(key string, extra ...string) float64 {
				t.Helper()
				args := append([]string{"eval", "--model", goldenDir(name), "--data", rows, "--batch-size", "2", "--json"}, extra...)
				if key == "loss" {
					args = append(args, "--adapter", filepath.Join(goldenDir(name), "adapter"))
				}
				code, out, errOut := runEngineCmd(t, args...)
				if code != 0 {
					t.Fatalf("%v: exit %d: %s", args, code, errOut)
				}
				var got evalResult
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("output %q: %v", out, err)
				}
				if got.Tokens != int(want["tokens"]) {
					t.Errorf("tokens %d, want %v", got.Tokens, want["tokens"])
				}
				return math.Abs(got.Loss-want[key]) / want[key]
			}
			for _, key := range []string{"base_loss", "loss"} {
				for _, extra := range [][]string{nil, {"--quantization", "none"}, {"--base-dtype", "auto"}, {"--base-dtype", "f32"}} {
					if e := relErr(key, extra...); e > 1e-6 {
						t.Errorf("%s %v: relative error %.3g > 1e-6", key, extra, e)
					}
				}
				if e := relErr(key, "--base-dtype", "bf16"); e < 1e-6 {
					t.Errorf("%s --base-dtype bf16: relative error %.3g, expected bf16 rounding to show", key, e)
				}
			}
		})
	}
}

// One SGD step on the f32 golden, with the base loaded as train loads it (trainRun's
// loadModel: --base-dtype and --quantization resolved, the golden adapter through
// --resume-adapter), equals the PyTorch float64 reference's step within 1e-5 of the
// parameters' scale; holding the base in bf16 (--base-dtype bf16) does not.
func TestTrainSGDStepF32Golden(t *testing.T) {
	fakeHardware(t, 22)
	dir := goldenDir("llama_lora")
	ref, err := safetensors.Open(filepath.Join(dir, "sgd_step.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	var lr float64
	if _, err := fmt.Sscan(ref.Metadata()["lr"], &lr); err != nil {
		t.Fatalf("sgd_step.safetensors lr: %v", err)
	}
	mc, err := modelcfg.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	exs := golden.Examples(t, dir)
	step := func(baseDType, quantization string) (worst float64, held model.BaseDType) {
		t.Helper()
		cfg := config.Default()
		cfg.Model, cfg.Quantization, cfg.BaseDType = dir, quantization, baseDType
		cfg.ResumeAdapter = filepath.Join(dir, "adapter")
		var errb bytes.Buffer
		r := &trainRun{cfg: cfg, dir: dir, mc: mc}
		if err := r.loadModel(context.Background(), &IO{In: strings.NewReader(""), Out: io.Discard, Err: &errb}); err != nil {
			t.Fatalf("loadModel: %v\n%s", err, errb.String())
		}
		defer r.model.Close()
		o := train.Options{Output: t.TempDir(), MaxSteps: 1, BatchSize: len(exs), GradAccum: 1, LR: lr,
			Scheduler: "constant", Optimizer: "sgd", Seed: 1}
		if _, err := train.Run(context.Background(), r.model, []train.Phase{{Name: "train", Data: exs, Stepper: train.NewPlain(r.model, &o)}}, nil, o); err != nil {
			t.Fatal(err)
		}
		for _, p := range r.model.Params() {
			want, err := ref.Float32(p.Name)
			if err != nil {
				t.Fatal(err)
			}
			scale, diff := 0.0, 0.0
			for i := range want {
				scale = math.Max(scale, math.Abs(float64(want[i])))
				diff = math.Max(diff, math.Abs(float64(p.Data[i]-want[i])))
			}
			worst = math.Max(worst, diff/scale)
		}
		return worst, r.model.BaseDType()
	}
	for _, c := range []struct{ base, quant string }{{"auto", "none"}, {"auto", "auto"}, {"f32", "none"}} {
		worst, held := step(c.base, c.quant)
		if held != model.BaseF32 {
			t.Errorf("--base-dtype %s --quantization %s: base held in %s, want f32 as stored", c.base, c.quant, held)
		}
		if worst > 1e-5 {
			t.Errorf("--base-dtype %s --quantization %s: after one SGD step the adapter is %.3g off the reference (relative), want ≤ 1e-5", c.base, c.quant, worst)
		}
		t.Logf("--base-dtype %s --quantization %s: relative error %.3g", c.base, c.quant, worst)
	}
	if worst, held := step("bf16", "none"); held != model.BaseBF16 || worst < 1e-4 {
		t.Errorf("--base-dtype bf16: held %s, step error %.3g; want bf16 and its rounding to show", held, worst)
	} else {
		t.Logf("--base-dtype bf16: relative error %.3g", worst)
	}
}

// loadQuantModel (the load of train, eval and generate) holds a bf16 checkpoint in
// bf16 under auto and in f32 with --base-dtype f32, an f32 one in f32 (and in bf16
// when asked), and an f16 one in bf16 with one log line saying so.
func TestLoadQuantModelBaseDType(t *testing.T) {
	dirs := map[safetensors.DType]string{}
	for _, dt := range []safetensors.DType{safetensors.BF16, safetensors.F32, safetensors.F16} {
		dirs[dt] = filepath.Join(t.TempDir(), "model")
		if err := tinymodel.Write(dirs[dt], tinymodel.Options{DType: dt, HiddenSize: 32, NumLayers: 2, Seed: 5}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		stored safetensors.DType
		flag   string
		kind   quant.Kind
		want   model.BaseDType
		note   bool // the f16 line
	}{
		{safetensors.BF16, "auto", quant.KindNone, model.BaseBF16, false},
		{safetensors.BF16, "", quant.KindNone, model.BaseBF16, false},
		{safetensors.BF16, "f32", quant.KindNone, model.BaseF32, false},
		{safetensors.F32, "auto", quant.KindNone, model.BaseF32, false},
		{safetensors.F32, "bf16", quant.KindNone, model.BaseBF16, false},
		{safetensors.F32, "auto", quant.KindInt8, model.BaseF32, false},
		{safetensors.F16, "auto", quant.KindNone, model.BaseBF16, true},
		{safetensors.F16, "bf16", quant.KindNone, model.BaseBF16, true},
		{safetensors.F16, "f32", quant.KindNone, model.BaseF32, false},
	}
	for _, c := range cases {
		d, err := parseBaseDTypeFlag(c.flag)
		if err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		m, err := loadQuantModel(&log, dirs[c.stored], c.kind, model.Options{BaseDType: d})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.BaseDType(); got != c.want {
			t.Errorf("%s checkpoint, --base-dtype %q: held %s, want %s", c.stored, c.flag, got, c.want)
		}
		if m.Quantization() != c.kind {
			t.Errorf("%s checkpoint, --quantization %s: %s", c.stored, c.kind, m.Quantization())
		}
		m.Close()
		if n := strings.Count(log.String(), "stores f16"); n != map[bool]int{true: 1, false: 0}[c.note] {
			t.Errorf("%s checkpoint, --base-dtype %q: %d f16 lines in %q", c.stored, c.flag, n, log.String())
		}
	}
	if _, err := parseBaseDTypeFlag("f16"); err == nil || !strings.Contains(err.Error(), "--base-dtype f16") {
		t.Errorf("--base-dtype f16: %v", err)
	}
}

// eval, generate and train load an f16 checkpoint as bf16 and say so exactly once;
// --base-dtype takes only auto, bf16 and f32 (exit 2).
func TestBaseDTypeCommands(t *testing.T) {
	fakeHardware(t, 22)
	t.Setenv("HF_HUB_OFFLINE", "1")
	dir := filepath.Join(t.TempDir(), "model")
	if err := tinymodel.Write(dir, tinymodel.Options{DType: safetensors.F16, HiddenSize: 32, IntermediateSize: 48, NumLayers: 2,
		NumHeads: 4, NumKVHeads: 2, Tied: true, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	rows := filepath.Join(t.TempDir(), "rows.jsonl")
	if err := os.WriteFile(rows, []byte("{\"input_ids\":[1,2,3,4,5]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	trainFile, _, err := examples.Write(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"eval", "--model", dir, "--data", rows},
		{"generate", "--model", dir, "--prompt", "hi", "--max-new-tokens", "2"},
		{"train", "--model", dir, "--train-file", trainFile, "--output", filepath.Join(t.TempDir(), "out"), "--max-steps", "1",
			"--batch-size", "1", "--grad-accum", "1", "--max-seq-len", "32", "--val-split", "0", "--rank", "2"},
	} {
		code, _, stderr := run(t, args...)
		if code != ExitOK {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		if n := strings.Count(stderr, "stores f16"); n != 1 {
			t.Errorf("%s: the f16 note appears %d times:\n%s", args[0], n, stderr)
		}
	}
	for _, args := range [][]string{
		{"eval", "--model", dir, "--data", rows, "--base-dtype", "f16"},
		{"generate", "--model", dir, "--prompt", "hi", "--base-dtype", "f16"},
		{"train", "--print-config", "--model", dir, "--train-file", trainFile, "--base-dtype", "f16"},
	} {
		if code, _, stderr := run(t, args...); code != ExitUsage || !strings.Contains(stderr, "--base-dtype") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming --base-dtype", args, code, stderr)
		}
	}
}

// --print-config shows the base dtype auto resolves to for a local checkpoint (and
// why), keeps an explicit one, and plans 2 more bytes per frozen weight for f32.
func TestTrainPrintConfigBaseDType(t *testing.T) {
	fakeHardware(t, 22)
	dirs := map[safetensors.DType]string{}
	for _, dt := range []safetensors.DType{safetensors.BF16, safetensors.F32, safetensors.F16} {
		dirs[dt] = filepath.Join(t.TempDir(), "model")
		if err := tinymodel.Write(dirs[dt], tinymodel.Options{DType: dt, HiddenSize: 64, NumLayers: 2, Seed: 5}); err != nil {
			t.Fatal(err)
		}
	}
	estimate := func(out string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "# estimated peak memory:") {
				return l
			}
		}
		t.Fatalf("no estimate in:\n%s", out)
		return ""
	}
	cases := []struct {
		stored     safetensors.DType
		flag, want string
		header     string
	}{
		{safetensors.F32, "", "base-dtype: f32\n", "base-dtype: auto → f32 (the checkpoint's weights: stored as f32)"},
		{safetensors.BF16, "", "base-dtype: bf16\n", "base-dtype: auto → bf16 (the checkpoint's weights: stored as bf16)"},
		{safetensors.F16, "", "base-dtype: bf16\n", "base-dtype: auto → bf16 (the checkpoint's weights: stored as f16)"},
		{safetensors.F32, "bf16", "base-dtype: bf16\n", ""},
		{safetensors.BF16, "f32", "base-dtype: f32\n", ""},
	}
	got := map[string]string{}
	for _, c := range cases {
		args := []string{"train", "--print-config", "--model", dirs[c.stored], "--train-file", "d.jsonl", "--quantization", "none"}
		if c.flag != "" {
			args = append(args, "--base-dtype", c.flag)
		}
		code, out, stderr := run(t, args...)
		if code != ExitOK {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		if !strings.Contains(out, c.want) || (c.header != "" && !strings.Contains(out, c.header)) {
			t.Errorf("%s checkpoint, --base-dtype %q: output lacks %q / %q:\n%s", c.stored, c.flag, c.want, c.header, out)
		}
		got[string(c.stored)+"/"+c.flag] = out
	}
	// The same shape in f32 and in bf16: the estimates differ (memplan's tests pin by how much).
	if estimate(got["F32/"]) == estimate(got["BF16/"]) || estimate(got["F32/bf16"]) != estimate(got["BF16/"]) || estimate(got["BF16/f32"]) != estimate(got["F32/"]) {
		t.Errorf("estimates do not follow the base dtype:\nf32 %s\nbf16 %s\nf32 as bf16 %s\nbf16 as f32 %s",
			estimate(got["F32/"]), estimate(got["BF16/"]), estimate(got["F32/bf16"]), estimate(got["BF16/f32"]))
	}
}
