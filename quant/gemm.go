package quant

import (
	"fmt"

	"github.com/bidora/bidora/kernels"
)

// The fused GEMMs cut W into tiles, dequantise each tile into a per-worker f32 panel of
// about panelFloats values and multiply the panel with kernels' GEMM (which packs it for
// its micro-kernel). The panel is the only full-precision copy of any part of W.
//
//   - MulNT (Y = X·Wᵀ): tiles are bands of whole rows of W — contiguous runs of the
//     row-major flattening — each giving a band of columns of Y; bands run in parallel.
//   - MulNN (dX = dY·W): tiles are slabs of columns of W (all rows), each giving a slab of
//     columns of dX, so the reduction over W's rows stays inside one GEMM call and slabs
//     run in parallel without sharing outputs.
//
// Work is spread with kernels.Parallel; the GEMM inside a tile may split further (the
// kernels pool allows nested calls).

// panelFloats is the target size of a dequantised panel (256 KiB of f32: L2-resident).
// A variable so that tests can force many small tiles.
var panelFloats = 1 << 16

// ranged is what the drivers need from a quantised matrix.
type ranged interface {
	Shape() (rows, cols int)
	DequantizeRange(dst []float32, start int)
}

func checkLen(op string, a []float32, na int, b []float32, nb int) {
	if len(a) < na || len(b) < nb {
		panic(fmt.Sprintf("quant: %s: buffers of %d and %d values, need %d and %d", op, len(a), len(b), na, nb))
	}
}

// noProduct handles the empty cases of y[m, n] (+)= x[m, k]·Wᵀ: no rows or columns
// (nothing to do), or k = 0 (y is zero unless accumulating). It reports whether y is
// done.
func noProduct(y []float32, m, n, k int, acc bool) bool {
	if m <= 0 || n <= 0 {
		return true
	}
	if k == 0 {
		if !acc {
			clear(y[:m*n])
		}
		return true
	}
	return false
}

// roundTile returns a tile extent near target, a multiple of unit, at least unit, at
// most limit.
func roundTile(target, unit, limit int) int {
	t := max(unit, target/unit*unit)
	return min(t, limit)
}

func mulNT(w ranged, y, x []float32, m int, acc bool) {
	n, k := w.Shape()
	checkLen("MulNT", y, m*n, x, m*k)
	if noProduct(y, m, n, k, acc) {
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
			if ytmp == nil { // y's columns j0..j1 are contiguous
				kernels.MatMulNT(y[j0:], x, p, m, rows, k, acc)
				continue
			}
			yt := (*ytmp)[:m*rows]
			kernels.MatMulNT(yt, x, p, m, rows, k, false)
			scatterCols(y, n, j0, yt, rows, m, acc)
		}
		kernels.ReleaseScratch(panel)
		if ytmp != nil {
			kernels.ReleaseScratch(ytmp)
		}
	})
}

func mulNN(w ranged, dx, dy []float32, m int, acc bool) {
	n, k := w.Shape()
	checkLen("MulNN", dx, m*k, dy, m*n)
	if noProduct(dx, m, k, n, acc) { // dX is m×k, the sum runs over W's n rows
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
				kernels.MatMulNN(dx[c0:], dy, p, m, n, cw, acc)
				continue
			}
			dt := (*dtmp)[:m*cw]
			kernels.MatMulNN(dt, dy, p, m, n, cw, false)
			scatterCols(dx, k, c0, dt, cw, m, acc)
		}
		kernels.ReleaseScratch(panel)
		if dtmp != nil {
			kernels.ReleaseScratch(dtmp)
		}
	})
}

// scatterCols writes (or adds) src [m, w] into columns c0..c0+w of dst [m, ld].
func scatterCols(dst []float32, ld, c0 int, src []float32, w, m int, acc bool) {
	for i := range m {
		d := dst[i*ld+c0 : i*ld+c0+w]
		s := src[i*w : (i+1)*w]
		if acc {
			for q, v := range s {
				d[q] += v
			}
		} else {
			copy(d, s)
		}
	}
}
