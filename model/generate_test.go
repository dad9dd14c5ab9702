package model

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/quant"
	"github.com/bidora/bidora/safetensors"
	"github.com/bidora/bidora/sample"
	"github.com/bidora/bidora/tokenizer"
)

// fullLogits runs the full-sequence path on ids as one row.
func fullLogits(t testing.TB, m *Model, ids []int) []float32 {
	t.Helper()
	b := &dataset.Batch{B: 1, T: len(ids), InputIDs: make([]int32, len(ids)), Labels: make([]int32, len(ids))}
	for i, id := range ids {
		b.InputIDs[i], b.Labels[i] = int32(id), int32(id)
	}
	out, err := m.Logits(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertRowClose checks max|got−want| ≤ 1e-4·max|want| and that the argmax agrees.
func assertRowClose(t *testing.T, what string, got, want []float32) {
	t.Helper()
	var scale, worst float64
	for i, w := range want {
		scale = math.Max(scale, math.Abs(float64(w)))
		worst = math.Max(worst, math.Abs(float64(got[i]-w)))
	}
	if worst > 1e-4*scale || math.IsNaN(worst) {
		t.Errorf("%s: max abs difference %.3g exceeds 1e-4 × %.3g", what, worst, scale)
	}
	if a, b := sample.Argmax(got), sample.Argmax(want); a != b {
		t.Errorf("%s: argmax %d, full path %d", what, a, b)
	}
}

func writeTestModel(t *testing.T, o tinymodel.Options) *Model {
	t.Helper()
	dir := t.TempDir()
	if err := tinymodel.Write(dir, o); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func testIDs(n, vocab int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = (i*7919 + 11) % vocab
	}
	return ids
}

// checkCacheAgainstFull prefills prompt tokens (in chunks of chunk) and then feeds the
// rest one at a time, comparing every logits row with the full-sequence path.
func checkCacheAgainstFull(t *testing.T, m *Model, ids []int, prompt, chunk, capacity int) {
	t.Helper()
	want := fullLogits(t, m, ids)
	V := m.Config.VocabSize
	kc, err := m.NewKVCache(capacity)
	if err != nil {
		t.Fatal(err)
	}
	kc.chunk = min(kc.chunk, chunk)
	ctx := context.Background()
	got, err := m.Extend(ctx, kc, ids[:prompt])
	if err != nil {
		t.Fatal(err)
	}
	assertRowClose(t, "prefill", got, want[(prompt-1)*V:prompt*V])
	for i := prompt; i < len(ids); i++ {
		got, err := m.Extend(ctx, kc, ids[i:i+1])
		if err != nil {
			t.Fatal(err)
		}
		assertRowClose(t, "step "+string(rune('0'+i%10)), got, want[i*V:(i+1)*V])
	}
	if kc.Len() != len(ids) || !slices.Equal(kc.Tokens(), ids) {
		t.Errorf("cache holds %d tokens %v, want %v", kc.Len(), kc.Tokens(), ids)
	}
}

// Logits from the KV-cache path equal the full-sequence Logits at every step, for each
// architecture, with and without adapters, bf16 and f32 weights, whatever the chunking
// and even when the cache has to grow.
func TestExtendMatchesLogits(t *testing.T) {
	cases := []struct {
		name            string
		o               tinymodel.Options
		adapter         *AdapterConfig
		prompt, chunk   int
		capacity, total int
	}{
		{name: "llama bf16", o: tinymodel.Options{Arch: "llama", DType: safetensors.BF16, NumLayers: 3, Seed: 1}, prompt: 7, chunk: 128, total: 20},
		{name: "qwen2 biases, chunked prefill", o: tinymodel.Options{Arch: "qwen2", DType: safetensors.BF16, Seed: 2}, prompt: 23, chunk: 5, total: 30},
		{name: "mistral f32, MHA", o: tinymodel.Options{Arch: "mistral", NumHeads: 4, NumKVHeads: 4, Seed: 3}, prompt: 1, chunk: 128, total: 12},
		{name: "llama LoRA, growing cache", o: tinymodel.Options{Arch: "llama", DType: safetensors.BF16, Tied: true, Seed: 4},
			adapter: &AdapterConfig{Targets: []string{"all-linear"}, Rank: 4, Alpha: 8}, prompt: 6, chunk: 4, capacity: 3, total: 25},
		{name: "qwen2 DoRA rsLoRA", o: tinymodel.Options{Arch: "qwen2", DType: safetensors.BF16, Seed: 5},
			adapter: &AdapterConfig{Targets: []string{"q_proj", "v_proj", "down_proj"}, Rank: 3, Alpha: 6, DoRA: true, RSLoRA: true}, prompt: 9, chunk: 128, total: 16},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := writeTestModel(t, c.o)
			if c.adapter != nil {
				if err := m.AddAdapters(*c.adapter); err != nil {
					t.Fatal(err)
				}
				for i, p := range m.Params() { // nonzero B so that the adapters matter
					for j := range p.Data {
						p.Data[j] += float32(math.Sin(float64(i*131+j))) * 0.05
					}
				}
			}
			checkCacheAgainstFull(t, m, testIDs(c.total, m.Config.VocabSize), c.prompt, c.chunk, c.capacity)
		})
	}
}

func code14m(t *testing.T) (string, *Model) {
	t.Helper()
	dir := filepath.Join("..", "..", "shared", "models", "code14m")
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err != nil {
		t.Skipf("code14m absent: %v", err)
	}
	m, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return dir, m
}

// On the real code14m model, cached decoding agrees with the full path at each step,
// and greedy generation picks exactly the argmax tokens of the full path.
func TestGenerateCode14m(t *testing.T) {
	dir, m := code14m(t)
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	prompt := tok.EncodeWithSpecial("fn main() {\n    let v: Vec<u32> = ")
	res, err := m.Generate(context.Background(), mustCache(t, m, 0), prompt, GenerateOptions{MaxNewTokens: 24})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tokens) == 0 {
		t.Fatalf("no tokens generated (stop %s)", res.StopReason)
	}
	checkGreedy(t, m, prompt, res.Tokens)
	checkCacheAgainstFull(t, m, append(slices.Clone(prompt), res.Tokens...), len(prompt), 128, 0)
	t.Logf("%q", tok.Decode(res.Tokens, true))
}

func mustCache(t testing.TB, m *Model, capacity int) *KVCache {
	t.Helper()
	kc, err := m.NewKVCache(capacity)
	if err != nil {
		t.Fatal(err)
	}
	return kc
}

// checkGreedy verifies that every generated token is the argmax of the full-sequence
// logits at its position.
func checkGreedy(t *testing.T, m *Model, prompt, gen []int) {
	t.Helper()
	all := append(slices.Clone(prompt), gen...)
	logits := fullLogits(t, m, all)
	V := m.Config.VocabSize
	for i, id := range gen {
		p := len(prompt) - 1 + i
		if want := sample.Argmax(logits[p*V : (p+1)*V]); id != want {
			t.Fatalf("token %d: cached greedy picked %d, full-sequence argmax is %d", i, id, want)
		}
	}
}

func TestGenerateStops(t *testing.T) {
	m := writeTestModel(t, tinymodel.Options{Arch: "qwen2", DType: safetensors.BF16, Seed: 9})
	prompt := testIDs(5, m.Config.VocabSize)
	ctx := context.Background()
	ref, err := m.Generate(ctx, mustCache(t, m, 0), prompt, GenerateOptions{MaxNewTokens: 12})
	if err != nil {
		t.Fatal(err)
	}
	if ref.StopReason != StopLength || len(ref.Tokens) != 12 || ref.PromptTokens != 5 {
		t.Fatalf("got %d tokens, %d prompt tokens, stop %q; want 12, 5, length", len(ref.Tokens), ref.PromptTokens, ref.StopReason)
	}
	checkGreedy(t, m, prompt, ref.Tokens)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	n := 0
	cases := []struct {
		name       string
		ctx        context.Context
		opts       GenerateOptions
		wantTokens []int
		wantStop   string
	}{
		{"eos", ctx, GenerateOptions{MaxNewTokens: 12, EOS: []int{ref.Tokens[3]}}, ref.Tokens[:slices.Index(ref.Tokens, ref.Tokens[3])], StopEOS},
		{"on-token stop", ctx, GenerateOptions{MaxNewTokens: 12, OnToken: func(int) (bool, error) { n++; return n == 4, nil }}, ref.Tokens[:4], StopString},
		{"interrupted", cancelled, GenerateOptions{MaxNewTokens: 12}, nil, StopInterrupted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := m.Generate(c.ctx, mustCache(t, m, 0), prompt, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.StopReason != c.wantStop || !slices.Equal(res.Tokens, c.wantTokens) {
				t.Errorf("got %v (%s), want %v (%s)", res.Tokens, res.StopReason, c.wantTokens, c.wantStop)
			}
		})
	}
}

// A second prompt sharing a prefix with what is cached reuses that part and gives the
// same tokens as a fresh cache.
func TestGenerateReusesPrefix(t *testing.T) {
	m := writeTestModel(t, tinymodel.Options{Arch: "llama", DType: safetensors.BF16, Seed: 10})
	ctx := context.Background()
	kc := mustCache(t, m, 0)
	first := testIDs(8, m.Config.VocabSize)
	r1, err := m.Generate(ctx, kc, first, GenerateOptions{MaxNewTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	second := append(append(slices.Clone(first), r1.Tokens[:2]...), 3, 5, 7)
	r2, err := m.Generate(ctx, kc, second, GenerateOptions{MaxNewTokens: 6})
	if err != nil {
		t.Fatal(err)
	}
	if r2.PromptTokens != 3 {
		t.Errorf("prefilled %d tokens, want 3 (the rest cached)", r2.PromptTokens)
	}
	fresh, err := m.Generate(ctx, mustCache(t, m, 0), second, GenerateOptions{MaxNewTokens: 6})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r2.Tokens, fresh.Tokens) {
		t.Errorf("with reused cache %v, fresh %v", r2.Tokens, fresh.Tokens)
	}
	// Same prompt again: everything but the last token is reused.
	r3, err := m.Generate(ctx, kc, second, GenerateOptions{MaxNewTokens: 6})
	if err != nil {
		t.Fatal(err)
	}
	if r3.PromptTokens != 1 || !slices.Equal(r3.Tokens, fresh.Tokens) {
		t.Errorf("repeat: prefilled %d, tokens %v; want 1, %v", r3.PromptTokens, r3.Tokens, fresh.Tokens)
	}
}

// The same seed samples the same tokens; another seed (very likely) does not.
func TestGenerateSampledSeed(t *testing.T) {
	m := writeTestModel(t, tinymodel.Options{Arch: "llama", Seed: 11})
	prompt := testIDs(4, m.Config.VocabSize)
	run := func(seed uint64) []int {
		s, err := sample.New(sample.Config{Temperature: 5, TopK: 40, TopP: 0.95, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		res, err := m.Generate(context.Background(), mustCache(t, m, 0), prompt, GenerateOptions{MaxNewTokens: 16, Sampler: s})
		if err != nil {
			t.Fatal(err)
		}
		return res.Tokens
	}
	a, b, c := run(1), run(1), run(2)
	if !slices.Equal(a, b) {
		t.Errorf("seed 1 twice: %v vs %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 1 and 2 sampled the same 16 tokens %v", a)
	}
}

func TestExtendErrors(t *testing.T) {
	m := writeTestModel(t, tinymodel.Options{Arch: "llama", MaxPositionEmbeddings: 16, Seed: 12})
	other := writeTestModel(t, tinymodel.Options{Arch: "llama", Seed: 12})
	ctx := context.Background()
	if _, err := m.NewKVCache(17); err == nil {
		t.Error("capacity beyond max_position_embeddings: no error")
	}
	kc := mustCache(t, m, 0)
	cases := []struct {
		name string
		run  func() error
	}{
		{"token outside vocabulary", func() error { _, err := m.Extend(ctx, kc, []int{m.Config.VocabSize}); return err }},
		{"negative token", func() error { _, err := m.Extend(ctx, kc, []int{-1}); return err }},
		{"no tokens", func() error { _, err := m.Extend(ctx, kc, nil); return err }},
		{"beyond context", func() error { _, err := m.Extend(ctx, kc, testIDs(17, 50)); return err }},
		{"cache of another model", func() error { _, err := other.Extend(ctx, kc, []int{1}); return err }},
		{"empty prompt", func() error { _, err := m.Generate(ctx, kc, nil, GenerateOptions{}); return err }},
	}
	for _, c := range cases {
		if err := c.run(); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	// Generation stops with "length" when the context is full.
	res, err := m.Generate(ctx, kc, testIDs(10, 50), GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.StopReason != StopLength || len(res.Tokens) != 7 {
		t.Errorf("full context: %d tokens, stop %q; want 7, length", len(res.Tokens), res.StopReason)
	}
}

// BenchmarkDecode times single-token decode steps of a Qwen2.5-0.5B-shaped model (all
// 24 layers, random weights, projections in bf16, NF4 or INT8) with 64 to 320 tokens in the
// cache; MB/s counts the weight bytes one step streams. …/prefill times a 128-token
// prefill.
func BenchmarkDecode(b *testing.B) {
	for _, q := range []quant.Kind{quant.KindNone, quant.KindNF4, quant.KindInt8} {
		name := "bf16"
		if q != quant.KindNone {
			name = string(q)
		}
		b.Run(name, func(b *testing.B) { benchmarkDecode(b, q) })
	}
}

func benchmarkDecode(b *testing.B, q quant.Kind) {
	m, err := New(qwen05Shape(24), Options{Seed: 1, Quant: q})
	if err != nil {
		b.Fatal(err)
	}
	var weightBytes int64
	for _, ly := range m.Layers {
		for _, p := range ly.Proj {
			weightBytes += p.W.Bytes()
		}
	}
	weightBytes += m.LMHead.Bytes()
	ctx := context.Background()
	prompt := testIDs(128, m.Config.VocabSize)
	kc, err := m.NewKVCache(1024)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("step", func(b *testing.B) {
		kc.Reset()
		if _, err := m.Extend(ctx, kc, prompt[:64]); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(weightBytes)
		id := 1
		for b.Loop() {
			if kc.Len() >= 320 {
				if err := kc.Truncate(64); err != nil {
					b.Fatal(err)
				}
			}
			logits, err := m.Extend(ctx, kc, []int{id})
			if err != nil {
				b.Fatal(err)
			}
			id = sample.Argmax(logits)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
	b.Run("prefill", func(b *testing.B) {
		for b.Loop() {
			kc.Reset()
			if _, err := m.Extend(ctx, kc, prompt); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(prompt)*b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
}

// BenchmarkPrefill times a 512-token prefill (the prompt read into the KV cache) of
// the Qwen2.5-0.5B shape with f32 and bf16 compute, bf16 and NF4 projections:
//
//	go test ./model -run '^$' -bench Prefill -count 3
func BenchmarkPrefill(b *testing.B) {
	for _, q := range []quant.Kind{quant.KindNone, quant.KindNF4} {
		for _, c := range []Compute{ComputeF32, ComputeBF16} {
			name := "bf16"
			if q != quant.KindNone {
				name = string(q)
			}
			b.Run(name+"/"+string(c), func(b *testing.B) {
				m, err := New(qwen05Shape(24), Options{Seed: 1, Quant: q, Compute: c})
				if err != nil {
					b.Fatal(err)
				}
				prompt := testIDs(512, m.Config.VocabSize)
				kc, err := m.NewKVCache(len(prompt))
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				for b.Loop() {
					kc.Reset()
					if _, err := m.Extend(ctx, kc, prompt); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(prompt)*b.N)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}
