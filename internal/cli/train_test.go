package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/hardware"
)

// fakeHardware makes commands see a fixed machine: 2 cores, availGiB of RAM, optional GPU.
func fakeHardware(t *testing.T, availGiB int64, gpus ...hardware.GPU) {
	t.Helper()
	old := detectHardware
	detectHardware = func(context.Context, string) hardware.Info {
		if gpus == nil {
			gpus = []hardware.GPU{}
		}
		return hardware.Info{OS: "linux", Arch: "amd64",
			CPU:    hardware.CPU{Model: "Test CPU", Cores: 2, Threads: 2, Usable: 2, Features: []string{"avx2", "fma"}},
			Memory: hardware.Memory{Total: (availGiB + 2) << 30, Available: availGiB << 30},
			Disk:   &hardware.Disk{Path: "/out", Free: 50 << 30, Total: 100 << 30},
			GPUs:   gpus}
	}
	t.Cleanup(func() { detectHardware = old })
}

// run executes bidora with args and returns exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestTrainValidationExit2(t *testing.T) {
	fakeHardware(t, 22)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--train-file", "d.jsonl", "--rank", "0"}, "--rank 0"},
		{[]string{"--train-file", "d.jsonl", "--quantization", "nf5"}, "--quantization nf5: must be one of auto, nf4, int8, none"},
		{[]string{"--train-file", "d.jsonl", "--lr", "-1"}, "--lr -1"},
		{[]string{"--train-file", "d.jsonl", "--val-split", "1.5"}, "--val-split 1.5"},
		{[]string{"--train-file", "d.jsonl", "--dataset", "org/ds"}, "--train-file and --dataset"},
		{[]string{"--print-config"}, "--train-file"},
		{[]string{"--train-file", "d.jsonl", "--method", "bidora", "--outer-split", "0"}, "--outer-split 0: want a share of the training rows"},
		{[]string{"--train-file", "d.jsonl", "--targets", "q_proj,foo"}, "--targets foo"},
		{[]string{"--train-file", "d.jsonl", "--rank", "x"}, "--rank"},
		{[]string{"--train-file", "d.jsonl", "--no-such-flag"}, "--no-such-flag"},
		{[]string{"--train-file", "d.jsonl", "--model", "tinyllama"}, "--model tinyllama"},
		{[]string{"--train-file", "d.jsonl", "--config", "/nonexistent/run.yaml"}, "--config /nonexistent/run.yaml"},
	}
	for _, c := range cases {
		code, _, stderr := run(t, append([]string{"train", "--print-config"}, c.args...)...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %q", c.args, code, stderr, c.want)
		}
	}
}

func TestTrainYAMLErrorsExit2(t *testing.T) {
	fakeHardware(t, 22)
	dir := t.TempDir()
	cases := []struct{ yaml, want string }{
		{"train-file: d.jsonl\nlearning-rate: 1\n", "run.yaml:2: learning-rate: unknown key"},
		{"train-file: d.jsonl\nrank: 0\n", "run.yaml:2: rank: 0: must be a positive integer"},
		{"train_file: d.jsonl\nquantization: nf5\n", "run.yaml:2: quantization: nf5"},
	}
	for _, c := range cases {
		path := filepath.Join(dir, "run.yaml")
		if err := os.WriteFile(path, []byte(c.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := run(t, "train", "--print-config", "--config", path)
		if code != ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", c.yaml, code, stderr, c.want)
		}
	}
}

func TestTrainPrintConfig(t *testing.T) {
	fakeHardware(t, 22)
	code, out, stderr := run(t, "train", "--print-config", "--model", "Qwen/Qwen2.5-Coder-7B-Instruct", "--train-file", "data.jsonl")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"quantization: int8\n", "batch-size: 4\n", "grad-accum: 4\n", "max-seq-len: 2048\n",
		"# auto-adjust:", "not bf16", "train-file: data.jsonl\n", "# estimated peak memory:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestTrainPrintConfigRoundTrip feeds --print-config output back through --config
// and expects the same output.
func TestTrainPrintConfigRoundTrip(t *testing.T) {
	for _, mem := range []int64{6, 22} {
		fakeHardware(t, mem)
		code, first, stderr := run(t, "train", "--print-config", "--model", "qwen2.5-coder-7b", "--train-file", "data.jsonl",
			"--method", "dora", "--targets", "all-linear", "--lr", "1e-4")
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		path := filepath.Join(t.TempDir(), "run.yaml")
		if err := os.WriteFile(path, []byte(first), 0o644); err != nil {
			t.Fatal(err)
		}
		code, second, stderr := run(t, "train", "--print-config", "--config", path)
		if code != ExitOK {
			t.Fatalf("second run: exit %d: %s", code, stderr)
		}
		strip := func(s string) string { // compare settings, not the explanatory comments
			var keep []string
			for _, l := range strings.Split(s, "\n") {
				if !strings.HasPrefix(l, "#") {
					keep = append(keep, l)
				}
			}
			return strings.Join(keep, "\n")
		}
		if strip(first) != strip(second) {
			t.Errorf("%d GiB: round trip differs:\n%s\n---\n%s", mem, first, second)
		}
	}
}

func TestTrainPrecedenceCLI(t *testing.T) {
	fakeHardware(t, 22)
	path := filepath.Join(t.TempDir(), "run.yaml")
	if err := os.WriteFile(path, []byte("train_file: a.jsonl\nrank: 16\nbatch-size: 1\nalpha: 8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run(t, "train", "--print-config", "--config", path, "--rank", "4", "--model", "qwen2.5-0.5b")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"rank: 4\n", "batch-size: 1\n", "grad-accum: 4\n", "alpha: 8\n", "train-file: a.jsonl\n", "epochs: 3\n", "quantization: none\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestTrainAutoHardwareOff(t *testing.T) {
	fakeHardware(t, 6)
	code, out, stderr := run(t, "train", "--print-config", "--auto-hardware=false", "--train-file", "d.jsonl")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "batch-size: 4\n") || !strings.Contains(out, "max-seq-len: 2048\n") || !strings.Contains(stderr, "does not fit") {
		t.Errorf("auto-hardware=false changed settings or did not warn:\n%s\n%s", out, stderr)
	}
}

func TestTrainUnknownRemoteModel(t *testing.T) {
	fakeHardware(t, 22)
	code, out, _ := run(t, "train", "--print-config", "--model", "someone/some-model", "--train-file", "d.jsonl")
	if code != ExitOK || !strings.Contains(out, "auto-adjust skipped") || !strings.Contains(out, "quantization: auto\n") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func TestTrainLocalModel(t *testing.T) {
	fakeHardware(t, 22)
	dir := filepath.Join("..", "..", "..", "shared", "models", "code14m")
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		t.Skip("shared test model not present")
	}
	code, out, stderr := run(t, "train", "--print-config", "--model", dir, "--train-file", "d.jsonl")
	if code != ExitOK || !strings.Contains(out, "(llama, 15M parameters, local)") || !strings.Contains(out, "quantization: none\n") {
		t.Errorf("exit %d %s:\n%s", code, stderr, out)
	}
}

func TestHelpAndCompletion(t *testing.T) {
	for _, cmd := range []string{"train", "info", "list-models"} {
		code, out, _ := run(t, cmd, "--help")
		if code != ExitOK || !strings.Contains(out, "Examples:") {
			t.Errorf("%s --help: exit %d, no examples:\n%s", cmd, code, out)
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, stderr := run(t, "completion", shell)
		if code != ExitOK || !strings.Contains(out, "bidora") {
			t.Errorf("completion %s: exit %d %s", shell, code, stderr)
		}
	}
	code, out, _ := run(t, "__complete", "train", "--quantization", "")
	if code != ExitOK || !strings.Contains(out, "nf4") {
		t.Errorf("flag completion: exit %d %q", code, out)
	}
}
