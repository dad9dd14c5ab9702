package memplan

import (
	"math"
	"testing"

	"github.com/bidora/bidora/modelcfg"
)

// TestNoOverflow: absurd shapes and settings give an estimate that fits nothing,
// never a wrapped-around small or negative one that "fits".
func TestNoOverflow(t *testing.T) {
	base := func() *modelcfg.Config {
		return &modelcfg.Config{ModelType: "qwen2", HiddenSize: 896, IntermediateSize: 4864, NumHiddenLayers: 24,
			NumAttentionHeads: 14, NumKeyValueHeads: 2, HeadDim: 64, VocabSize: 151936, RopeTheta: 1e6, HiddenAct: "silu", RMSNormEps: 1e-6}
	}
	settings := Settings{Quant: QuantNone, Method: "lora", Rank: 8, Targets: []string{"all-linear"}, BatchSize: 4, SeqLen: 512, GradCheckpointing: true}
	cases := []struct {
		name string
		cfg  func(*modelcfg.Config)
		set  func(*Settings)
	}{
		{"2^62 layers", func(c *modelcfg.Config) { c.NumHiddenLayers = 1 << 62 }, nil},
		{"2^40 hidden", func(c *modelcfg.Config) { c.HiddenSize, c.IntermediateSize = 1<<40, 1<<40 }, nil},
		{"2^50 vocab", func(c *modelcfg.Config) { c.VocabSize = 1 << 50 }, nil},
		{"2^31 heads", func(c *modelcfg.Config) { c.NumAttentionHeads, c.HeadDim = 1<<31, 1<<31 }, nil},
		{"batch and seq 2^40", nil, func(s *Settings) { s.BatchSize, s.SeqLen = 1<<40, 1<<40 }},
		{"batch 2^62", nil, func(s *Settings) { s.BatchSize = 1 << 62 }},
		{"rank 2^50", nil, func(s *Settings) { s.Rank = 1 << 50 }},
		{"rank MaxInt", nil, func(s *Settings) { s.Rank = math.MaxInt }},
		{"dora dropout rank 2^40", nil, func(s *Settings) { s.Rank, s.Method, s.Dropout = 1<<40, "dora", 0.1 }},
	}
	for _, c := range cases {
		cfg, s := base(), settings
		if c.cfg != nil {
			c.cfg(cfg)
		}
		if c.set != nil {
			c.set(&s)
		}
		if e := Compute(cfg, s); e.Total != math.MaxInt64 {
			t.Errorf("%s: Compute total %d, want MaxInt64", c.name, e.Total)
		}
		req := Request{Settings: s, GradAccum: 1, Fixed: Fixed{BatchSize: true, SeqLen: true, GradAccum: true}}
		if p := AutoAdjust(cfg, req, Machine{RAMBytes: 1 << 40}); p.Fits {
			t.Errorf("%s: plan fits: %+v", c.name, p.Estimate)
		}
	}
	// Real sizes are computed as before.
	if e := Compute(base(), settings); e.Total <= 0 || e.Total > 64<<30 {
		t.Errorf("qwen2.5-0.5b: %d", e.Total)
	}
	big := base()
	big.HiddenSize, big.IntermediateSize, big.NumHiddenLayers, big.NumAttentionHeads, big.NumKeyValueHeads, big.HeadDim, big.VocabSize =
		16384, 53248, 126, 128, 8, 128, 128256
	if e := Compute(big, Settings{Quant: QuantNF4, Method: "bidora", Rank: 64, Targets: []string{"all-linear"}, BatchSize: 64, SeqLen: 131072}); e.Total == math.MaxInt64 || e.Total <= 0 {
		t.Errorf("405B at 128k context: %d, want an exact estimate", e.Total)
	}
}
