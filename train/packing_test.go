package train

import (
	"context"
	"math"
	"testing"

	"github.com/bidora/bidora/dataset"
)

func gradsCopy(e Model) [][]float32 {
	var out [][]float32
	for _, p := range e.Params() {
		out = append(out, append([]float32(nil), p.Grad...))
		clear(p.Grad)
	}
	return out
}

func maxRelDiff(t *testing.T, a, b [][]float32) float64 {
	t.Helper()
	worst := 0.0
	for i := range a {
		scale := 0.0
		for _, v := range b[i] {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for j := range a[i] {
			if d := math.Abs(float64(a[i][j]-b[i][j])) / math.Max(scale, 1e-12); d > worst {
				worst = d
			}
		}
	}
	return worst
}

// TestPackingDoesNotContaminate packs two examples into one sequence and checks that
// loss and adapter gradients equal those of the two examples as separate rows: no
// token attends across the boundary, positions restart, and the first token of the
// second example is not predicted from the first.
func TestPackingDoesNotContaminate(t *testing.T) {
	e, m := tinyEngineDropout(t, 0)
	// Non-zero B so that the adapters shape the gradients.
	for _, p := range m.Params() {
		for j := range p.Data {
			p.Data[j] += 0.05 * float32(j%7-3)
		}
	}
	exs := []dataset.Example{
		{InputIDs: []int32{1, 5, 7, 2, 9}, Labels: []int32{1, 5, 7, 2, 9}},
		{InputIDs: []int32{3, 3, 8, 4}, Labels: []int32{-100, 3, 8, 4}},
	}
	packed := dataset.EpochBatches(exs, 0, dataset.BatchOptions{BatchSize: 1, Pack: true, MaxSeqLen: 16})
	if len(packed) != 1 || packed[0].B != 1 || packed[0].Tokens() != 9 {
		t.Fatalf("expected one packed sequence of 9 tokens, got %+v", packed)
	}
	separate := dataset.EpochBatches(exs, 0, dataset.BatchOptions{BatchSize: 2})
	ctx := context.Background()
	lp, np, err := e.LossAndGrad(ctx, &packed[0])
	if err != nil {
		t.Fatal(err)
	}
	gp := gradsCopy(e)
	ls, ns, err := e.LossAndGrad(ctx, &separate[0])
	if err != nil {
		t.Fatal(err)
	}
	gs := gradsCopy(e)
	if np != ns || np != 4+3 {
		t.Fatalf("tokens: packed %d, separate %d, want 7", np, ns)
	}
	if math.Abs(lp-ls) > 1e-5*math.Abs(ls) {
		t.Fatalf("loss sum: packed %.8f, separate %.8f", lp, ls)
	}
	if d := maxRelDiff(t, gp, gs); d > 1e-5 {
		t.Fatalf("adapter gradients differ by %.2g (relative to each tensor's largest)", d)
	}
}

// TestEngineGradAccumEqualsBatch: one SGD step from 4 micro-batches of 1 row equals one
// step from a batch of 4 padded rows, on the real engine (token-weighted mean over the
// effective batch, padding inert).
func TestEngineGradAccumEqualsBatch(t *testing.T) {
	step := func(bs, accum int) [][]float32 {
		e, m := tinyEngineDropout(t, 0)
		o := opts(t)
		o.BatchSize, o.GradAccum, o.GroupByLen, o.MaxSteps, o.Optimizer = bs, accum, false, 1, "sgd"
		o.WeightDecay, o.MaxGradNorm, o.WarmupSteps, o.Scheduler, o.LR = 0, 0, 0, "constant", 0.5
		if _, err := fit(context.Background(), e, corpus(8, 11), nil, o); err != nil {
			t.Fatal(err)
		}
		var out [][]float32
		for _, p := range m.Params() {
			out = append(out, append([]float32(nil), p.Data...))
		}
		return out
	}
	accum, batch := step(1, 4), step(4, 1)
	if d := maxRelDiff(t, accum, batch); d > 1e-5 {
		t.Fatalf("adapter after one step: accumulation and batch differ by %.2g", d)
	}
	// lora_B starts at zero: it must have moved, or the comparison would be vacuous.
	if d := maxRelDiff(t, [][]float32{make([]float32, len(batch[1]))}, batch[1:2]); d == 0 {
		t.Fatal("the step did not change lora_B: the comparison would be vacuous")
	}
}
