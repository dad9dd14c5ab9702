package cli

import (
	"encoding/json"
	"github.com/bidora/bidora/dataset"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/tinymodel"
)

// writeCrate writes a small source tree: Rust files a walker takes, and one file for
// each reason to skip (ignored, vendored, lock, generated, binary, duplicate).
func writeCrate(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		".gitignore":       "*.log\n/build/\n",
		"debug.log":        "noise\n",
		"build/out.rs":     "fn out() {}\n",
		"vendor/dep/d.rs":  "fn d() {}\n",
		"Cargo.lock":       "# lock\n",
		"src/gen.rs":       "// @generated\nfn g() {}\n",
		"assets/logo.bin":  "\x89PNG\x00\x00",
		"src/copy_of_a.rs": "",
	}
	for i, name := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		var b strings.Builder
		for l := 0; l < 6+i; l++ {
			b.WriteString("pub fn " + name + "_" + strings.Repeat("x", l+1) + "(v: u32) -> u32 { v + " + string(rune('0'+l%10)) + " }\n")
		}
		files["src/"+name+".rs"] = b.String()
	}
	files["src/copy_of_a.rs"] = files["src/a.rs"]
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTrainDirDryRunJSON(t *testing.T) {
	fakeHardware(t, 22)
	model := tinyModelDir(t, "llama")
	dir := filepath.Join(t.TempDir(), "crate")
	writeCrate(t, dir)
	code, out, errOut := run(t, "train", "--model", model, "--train-dir", dir, "--dry-run", "--json", "--val-split", "0.3",
		"--max-seq-len", "64", "--output", filepath.Join(t.TempDir(), "never-written"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Files      []string `json:"files"`
		TrainFiles []string `json:"train_files"`
		ValFiles   []string `json:"val_files"`
		Skipped    []struct {
			Path, Reason, Of string
		} `json:"skipped"`
		Duplicates int            `json:"duplicates"`
		Counts     map[string]int `json:"counts"`
		Examples   map[string]int `json:"examples"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, out)
	}
	rel := func(p string) string { return strings.TrimPrefix(p, dir+"/") }
	var files []string
	for _, f := range rep.Files {
		files = append(files, rel(f))
	}
	slices.Sort(files)
	want := []string{".gitignore", "src/a.rs", "src/b.rs", "src/c.rs", "src/d.rs", "src/e.rs", "src/f.rs", "src/g.rs", "src/h.rs", "src/i.rs", "src/j.rs"}
	if !slices.Equal(files, want) {
		t.Errorf("files %q, want %q", files, want)
	}
	why := map[string]string{}
	for _, s := range rep.Skipped {
		why[rel(s.Path)] = s.Reason
	}
	for p, w := range map[string]string{"debug.log": "gitignored", "build/": "gitignored", "vendor/": "vendored", "Cargo.lock": "lock file",
		"src/gen.rs": "generated", "assets/logo.bin": "binary", "src/copy_of_a.rs": "exact duplicate"} {
		if why[p] != w {
			t.Errorf("%s skipped as %q, want %q", p, why[p], w)
		}
	}
	if rep.Duplicates != 1 || rep.Counts["gitignored"] != 2 || rep.Counts["taken"] != len(want) {
		t.Errorf("duplicates %d, counts %v", rep.Duplicates, rep.Counts)
	}
	// 30% of 11 files held out, whole files: no file on both sides.
	if len(rep.ValFiles) != 3 || len(rep.TrainFiles) != 8 {
		t.Errorf("split %d/%d files, want 8/3", len(rep.TrainFiles), len(rep.ValFiles))
	}
	for _, v := range rep.ValFiles {
		if slices.Contains(rep.TrainFiles, v) {
			t.Errorf("%s on both sides", v)
		}
	}
	// src/j.rs is 15 lines of ~20 tokens: longer than --max-seq-len 64, so cut.
	if rep.Examples["train"]+rep.Examples["val"] <= len(want) {
		t.Errorf("examples %v: long files were not cut", rep.Examples)
	}
	if !strings.Contains(errOut, "11 files taken") || !strings.Contains(errOut, "gitignored 2") {
		t.Errorf("stderr report:\n%s", errOut)
	}

	// The listing as text, and the same split with the same seed.
	code, out, errOut = run(t, "train", "--model", model, "--train-dir", dir, "--dry-run", "--val-split", "0.3", "--max-seq-len", "64")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, s := range []string{"training files (8):", "validation files (3):", "src/copy_of_a.rs: exact duplicate of " + dir + "/src/a.rs", "vendor/: vendored", "dry run: stopped before loading the weights"} {
		if !strings.Contains(out, s) {
			t.Errorf("dry-run listing lacks %q:\n%s", s, out)
		}
	}
	for _, v := range rep.ValFiles {
		if !strings.Contains(out[strings.Index(out, "validation files"):], v) {
			t.Errorf("text listing holds out other files than JSON (%s)", v)
		}
	}
}

func TestTrainDirValDirAndErrors(t *testing.T) {
	fakeHardware(t, 22)
	model := tinyModelDir(t, "llama")
	dir := filepath.Join(t.TempDir(), "crate")
	writeCrate(t, dir)
	val := filepath.Join(t.TempDir(), "held")
	if err := os.MkdirAll(val, 0o755); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "src/a.rs"))
	for name, text := range map[string][]byte{"dup.rs": a, "new.rs": []byte("fn fresh(a: u8) -> u8 { a * 2 }\n")} {
		if err := os.WriteFile(filepath.Join(val, name), text, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := run(t, "train", "--model", model, "--train-dir", dir, "--val-dir", val, "--lang", "rust", "--dry-run", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		ValFiles []string `json:"val_files"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	// The held-out copy of a training file is dropped: it would measure memory.
	if want := []string{val + "/new.rs"}; !slices.Equal(rep.ValFiles, want) {
		t.Errorf("val_files %q, want %q", rep.ValFiles, want)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--train-dir", dir, "--json"}, "--json goes with --dry-run"},
		{[]string{"--train-dir", dir, "--lang", "cobol", "--dry-run"}, `unknown language "cobol"`},
		{[]string{"--train-dir", filepath.Join(dir, "nope"), "--dry-run"}, "--train-dir"},
		{[]string{"--train-dir", dir, "--include", "*.py", "--dry-run"}, "no files to train on"},
		{[]string{"--train-dir", dir, "--val-dir", filepath.Join(dir, "src"), "--dry-run"}, "no files left to validate on"},
	} {
		code, _, errOut := run(t, append([]string{"train", "--model", model}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestTrainDirRevision(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	fakeHardware(t, 22)
	model := tinyModelDir(t, "llama")
	dir := filepath.Join(t.TempDir(), "crate")
	writeCrate(t, dir)
	g := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@e")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %q: %v\n%s", args, err, out)
		}
	}
	g("init", "-q")
	g("add", "src/a.rs", "src/b.rs")
	g("commit", "-q", "-m", "two files")
	// Uncommitted work is not trained on when a revision is named.
	code, out, errOut := run(t, "train", "--model", model, "--train-dir", dir+"@HEAD", "--val-split", "0", "--dry-run", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Files []string `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if want := []string{dir + "@HEAD/src/a.rs", dir + "@HEAD/src/b.rs"}; !slices.Equal(rep.Files, want) {
		t.Errorf("files %q, want %q", rep.Files, want)
	}
	if code, _, errOut := run(t, "train", "--model", model, "--train-dir", dir+"@no-such-rev", "--dry-run"); code != 2 || !strings.Contains(errOut, `unknown revision "no-such-rev"`) {
		t.Errorf("unknown revision: exit %d, %s", code, errOut)
	}
}

// Training on a tree runs end to end: the files become examples, validation files
// are measured, the adapter is written.
func TestTrainDirEndToEnd(t *testing.T) {
	fakeHardware(t, 22)
	model := tinyModelDir(t, "llama")
	dir := filepath.Join(t.TempDir(), "crate")
	writeCrate(t, dir)
	outDir := filepath.Join(t.TempDir(), "out")
	code, out, errOut := run(t, "train", "--model", model, "--train-dir", dir, "--val-split", "0.3", "--max-seq-len", "64",
		"--max-steps", "3", "--batch-size", "2", "--grad-accum", "1", "--eval-steps", "3", "--output", outDir, "--quantization", "none")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	if !strings.Contains(out, "validation loss:") || !strings.Contains(errOut, "files taken") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
	card, err := os.ReadFile(filepath.Join(outDir, "README.md"))
	if err != nil || !strings.Contains(string(card), "--train-dir "+dir) || !strings.Contains(string(card), "by file") {
		t.Errorf("model card (%v):\n%s", err, card)
	}
	if _, err := os.Stat(filepath.Join(outDir, "adapter_model.safetensors")); err != nil {
		t.Error(err)
	}
}

func TestEvalDataDir(t *testing.T) {
	fakeHardware(t, 22)
	model := tinyModelDir(t, "llama")
	dir := filepath.Join(t.TempDir(), "crate")
	writeCrate(t, dir)
	code, out, errOut := run(t, "eval", "--model", model, "--data-dir", dir, "--lang", "rust", "--max-seq-len", "64", "--json", "--quantization", "none")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res struct {
		Loss   float64 `json:"loss"`
		Tokens int     `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Tokens == 0 || !(res.Loss > 0) {
		t.Errorf("eval --data-dir: %v %+v\n%s", err, res, out)
	}
	if !strings.Contains(errOut, "10 files taken") {
		t.Errorf("stderr: %s", errOut)
	}
	for _, args := range [][]string{{"--data", "x.jsonl", "--data-dir", dir}, {}, {"--data", "x.jsonl", "--lang", "rust"}} {
		if code, _, errOut := run(t, append([]string{"eval", "--model", model}, args...)...); code != 2 {
			t.Errorf("%q: exit %d (%s), want 2", args, code, errOut)
		}
	}
}

// quickstart --train-dir trains the tiny model on a tree's Go files (tests left out).
func TestQuickstartTrainDir(t *testing.T) {
	fakeHardware(t, 22)
	src := t.TempDir()
	for i := 0; i < 5; i++ {
		text := "package demo\n\n// F" + strconv.Itoa(i) + " adds.\nfunc F" + strconv.Itoa(i) + "(a, b int) int { return a + b + " + strconv.Itoa(i) + " }\n"
		if err := os.WriteFile(filepath.Join(src, "f"+strconv.Itoa(i)+".go"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "f_test.go"), []byte("package demo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "quickstart", "--dir", filepath.Join(t.TempDir(), "qs"), "--train-dir", src)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "5 files taken, 1 skipped: excluded 1") || !strings.Contains(out, "validation loss:") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
}

// A tokenizer with Qwen2.5-Coder's repository tokens gets its format; the dry run
// shows the document as the model sees it, and the fill-in-the-middle examples.
func TestTrainDirQwenRepoFormat(t *testing.T) {
	fakeHardware(t, 22)
	model := filepath.Join(t.TempDir(), "model")
	if err := tinymodel.Write(model, tinymodel.Options{Arch: "qwen2", HiddenSize: 32, IntermediateSize: 48, NumLayers: 2,
		NumHeads: 4, NumKVHeads: 2, Tied: true, Seed: 5, TokenizerDir: sharedTokenizer(t, "qwen3")}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "my-crate")
	if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "src", "lib.rs"), []byte("fn a() {\n    1\n}\n\nfn b() {\n    2\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Header      string         `json:"header_format"`
		Sample      string         `json:"sample"`
		FIMExamples int            `json:"fim_examples"`
		Examples    map[string]int `json:"examples"`
	}
	for _, fim := range []string{"0", "1"} {
		code, out, errOut := run(t, "train", "--model", model, "--train-dir", dir, "--val-split", "0", "--fim-rate", fim, "--dry-run", "--json")
		if code != 0 {
			t.Fatalf("--fim-rate %s: exit %d: %s", fim, code, errOut)
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		head := "<|repo_name|>my-crate\n<|file_sep|>src/lib.rs\n"
		if !strings.Contains(rep.Header, "qwen2.5-coder") || !strings.HasPrefix(rep.Sample, head) {
			t.Errorf("--fim-rate %s: header %q, sample %q", fim, rep.Header, rep.Sample)
		}
		body := strings.TrimPrefix(rep.Sample, head)
		if fim == "0" && (rep.FIMExamples != 0 || !strings.HasPrefix(body, "fn a() {\n")) {
			t.Errorf("plain document: %d FIM, body %q", rep.FIMExamples, body)
		}
		// FIM cuts only the text: the header stays in front.
		if fim == "1" && (rep.FIMExamples != rep.Examples["train"] || !strings.HasPrefix(body, "<|fim_prefix|>")) {
			t.Errorf("FIM: %d of %d examples, body %q", rep.FIMExamples, rep.Examples["train"], body)
		}
	}
}

// BiDoRA on a source tree fits the magnitudes on whole files the direction never saw:
// the outer split is a share of the files (stderr says so), and sourceFile groups a
// file's chunks.
func TestTrainDirBiDoRASplitsByFile(t *testing.T) {
	fakeHardware(t, 22)
	model := tinyModelDir(t, "llama")
	dir := filepath.Join(t.TempDir(), "crate")
	writeCrate(t, dir)
	code, _, errOut := run(t, "train", "--model", model, "--train-dir", dir, "--val-split", "0", "--max-seq-len", "32",
		"--method", "bidora", "--outer-split", "0.3", "--max-steps", "1", "--batch-size", "2", "--grad-accum", "1",
		"--output", filepath.Join(t.TempDir(), "out"), "--quantization", "none")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "source files (whole files)") {
		t.Errorf("stderr does not report a split by file:\n%s", errOut)
	}
	for src, want := range map[string]string{
		"src/a.rs:1-40": "src/a.rs", "dir:x/b.rs:41-80": "dir:x/b.rs", "train.jsonl:12": "train.jsonl:12", "data.parquet:row 7": "data.parquet:row 7",
	} {
		if got := sourceFile(&dataset.Example{Source: src}); got != want {
			t.Errorf("sourceFile(%q) = %q, want %q", src, got, want)
		}
	}
}
