package model

import (
	"context"
	"testing"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/modelcfg"
)

// qwen05Shape is Qwen2.5-0.5B's layer shape with fewer layers (bench budget).
func qwen05Shape(layers int) *modelcfg.Config {
	return &modelcfg.Config{ModelType: "qwen2", HiddenSize: 896, IntermediateSize: 4864, NumHiddenLayers: layers,
		NumAttentionHeads: 14, NumKeyValueHeads: 2, HeadDim: 64, VocabSize: 151936, RMSNormEps: 1e-6,
		RopeTheta: 1e6, HiddenAct: "silu", TieWordEmbeddings: true}
}

// BenchmarkTrainStep times LossAndGrad (forward + backward, checkpointing on) of a
// 4-layer Qwen2.5-0.5B-shaped model, LoRA r=8 on all seven projections, 1×512 tokens,
// and reports effective GFLOP/s and tokens/s.
func BenchmarkTrainStep(b *testing.B) {
	for _, method := range []string{"lora", "dora"} {
		b.Run(method, func(b *testing.B) {
			m, err := New(qwen05Shape(4), Options{Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			if err := m.AddAdapters(AdapterConfig{Targets: []string{"all-linear"}, Rank: 8, Alpha: 16, DoRA: method == "dora"}); err != nil {
				b.Fatal(err)
			}
			const T = 512
			batch := &dataset.Batch{B: 1, T: T, InputIDs: make([]int32, T), Labels: make([]int32, T)}
			for i := range batch.InputIDs {
				batch.InputIDs[i] = int32(i * 7919 % 151936)
				batch.Labels[i] = batch.InputIDs[i]
			}
			ctx := context.Background()
			if _, err := asResult(m.LossAndGrad(ctx, batch)); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := asResult(m.LossAndGrad(ctx, batch)); err != nil {
					b.Fatal(err)
				}
			}
			s := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(m.FLOPs(1, T, true)/s/1e9, "GFLOP/s")
			b.ReportMetric(T/s, "tokens/s")
		})
	}
}
