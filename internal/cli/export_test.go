package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bidora/bidora/gguf"
	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/peft"
)

func TestExportCmd(t *testing.T) {
	base, adapter := writeTestAdapter(t, tinymodel.Options{Arch: "qwen2"}, false)
	out := filepath.Join(t.TempDir(), "sub", "adapter.gguf")
	code, stdout, stderr := runCLI(t, "", "export", "--adapter", adapter, "--format", "gguf-lora", "--output", out,
		"--base-model-config", base, "--dtype", "f16", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res struct {
		Output       string  `json:"output"`
		DType        string  `json:"dtype"`
		Architecture string  `json:"architecture"`
		Alpha        float64 `json:"alpha"`
		Tensors      int     `json:"tensors"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v in %q", err, stdout)
	}
	// 2 layers × q_proj, v_proj × (lora_a, lora_b); r 4, alpha 8.
	if res.Architecture != "qwen2" || res.Tensors != 8 || res.Alpha != 8 || res.DType != "f16" {
		t.Errorf("result %+v", res)
	}
	f, err := gguf.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Get("general.type"); v != "adapter" {
		t.Errorf("general.type %v", v)
	}
	info, _, err := f.Tensor("blk.1.attn_v.weight.lora_b")
	if err != nil || info.Type != gguf.F16 || info.Dims[0] != 4 {
		t.Errorf("blk.1.attn_v.weight.lora_b: %+v, %v", info, err)
	}

	// base_model_name_or_path naming a local directory is used without the flag.
	cfg, err := peft.ReadConfig(adapter)
	if err != nil {
		t.Fatal(err)
	}
	cfg.BaseModelNameOrPath = base
	if err := cfg.Write(adapter); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "", "export", "--adapter", adapter, "--output", out, "--overwrite")
	if code != 0 || !strings.Contains(stdout, "GGUF LoRA adapter (qwen2, 8 tensors, f32") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestExportCmdErrors(t *testing.T) {
	base, lora := writeTestAdapter(t, tinymodel.Options{NumLayers: 1}, false)
	_, dora := writeTestAdapter(t, tinymodel.Options{NumLayers: 1}, true)
	other, _ := writeTestAdapter(t, tinymodel.Options{NumLayers: 1, HiddenSize: 32}, false)
	existing := filepath.Join(t.TempDir(), "x.gguf")
	if err := os.WriteFile(existing, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "a.gguf")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no adapter", []string{"--output", out}, ExitUsage, "--adapter is required"},
		{"no output", []string{"--adapter", lora}, ExitUsage, "--output is required"},
		{"format", []string{"--adapter", lora, "--output", out, "--format", "onnx"}, ExitUsage, "gguf-lora"},
		{"dtype", []string{"--adapter", lora, "--output", out, "--dtype", "q4"}, ExitUsage, "--dtype"},
		{"exists", []string{"--adapter", lora, "--output", existing, "--base-model-config", base}, ExitUsage, "--overwrite"},
		{"dora", []string{"--adapter", dora, "--output", out, "--base-model-config", base}, ExitError, "bidora merge"},
		{"wrong base", []string{"--adapter", lora, "--output", out, "--base-model-config", other}, ExitError, "does not fit"},
		{"bad config path", []string{"--adapter", lora, "--output", out, "--base-model-config", filepath.Join(base, "nope")}, ExitError, "--base-model-config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, "", append([]string{"export"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, tc.code, tc.want)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed export wrote %s", out)
	}
	code, stdout, _ := runCLI(t, "", "export", "--help")
	if code != 0 || !strings.Contains(stdout, "bidora export --adapter") {
		t.Errorf("--help: exit %d", code)
	}
}
