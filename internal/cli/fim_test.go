package cli

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bidora/bidora/config"
	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/fim"
	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/tokenizer"
)

// Qwen2.5-Coder's FIM ids, as the shared qwen3 tokenizer has them.
const (
	qwenFIMPrefix = 151659
	qwenFIMMiddle = 151660
	qwenFIMSuffix = 151661
	qwenEndOfText = 151643
)

// fimModelDir is a random tiny qwen2 model with the shared qwen3 tokenizer (FIM tokens).
func fimModelDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := tinymodel.Write(dir, tinymodel.Options{Arch: "qwen2", HiddenSize: 32, IntermediateSize: 48, NumLayers: 2,
		NumHeads: 4, NumKVHeads: 2, Tied: true, Seed: 5, TokenizerDir: sharedTokenizer(t, "qwen3")}); err != nil {
		t.Fatal(err)
	}
	return dir
}

const fimDoc = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"

// The training hook: --fim-rate 1 makes every text row a FIM example, seeded by row
// index; masking follows --fim-loss; other row kinds are left alone.
func TestFIMTrainingExamples(t *testing.T) {
	dir := fimModelDir(t)
	mc, err := modelcfg.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	rows := []dataset.Row{
		{Kind: dataset.KindText, Text: fimDoc, Source: "a:1"},
		{Kind: dataset.KindCompletion, Prompt: "x", Completion: "y", Source: "a:2"},
		{Kind: dataset.KindText, Header: "<|repo_name|>r\n<|file_sep|>m.py\n", Text: "import os\nprint(os.sep)\n", Source: "a:3"},
	}
	for _, loss := range []string{"middle", "all"} {
		pipe, err := newTextPipeline(dir, mc, "plain", false, 256)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &config.Train{FIMRate: 1, FIMMode: "psm", FIMLoss: loss, Seed: 9, MaxSeqLen: 256}
		if err := pipe.enableFIM(cfg, mc); err != nil {
			t.Fatal(err)
		}
		rep := &dataReport{}
		exs, err := pipe.encodeRows(context.Background(), rows, true, rep)
		if err != nil {
			t.Fatal(err)
		}
		if len(exs) != 3 || rep.FIM != 2 {
			t.Fatalf("%d examples, %d FIM; want 3 and 2", len(exs), rep.FIM)
		}
		var buf strings.Builder
		rep.print(&buf, "d.jsonl")
		if want := "2 as fill-in-the-middle (qwen2.5-coder tokens, psm, loss on " + loss + ")"; !strings.Contains(buf.String(), want) {
			t.Fatalf("report %q lacks %q", buf.String(), want)
		}
		for _, i := range []int{0, 2} {
			ex := exs[i]
			ids := ex.InputIDs
			mid := slices.Index(ids, qwenFIMMiddle)
			p, s := slices.Index(ids, qwenFIMPrefix), slices.Index(ids, qwenFIMSuffix)
			if p < 0 || s < p || mid < s || ids[len(ids)-1] != qwenEndOfText {
				t.Fatalf("row %d: ids %v are not <|fim_prefix|> … <|fim_suffix|> … <|fim_middle|> … <|endoftext|>", i, ids)
			}
			if i == 2 && p != 7 { // the header's 7 tokens come first, uncut
				t.Fatalf("row 2: <|fim_prefix|> at %d, want after the 7 header tokens", p)
			}
			for j, l := range ex.Labels {
				masked := l == dataset.IgnoreIndex
				if wantMasked := loss == "middle" && j <= mid; masked != wantMasked || (!masked && l != ids[j]) {
					t.Fatalf("row %d loss %s: label %d = %d (ids %v)", i, loss, j, l, ids)
				}
			}
			// The same row index and seed cut the same way: the text between the
			// sentinels decodes to the seeded split.
			r := rand.New(rand.NewPCG(9^fimStream, uint64(i)))
			r.Float64() // the draw that picked the row comes first
			pr, md, sf := fim.Split(rows[i].Text, r)
			dec := func(a, b int) string { return pipe.tok.Decode(toInts(ids[a:b]), false) }
			if dec(p+1, s) != pr || dec(s+1, mid) != sf || dec(mid+1, len(ids)-1) != md {
				t.Fatalf("row %d: parts %q %q %q, want %q %q %q", i, dec(p+1, s), dec(s+1, mid), dec(mid+1, len(ids)-1), pr, sf, md)
			}
		}
		if exs[1].InputIDs[0] == qwenFIMPrefix {
			t.Fatal("a completion row became FIM")
		}
	}
}

func toInts(v []int32) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

// Models without FIM tokens: each FIM flag fails with exit 2 naming itself.
func TestFIMNeedsFIMTokens(t *testing.T) {
	fakeHardware(t, 22)
	dir := tinyModelDir(t, "qwen2") // the built-in tokenizer has no FIM tokens
	data := writeData(t, "d.jsonl", `{"text":"a\nb\n"}`+"\n")
	pre := writeData(t, "pre.txt", "a\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "--model", dir, "--train-file", data, "--fim-rate", "0.5", "--output", filepath.Join(t.TempDir(), "o")}, "--fim-rate: the tokenizer has no fill-in-the-middle tokens"},
		{[]string{"generate", "--model", dir, "--prefix-file", pre}, "--prefix-file: the tokenizer has no fill-in-the-middle tokens"},
		{[]string{"generate", "--model", dir, "--fim", "--prompt", "a<FILL>b"}, "--fim: the tokenizer has no fill-in-the-middle tokens"},
		{[]string{"eval", "--model", dir, "--data", data, "--fim"}, "--fim: the tokenizer has no fill-in-the-middle tokens"},
	} {
		code, _, stderr := run(t, c.args...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 with %q", c.args[:3], code, stderr, c.want)
		}
	}
}

func TestFIMFlagErrors(t *testing.T) {
	dir := fimModelDir(t)
	pre := writeData(t, "pre.txt", "a\n")
	data := writeData(t, "d.jsonl", `{"text":"a\nb\n"}`+"\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"generate", "--model", dir, "--fim"}, "--fim needs --prompt with one <FILL> marker"},
		{[]string{"generate", "--model", dir, "--fim", "--prompt", "no marker"}, "exactly one <FILL> marker, it has 0"},
		{[]string{"generate", "--model", dir, "--fim", "--prompt", "<FILL><FILL>"}, "exactly one <FILL> marker, it has 2"},
		{[]string{"generate", "--model", dir, "--prefix-file", pre, "--chat"}, "do not combine with --chat"},
		{[]string{"generate", "--model", dir, "--prefix-file", pre, "--prompt", "x"}, "--prompt does not combine with --prefix-file"},
		{[]string{"generate", "--model", dir, "--prefix-file", pre, "--fim", "--prompt", "<FILL>"}, "use one or the other"},
		{[]string{"generate", "--model", dir, "--prefix-file", filepath.Join(t.TempDir(), "absent.txt")}, "--prefix-file: open"},
		{[]string{"generate", "--model", dir, "--suffix-file", pre, "--fim-mode", "mps"}, "--fim-mode must be psm or spm"},
		{[]string{"eval", "--model", dir, "--data", data, "--fim", "--fim-spans", "0"}, "--fim-spans must be at least 1"},
		{[]string{"eval", "--model", dir, "--data", data, "--fim", "--fim-max-new-tokens", "0"}, "--fim-max-new-tokens must be at least 1"},
	} {
		code, _, stderr := run(t, c.args...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 with %q", c.args[2:], code, stderr, c.want)
		}
	}
}

// End to end on a random tiny model with the qwen3 tokenizer: train with --fim-rate 1
// (the data report counts the FIM examples), infill with --prefix-file/--suffix-file
// (only the middle comes out, no sentinel), eval --fim prints both metrics.
func TestFIMEndToEndQwen(t *testing.T) {
	fakeHardware(t, 22)
	t.Setenv("HF_HUB_OFFLINE", "1")
	dir := fimModelDir(t)
	data := writeData(t, "d.jsonl", `{"text":`+jsonString(fimDoc)+`}`+"\n"+`{"text":"x = 1\ny = 2\n"}`+"\n")
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := run(t, "train", "--model", dir, "--train-file", data, "--val-split", "0", "--fim-rate", "1",
		"--fim-mode", "spm", "--max-steps", "2", "--batch-size", "1", "--grad-accum", "1", "--max-seq-len", "64", "--output", out)
	if code != ExitOK || !strings.Contains(stderr, "2 rows, 2 as fill-in-the-middle (qwen2.5-coder tokens, spm, loss on all)") {
		t.Fatalf("train: exit %d; want the report to count 2 FIM examples\n%s\n%s", code, stdout, stderr)
	}
	card, err := os.ReadFile(filepath.Join(out, "README.md"))
	if err != nil || !strings.Contains(string(card), "- fill-in-the-middle: 1 of the text documents (qwen2.5-coder tokens, spm, loss on all)") {
		t.Fatalf("the model card does not show the FIM settings (%v):\n%s", err, card)
	}
	pre, suf := writeData(t, "pre.txt", "def add(a, b):\n"), writeData(t, "suf.txt", "\n")
	code, stdout, stderr = run(t, "generate", "--model", dir, "--adapter", out, "--prefix-file", pre, "--suffix-file", suf,
		"--fim-mode", "spm", "--max-new-tokens", "5", "--json")
	res := decodeGenJSON(t, stdout)
	if code != ExitOK || len(res) != 1 || res[0].PromptTokens != 10 { // <|fim_prefix|> <|fim_suffix|> \n <|fim_middle|> def ␣add (a , ␣b ):\n
		t.Fatalf("generate: exit %d %+v\n%s", code, res, stderr)
	}
	if strings.Contains(res[0].Text, "<|fim") {
		t.Fatalf("the middle holds a sentinel: %q", res[0].Text)
	}
	code, stdout, stderr = run(t, "eval", "--model", dir, "--adapter", out, "--data", data, "--fim", "--fim-spans", "3", "--fim-max-new-tokens", "6")
	if code != ExitOK || !strings.HasPrefix(stdout, "loss ") || !strings.Contains(stdout, "fim line   exact match ") ||
		!strings.Contains(stdout, "fim block  exact match ") || !strings.Contains(stdout, "edit similarity") {
		t.Fatalf("eval --fim: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "eval", "--model", dir, "--data", data, "--fim", "--fim-spans", "2", "--fim-max-new-tokens", "4", "--json")
	var er evalResult
	if code != ExitOK || json.Unmarshal([]byte(stdout), &er) != nil || er.FIM == nil || er.FIM.Line.Spans != 2 || er.FIM.Block.Spans != 2 ||
		er.FIM.Line.EditSimilarity < 0 || er.FIM.Line.EditSimilarity > 1 || er.Loss <= 0 {
		t.Fatalf("eval --fim --json: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// End to end with stopping proved: a tiny model with the CodeLlama-style fixture
// vocabulary (small enough for a LoRA to fit), trained with --fim-rate 1 on one
// document (its one seeded FIM example every step), then asked to infill that
// example's prefix and suffix. Generation must write the middle, stop at ▁<EOT> (the
// end-of-middle token, which is not this model's EOS </s>) and print only the middle,
// leading spaces kept; eval --fim then scores the memorised spans.
// stopDoc's FIM example under --seed 4 has the middle "    return a + b\n\ndef mul(x, ":
// leading spaces (which CodeLlama's decoder would drop) and no long run of one token.
// With these settings the memorised middle came out exactly for each of 17 model seeds
// tried (5–21), so the check does not hang on one lucky initialisation.
const stopDoc = "def add(a, b):\n    return a + b\n\ndef mul(x, y):\n    return x * y\n"

func TestFIMEndToEndStopsAtEndOfMiddle(t *testing.T) {
	fakeHardware(t, 22)
	t.Setenv("HF_HUB_OFFLINE", "1")
	tokDir := t.TempDir()
	tj, err := os.ReadFile(filepath.Join("..", "..", "fim", "testdata", "codellama.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(tokDir, "tokenizer.json"), string(tj))
	writeFile(t, filepath.Join(tokDir, "tokenizer_config.json"), `{"bos_token":"<s>","eos_token":"</s>"}`)
	dir := filepath.Join(t.TempDir(), "model")
	if err := tinymodel.Write(dir, tinymodel.Options{Arch: "llama", HiddenSize: 32, IntermediateSize: 48, NumLayers: 2,
		NumHeads: 4, NumKVHeads: 2, Tied: true, Seed: 5, TokenizerDir: tokDir}); err != nil {
		t.Fatal(err)
	}
	// HF's init (normal(0, 0.02)) bounds the tied logits of a 32-wide model to about
	// ±0.6, too flat for greedy decoding to follow what a LoRA learns: scale the
	// embedding.
	scaleTensor(t, filepath.Join(dir, "model.safetensors"), "model.embed_tokens.weight", 20)
	data := writeData(t, "d.jsonl", `{"text":`+jsonString(stopDoc)+`}`+"\n")
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := run(t, "train", "--model", dir, "--train-file", data, "--val-split", "0", "--fim-rate", "1",
		"--fim-loss", "middle", "--max-steps", "500", "--lr", "5e-3", "--warmup-steps", "0", "--rank", "16", "--alpha", "32", "--dropout", "0",
		"--targets", "all-linear", "--batch-size", "1", "--grad-accum", "1", "--max-seq-len", "128", "--seed", "4", "--output", out)
	if code != ExitOK || !strings.Contains(stderr, "1 rows, 1 as fill-in-the-middle (codellama tokens, psm, loss on middle)") {
		t.Fatalf("train: exit %d\n%s\n%s", code, stdout, stderr)
	}
	r := rand.New(rand.NewPCG(4^fimStream, 0))
	r.Float64()
	prefix, middle, suffix := fim.Split(stopDoc, r)
	pre, suf := writeData(t, "pre.txt", prefix), writeData(t, "suf.txt", suffix)
	code, stdout, stderr = run(t, "generate", "--model", dir, "--adapter", out, "--prefix-file", pre, "--suffix-file", suf,
		"--max-new-tokens", "60", "--json")
	res := decodeGenJSON(t, stdout)
	if code != ExitOK || len(res) != 1 || res[0].StopReason != "eos" || res[0].Text != middle {
		t.Fatalf("generate: exit %d %+v; want the middle %q and stop eos\n%s\n%s", code, res, middle, stdout, stderr)
	}
	code, stdout, _ = run(t, "generate", "--model", dir, "--adapter", out, "--fim", "--prompt", prefix+"<FILL>"+suffix, "--max-new-tokens", "60")
	if code != ExitOK || stdout != middle {
		t.Fatalf("generate --fim: exit %d, output %q, want exactly %q", code, stdout, middle)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// scaleTensor multiplies an F32 tensor of a safetensors file by k in place.
func scaleTensor(t *testing.T, path, name string, k float32) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	var info struct {
		DType   string   `json:"dtype"`
		Offsets [2]int64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(hdr[name], &info); err != nil || info.DType != "F32" {
		t.Fatalf("%s: %s %v", name, info.DType, err)
	}
	data := b[8+n:]
	for o := info.Offsets[0]; o < info.Offsets[1]; o += 4 {
		v := math.Float32frombits(binary.LittleEndian.Uint32(data[o:]))
		binary.LittleEndian.PutUint32(data[o:], math.Float32bits(v*k))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// eval --fim trims a long context to the prompt budget: the prefix loses its start, the
// suffix its end, at line breaks, and what stays is next to the gap.
func TestFIMFitContext(t *testing.T) {
	tok, err := qwen3Tokenizer(t)
	if err != nil {
		t.Fatal(err)
	}
	v, err := fim.Detect(tok)
	if err != nil {
		t.Fatal(err)
	}
	b := fim.NewBuilder(tok, v, nil)
	var pre, suf strings.Builder
	for i := range 200 {
		pre.WriteString("let a" + string(rune('a'+i%26)) + " = 1; // é\n")
		suf.WriteString("let b" + string(rune('a'+i%26)) + " = 2; // 世\n")
	}
	task := fimTask{prefix: pre.String(), middle: "x", suffix: suf.String()}
	for _, budget := range []int{64, 300, 100000} {
		ids, err := fitContext(b, task, fim.PSM, budget)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) > budget {
			t.Fatalf("budget %d: %d prompt tokens", budget, len(ids))
		}
		p, s := slices.Index(ids, v.Suffix), slices.Index(ids, v.Middle)
		gotPre, gotSuf := tok.Decode(ids[1:p], false), tok.Decode(ids[p+1:s], false)
		if !strings.HasSuffix(task.prefix, gotPre) || !strings.HasPrefix(task.suffix, gotSuf) {
			t.Fatalf("budget %d: kept %q … %q, not the text next to the gap", budget, gotPre, gotSuf)
		}
		if budget == 100000 && (gotPre != task.prefix || gotSuf != task.suffix) {
			t.Fatal("a prompt within the budget was trimmed")
		}
		if budget == 64 && (gotPre == "" || gotSuf == "") {
			t.Fatalf("budget 64 kept %q and %q", gotPre, gotSuf)
		}
	}
}

func qwen3Tokenizer(t *testing.T) (*tokenizer.Tokenizer, error) {
	return tokenizer.Load(filepath.Join(sharedTokenizer(t, "qwen3"), "tokenizer.json"))
}
