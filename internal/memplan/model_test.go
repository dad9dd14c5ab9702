package memplan_test

import (
	"fmt"
	"testing"

	"github.com/bidora/bidora/internal/memplan"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/modelcfg"
)

// The estimate mirrors two of the model's defaults; a change there must show here.
func TestConstantsMatchModel(t *testing.T) {
	if memplan.KeptActivationsBudget != model.KeptActivationsBudget {
		t.Errorf("memplan.KeptActivationsBudget = %d, model.KeptActivationsBudget = %d",
			memplan.KeptActivationsBudget, model.KeptActivationsBudget)
	}
}

// TestKeptLayersMatchModel checks memplan's per-layer activation count and
// kept-layer rule against the model's own (RecomputedLayers = L−1−kept): a tiny
// model, whose step for a very long sequence would need more than the budget per
// layer, is asked, without running anything, how many layers it would recompute.
// Sequence lengths around each boundary of the budget find any difference in the
// per-layer bytes, with LoRA, DoRA, dropout and a subset of targets.
func TestKeptLayersMatchModel(t *testing.T) {
	cfg := &modelcfg.Config{ModelType: "qwen2", HiddenSize: 64, IntermediateSize: 160, NumHiddenLayers: 6,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, HeadDim: 16, VocabSize: 97, RMSNormEps: 1e-6,
		RopeTheta: 10000, HiddenAct: "silu", MaxPositionEmbeddings: 1 << 30}
	cases := []struct {
		method  string
		targets []string
		rank    int
		dropout float64
	}{
		{"lora", []string{"all-linear"}, 8, 0},
		{"lora", []string{"q_proj", "v_proj"}, 16, 0},
		{"dora", []string{"all-linear"}, 8, 0},
		{"lora", []string{"all-linear"}, 4, 0.05},
		{"dora", []string{"k_proj", "down_proj"}, 2, 0.1},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %v r%d dropout %g", c.method, c.targets, c.rank, c.dropout), func(t *testing.T) {
			m, err := model.New(cfg, model.Options{Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.AddAdapters(model.AdapterConfig{Targets: c.targets, Rank: c.rank, Alpha: 16,
				Dropout: c.dropout, DoRA: c.method == "dora"}); err != nil {
				t.Fatal(err)
			}
			s := memplan.Settings{Quant: memplan.QuantNone, Method: c.method, Rank: c.rank, Targets: c.targets,
				Optimizer: "adamw", BatchSize: 1, Dropout: c.dropout, GradCheckpointing: true}
			per := memplan.LayerActivationsPerToken(cfg, s) * memplan.BytesF32
			L := int64(cfg.NumHiddenLayers)
			for kept := int64(1); kept <= L; kept++ {
				// The longest sequence at which kept layers fit, and one token more.
				edge := memplan.KeptActivationsBudget / (kept * per)
				for _, T := range []int64{edge, edge + 1} {
					s.SeqLen = int(T)
					want := L - 1 - int64(m.RecomputedLayers(1, int(T)))
					if got := memplan.KeptLayers(cfg, s); got != want {
						t.Errorf("T=%d: memplan keeps %d layers, the model %d", T, got, want)
					}
				}
			}
		})
	}
}
