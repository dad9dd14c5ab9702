package quant

import "github.com/bidora/bidora/kernels"

// bf16 compute for quantised weights: the same tile drivers as MulNT/MulNN (gemm.go),
// each dequantised f32 panel multiplied by kernels' bf16-compute GEMM instead of the
// f32 one — the panel is rounded to bf16 while it is packed and the activations are
// rounded to bf16, products accumulate in f32 (what bitsandbytes does with
// bnb_4bit_compute_dtype=bfloat16). m ≤ 4 keeps the fused f32 GEMV (decoding).

// BF16Computer is implemented by the quantised matrices (NF4, Int8) whose GEMMs also
// run in bf16 compute; nn.Weight uses it when its BF16Compute is set.
type BF16Computer interface {
	// MulNTBF16 is MulNT with bf16 compute.
	MulNTBF16(y, x []float32, m int, accumulate bool)
	// MulNNBF16 is MulNN with bf16 compute.
	MulNNBF16(dx, dy []float32, m int, accumulate bool)
}

// MulNTBF16 is MulNT with bf16 compute.
func (w *NF4) MulNTBF16(y, x []float32, m int, accumulate bool) {
	if m <= gemvMaxRows {
		w.MulNT(y, x, m, accumulate)
		return
	}
	mulNTWith(w, y, x, m, accumulate, kernels.MatMulNTF32Compute16)
}

// MulNNBF16 is MulNN with bf16 compute.
func (w *NF4) MulNNBF16(dx, dy []float32, m int, accumulate bool) {
	mulNNWith(w, dx, dy, m, accumulate, kernels.MatMulNNF32Compute16)
}

// MulNTBF16 is MulNT with bf16 compute.
func (w *Int8) MulNTBF16(y, x []float32, m int, accumulate bool) {
	if m <= gemvMaxRows {
		w.MulNT(y, x, m, accumulate)
		return
	}
	mulNTWith(w, y, x, m, accumulate, kernels.MatMulNTF32Compute16)
}

// MulNNBF16 is MulNN with bf16 compute.
func (w *Int8) MulNNBF16(dx, dy []float32, m int, accumulate bool) {
	mulNNWith(w, dx, dy, m, accumulate, kernels.MatMulNNF32Compute16)
}
