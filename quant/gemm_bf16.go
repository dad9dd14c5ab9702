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

type gemmFunc func(c, a, w []float32, m, n, k int, acc bool)

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

// mulNTWith is mulNT with the panel product mm (Y[m×rows] = X·Pᵀ).
func mulNTWith(w ranged, y, x []float32, m int, acc bool, mm gemmFunc) {
	n, k := w.Shape()
	checkLen("MulNTBF16", y, m*n, x, m*k)
	if m <= 0 || n <= 0 {
		return
	}
	if k == 0 {
		if !acc {
			clear(y[:m*n])
		}
		return
	}
	nt := roundTile(panelFloats/k, 16, n)
	tiles := (n + nt - 1) / nt
	kernels.Parallel(tiles, 1, func(lo, hi int) {
		panel := kernels.Scratch(nt * k)
		var ytmp *[]float32
		if m > 1 && tiles > 1 {
			ytmp = kernels.Scratch(m * nt)
		}
		for t := lo; t < hi; t++ {
			j0 := t * nt
			rows := min(n, j0+nt) - j0
			p := (*panel)[:rows*k]
			w.DequantizeRange(p, j0*k)
			if ytmp == nil {
				mm(y[j0:], x, p, m, rows, k, acc)
				continue
			}
			yt := (*ytmp)[:m*rows]
			mm(yt, x, p, m, rows, k, false)
			scatterCols(y, n, j0, yt, rows, m, acc)
		}
		kernels.ReleaseScratch(panel)
		if ytmp != nil {
			kernels.ReleaseScratch(ytmp)
		}
	})
}

// mulNNWith is mulNN with the panel product mm (dX[m×cw] = dY·P).
func mulNNWith(w ranged, dx, dy []float32, m int, acc bool, mm gemmFunc) {
	n, k := w.Shape()
	checkLen("MulNNBF16", dx, m*k, dy, m*n)
	if m <= 0 || k <= 0 {
		return
	}
	if n == 0 {
		if !acc {
			clear(dx[:m*k])
		}
		return
	}
	ct := roundTile(panelFloats/n, 32, k)
	slabs := (k + ct - 1) / ct
	kernels.Parallel(slabs, 1, func(lo, hi int) {
		panel := kernels.Scratch(n * ct)
		var dtmp *[]float32
		if slabs > 1 && m > 1 {
			dtmp = kernels.Scratch(m * ct)
		}
		for s := lo; s < hi; s++ {
			c0 := s * ct
			cw := min(k, c0+ct) - c0
			p := (*panel)[:n*cw]
			for r := range n {
				w.DequantizeRange(p[r*cw:(r+1)*cw], r*k+c0)
			}
			if dtmp == nil {
				mm(dx[c0:], dy, p, m, n, cw, acc)
				continue
			}
			dt := (*dtmp)[:m*cw]
			mm(dt, dy, p, m, n, cw, false)
			scatterCols(dx, k, c0, dt, cw, m, acc)
		}
		kernels.ReleaseScratch(panel)
		if dtmp != nil {
			kernels.ReleaseScratch(dtmp)
		}
	})
}
