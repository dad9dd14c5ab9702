package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/atomicfile"
	"github.com/bidora/bidora/internal/examples"
)

// TestResumeRefusesOtherAdapter: resuming a checkpoint with settings that change the
// adapter it trains exits 2 naming the flag and the checkpoint's value, before any
// file of the run is touched; schedule settings may change and are recorded.
func TestResumeRefusesOtherAdapter(t *testing.T) {
	fakeHardware(t, 22)
	t.Setenv("HF_HUB_OFFLINE", "1")
	modelDir := tinyModelDir(t, "llama")
	trainFile, _, err := examples.Write(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	base := []string{"train", "--model", modelDir, "--train-file", trainFile, "--output", out, "--val-split", "0",
		"--batch-size", "2", "--grad-accum", "1", "--lr", "5e-3", "--save-steps", "2", "--max-seq-len", "64",
		"--rank", "4", "--auto-hardware=false", "--quantization", "none"}
	if code, o, e := run(t, append(base, "--max-steps", "4")...); code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, o, e)
	}
	metrics := filepath.Join(out, "metrics.jsonl")
	before, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(out, "checkpoint-2")
	for _, tc := range []struct {
		extra []string
		want  string
	}{
		{[]string{"--rank", "16"}, "--rank 4"},
		{[]string{"--alpha", "64"}, "--alpha 16"},
		{[]string{"--dora"}, "--method lora"},
		{[]string{"--targets", "all-linear"}, "--targets"},
		{[]string{"--seed", "9"}, "--seed"},
		{[]string{"--optimizer", "sgd"}, "--optimizer adamw"},
		{[]string{"--batch-size", "3"}, "--batch-size 2"},
	} {
		args := append(append(append([]string{}, base...), "--max-steps", "4", "--resume", ck), tc.extra...)
		// later flags win: replace base's value where the test gives one
		code, _, stderr := run(t, args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "checkpoint-2") {
			t.Errorf("resume with %v: exit %d, want 2 naming %q:\n%s", tc.extra, code, tc.want, stderr)
		}
		if after, _ := os.ReadFile(metrics); string(after) != string(before) {
			t.Fatalf("resume with %v changed metrics.jsonl", tc.extra)
		}
	}
	// A new learning rate and more steps: allowed, logged, recorded.
	code, _, stderr := run(t, append(base, "--max-steps", "6", "--lr", "1e-3", "--resume", "latest")...)
	if code != ExitOK || !strings.Contains(stderr, "changed on resume: lr 0.005 → 0.001") || !strings.Contains(stderr, "resumed from "+filepath.Join(out, "checkpoint-2")) {
		t.Fatalf("resume with a new lr: exit %d\n%s", code, stderr)
	}
	yml, _ := os.ReadFile(filepath.Join(out, "config.yaml"))
	card, _ := os.ReadFile(filepath.Join(out, "README.md"))
	if !strings.Contains(string(yml), "changed on resume") || !strings.Contains(string(card), "- lr: 0.005 → 0.001") {
		t.Errorf("config.yaml / model card do not record the change:\n%s\n%s", yml, card)
	}
	// --overwrite starts afresh: the earlier run's checkpoints go, files train does not
	// write stay.
	keep := filepath.Join(out, "notes.txt")
	os.WriteFile(keep, []byte("mine"), 0o644)
	if code, _, stderr := run(t, append(base, "--max-steps", "1", "--overwrite")...); code != ExitOK || !strings.Contains(stderr, "removed 2 checkpoints") {
		t.Fatalf("--overwrite: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(ck); !os.IsNotExist(err) {
		t.Error("--overwrite kept the earlier run's checkpoint-2")
	}
	if _, err := os.Stat(keep); err != nil {
		t.Error("--overwrite removed a file train does not write")
	}
	// --resume on a directory without a checkpoint names the flag.
	if code, _, stderr := run(t, append(base, "--resume", t.TempDir())...); code != ExitUsage || !strings.Contains(stderr, "--resume") {
		t.Errorf("resume from an empty dir: exit %d %s", code, stderr)
	}
}

// TestOutputLocked: a second run into an output directory another run holds exits 2
// at once, naming the holder's pid, and leaves the directory alone.
func TestOutputLocked(t *testing.T) {
	fakeHardware(t, 22)
	out := filepath.Join(t.TempDir(), "out")
	unlock, err := atomicfile.LockDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	code, _, stderr := run(t, "train", "--model", tinyModelDir(t, "llama"), "--train-file", "x.jsonl", "--output", out)
	if code != ExitUsage || !strings.Contains(stderr, "in use by another bidora run (pid "+strconv.Itoa(os.Getpid())+")") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Errorf("the refused run wrote into the directory: %v", entries)
	}
}

// TestBiDoRAEmptyValFile: an empty --val-file is named as the cause, not reported as
// too few training examples.
func TestBiDoRAEmptyValFile(t *testing.T) {
	fakeHardware(t, 22)
	trainFile, _, err := examples.Write(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "val.jsonl")
	os.WriteFile(empty, nil, 0o644)
	code, _, stderr := run(t, "train", "--model", tinyModelDir(t, "llama"), "--train-file", trainFile, "--val-file", empty,
		"--method", "bidora", "--output", filepath.Join(t.TempDir(), "out"), "--max-steps", "1", "--max-seq-len", "64",
		"--auto-hardware=false", "--quantization", "none")
	if code != ExitUsage || !strings.Contains(stderr, "--val-file "+empty) || strings.Contains(stderr, "at least 2 training examples") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
}
