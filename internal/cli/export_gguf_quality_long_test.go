//go:build long

package cli

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bidora/bidora/tokenizer"
)

// TestGGUFQuantQualityLlamaCpp measures, with llama.cpp, what Q8_0 and
// Q4_K_M cost against the F16 export of code14m on held-out text
// (tools/llamacpp/heldout.py, the first 384 tokens): the perplexity of each
// and the mean KL divergence of the next-token distributions from F16's,
// the numbers llama-perplexity --kl-divergence reports.
func TestGGUFQuantQualityLlamaCpp(t *testing.T) {
	dir := code14mDir(t)
	text, err := os.ReadFile(filepath.Join("..", "..", "tools", "llamacpp", "heldout.py"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := tok.ResolveSpecial(tokenizer.SpecialConfig{})
	ids := append(slices.Clone(sp.BOS), tok.Encode(string(text))...)
	ids = ids[:min(len(ids), 384)]
	f16 := exportGGUF(t, dir, "", "f16")
	for _, c := range []struct {
		dtype         string
		maxKL, maxPPL float64 // mean KL (nats); |Δ perplexity| / F16's
		minTop1       float64 // share of positions with F16's most likely token
	}{
		{"q8_0", 2e-3, 0.01, 0.97},
		{"q4_k_m", 1e-2, 0.03, 0.93},
	} {
		path := exportGGUF(t, dir, "", c.dtype)
		s := runLlamaCpp(t, map[string]any{"model": path, "score": ids, "reference": f16}).Score
		if s == nil {
			t.Fatalf("%s: check.mjs gave no score", c.dtype)
		}
		dppl := (s.PPL - s.RefPPL) / s.RefPPL
		t.Logf("%s: %d tokens, perplexity %.3f (f16 %.3f, %+.2f%%), KL mean %.3g max %.3g, top-1 agreement %.1f%%",
			c.dtype, s.Tokens, s.PPL, s.RefPPL, 100*dppl, s.KL, s.KLMax, 100*s.Top1)
		if s.KL > c.maxKL || math.Abs(dppl) > c.maxPPL || s.Top1 < c.minTop1 {
			t.Errorf("%s: KL %.3g (want ≤ %g), perplexity change %.2f%% (want within ±%g%%), top-1 %.3f (want ≥ %g)",
				c.dtype, s.KL, c.maxKL, 100*dppl, 100*c.maxPPL, s.Top1, c.minTop1)
		}
	}
}

// TestGGUFQuickstartLlamaCpp is the whole path a user takes: fine-tune
// code14m with quickstart, export it with the adapter folded in, and check
// that llama.cpp decodes the same 32 greedy tokens as bidora generate.
func TestGGUFQuickstartLlamaCpp(t *testing.T) {
	dir := code14mDir(t)
	work := filepath.Join(t.TempDir(), "qs")
	if code, stdout, stderr := runCLI(t, "", "quickstart", "--model", dir, "--epochs", "1", "--dir", work); code != 0 {
		t.Fatalf("quickstart exit %d: %s%s", code, stdout, stderr)
	}
	adapter := filepath.Join(work, "adapter")
	merged := exportGGUF(t, dir, adapter, "f32")
	modelfile, err := os.ReadFile(filepath.Join(filepath.Dir(merged), "Modelfile"))
	if err != nil {
		t.Fatalf("export wrote no Modelfile: %v", err)
	}
	if !strings.Contains(string(modelfile), "FROM ./"+filepath.Base(merged)) {
		t.Errorf("Modelfile does not load %s:\n%s", filepath.Base(merged), modelfile)
	}

	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := tok.ResolveSpecial(tokenizer.SpecialConfig{})
	prompt := "def area(radius):\n    return"
	ids := append(slices.Clone(sp.BOS), tok.Encode(prompt)...)
	res := runLlamaCpp(t, map[string]any{"model": merged, "prompt": ids, "generate": 32})
	greedy, text, gen := greedyAndGenerate(t, []string{"generate", "--model", dir, "--adapter", adapter, "--prompt", prompt,
		"--max-new-tokens", "32", "--temperature", "0", "--json"}, res.Greedy, tok, ids, sp.EndOfTurn)
	if gen.Tokens != len(greedy) || gen.Text != text {
		t.Errorf("greedy decoding differs:\nllama.cpp %d tokens %v = %q\nbidora    %d tokens %q (%s)", len(greedy), greedy, text, gen.Tokens, gen.Text, gen.StopReason)
	} else {
		t.Logf("quickstart adapter on code14m, exported f32: llama.cpp and bidora generate agree on %d greedy tokens: %q", len(greedy), text)
	}
}
