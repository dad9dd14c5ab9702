package model

import (
	"context"
	"testing"
)

// A checkpointed step gives the same loss and gradients, bit for bit, whichever
// layers keep their activations (none, some, all below the last) and as a step
// without checkpointing.
func TestKeptLayers(t *testing.T) {
	ctx := context.Background()
	ac := AdapterConfig{Targets: []string{"all-linear"}, Rank: 3, Alpha: 6, Dropout: 0.1, DoRA: true}
	b := randomBatch(2, 11, 53, []int{11, 7})
	ref := tinyModel(t, "qwen2", Options{Seed: 3, NoCheckpointing: true}, ac)
	// Two steps (dropout masks change per step; gradients accumulate), and a second
	// step reuses the workspace.
	var want [2]float64
	var wantGrads [2][][]float32
	for step := range 2 {
		res, err := asResult(ref.LossAndGrad(ctx, b))
		if err != nil {
			t.Fatal(err)
		}
		want[step], wantGrads[step] = res.LossSum, gradsOf(ref)
	}
	prev := keepActsBudget
	defer func() { keepActsBudget = prev }()
	probe := tinyModel(t, "qwen2", Options{Seed: 3}, ac)
	if _, err := asResult(probe.LossAndGrad(ctx, b)); err != nil {
		t.Fatal(err)
	}
	per := probe.ws.acts[0].bytes()
	if est := probe.actsBytes(2 * 11); est != per {
		t.Fatalf("actsBytes = %d, the buffers take %d", est, per)
	}
	L := len(probe.Layers)
	for _, kept := range []int{0, 1, L - 1} {
		keepActsBudget = kept * per
		m := tinyModel(t, "qwen2", Options{Seed: 3}, ac)
		for step := range 2 {
			got, err := asResult(m.LossAndGrad(ctx, b))
			if err != nil {
				t.Fatal(err)
			}
			if k := len(m.ws.acts) - 1; k != kept {
				t.Fatalf("kept %d layers, want %d", k, kept)
			}
			if r := m.RecomputedLayers(2, 11); r != L-1-kept {
				t.Errorf("RecomputedLayers = %d, want %d", r, L-1-kept)
			}
			if got.LossSum != want[step] {
				t.Errorf("kept=%d step %d: loss %g, want %g", kept, step, got.LossSum, want[step])
			}
			g := gradsOf(m)
			for i := range g {
				for j := range g[i] {
					if g[i][j] != wantGrads[step][i][j] {
						t.Fatalf("kept=%d step %d: param %d grad %d = %g, want %g", kept, step, i, j, g[i][j], wantGrads[step][i][j])
					}
				}
			}
		}
	}
}
