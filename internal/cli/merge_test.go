package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/peft"
	"github.com/bidora/bidora/safetensors"
)

// writeTestAdapter writes a small random base model and a LoRA (or DoRA)
// adapter for its q_proj and v_proj, returning both directories.
func writeTestAdapter(t *testing.T, base tinymodel.Options, dora bool) (baseDir, adapterDir string) {
	t.Helper()
	baseDir = filepath.Join(t.TempDir(), "base")
	if err := tinymodel.Write(baseDir, base); err != nil {
		t.Fatal(err)
	}
	mcfg, err := modelcfg.Load(baseDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := peft.NewConfig("test/base", 4, 8, 0, []string{"q_proj", "v_proj"})
	cfg.UseDora = dora
	tensors := map[string]peft.Tensor{}
	fill := func(n int, v float32) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = v * float32(i%7-3)
		}
		return x
	}
	for l := 0; l < mcfg.NumHiddenLayers; l++ {
		for _, p := range cfg.TargetModules {
			out, in, _ := mcfg.ProjShape(p)
			tensors[peft.KeyA(l, p)] = peft.Tensor{Shape: []int{4, in}, Data: fill(4*in, 0.01)}
			tensors[peft.KeyB(l, p)] = peft.Tensor{Shape: []int{out, 4}, Data: fill(out*4, 0.02)}
			if dora {
				tensors[peft.KeyMagnitude(l, p)] = peft.Tensor{Shape: []int{out}, Data: fill(out, 0.1)}
			}
		}
	}
	st, err := peft.ToTensors(tensors, safetensors.F32)
	if err != nil {
		t.Fatal(err)
	}
	adapterDir = filepath.Join(t.TempDir(), "adapter")
	if err := peft.Save(adapterDir, cfg, st); err != nil {
		t.Fatal(err)
	}
	return baseDir, adapterDir
}

func TestMergeCmd(t *testing.T) {
	base, adapter := writeTestAdapter(t, tinymodel.Options{DType: safetensors.BF16}, false)
	out := filepath.Join(t.TempDir(), "merged")
	code, stdout, stderr := runCLI(t, "", "merge", "--model", base, "--adapter", adapter, "--output", out,
		"--dtype", "f16", "--max-shard-size", "100KB", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res struct {
		Output    string   `json:"output"`
		Method    string   `json:"method"`
		DType     string   `json:"dtype"`
		Files     []string `json:"files"`
		Tensors   int      `json:"tensors"`
		Merged    int      `json:"merged"`
		TotalSize int64    `json:"total_size"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v in %q", err, stdout)
	}
	if res.Method != "lora" || res.DType != "F16" || res.Merged != 4 || len(res.Files) < 2 || res.TotalSize == 0 {
		t.Errorf("result %+v", res)
	}
	cfg, err := modelcfg.Load(out)
	if err != nil || cfg.TorchDtype != "float16" {
		t.Errorf("merged config: %v, torch_dtype %q", err, cfg.TorchDtype)
	}
	if _, err := os.Stat(filepath.Join(out, safetensors.IndexFileName)); err != nil {
		t.Errorf("no index: %v", err)
	}

	// Text output; a second run into the same dir needs --overwrite.
	code, _, stderr = runCLI(t, "", "merge", "--model", base, "--adapter", adapter, "--output", out)
	if code != ExitUsage || !strings.Contains(stderr, "--overwrite") {
		t.Errorf("merge into non-empty dir: exit %d, %s", code, stderr)
	}
	code, stdout, stderr = runCLI(t, "", "merge", "--model", base, "--adapter", adapter, "--output", out, "--overwrite")
	if code != 0 || !strings.Contains(stdout, "merged lora adapter into 4 of") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestMergeCmdErrors(t *testing.T) {
	base, adapter := writeTestAdapter(t, tinymodel.Options{NumLayers: 1}, true)
	out := filepath.Join(t.TempDir(), "o")
	other, _ := writeTestAdapter(t, tinymodel.Options{NumLayers: 1, HiddenSize: 32}, true)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no model", []string{"--adapter", adapter, "--output", out}, ExitUsage, "--model is required"},
		{"no adapter", []string{"--model", base, "--output", out}, ExitUsage, "--adapter is required"},
		{"no output", []string{"--model", base, "--adapter", adapter}, ExitUsage, "--output is required"},
		{"bad dtype", []string{"--model", base, "--adapter", adapter, "--output", out, "--dtype", "int8"}, ExitUsage, "--dtype"},
		{"bad size", []string{"--model", base, "--adapter", adapter, "--output", out, "--max-shard-size", "lots"}, ExitUsage, "--max-shard-size"},
		{"missing base", []string{"--model", "./nope", "--adapter", adapter, "--output", out}, ExitError, "--model"},
		{"wrong base", []string{"--model", other, "--adapter", adapter, "--output", out}, ExitError, "does not fit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, "", append([]string{"merge"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, tc.code, tc.want)
			}
		})
	}
	code, stdout, _ := runCLI(t, "", "merge", "--help")
	if code != 0 || !strings.Contains(stdout, "bidora merge --model") {
		t.Errorf("--help: exit %d, %q", code, stdout)
	}
}
