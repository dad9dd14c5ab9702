package memplan_test

import (
	"fmt"
	"testing"

	"github.com/bidora/bidora/internal/memplan"
	"github.com/bidora/bidora/kernels"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/quant"
)

// BF16ProductsFor must say what the model marks: a tiny model, plain and NF4, is
// built under each compute mode and its LM head and projections are asked whether
// their products run in bf16.
func TestBF16ProductsMatchModel(t *testing.T) {
	cfg := &modelcfg.Config{ModelType: "qwen2", HiddenSize: 64, IntermediateSize: 160, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, HeadDim: 16, VocabSize: 97, RMSNormEps: 1e-6,
		RopeTheta: 10000, HiddenAct: "silu", MaxPositionEmbeddings: 1 << 16}
	for _, mode := range []string{"auto", "bf16", "f32"} {
		for _, q := range []quant.Kind{quant.KindNone, quant.KindNF4, quant.KindInt8} {
			t.Run(fmt.Sprintf("%s %s", mode, q), func(t *testing.T) {
				m, err := model.New(cfg, model.Options{Seed: 1, Quant: q, Compute: model.Compute(mode)})
				if err != nil {
					t.Fatal(err)
				}
				want, err := memplan.BF16ProductsFor(mode, kernels.NativeBF16())
				if err != nil {
					t.Fatal(err)
				}
				if m.LMHead == nil || m.LMHead.BF16Compute != want.Head {
					t.Errorf("LM head bf16 compute: model %v, memplan %v", m.LMHead != nil && m.LMHead.BF16Compute, want.Head)
				}
				wantProj := want.Projections
				if q != quant.KindNone {
					wantProj = want.Quantised
				}
				for _, p := range m.Layers[0].Proj {
					if p != nil && p.W != nil && p.W.BF16Compute != wantProj {
						t.Errorf("projection bf16 compute: model %v, memplan %v", p.W.BF16Compute, wantProj)
					}
				}
			})
		}
	}
}
