package model

import (
	"context"
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
