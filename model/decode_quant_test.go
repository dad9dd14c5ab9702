package model

import (
	"testing"

	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/quant"
	"github.com/bidora/bidora/safetensors"
)

// Decoding a quantised model (one token per step: the projections take quant's fused
// GEMV) gives the logits of the full-sequence path (the tiled dequantise-then-GEMM) at
// every step, for NF4 with plain and double-quantised scales and for INT8. The default
// tiny shape has k = 64 (the assembly path) and down_proj's k = 160 (rows starting
// mid-block: the Go rows); hidden 128 puts two blocks in a row.
func TestQuantizedDecodeMatchesLogits(t *testing.T) {
	cases := []struct {
		name  string
		o     tinymodel.Options
		quant quant.Kind
		noDQ  bool
	}{
		{"nf4", tinymodel.Options{Arch: "qwen2", DType: safetensors.BF16, Seed: 7}, quant.KindNF4, false},
		{"nf4 plain absmax", tinymodel.Options{Arch: "llama", DType: safetensors.BF16, Seed: 8, HiddenSize: 128, NumHeads: 4, NumKVHeads: 2}, quant.KindNF4, true},
		{"int8", tinymodel.Options{Arch: "llama", DType: safetensors.BF16, Seed: 9, HiddenSize: 128, NumHeads: 4, NumKVHeads: 2}, quant.KindInt8, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tinymodel.Write(dir, c.o); err != nil {
				t.Fatal(err)
			}
			m, err := Load(dir, Options{Quant: c.quant, NoDoubleQuant: c.noDQ})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close() })
			if m.Quantization() != c.quant {
				t.Fatalf("Quantization() = %q, want %q", m.Quantization(), c.quant)
			}
			checkCacheAgainstFull(t, m, testIDs(20, m.Config.VocabSize), 5, 128, 0)
		})
	}
}
