package train_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/train"
)

// Plain LoRA fine-tuning of a tiny random model: one Phase with the Plain stepper.
// Run writes the adapter, metrics.jsonl and loss.png into Options.Output.
func Example() {
	cfg := &modelcfg.Config{ModelType: "qwen2", HiddenSize: 16, IntermediateSize: 24, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, HeadDim: 4, VocabSize: 11,
		RMSNormEps: 1e-6, RopeTheta: 10000, HiddenAct: "silu"}
	m, err := model.New(cfg, model.Options{Seed: 5, Name: "tiny"})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.AddAdapters(model.AdapterConfig{Targets: []string{"all-linear"}, Rank: 2, Alpha: 4}); err != nil {
		log.Fatal(err)
	}
	// Sixteen short sequences that count upwards modulo the vocabulary; the first
	// token is a prompt (no loss).
	var data []dataset.Example
	for i := range 16 {
		ids := make([]int32, 4+i%3)
		for t := range ids {
			ids[t] = int32((i + t) % cfg.VocabSize)
		}
		labels := append([]int32{dataset.IgnoreIndex}, ids[1:]...)
		data = append(data, dataset.Example{InputIDs: ids, Labels: labels})
	}
	out, err := os.MkdirTemp("", "bidora-train-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)
	o := train.Options{Output: filepath.Join(out, "run"), Epochs: 2, BatchSize: 4, GradAccum: 1, LR: 1e-2,
		Scheduler: "constant", Optimizer: "adamw", Seed: 1}
	phases := []train.Phase{{Name: "train", Data: data, Stepper: train.NewPlain(m, &o)}}
	res, err := train.Run(context.Background(), m, phases, data[:4], o)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("optimiser steps:", res.Steps)
	fmt.Println("training loss fell:", res.FinalLoss < res.History[0].Loss)
	fmt.Println("validation loss fell:", res.BestValLoss < res.FirstValLoss)
	if _, err := os.Stat(filepath.Join(o.Output, "adapter_model.safetensors")); err == nil {
		fmt.Println("adapter written")
	}
	// Output:
	// optimiser steps: 8
	// training loss fell: true
	// validation loss fell: true
	// adapter written
}
