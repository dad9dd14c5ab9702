package model_test

import (
	"context"
	"fmt"
	"log"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/optim"
)

// A tiny random Llama with DoRA adapters on q_proj and v_proj: its loss on one batch,
// then a few hand-written AdamW steps on the adapter parameters.
func Example() {
	cfg := &modelcfg.Config{ModelType: "llama", HiddenSize: 16, IntermediateSize: 24, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, HeadDim: 4, VocabSize: 11,
		RMSNormEps: 1e-6, RopeTheta: 10000, HiddenAct: "silu"}
	m, err := model.New(cfg, model.Options{Seed: 1, F32Weights: true})
	if err != nil {
		log.Fatal(err)
	}
	err = m.AddAdapters(model.AdapterConfig{Targets: []string{"q_proj", "v_proj"}, Rank: 2, Alpha: 4, DoRA: true})
	if err != nil {
		log.Fatal(err)
	}
	// Two rows, right-padded by NewBatch. Labels are aligned with the inputs
	// (position t predicts Labels[t+1]); IgnoreIndex marks a prompt token.
	ids := []int32{1, 2, 3, 4, 5, 6}
	labels := []int32{dataset.IgnoreIndex, 2, 3, 4, 5, 6}
	b := dataset.NewBatch([]dataset.Example{
		{InputIDs: ids, Labels: labels},
		{InputIDs: ids[:4], Labels: labels[:4]},
	})
	ctx := context.Background()
	sum, tokens, err := m.Loss(ctx, &b)
	if err != nil {
		log.Fatal(err)
	}
	first := sum / float64(tokens)
	fmt.Printf("%d adapter tensors, %d scored tokens, mean loss %.3f\n", len(m.Params()), tokens, first)

	// LossAndGrad adds the gradient of the loss sum into each Param.Grad.
	opt := optim.NewAdamW(0)
	for range 5 {
		m.ZeroGrad()
		if _, _, err := m.LossAndGrad(ctx, &b); err != nil {
			log.Fatal(err)
		}
		opt.Step(m.Params(), 1e-2)
	}
	sum, tokens, err = m.Loss(ctx, &b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("loss fell:", sum/float64(tokens) < first)
	// Output:
	// 12 adapter tensors, 8 scored tokens, mean loss 2.416
	// loss fell: true
}
