package model

import (
	"testing"

	"github.com/bidora/bidora/kernels"
	"github.com/bidora/bidora/modelcfg"
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
