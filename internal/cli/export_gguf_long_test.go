//go:build long

package cli

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/tokenizer"
)

// llamaCppResult is what tools/llamacpp/check.mjs prints.
type llamaCppResult struct {
	Score    *llamaCppScore `json:"score"`
	Arch     string         `json:"arch"`
	Type     string         `json:"type"`
	AddBOS   bool           `json:"add_bos"`
	BOS      *int           `json:"bos"`
	EOS      *int           `json:"eos"`
	Tokens   [][]int        `json:"tokens"`
	LogProbs []*float64     `json:"logprobs"`
	Greedy   []int          `json:"greedy"`
}

// llamaCppScore is check.mjs's perplexity and KL divergence against a
// reference GGUF.
type llamaCppScore struct {
	Tokens int     `json:"tokens"`
	PPL    float64 `json:"ppl"`
	RefPPL float64 `json:"ref_ppl"`
	KL     float64 `json:"kl"`
	KLMax  float64 `json:"kl_max"`
	Top1   float64 `json:"top1"`
}

// runLlamaCpp runs llama.cpp (node-llama-cpp 3.21.1's prebuilt CPU build) on
// a GGUF file through tools/llamacpp/check.mjs; it skips when node or the
// package is not installed (CI installs both, so it never skips there).
func runLlamaCpp(t *testing.T, req map[string]any) *llamaCppResult {
	t.Helper()
	tool, err := filepath.Abs(filepath.Join("..", "..", "tools", "llamacpp"))
	if err != nil {
		t.Fatal(err)
	}
	skip := t.Skip
	if os.Getenv("BIDORA_REQUIRE_LLAMACPP") != "" {
		skip = t.Fatal // CI installs both: a missing one is a failure there
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node is not installed: install Node.js and run `npm ci` in tools/llamacpp to check GGUF exports with llama.cpp")
	}
	if _, err := os.Stat(filepath.Join(tool, "node_modules", "node-llama-cpp", "package.json")); err != nil {
		skip("node-llama-cpp is not installed: run `npm ci` in tools/llamacpp to check GGUF exports with llama.cpp")
	}
	data, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	reqPath := filepath.Join(t.TempDir(), "request.json")
	if err := os.WriteFile(reqPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(tool, "check.mjs"), reqPath)
	cmd.Dir = tool
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("llama.cpp check: %v\n%s", err, stderr.String())
	}
	var res llamaCppResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("llama.cpp check output: %v in %q", err, out)
	}
	return &res
}

// exportGGUF runs bidora export --format gguf.
func exportGGUF(t *testing.T, modelDir, adapter, dtype string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "model-"+dtype+".gguf")
	args := []string{"export", "--format", "gguf", "--model", modelDir, "--dtype", dtype, "--output", out}
	if adapter != "" {
		args = append(args, "--adapter", adapter)
	}
	if code, stdout, stderr := runCLI(t, "", args...); code != 0 {
		t.Fatalf("export exit %d: %s%s", code, stdout, stderr)
	}
	return out
}

// logitsDiff compares llama.cpp's log-probabilities with bidora's logits,
// both shifted to a maximum of 0 (log-softmax differs from the logits by a
// constant): the largest difference over the tokens whose probability is
// representable, relative to the largest |logit − max logit|.
func logitsDiff(t *testing.T, bidora []float32, lp []*float64) float64 {
	t.Helper()
	if len(lp) != len(bidora) {
		t.Fatalf("llama.cpp gives %d probabilities, bidora %d logits", len(lp), len(bidora))
	}
	bmax := float64(slices.Max(bidora))
	lmax := math.Inf(-1)
	for _, v := range lp {
		if v != nil {
			lmax = max(lmax, *v)
		}
	}
	var d, n float64
	used := 0
	for i, v := range lp {
		b := float64(bidora[i]) - bmax
		n = max(n, math.Abs(b))
		if v == nil || *v-lmax < -80 {
			continue
		}
		used++
		d = max(d, math.Abs(b-(*v-lmax)))
	}
	if used < len(lp)/2 {
		t.Fatalf("only %d of %d probabilities are usable", used, len(lp))
	}
	return d / n
}

var ggufTexts = []string{
	"def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
	"for (int i = 0; i < 10; ++i) { sum += a[i] * 3.14159; }",
	"Hello, world! How are you today?  Fine,   thanks.\n\n\tTabs and 12345 digits 2025-01-01.",
	"SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;",
	"Ünïcödé: naïve café, 日本語のテキスト, emoji 🙂 and symbols ∑∫√.",
	"  leading spaces and trailing spaces   ",
}

// ggufCase is a model to export and check against llama.cpp.
type ggufCase struct {
	name    string
	dir     string
	adapter string
	dora    bool
	chat    []string // texts with special tokens (chat turns)
	// nearTies: random weights of this width give the top two logits
	// within llama.cpp's and bidora's rounding of each other somewhere in
	// 32 steps, so greedy tokens are not compared (the logits are).
	nearTies bool
}

func TestGGUFExportLlamaCpp(t *testing.T) {
	var cases []ggufCase
	random := func(name string, o tinymodel.Options, tok string, chat []string) {
		dir := filepath.Join(t.TempDir(), name)
		o.TokenizerDir = sharedTokenizer(t, tok)
		if err := tinymodel.Write(dir, o); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, ggufCase{name: name, dir: dir, chat: chat, nearTies: o.HiddenSize >= 256})
	}
	random("llama-llama3", tinymodel.Options{Arch: "llama", HiddenSize: 64, NumHeads: 4, NumKVHeads: 2, Seed: 1,
		RopeTheta: 500000}, "llama3",
		[]string{"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWrite a loop.<|eot_id|>"})
	random("qwen2-qwen3", tinymodel.Options{Arch: "qwen2", HiddenSize: 64, NumHeads: 4, NumKVHeads: 2, Seed: 2}, "qwen3",
		[]string{"<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nsort a list<|im_end|>\n<|im_start|>assistant\n"})
	random("mistral-llama2", tinymodel.Options{Arch: "mistral", HiddenSize: 64, NumHeads: 4, NumKVHeads: 1, Seed: 3,
		SlidingWindow: 4096}, "llama2", nil)
	// Rows of 256 and 768: q4_k_m writes Q4_K and Q6_K (not only their
	// Q5_0/Q8_0 fallbacks, as for the 64-wide models).
	random("llama-256-llama2", tinymodel.Options{HiddenSize: 256, IntermediateSize: 768, NumHeads: 4, NumKVHeads: 2, Seed: 4,
		NumLayers: 3, Tied: true}, "llama2", nil)
	if dir := filepath.Join("..", "..", "..", "shared", "models", "code14m"); fileExists(filepath.Join(dir, "model.safetensors")) {
		cases = append(cases, ggufCase{name: "code14m", dir: dir})
	} else {
		t.Log("../shared/models/code14m absent: checking the random models only")
	}
	// Adapters folded in: DoRA on the Llama 3 model, LoRA on the Qwen2 and
	// Mistral ones (these are also loaded as GGUF LoRA adapters).
	for i, dora := range []bool{true, false, false} { // the first three cases
		c := cases[i]
		base, adapter := c.dir, writeGGUFTestAdapter(t, c.dir, dora)
		cases = append(cases, ggufCase{name: c.name + map[bool]string{true: "+dora", false: "+lora"}[dora], dir: base, adapter: adapter, dora: dora})
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := tokenizer.Load(c.dir)
			if err != nil {
				t.Fatal(err)
			}
			sp, _ := tok.ResolveSpecial(tokenizer.SpecialConfig{})
			prompt := "def add(a, b):\n    return"
			ids := append(slices.Clone(sp.BOS), tok.Encode(prompt)...)
			f32 := exportGGUF(t, c.dir, c.adapter, "f32")
			texts := append(slices.Clone(ggufTexts), c.chat...)
			res := runLlamaCpp(t, map[string]any{"model": f32, "texts": texts, "prompt": ids, "generate": 32})

			// (a) the tokenizer: llama.cpp's ids equal bidora's.
			if c.adapter == "" {
				for i, text := range texts {
					if want := tok.Encode(text); !slices.Equal(res.Tokens[i], want) {
						t.Errorf("text %q:\nllama.cpp %v\nbidora    %v", text, res.Tokens[i], want)
					}
				}
				if res.AddBOS != (len(sp.BOS) > 0) {
					t.Errorf("llama.cpp add_bos %v, bidora puts %v before a text", res.AddBOS, sp.BOS)
				}
			}

			// (b) the logits after the prompt.
			m, err := model.Load(c.dir, model.Options{F32Weights: true})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if c.adapter != "" {
				if err := m.LoadAdapter(c.adapter); err != nil {
					t.Fatal(err)
				}
			}
			ids32 := make([]int32, len(ids))
			for i, id := range ids {
				ids32[i] = int32(id)
			}
			all, err := m.Logits(context.Background(), &dataset.Batch{B: 1, T: len(ids), InputIDs: ids32, Labels: ids32})
			if err != nil {
				t.Fatal(err)
			}
			v := len(all) / len(ids)
			last := all[len(all)-v:]
			d := logitsDiff(t, last, res.LogProbs)
			t.Logf("F32: logits max-abs-normalised difference %.3g", d)
			if d > 1e-3 {
				t.Errorf("F32: llama.cpp's logits differ from bidora's by %.3g relative, want ≤ 1e-3", d)
			}

			// (c) greedy decoding, token for token, against bidora generate.
			args := []string{"generate", "--model", c.dir, "--prompt", prompt, "--max-new-tokens", "32", "--temperature", "0", "--json"}
			if c.adapter != "" {
				args = append(args, "--adapter", c.adapter)
			}
			greedy, text, gen := greedyAndGenerate(t, args, res.Greedy, tok, ids, sp.EndOfTurn)
			if c.nearTies {
				t.Logf("greedy (not compared: near-tied logits of random weights): llama.cpp %q, bidora %q", text, gen.Text)
			} else if gen.Tokens != len(greedy) || gen.Text != text {
				t.Errorf("greedy decoding differs:\nllama.cpp %d tokens %v = %q\nbidora    %d tokens %q (%s)", len(greedy), greedy, text, gen.Tokens, gen.Text, gen.StopReason)
			} else {
				t.Logf("greedy: %d tokens agree", len(greedy))
			}

			// A LoRA adapter exported as a GGUF LoRA adapter and applied by
			// llama.cpp on top of the base GGUF gives the merged model's
			// logits and greedy tokens.
			if c.adapter != "" && !c.dora {
				baseGGUF := exportGGUF(t, c.dir, "", "f32")
				lora := filepath.Join(t.TempDir(), "adapter.gguf")
				if code, stdout, stderr := runCLI(t, "", "export", "--format", "gguf-lora", "--adapter", c.adapter,
					"--base-model-config", c.dir, "--output", lora); code != 0 {
					t.Fatalf("export gguf-lora exit %d: %s%s", code, stdout, stderr)
				}
				r := runLlamaCpp(t, map[string]any{"model": baseGGUF, "lora": lora, "prompt": ids, "generate": 32})
				d := logitsDiff(t, last, r.LogProbs)
				t.Logf("base GGUF + GGUF LoRA: logits max-abs-normalised difference %.3g", d)
				if d > 1e-3 {
					t.Errorf("base GGUF + GGUF LoRA: logits differ from bidora's by %.3g relative, want ≤ 1e-3", d)
				}
				if !slices.Equal(r.Greedy, res.Greedy) {
					t.Errorf("base GGUF + GGUF LoRA greedy %v, merged GGUF %v", r.Greedy, res.Greedy)
				}
			}

			// Lower precisions: the logits within a looser tolerance.
			if c.adapter == "" {
				for _, dt := range []struct {
					name string
					tol  float64
				}{{"bf16", 3e-2}, {"q8_0", 3e-2}, {"q4_k_m", 1.5e-1}} {
					path := exportGGUF(t, c.dir, "", dt.name)
					r := runLlamaCpp(t, map[string]any{"model": path, "prompt": ids})
					d := logitsDiff(t, last, r.LogProbs)
					t.Logf("%s (llama.cpp: %s): logits max-abs-normalised difference %.3g", dt.name, r.Type, d)
					if dt.name == "q4_k_m" && !strings.Contains(r.Type, "Q4_K - Medium") {
						t.Errorf("llama.cpp describes the q4_k_m file as %q, want Q4_K - Medium", r.Type)
					}
					if d > dt.tol {
						t.Errorf("%s: llama.cpp's logits differ from bidora's f32 logits by %.3g relative, want ≤ %g", dt.name, d, dt.tol)
					}
				}
			}
		})
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// greedyAndGenerate runs bidora generate with args (which ask for --json) and returns
// llama.cpp's greedy continuation cut at the first end-of-turn token, its text as
// generate prints it (the decoded prompt and continuation less the decoded prompt:
// SentencePiece decoders drop a leading space only at the start of a text), and
// generate's result.
func greedyAndGenerate(t *testing.T, args []string, llamaGreedy []int, tok *tokenizer.Tokenizer, ids, endOfTurn []int) ([]int, string, generateResult) {
	t.Helper()
	code, stdout, stderr := runCLI(t, "", args...)
	if code != 0 {
		t.Fatalf("generate exit %d: %s", code, stderr)
	}
	var gen generateResult
	if err := json.Unmarshal([]byte(stdout), &gen); err != nil {
		t.Fatal(err)
	}
	greedy := llamaGreedy
	if i := slices.IndexFunc(greedy, func(id int) bool { return slices.Contains(endOfTurn, id) }); i >= 0 {
		greedy = greedy[:i]
	}
	text, _ := strings.CutPrefix(tok.Decode(append(slices.Clone(ids), greedy...), true), tok.Decode(ids, true))
	return greedy, text, gen
}
