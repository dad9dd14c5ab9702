package model

import (
	"context"
	"math"
	"testing"

	"github.com/bidora/bidora/kernels"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/quant"
)

// TestComputeResolve checks that auto picks bf16 exactly when the kernels multiply
// bf16 natively, and f32 when the feature is forced off (the plain-Go kernel set, or
// the native bf16 kernels hidden), and that the choice reaches every frozen weight.
func TestComputeResolve(t *testing.T) {
	prev := kernels.Impl()
	defer func() { _ = kernels.SetImpl(prev); kernels.SetNativeBF16(true) }()
	cfg := &modelcfg.Config{ModelType: "llama", HiddenSize: 16, IntermediateSize: 24, NumHiddenLayers: 1,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, HeadDim: 4, VocabSize: 11,
		RMSNormEps: 1e-6, RopeTheta: 10000, HiddenAct: "silu"}
	build := func(c Compute) *Model {
		t.Helper()
		m, err := New(cfg, Options{Compute: c})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	check := func(what string, c, want Compute) {
		t.Helper()
		m := build(c)
		if m.Compute() != want {
			t.Errorf("%s: Compute %q resolved to %s, want %s", what, c, m.Compute(), want)
		}
		for _, p := range m.Layers[0].Proj {
			if p.W.BF16Compute != (want == ComputeBF16) {
				t.Errorf("%s: projection BF16Compute = %v with %s", what, p.W.BF16Compute, want)
			}
		}
		if m.LMHead.BF16Compute != (want == ComputeBF16) {
			t.Errorf("%s: LM head BF16Compute = %v with %s", what, m.LMHead.BF16Compute, want)
		}
	}
	native := ComputeF32
	if kernels.NativeBF16() {
		native = ComputeBF16
	}
	check("default kernels", ComputeAuto, native)
	check("zero value", "", ComputeF32)
	check("explicit", ComputeBF16, ComputeBF16)
	check("explicit", ComputeF32, ComputeF32)

	kernels.SetNativeBF16(false)
	check("native bf16 hidden", ComputeAuto, ComputeF32)
	kernels.SetNativeBF16(true)
	if err := kernels.SetImpl("generic"); err != nil {
		t.Fatal(err)
	}
	check("generic kernels", ComputeAuto, ComputeF32)
	check("generic kernels", ComputeBF16, ComputeBF16) // the plain-Go twin runs it

	if _, err := New(cfg, Options{Compute: "fp16"}); err == nil {
		t.Error("Compute fp16 accepted")
	}
}

// TestQuantizedBF16Compute checks that NF4 and INT8 projections run in bf16 compute
// when asked (the result moves) and stay within the bf16 goldens' tolerance of the
// same quantised model in f32 compute: loss 3e-3, gradients 0.15 norm-wise.
func TestQuantizedBF16Compute(t *testing.T) {
	ctx := context.Background()
	dir := quantTestDir(t, "llama")
	for _, kind := range []quant.Kind{quant.KindNF4, quant.KindInt8} {
		t.Run(string(kind), func(t *testing.T) {
			var res [2]result
			var grads [2][][]float32
			for i, c := range []Compute{ComputeF32, ComputeBF16} {
				m := loadModel(t, dir, Options{Quant: kind, Seed: 5, Compute: c})
				if err := m.AddAdapters(AdapterConfig{Targets: []string{"all-linear"}, Rank: 4, Alpha: 8}); err != nil {
					t.Fatal(err)
				}
				perturbAdapters(m)
				r, err := asResult(m.LossAndGrad(ctx, quantBatch(m.Config.VocabSize)))
				if err != nil {
					t.Fatal(err)
				}
				res[i], grads[i] = r, gradsOf(m)
			}
			if res[0].LossSum == res[1].LossSum || math.Abs(res[1].Mean()-res[0].Mean()) > 3e-3*math.Abs(res[0].Mean()) {
				t.Errorf("loss bf16 compute %.8f, f32 %.8f: want different, within 3e-3", res[1].Mean(), res[0].Mean())
			}
			worst := 0.0
			for i, g := range grads[1] {
				var num, den float64
				for j := range g {
					num = math.Max(num, math.Abs(float64(g[j]-grads[0][i][j])))
					den = math.Max(den, math.Abs(float64(grads[0][i][j])))
				}
				worst = math.Max(worst, num/den)
			}
			t.Logf("worst gradient relative difference %.3g", worst)
			if worst > 0.15 {
				t.Errorf("gradients differ by %.3g (norm-wise) from f32 compute, want ≤ 0.15", worst)
			}
		})
	}
}

// TestAutoComputeQuantised checks which weights each compute puts on bf16: with auto
// (where the CPU has native bf16) and bf16, every projection, quantised ones included,
// and the LM head; with f32, none.
func TestAutoComputeQuantised(t *testing.T) {
	if !kernels.NativeBF16() {
		t.Skip("auto is f32 on this CPU (no native bf16 dot products)")
	}
	dir := quantTestDir(t, "llama")
	for _, c := range []struct {
		compute Compute
		bf16    bool
	}{{ComputeAuto, true}, {ComputeBF16, true}, {ComputeF32, false}} {
		m := loadModel(t, dir, Options{Quant: quant.KindNF4, Seed: 5, Compute: c.compute})
		for _, ly := range m.Layers {
			for _, p := range ly.Proj {
				if p != nil && p.W != nil && p.W.BF16Compute != c.bf16 {
					t.Errorf("compute %s: projection BF16Compute = %v, want %v", c.compute, p.W.BF16Compute, c.bf16)
				}
			}
		}
		if m.LMHead.BF16Compute != c.bf16 {
			t.Errorf("compute %s: LM head BF16Compute = %v, want %v", c.compute, m.LMHead.BF16Compute, c.bf16)
		}
	}
}
