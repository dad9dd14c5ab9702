// Package kernels holds the CPU compute kernels of the bidora engine: GEMM in the
// three forms training needs, with f32 or bf16 weights and f32 accumulation, small
// vector helpers, and the fixed worker pool they run on.
//
// Besides the pooled GEMMs there are single-threaded building blocks meant to be
// called from inside Parallel workers: MulPacked multiplies by a matrix packed once
// (Packed) for the micro-kernel, and the vectorised float32 exp (Exp, within 2 ulp)
// with the softmax helpers built on it (ExpShiftSum, ExpSub, Max, Scale, SiLUMul).
// Outputs at most 8 columns wide (rank-wide LoRA products) run on a narrow 12×8
// micro-kernel instead of padding the wide one.
//
// Every exported kernel has a plain-Go twin (ref.go); the fast path is chosen once at
// start-up from CPU features: "avx512" (Go assembly, 12×32 zmm micro-kernel),
// "avx2" (AVX2/FMA assembly, 6×16 ymm micro-kernel), "neon" (arm64 assembly, 8×8
// micro-kernel with FMLA by element) or "generic" (blocked pure Go, 4×4 register
// tile; older x86 and other architectures). Impl reports the choice and SetImpl forces
// another one (tests and benchmarks use it to check every path). PeakFLOPsPerCycle
// gives the core's expected f32 peak for the chosen set.
//
// The GEMMs are blocked in the Goto/BLIS way: the weight operand is packed per task and
// per k block into panels as wide as the micro-kernel (bf16 is widened to f32 while
// packing, so no full-precision copy of a weight ever exists), the activation operand
// is read in place, and tasks (column groups, split along rows when there are few)
// run on a fixed pool of Threads() workers (SetThreads resizes it).
//
// bf16 compute (bf16compute.go) is the other precision of the frozen-weight products:
// MatMulNTBF16Compute / MatMulNNBF16Compute (and their F32-weight forms) round the
// activation operand to bf16 and accumulate bf16 pair products in f32. Where the CPU
// has AVX512_BF16 a 12×32 VDPBF16PS micro-kernel runs them at twice the f32 rate
// (NativeBF16 reports it, SetNativeBF16 hides it); elsewhere a plain-Go twin computes
// the same thing, slowly.
//
// Shapes follow the linear-layer convention of HF models: a weight W is [n, k]
// (out features × in features), row-major. Buffers shorter than the shape needs are a
// programming error and panic.
package kernels

import "fmt"

// BF16 is a bfloat16 value stored as its raw 16 bits (the high half of an f32).
type BF16 = uint16

// gemvMaxRows is the largest m for which the forward products take the GEMV path:
// up to 4 rows of X share one pass over W (docs/benchmarks/gemv.md).
const gemvMaxRows = 4

// MatMulNT computes Y[m×n] = X[m×k] · W[n×k]ᵀ (the forward of a linear layer).
// With accumulate, Y += X·Wᵀ instead.
func MatMulNT(y, x, w []float32, m, n, k int, accumulate bool) {
	checkLen("MatMulNT", y, m*n, x, m*k, len(w), n*k)
	if m <= gemvMaxRows { // a few rows (decoding): stream W once instead of packing it
		GemvF32(y, x, w, m, n, k, accumulate)
		return
	}
	gemm(&active.gemm, m, n, k, x, k, packNT(w, k, active.packT), y, n, accumulate)
}

// MatMulNTBF16 is MatMulNT with bf16 weights, widened to f32 inside the kernel.
func MatMulNTBF16(y, x []float32, w []BF16, m, n, k int, accumulate bool) {
	checkLen("MatMulNTBF16", y, m*n, x, m*k, len(w), n*k)
	if m <= gemvMaxRows {
		GemvBF16(y, x, w, m, n, k, accumulate)
		return
	}
	gemm(&active.gemm, m, n, k, x, k, packNT(w, k, active.packTBF16), y, n, accumulate)
}

// MatMulNN computes dX[m×k] = dY[m×n] · W[n×k] (input gradient of a linear layer).
// With accumulate, dX += dY·W.
func MatMulNN(dx, dy, w []float32, m, n, k int, accumulate bool) {
	checkLen("MatMulNN", dx, m*k, dy, m*n, len(w), n*k)
	gemm(&active.gemm, m, k, n, dy, n, packRows(w, k), dx, k, accumulate)
}

// MatMulNNBF16 is MatMulNN with bf16 weights.
func MatMulNNBF16(dx, dy []float32, w []BF16, m, n, k int, accumulate bool) {
	checkLen("MatMulNNBF16", dx, m*k, dy, m*n, len(w), n*k)
	gemm(&active.gemm, m, k, n, dy, n, packRowsBF16(w, k, active.packRowsBF16), dx, k, accumulate)
}

// MatMulTN computes dW[n×k] = dY[m×n]ᵀ · X[m×k] (weight gradient of a linear layer,
// used for adapter matrices only). With accumulate, dW += dYᵀ·X.
//
// One of the two operands is transposed into a pooled scratch buffer first; when k is
// the small side (dB = dYᵀ·U with k = rank), dWᵀ = Xᵀ·dY is computed instead and
// transposed back, so a rank-wide output never pads the wide micro-kernel columns.
func MatMulTN(dw, dy, x []float32, m, n, k int, accumulate bool) {
	checkLen("MatMulTN", dw, n*k, dy, m*n, len(x), m*k)
	if n <= 0 || k <= 0 {
		return
	}
	mk := &active.gemm
	if k < n && k < mk.nr {
		// dWᵀ[k×n] = Xᵀ[k×m] · dY[m×n].
		xt := getBuf(k * m)
		transpose(*xt, x, m, k, k)
		out := getBuf(k * n)
		gemm(mk, k, n, m, *xt, m, packRows(dy, n), *out, n, false)
		o := *out
		for j := range n {
			row := dw[j*k : j*k+k]
			for i := range row {
				if accumulate {
					row[i] += o[i*n+j]
				} else {
					row[i] = o[i*n+j]
				}
			}
		}
		putBuf(out)
		putBuf(xt)
		return
	}
	at := getBuf(n * m)
	transpose(*at, dy, m, n, n)
	gemm(mk, n, k, m, *at, m, packRows(x, k), dw, k, accumulate)
	putBuf(at)
}

// Dot returns Σ a[i]·b[i] over len(a) elements (len(b) ≥ len(a)).
func Dot(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	v := n / active.vec * active.vec
	var s float32
	if v > 0 {
		s = active.dot(&a[0], &b[0], v)
	}
	for i := v; i < n; i++ {
		s += a[i] * b[i]
	}
	return s
}

// Axpy computes y[i] += alpha·x[i] over len(x) elements (len(y) ≥ len(x)).
func Axpy(alpha float32, x, y []float32) {
	n := len(x)
	y = y[:n]
	v := n / active.vec * active.vec
	if v > 0 {
		active.axpy(alpha, &x[0], &y[0], v)
	}
	for i := v; i < n; i++ {
		y[i] += alpha * x[i]
	}
}

// checkLen panics with a clear message when a caller passes buffers too short for the
// shape: a programming error, never user input.
func checkLen(op string, out []float32, nOut int, in []float32, nIn int, lw, nw int) {
	if len(out) < nOut || len(in) < nIn || lw < nw {
		panic(fmt.Sprintf("kernels.%s: buffers too short for the shape (have %d, %d, %d; need %d, %d, %d)",
			op, len(out), len(in), lw, nOut, nIn, nw))
	}
}
