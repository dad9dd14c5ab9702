package bilevel_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/bidora/bidora/bilevel"
	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/train"
)

// A BiDoRA run on a tiny random model: SplitData sets aside the outer (magnitude)
// split, Steps says how long each phase is, and Run goes through the search and
// retraining phases of package train's loop.
func Example() {
	cfg := &modelcfg.Config{ModelType: "llama", HiddenSize: 16, IntermediateSize: 24, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, HeadDim: 4, VocabSize: 11,
		RMSNormEps: 1e-6, RopeTheta: 10000, HiddenAct: "silu"}
	m, err := model.New(cfg, model.Options{Seed: 3, Name: "tiny"})
	if err != nil {
		log.Fatal(err)
	}
	// BiDoRA trains a DoRA adapter: direction (A, B) and magnitude separately.
	if err := m.AddAdapters(model.AdapterConfig{Targets: []string{"q_proj", "v_proj", "down_proj"}, Rank: 2, Alpha: 4, DoRA: true}); err != nil {
		log.Fatal(err)
	}
	var data []dataset.Example
	for i := range 20 {
		ids := make([]int32, 5)
		for t := range ids {
			ids[t] = int32((2*i + 3*t) % cfg.VocabSize)
		}
		data = append(data, dataset.Example{InputIDs: ids, Labels: ids})
	}
	// No separate validation rows: a seeded 20% of the training rows become the outer split.
	d, err := bilevel.SplitData(data, bilevel.DefaultOuterSplit, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("inner %d, outer %d, retrain %d\n", len(d.Inner), len(d.Outer), len(d.Retrain))

	out, err := os.MkdirTemp("", "bidora-bilevel-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)
	to := train.Options{Output: out, Epochs: 1, BatchSize: 4, GradAccum: 1, LR: 1e-2,
		Scheduler: "constant", Optimizer: "adamw", Seed: 1}
	bo := bilevel.Options{OrthReg: 1e-3}
	search, retrain := bilevel.Steps(d, bo, to)
	fmt.Printf("steps: search %d, retrain %d\n", search, retrain)

	res, err := bilevel.Run(context.Background(), m, d, nil, bo, to)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ran: search %d, retrain %d\n", res.SearchSteps, res.RetrainSteps)
	fmt.Printf("last outer (upper-level) loss %.3f\n", res.FinalUpperLoss)
	fmt.Println("training loss fell:", res.FinalLoss < res.History[0].Loss)
	// Output:
	// inner 16, outer 4, retrain 20
	// steps: search 4, retrain 5
	// ran: search 4, retrain 5
	// last outer (upper-level) loss 2.385
	// training loss fell: true
}
