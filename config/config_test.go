package config

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// load parses args, applies yamlText (when not empty) as "run.yaml" and resolves.
func load(t *testing.T, args []string, yamlText string) (*Train, Origins, error) {
	t.Helper()
	cfg := &Train{}
	fs := NewFlagSet(cfg)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	o := FlagOrigins(fs)
	if yamlText != "" {
		if err := ApplyYAML(fs, []byte(yamlText), "run.yaml", o); err != nil {
			return cfg, o, err
		}
	}
	return cfg, o, cfg.Resolve(o)
}

func TestDefaults(t *testing.T) {
	d := Default()
	cfg, _, err := load(t, []string{"--train-file", "x.jsonl"}, "")
	if err != nil {
		t.Fatal(err)
	}
	d.TrainFile = "x.jsonl"
	if !reflect.DeepEqual(cfg, d) {
		t.Errorf("flag defaults differ from Default():\n%+v\n%+v", cfg, d)
	}
	// The command-line contract's defaults (README, "Train").
	if d.Model != "Qwen/Qwen2.5-Coder-7B-Instruct" || d.Rank != 8 || d.Alpha != 16 || d.Dropout != 0.05 ||
		d.Epochs != 3 || d.BatchSize != 4 || d.GradAccum != 4 || d.LR != 2e-4 || d.WarmupSteps != 100 ||
		d.WeightDecay != 0.01 || d.MaxGradNorm != 1 || d.MaxSeqLen != 2048 || d.ValSplit != 0.1 || d.Seed != 42 ||
		!d.RSLoRA || !d.GradCheckpointing || !d.AutoHardware || d.UpperLRMult != 2 || d.OrthReg != 1e-5 ||
		d.Method != "lora" || d.Output != "./output" || d.Hypergrad != "second-order" || d.Quantization != "auto" ||
		strings.Join(d.Targets, ",") != "q_proj,k_proj,v_proj,o_proj" {
		t.Errorf("defaults do not match the contract: %+v", d)
	}
}

func TestPrecedence(t *testing.T) {
	yamlText := "rank: 16\nlr: 1e-4\nbatch_size: 2\ntargets: [q_proj, v_proj]\nrslora: false\n"
	cfg, o, err := load(t, []string{"--train-file", "x.jsonl", "--rank", "32"}, yamlText)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rank != 32 {
		t.Errorf("flag should win over YAML: rank %d", cfg.Rank)
	}
	if cfg.LR != 1e-4 || cfg.BatchSize != 2 || cfg.RSLoRA || strings.Join(cfg.Targets, ",") != "q_proj,v_proj" {
		t.Errorf("YAML should win over defaults: %+v", cfg)
	}
	if cfg.Epochs != 3 {
		t.Errorf("default epochs lost: %d", cfg.Epochs)
	}
	if o.Where("lr") != "run.yaml:2: lr" || o.Where("rank") != "--rank" || o.Explicit("epochs") {
		t.Errorf("origins: %v", o)
	}
}

func TestYAMLErrors(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"rank: 8\nlerning-rate: 1\n", "run.yaml:2: lerning-rate: unknown key"},
		{"rnak: 8\n", "did you mean rank?"},
		{"rank: many\n", `run.yaml:1: rank: "many": want an integer`},
		{"lr: [1, 2]\n", "run.yaml:1: lr: want a single value"},
		{"rank: 8\nrank: 9\n", "run.yaml:2: rank: given twice (first on line 1)"},
		{"- rank\n", "run.yaml:1: want a mapping"},
		{"rank: [\n", "run.yaml: not valid YAML"},
		{"config: other.yaml\n", "run.yaml:1: config: unknown key"},
		{"quantization: nf5\n", "run.yaml:1: quantization: nf5: must be one of auto, nf4, int8, none"},
	}
	for _, c := range cases {
		_, _, err := load(t, []string{"--train-file", "x.jsonl"}, c.yaml)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("YAML %q: error %v, want it to contain %q", c.yaml, err, c.want)
		}
		if _, ok := AsError(err); !ok {
			t.Errorf("YAML %q: %T is not *Error", c.yaml, err)
		}
	}
}

func TestValidation(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--rank", "0"}, "--rank 0: must be a positive integer"},
		{[]string{"--quantization", "nf5"}, "--quantization nf5: must be one of auto, nf4, int8, none"},
		{[]string{"--lr", "-1"}, "--lr -1: must be greater than 0"},
		{[]string{"--val-split", "1.5"}, "--val-split 1.5: must be in [0, 1)"},
		{[]string{"--dropout", "1"}, "--dropout 1: must be in [0, 1)"},
		{[]string{"--alpha", "0"}, "--alpha 0: must be greater than 0"},
		{[]string{"--method", "qlora"}, "--method qlora: must be one of lora, dora, bidora"},
		{[]string{"--batch-size", "0"}, "--batch-size 0"},
		{[]string{"--targets", "q_proj,attn"}, "--targets attn: unknown projection"},
		{[]string{"--targets", "all-linear,q_proj"}, "--targets all-linear,q_proj: all-linear already means"},
		{[]string{"--targets", "q_proj,q_proj"}, "q_proj is listed twice"},
		{[]string{"--dataset", "org/data"}, "--train-file and --dataset: give one source"},
		{[]string{"--method", "bidora", "--outer-split", "1"}, "--outer-split 1: want a share of the training rows strictly between 0 and 1"},
		{[]string{"--dora", "--method", "bidora"}, "--dora and --method: --dora means --method dora"},
		{[]string{"--warmup-steps", "10", "--warmup-ratio", "0.1"}, "--warmup-steps and --warmup-ratio: give one"},
		{[]string{"--resume", "a", "--resume-adapter", "b"}, "--resume and --resume-adapter"},
		{[]string{"--epochs", "0"}, "--epochs and --max-steps: both are 0"},
		{[]string{"--lr-scheduler", "step"}, "--lr-scheduler step: must be one of cosine, linear, constant"},
		{[]string{"--max-seq-len", "8"}, "--max-seq-len 8: must be at least 16"},
	}
	for _, c := range cases {
		args := append([]string{"--train-file", "x.jsonl"}, c.args...)
		if c.args[0] == "--dataset" {
			args = append(args[:0:0], c.args...)
			args = append(args, "--train-file", "x.jsonl")
		}
		_, _, err := load(t, args, "")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to contain %q", c.args, err, c.want)
		}
	}
	_, _, err := load(t, nil, "")
	if err == nil || !strings.Contains(err.Error(), "no training data: give --train-file FILE, --dataset HF_ID or --train-dir DIR") {
		t.Errorf("no data: %v", err)
	}
}

func TestAliases(t *testing.T) {
	cfg, _, err := load(t, []string{"--train-file", "x", "--dora"}, "")
	if err != nil || cfg.Method != "dora" {
		t.Errorf("--dora: method %q, err %v", cfg.Method, err)
	}
	cfg, _, err = load(t, []string{"--train-file", "x", "--warmup-ratio", "0.05"}, "")
	if err != nil || cfg.WarmupSteps != 0 || cfg.WarmupRatio != 0.05 {
		t.Errorf("--warmup-ratio: %d %g %v", cfg.WarmupSteps, cfg.WarmupRatio, err)
	}
	if _, _, err = load(t, []string{"--train-file", "x", "--method", "bidora", "--val-split", "0", "--val-file", "v.jsonl"}, ""); err != nil {
		t.Errorf("bidora with --val-file: %v", err)
	}
	if cfg, _, _ = load(t, []string{"--train-file", "x", "--targets", "all-linear"}, ""); len(cfg.TargetModules()) != 7 {
		t.Errorf("all-linear expands to %v", cfg.TargetModules())
	}
}

// TestYAMLRoundTrip writes a non-default configuration and reads it back.
func TestYAMLRoundTrip(t *testing.T) {
	cfg, _, err := load(t, []string{"--train-file", "data/x y.jsonl", "--method", "bidora", "--targets", "all-linear",
		"--lr", "3e-5", "--rslora=false", "--quantization", "nf4", "--dataset-split", "train[:10%]", "--orth-reg", "0",
		"--warmup-ratio", "0.03", "--model", "yes"}, "")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := cfg.WriteYAML(&buf, []string{"a header", "two lines"}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, "# a header\n# two lines\n") || !strings.Contains(out, "# Adapter\nmethod: bidora\n") {
		t.Errorf("unexpected layout:\n%s", out)
	}
	back, _, err := load(t, nil, out)
	if err != nil {
		t.Fatalf("reading back:\n%s\n%v", out, err)
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("round trip differs:\n%+v\n%+v\n%s", back, cfg, out)
	}
	for _, name := range Names() {
		if name != DoraFlag && !strings.Contains(out, "\n"+name+":") {
			t.Errorf("key %s missing from output", name)
		}
	}
}
