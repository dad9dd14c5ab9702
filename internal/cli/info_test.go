package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/hardware"
)

func TestInfoText(t *testing.T) {
	fakeHardware(t, 22, hardware.GPU{Name: "NVIDIA GeForce RTX 4090", MemoryBytes: 24 << 30, Driver: "550.54"})
	code, out, stderr := run(t, "info")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Test CPU", "2 physical", "avx2 fma", "22.0 GiB available", "50.0 GiB free",
		"NVIDIA GeForce RTX 4090", "no GPU backend yet", "Recommended for Qwen/Qwen2.5-Coder-7B-Instruct",
		"--quantization  int8", "Why:", "Method: lora (the default) or dora", "bidora only for a small data set"} {
		if !strings.Contains(out, want) {
			t.Errorf("info lacks %q:\n%s", want, out)
		}
	}
}

func TestInfoJSON(t *testing.T) {
	fakeHardware(t, 8)
	code, out, stderr := run(t, "info", "--json", "--model", "qwen2.5-coder-1.5b")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got struct {
		Hardware struct {
			CPU    struct{ Cores int }
			Memory struct {
				Available int64 `json:"available_bytes"`
			}
			GPUs []any `json:"gpus"`
		}
		Recommendation struct {
			Model        string
			Quantization string `json:"quantization"`
			BatchSize    int    `json:"batch_size"`
			Fits         bool   `json:"fits"`
			Reasons      []string
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	r := got.Recommendation
	if got.Hardware.CPU.Cores != 2 || got.Hardware.Memory.Available != 8<<30 || got.Hardware.GPUs == nil ||
		r.Model != "qwen2.5-coder-1.5b" || r.Quantization != "none" || !r.Fits || len(r.Reasons) == 0 {
		t.Errorf("unexpected JSON:\n%s", out)
	}
}

func TestInfoUnknownModel(t *testing.T) {
	fakeHardware(t, 8)
	if code, out, _ := run(t, "info", "--model", "org/unknown"); code != ExitOK || !strings.Contains(out, "No recommendation") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	if code, _, stderr := run(t, "info", "--model", "nonsense"); code != ExitUsage || !strings.Contains(stderr, "--model nonsense") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
