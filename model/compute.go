package model

import (
	"fmt"

	"github.com/bidora/bidora/kernels"
)

// Compute is the precision of the frozen-weight products: the forward Y = X·Wᵀ and
// input gradient dX = dY·W of every projection and of the LM head.
//
// With ComputeBF16 the activation side of those products is rounded to bf16 and bf16
// pairs are multiplied and accumulated in f32 (what bf16 autocast does on GPUs; on
// CPUs with AVX512_BF16 it runs at twice the f32 rate). Norms, softmax, the loss, the
// adapter's own products, every gradient and the optimiser stay f32. ComputeF32, and
// the zero value "", is the f32 path exactly. ComputeAuto picks bf16 where the CPU has
// native bf16 dot products (kernels.NativeBF16) and f32 elsewhere (the CLI's default).
// With ComputeBF16, quantised projections (NF4, INT8) dequantise their tiles into the
// same bf16 kernels; ComputeAuto leaves them on f32 compute, which is faster for them
// today (their f32 tiles are converted to bf16 pairs in plain Go: docs/benchmarks.md,
// "bf16 compute round two").
type Compute string

const (
	ComputeAuto Compute = "auto"
	ComputeBF16 Compute = "bf16"
	ComputeF32  Compute = "f32"
)

// Resolve turns auto into bf16 or f32 for this CPU and the kernel set in use, "" into
// f32, and rejects anything else.
func (c Compute) Resolve() (Compute, error) {
	switch c {
	case "":
		return ComputeF32, nil
	case ComputeAuto:
		if kernels.NativeBF16() {
			return ComputeBF16, nil
		}
		return ComputeF32, nil
	case ComputeBF16, ComputeF32:
		return c, nil
	}
	return "", fmt.Errorf("compute %q: want auto, bf16 or f32", string(c))
}

// Compute reports the precision the frozen-weight products use: ComputeBF16 or
// ComputeF32 (Options.Compute resolved when the model was built).
func (m *Model) Compute() Compute { return m.compute }

// ComputeSummary says in words which products run in bf16, for reports: "f32", "bf16",
// or, when auto kept the quantised projections on f32, "bf16 (nf4 projections f32)".
func (m *Model) ComputeSummary() string {
	if m.compute != ComputeBF16 {
		return string(m.compute)
	}
	for _, ly := range m.Layers {
		for _, p := range ly.Proj {
			if p != nil && p.W != nil && p.W.Q != nil && !p.W.BF16Compute {
				return fmt.Sprintf("bf16 (%s projections f32)", p.W.Q.Kind())
			}
		}
	}
	return string(m.compute)
}

// applyCompute marks every frozen weight with a product (projections, LM head) for
// bf16 compute or not: all of them with bf16, none with f32, and with auto all but
// the quantised projections.
func (m *Model) applyCompute() {
	bf16 := m.compute == ComputeBF16
	// auto keeps quantised weights on f32 compute (see Compute).
	quantBF16 := bf16 && m.opts.Compute != ComputeAuto
	for _, ly := range m.Layers {
		for _, p := range ly.Proj {
			if p != nil && p.W != nil {
				p.W.BF16Compute = bf16 && (p.W.Q == nil || quantBF16)
			}
		}
	}
	if m.LMHead != nil {
		m.LMHead.BF16Compute = bf16
	}
}
