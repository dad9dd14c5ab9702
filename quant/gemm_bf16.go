package quant

import "github.com/bidora/bidora/kernels"

// bf16 compute for quantised weights (what bitsandbytes does with
// bnb_4bit_compute_dtype=bfloat16): the activation operand is rounded to bf16 once per
// product (kernels.RoundRows), W is dequantised tile by tile straight into a per-worker
// bf16 panel (decoded to f32 a small chunk at a time, which stays in L1, and rounded to
// nearest even), and each panel is multiplied by kernels' bf16-compute GEMM on the
// rounded operand, products accumulating in f32. m ≤ 4 keeps the fused f32 GEMV
// (decoding).
//
//   - MulNTBF16 (Y = X·Wᵀ): tiles are bands of whole rows of W, contiguous in memory,
//     each giving a band of columns of Y written in place (row stride n); bands run in
//     parallel.
//   - MulNNBF16 (dX = dY·W): dX's columns are cut into slabs (at least two per worker
//     where W is wide enough), slabs run in parallel, and each slab walks W's rows in
//     bands, accumulating dY[:, band]·W[band, slab] into its columns of dX — so each row
//     of a band is dequantised in one call of slab width, not 32 values at a time.
//
// A bf16 panel holds bf16PanelValues values: the bytes of the f32 panel of gemm.go.

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
	mulNTBF16(w, y, x, m, accumulate)
}

// MulNNBF16 is MulNN with bf16 compute.
func (w *NF4) MulNNBF16(dx, dy []float32, m int, accumulate bool) {
	mulNNBF16(w, dx, dy, m, accumulate)
}

// MulNTBF16 is MulNT with bf16 compute.
func (w *Int8) MulNTBF16(y, x []float32, m int, accumulate bool) {
	if m <= gemvMaxRows {
		w.MulNT(y, x, m, accumulate)
		return
	}
	mulNTBF16(w, y, x, m, accumulate)
}

// MulNNBF16 is MulNN with bf16 compute.
func (w *Int8) MulNNBF16(dx, dy []float32, m int, accumulate bool) {
	mulNNBF16(w, dx, dy, m, accumulate)
}

// bf16PanelValues is the target size of a bf16 panel (the 256 KiB of an f32 panel).
func bf16PanelValues() int { return 2 * panelFloats }

// stageFloats is the f32 staging chunk a range is decoded into before rounding.
const stageFloats = 2048

// dequantBF16 writes values [start, start+len(dst)) of w, rounded to bf16, through the
// f32 staging buffer stage.
func dequantBF16(w ranged, dst []kernels.BF16, start int, stage []float32) {
	for len(dst) > 0 {
		c := min(len(dst), len(stage))
		w.DequantizeRange(stage[:c], start)
		kernels.RoundBF16(dst[:c], stage[:c])
		dst, start = dst[c:], start+c
	}
}

func mulNTBF16(w ranged, y, x []float32, m int, acc bool) {
	n, k := w.Shape()
	checkLen("MulNTBF16", y, m*n, x, m*k)
	if noProduct(y, m, n, k, acc) {
		return
	}
	a := kernels.RoundRows(x, m, k, k)
	defer a.Release()
	nt := roundTile(bf16PanelValues()/k, 32, n) // whole 32-wide micro-kernel panels
	tiles := (n + nt - 1) / nt
	kernels.Parallel(tiles, 1, func(lo, hi int) {
		stage := kernels.Scratch(min(stageFloats, nt*k))
		pbuf, panel := kernels.ScratchBF16(nt * k)
		for t := lo; t < hi; t++ {
			j0 := t * nt
			rows := min(n, j0+nt) - j0
			p := panel[:rows*k]
			dequantBF16(w, p, j0*k, *stage)
			kernels.MatMulNTRows(y[j0:], n, a, p, rows, acc)
		}
		kernels.ReleaseScratch(pbuf)
		kernels.ReleaseScratch(stage)
	})
}

func mulNNBF16(w ranged, dx, dy []float32, m int, acc bool) {
	n, k := w.Shape()
	checkLen("MulNNBF16", dx, m*k, dy, m*n)
	if noProduct(dx, m, k, n, acc) { // dX is m×k, the sum runs over W's n rows
		return
	}
	a := kernels.RoundRows(dy, m, n, n)
	defer a.Release()
	// Slabs of dX's columns: two per worker where k allows, at most 512 wide, whole
	// 32-wide panels; bands of W's rows: an even count (rows pair up) filling a panel.
	cw := min(512, roundTile((k+2*kernels.Threads()-1)/(2*kernels.Threads()), 32, k))
	slabs := (k + cw - 1) / cw
	rb := min(n, max(2, bf16PanelValues()/cw/2*2))
	kernels.Parallel(slabs, 1, func(lo, hi int) {
		stage := kernels.Scratch(cw)
		pbuf, panel := kernels.ScratchBF16(rb * cw)
		for s := lo; s < hi; s++ {
			c0 := s * cw
			sw := min(k, c0+cw) - c0
			for r0 := 0; r0 < n; r0 += rb {
				r1 := min(n, r0+rb)
				p := panel[:(r1-r0)*sw]
				for r := r0; r < r1; r++ {
					dequantBF16(w, p[(r-r0)*sw:(r-r0+1)*sw], r*k+c0, (*stage)[:sw])
				}
				kernels.MatMulNNRows(dx[c0:], k, a.Cols(r0, r1), p, sw, acc || r0 > 0)
			}
		}
		kernels.ReleaseScratch(pbuf)
		kernels.ReleaseScratch(stage)
	})
}
