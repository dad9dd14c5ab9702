package bilevel

import (
	"context"
	"testing"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/train"
)

// BenchmarkStep measures one optimiser step's gradient work on a random model of
// code14m's shape (6 layers, hidden 288, vocab 32000; DoRA r=8 on q,k,v,o) and a batch
// of 4×256 tokens: a DoRA step (one forward+backward), a BiDoRA step with the
// second-order and the first-order hypergradient, and the orthogonality regulariser
// alone (32 sampled rows per matrix, and exact).
func BenchmarkStep(b *testing.B) {
	cfg := &modelcfg.Config{ModelType: "llama", HiddenSize: 288, IntermediateSize: 768, NumHiddenLayers: 6,
		NumAttentionHeads: 6, NumKeyValueHeads: 2, HeadDim: 48, VocabSize: 32000, RMSNormEps: 1e-5, RopeTheta: 10000, HiddenAct: "silu"}
	m, err := model.New(cfg, model.Options{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.AddAdapters(model.AdapterConfig{Targets: []string{"q_proj", "k_proj", "v_proj", "o_proj"}, Rank: 8, Alpha: 16, Dropout: 0.05, DoRA: true}); err != nil {
		b.Fatal(err)
	}
	batch := func(seed int) []dataset.Batch {
		var rows []dataset.Example
		for r := 0; r < 4; r++ {
			var s dataset.Example
			for j := 0; j < 256; j++ {
				id := int32((r*7919 + j*131 + seed) % 32000)
				s.InputIDs, s.Labels = append(s.InputIDs, id), append(s.Labels, id)
			}
			rows = append(rows, s)
		}
		return []dataset.Batch{dataset.NewBatch(rows)}
	}
	tr, val := batch(1), batch(2)
	groupGrad := func(ctx context.Context, g []dataset.Batch, seed uint64) (float64, int, error) {
		return train.AccumulateGrad(ctx, m, g, seed)
	}
	var lv Levels[float32]
	var g [][]float32
	for _, p := range m.Params() {
		if len(p.Shape) == 1 {
			lv.MagGrad = append(lv.MagGrad, p.Grad)
			g = append(g, make([]float32, len(p.Grad)))
		} else {
			lv.Dir, lv.DirGrad = append(lv.Dir, p.Data), append(lv.DirGrad, p.Grad)
		}
	}
	lv.UpperGrad = func(ctx context.Context) (float64, error) { l, _, err := groupGrad(ctx, val, 1); return l, err }
	lv.LowerGrad = func(ctx context.Context) error { _, _, err := groupGrad(ctx, tr, 2); return err }
	ctx := context.Background()
	lower := func(b *testing.B) {
		if _, _, err := groupGrad(ctx, tr, 2); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("dora", func(b *testing.B) {
		for range b.N {
			lower(b)
		}
	})
	for _, first := range []bool{false, true} {
		name := "bidora-second-order"
		if first {
			name = "bidora-first-order"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				lower(b)
				if _, err := Hypergradient(ctx, lv, 0.01, first, g); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("orthreg-32rows", func(b *testing.B) {
		for i := range b.N {
			m.OrthReg(1e-5, 32, uint64(i))
		}
	})
	b.Run("orthreg-exact", func(b *testing.B) {
		for i := range b.N {
			m.OrthReg(1e-5, 0, uint64(i))
		}
	})
}
