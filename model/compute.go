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
// Quantised projections (NF4, INT8) follow the same choice: in bf16 compute their
// tiles are dequantised straight into bf16 panels for the same kernels (package quant).
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

// applyCompute marks every frozen weight with a product (projections, LM head) for
// bf16 compute or not: all of them with bf16, none with f32.
func (m *Model) applyCompute() {
	bf16 := m.compute == ComputeBF16
	for _, ly := range m.Layers {
		for _, p := range ly.Proj {
			if p != nil && p.W != nil {
				p.W.BF16Compute = bf16
			}
		}
	}
	if m.LMHead != nil {
		m.LMHead.BF16Compute = bf16
	}
}
