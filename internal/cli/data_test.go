package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/tokenizer"
)

func writeData(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A pre-tokenised row with an id the model cannot embed is a bad row named by
// file:line when the data is read: skipped (and reported), or fatal with --strict.
// It used to pass loading and abort training steps later with no file:line.
func TestTrainOutOfVocabRow(t *testing.T) {
	fakeHardware(t, 22)
	modelDir := tinyModelDir(t, "llama")
	mc, err := modelcfg.Load(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	rows := []string{`{"input_ids":[10,11,12,13]}`, fmt.Sprintf(`{"input_ids":[10,11,%d]}`, mc.VocabSize),
		`{"input_ids":[14,15,16,17]}`, `{"input_ids":[18,19,20,21]}`}
	data := writeData(t, "rows.jsonl", strings.Join(rows, "\n")+"\n")
	want := fmt.Sprintf(`rows.jsonl:2: "input_ids"[2] = %d is outside the vocabulary [0, %d) of the model`, mc.VocabSize, mc.VocabSize)
	args := []string{"train", "--model", modelDir, "--train-file", data, "--val-split", "0", "--max-steps", "6",
		"--batch-size", "1", "--grad-accum", "1", "--max-seq-len", "16", "--output", filepath.Join(t.TempDir(), "out")}
	code, _, stderr := run(t, args...)
	if code != ExitOK || !strings.Contains(stderr, "skipped "+data[:len(data)-len("rows.jsonl")]+want) || !strings.Contains(stderr, "3 rows, 1 skipped") {
		t.Fatalf("exit %d, stderr:\n%s\nwant the row skipped: %s", code, stderr, want)
	}
	code, _, stderr = run(t, append(args, "--strict", "--output", filepath.Join(t.TempDir(), "out2"))...)
	if code != ExitUsage || !strings.Contains(stderr, want) {
		t.Fatalf("--strict: exit %d, stderr:\n%s\nwant exit 2 naming %s", code, stderr, want)
	}
}

// train reads every format --help promises, chosen by extension.
func TestTrainDataFormats(t *testing.T) {
	fakeHardware(t, 22)
	modelDir := tinyModelDir(t, "qwen2")
	for _, f := range []struct{ name, content, report string }{
		{"d.json", `[{"prompt":"cube","completion":"cube(10);"},` + "\n" + `{"text":"sphere(5);"}]`, "2 rows"},
		{"d.csv", "\uFEFFprompt,completion\ncube,cube(10);\n\"ball, big\",sphere(50);\n", "2 rows"},
		{"d.tsv", "instruction\toutput\ncube\tcube(10);\n", "1 rows"},
		{"d.txt", "module gear() {\n  cylinder(r=5, h=2);\n}\n", "1 rows"},
		{"d.scad", "cube(10);\n", "1 rows"},
		{"bom.jsonl", "\uFEFF" + `{"text":"cube(10);"}` + "\n", "1 rows"},
	} {
		t.Run(f.name, func(t *testing.T) {
			data := writeData(t, f.name, f.content)
			code, stdout, stderr := run(t, "train", "--model", modelDir, "--train-file", data, "--val-split", "0", "--max-steps", "1",
				"--batch-size", "1", "--grad-accum", "1", "--max-seq-len", "32", "--output", filepath.Join(t.TempDir(), "out"))
			if code != ExitOK || !strings.Contains(stderr, "data: "+data+": "+f.report) {
				t.Fatalf("exit %d, want %q\n%s\n%s", code, f.report, stdout, stderr)
			}
		})
	}
}

// Training and generation resolve the special tokens by one rule: the ids that end a
// training response are the ids generation stops at.
func TestSpecialTokensAgree(t *testing.T) {
	for _, arch := range []string{"qwen2", "llama"} {
		dir := tinyModelDir(t, arch)
		mc, err := modelcfg.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		pipe, err := newTextPipeline(dir, mc, "auto", false, 64)
		if err != nil {
			t.Fatal(err)
		}
		opts := &generateOptions{Model: dir, Quantization: "none", Chat: true, MaxNewTokens: 4, changed: func(string) bool { return false }}
		g, err := loadGenerator(context.Background(), &IO{Err: &strings.Builder{}}, opts, dir)
		if err != nil {
			t.Fatal(err)
		}
		g.m.Close()
		// The tiny tokenizer: <|endoftext|> 303, <|im_start|> 304, <|im_end|> 305 (eos_token and eos_token_id).
		want := tokenizer.Special{EOS: 305, EndOfTurn: []int{303, 305}}
		if pipe.special.EOS != want.EOS || !slices.Equal(pipe.special.EndOfTurn, want.EndOfTurn) || len(pipe.special.BOS) != 0 {
			t.Errorf("%s: training special tokens %+v, want %+v", arch, pipe.special, want)
		}
		if !slices.Equal(g.eos, pipe.special.EndOfTurn) || !slices.Equal(g.special.BOS, pipe.special.BOS) {
			t.Errorf("%s: generation stops at %v (BOS %v), training ends turns with %v (BOS %v)", arch, g.eos, g.special.BOS, pipe.special.EndOfTurn, pipe.special.BOS)
		}
	}
}

// eval reads the formats train reads, and bounds its reads.
func TestEvalDataFormats(t *testing.T) {
	fakeHardware(t, 22)
	modelDir := tinyModelDir(t, "qwen2")
	var losses []string
	for _, f := range []struct{ name, content string }{
		{"d.jsonl", `{"prompt":"cube","completion":"cube(10);"}` + "\n" + `{"text":"sphere(5);"}` + "\n"},
		{"d.json", `[{"prompt":"cube","completion":"cube(10);"}, {"text":"sphere(5);"}]`},
		{"d.csv", "prompt,completion,text\ncube,cube(10);,\n,,sphere(5);\n"},
	} {
		code, stdout, stderr := run(t, "eval", "--model", modelDir, "--data", writeData(t, f.name, f.content), "--json")
		if code != ExitOK {
			t.Fatalf("%s: exit %d\n%s", f.name, code, stderr)
		}
		losses = append(losses, stdout)
	}
	if losses[1] != losses[0] || losses[2] != losses[0] {
		t.Errorf("the same rows in JSONL, JSON and CSV give %q", losses)
	}
	long := writeData(t, "long.jsonl", `{"text":"a"}`+"\n"+`{"text":"`+strings.Repeat("b", 2000)+`"}`+"\n")
	for _, c := range []struct {
		data, want string
		code       int
	}{
		{long, long + ":2: line longer than the limit of 1 KiB (raise it with --max-line-bytes)", ExitError},
		{"/dev/zero", "/dev/zero:1: text file longer than the limit of 1 KiB (raise it with --max-line-bytes)", ExitError},
	} {
		if _, err := os.Stat(c.data); err != nil {
			continue // no /dev/zero here
		}
		code, _, stderr := run(t, "eval", "--model", modelDir, "--data", c.data, "--max-line-bytes", "1024")
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want %q", c.data, code, stderr, c.want)
		}
	}
	if code, _, stderr := run(t, "eval", "--model", modelDir, "--data", long, "--max-line-bytes", "-1"); code != ExitUsage || !strings.Contains(stderr, "--max-line-bytes") {
		t.Errorf("--max-line-bytes -1: exit %d, %s", code, stderr)
	}
}

// tokenize --jsonl bounds its lines and skips a byte order mark.
func TestTokenizeJSONLBounded(t *testing.T) {
	qwen := sharedTokenizer(t, "qwen3")
	if _, err := os.Stat("/dev/zero"); err == nil {
		code, _, stderr := runCLI(t, "", "tokenize", "--tokenizer", qwen, "--jsonl", "/dev/zero", "--max-line-bytes", "4096")
		if code != ExitError || !strings.Contains(stderr, "/dev/zero:1: line longer than the limit of 4 KiB (raise it with --max-line-bytes)") {
			t.Fatalf("/dev/zero: exit %d, %q", code, stderr)
		}
	}
	code, out, stderr := runCLI(t, "\uFEFF"+`{"text":"Hello world"}`+"\n", "tokenize", "--tokenizer", qwen, "--jsonl", "-")
	if code != ExitOK || out != `{"ids":[9707,1879]}`+"\n" {
		t.Fatalf("BOM: exit %d, %q %q", code, out, stderr)
	}
}
