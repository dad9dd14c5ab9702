//go:build long

package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// repoDataSource is a Debian package's copy of the memchr crate's sources
// (librust-memchr-dev; CI installs it).
const repoDataSource = "/usr/share/cargo/registry/memchr-*"

// TestTrainDirHeldOutFileLoss trains code14m (a real small code model) on the Rust
// files of a crate and checks that the loss on held-out *files* (whole files the
// training never saw, split off by file) falls.
func TestTrainDirHeldOutFileLoss(t *testing.T) {
	require := os.Getenv("BIDORA_REQUIRE_REPO_DATA") != ""
	missing := func(what string) {
		if require {
			t.Fatalf("%s is missing and BIDORA_REQUIRE_REPO_DATA is set", what)
		}
		t.Skipf("%s is missing (install librust-memchr-dev; set BIDORA_REQUIRE_REPO_DATA=1 to make this fatal)", what)
	}
	model := filepath.Join("..", "..", "..", "shared", "models", "code14m")
	if _, err := os.Stat(filepath.Join(model, "model.safetensors")); err != nil {
		missing(model)
	}
	crates, _ := filepath.Glob(repoDataSource)
	if len(crates) == 0 {
		missing(repoDataSource)
	}
	fakeHardware(t, 22)
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := run(t, "train", "--model", model, "--train-dir", crates[0], "--lang", "rust",
		"--val-split", "0.15", "--seed", "1", "--max-seq-len", "256", "--batch-size", "4", "--grad-accum", "1",
		"--max-steps", "30", "--eval-steps", "30", "--lr", "2e-3", "--warmup-steps", "3", "--save-steps", "0",
		"--quantization", "none", "--output", out)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	t.Logf("%s\n%s", stderr, stdout)
	m := regexp.MustCompile(`validation loss: ([0-9.]+) before, ([0-9.]+) after`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no validation loss in:\n%s", stdout)
	}
	before, _ := strconv.ParseFloat(m[1], 64)
	after, _ := strconv.ParseFloat(m[2], 64)
	if !(after < before-0.05) {
		t.Errorf("held-out file loss %.4f → %.4f: did not fall by 0.05", before, after)
	}
}
