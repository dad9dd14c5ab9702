package model

import (
	"context"
	"math"
	"testing"

	"github.com/bidora/bidora/internal/tinymodel"
)

// TestQwen2IgnoresAttentionBias: Qwen2 builds q/k/v with biases and o_proj without,
// whatever attention_bias (a field Qwen2Config does not have) says; the checkpoint
// loads and gives the same loss with the field true, false or absent. Mistral
// likewise ignores attention_bias and mlp_bias.
func TestQwen2IgnoresAttentionBias(t *testing.T) {
	for _, arch := range []string{"qwen2", "mistral"} {
		var want float64
		for i, set := range []map[string]any{nil, {"attention_bias": true}, {"attention_bias": false}, {"attention_bias": true, "mlp_bias": true}} {
			dir := t.TempDir()
			if err := tinymodel.Write(dir, tinymodel.Options{Arch: arch, NumLayers: 2, HiddenSize: 32, Seed: 7}); err != nil {
				t.Fatal(err)
			}
			rewriteCheckpoint(t, dir, func(c map[string]any) {
				for k, v := range set {
					c[k] = v
				}
			}, nil)
			m, err := Load(dir, Options{F32Weights: true})
			if err != nil {
				t.Fatalf("%s %v: %v", arch, set, err)
			}
			b := randomBatch(2, 11, m.Config.VocabSize, []int{11, 8})
			sum, n, err := m.Loss(context.Background(), b)
			m.Close()
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				want = sum / float64(n)
			} else if got := sum / float64(n); got != want {
				t.Errorf("%s %v: loss %v, want %v (as without the field)", arch, set, got, want)
			}
		}
	}
}

// TestBiasesOfProgrammaticConfigs: a config built in code gets the projections
// transformers would build, whatever AttentionBias and MLPBias say.
func TestBiasesOfProgrammaticConfigs(t *testing.T) {
	for _, tc := range []struct {
		arch        string
		qkv, o, mlp bool
	}{{"qwen2", true, false, false}, {"mistral", false, false, false}, {"llama", true, true, true}} {
		cfg := tinyConfig(tc.arch)
		cfg.AttentionBias, cfg.MLPBias = true, true
		m, err := New(cfg, Options{F32Weights: true})
		if err != nil {
			t.Fatal(err)
		}
		ly := m.Layers[0]
		if got := [3]bool{ly.Proj[projQ].Bias != nil, ly.Proj[projO].Bias != nil, ly.Proj[projDown].Bias != nil}; got != [3]bool{tc.qkv, tc.o, tc.mlp} {
			t.Errorf("%s: biases q/o/down %v, want %v", tc.arch, got, [3]bool{tc.qkv, tc.o, tc.mlp})
		}
	}
}

// TestExtendWindowMatchesLogits: with a sliding window shorter than the sequence,
// KV-cache decoding (prefill in chunks, then token by token past the window) gives
// the logits of the full-sequence path with the same window; and the window
// changes them, so the comparison is not vacuous. Qwen2 slides only in the layers
// from max_window_layers on.
func TestExtendWindowMatchesLogits(t *testing.T) {
	for _, c := range []struct {
		name          string
		o             tinymodel.Options
		edit          func(map[string]any)
		windows       []int
		prompt, chunk int
	}{
		{name: "mistral W=5", o: tinymodel.Options{Arch: "mistral", NumLayers: 2, SlidingWindow: 5, Seed: 8}, windows: []int{5, 5}, prompt: 12, chunk: 4},
		{name: "mistral W=1", o: tinymodel.Options{Arch: "mistral", NumLayers: 2, SlidingWindow: 1, Seed: 9}, windows: []int{1, 1}, prompt: 3, chunk: 128},
		{name: "qwen2 W=4 from layer 1", o: tinymodel.Options{Arch: "qwen2", NumLayers: 3, SlidingWindow: 4, Seed: 10},
			edit: func(c map[string]any) { c["max_window_layers"] = 1 }, windows: []int{0, 4, 4}, prompt: 9, chunk: 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tinymodel.Write(dir, c.o); err != nil {
				t.Fatal(err)
			}
			rewriteCheckpoint(t, dir, c.edit, nil)
			m, err := Load(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for l, w := range c.windows {
				if got := m.Config.Window(l); got != w {
					t.Fatalf("layer %d window %d, want %d", l, got, w)
				}
			}
			ids := testIDs(27, m.Config.VocabSize)
			checkCacheAgainstFull(t, m, ids, c.prompt, c.chunk, 0)
			windowed := fullLogits(t, m, ids)
			m.Config.SlidingWindow = 0
			full := fullLogits(t, m, ids)
			V := m.Config.VocabSize
			var diff float64
			for i := range windowed[len(windowed)-V:] {
				diff = max(diff, math.Abs(float64(windowed[len(windowed)-V+i]-full[len(full)-V+i])))
			}
			if diff < 1e-4 {
				t.Errorf("the window changes the last logits by only %g", diff)
			}
		})
	}
}
