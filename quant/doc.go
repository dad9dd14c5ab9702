// Package quant holds frozen weight matrices in quantised form — NF4 in bitsandbytes'
// storage layout (QLoRA), and weight-only INT8 with one scale per row — together with the
// GEMMs that use them without ever materialising a full-precision copy.
//
// A weight is an [Rows, Cols] matrix (out × in features, row-major, as in HF
// checkpoints). Both types implement Matrix: MulNT (Y = X·Wᵀ, the forward of a linear
// layer) and MulNN (dX = dY·W, its input gradient) dequantise W tile by tile into a small
// f32 panel and hand each panel to the kernels package's GEMM; for m ≤ 4 rows of X
// (token-by-token decoding) MulNT instead runs a fused GEMV that decodes the codes in
// registers and multiplies them straight into X, streaming each weight once (gemv.go).
// Row dequantises one row (package nn computes the DoRA / QDoRA row norms
// ‖W + s·B·A‖ from it).
//
// NF4 follows bitsandbytes' reference algorithm (its pure-PyTorch backend, which is also
// what it runs on CPU): the matrix is flattened row-major and cut into blocks of 64
// values — a block may run across rows —, each block is scaled by its absolute maximum
// and every value coded by the nearest of the 16 NormalFloat levels (NF4Code), two codes
// per byte with the first in the high nibble. Double quantisation codes the per-block
// absmax values again, minus their mean, with bitsandbytes' signed 8-bit dynamic map in
// blocks of 256. The bytes are tested equal to those of tools/reference/bnb_nf4.py, a
// port of bitsandbytes' reference quantiser written for this repository (the tests do
// not run bitsandbytes itself); all-zero blocks, a block with a single non-zero value,
// the last partial block and non-finite input are tested here directly. Checkpoints
// saved by bitsandbytes (`*-bnb-4bit` repos) load as they are (LoadBnb4bit) and ours
// can be saved in its format (NF4.Tensors).
//
// INT8 is weight-only: q = round(W/scale) (half to even, as torch.round) with per
// output row scale = max|row|/127 (absmax), dequantised into f32 tiles inside the GEMM.
// It is not bitsandbytes' LLM.int8: activations stay f32 and there is no outlier
// decomposition.
//
// A NaN or ±Inf in a weight is refused with a *NonFiniteError (naming the tensor when
// it comes from QuantizeTensor).
//
// Quantising while loading (QuantizeTensor) reads a bf16/f16/f32 tensor from a
// safetensors.Source chunk by chunk, so the full-precision weight is never copied.
package quant
