package quant

import "github.com/bidora/bidora/kernels"

// Matrix–vector products for token-by-token decoding. With one (or a few) rows of X,
// Y = X·Wᵀ is memory-bound: the tiled GEMM of gemm.go would dequantise every weight
// into an f32 panel (writing and re-reading 8 or 4 times the bytes of the codes) and
// then pad the single row of X to the micro-kernel's height. The GEMVs instead stream
// the codes once, decode them in registers and multiply them straight into X:
//
//   - NF4: per block, Σ code[nibble]·x over the block's values, times the block's
//     absmax (decoded first, 16 at a time, when double-quantised).
//   - INT8: per row, Σ code·x, times the row's scale.
//
// Each result differs from the dot product of X with the dequantised row only by
// rounding: the scale is applied once per block (row) instead of once per value.
// MulNT takes this path for m ≤ gemvMaxRows, as kernels.MatMulNTBF16 does for bf16.
// The fused kernels are AVX-512; the plain-Go rows are their twin and run with the
// generic decoder set. Where a CPU has assembly decoders but no fused kernel (AVX2,
// NEON) or the shape does not fit the kernel, the tiled path runs (decoding a panel with
// the assembly decoders, then kernels' own GEMV): measured 3–15x faster than the Go rows.

// gemvMaxRows is the largest m for which MulNT runs the GEMV (kernels' bound too).
const gemvMaxRows = 4

// gemvChunkRows is how many weight rows are decoded together: the unit of work of the
// pool and of the block-scale scratch, small enough that the rows' codes stay in L2
// while every row of X (m ≤ 4) passes over them.
const gemvChunkRows = 64

type (
	// nf4GemvFunc: see nf4GemvAVX512 in gemv_amd64.s.
	nf4GemvFunc func(data *byte, x *float32, k, rows, bs int, scales *float32, code *[16]float32, y *float32, acc bool)
	// i8GemvFunc: see i8GemvAVX512.
	i8GemvFunc func(data *int8, x *float32, k, rows int, scales *float32, y *float32, acc bool)
	// nestedScalesFunc: see nestedScalesAVX512.
	nestedScalesFunc func(dst *float32, q *byte, n16 int, code *[256]float32, a, off float32)
)

// gemvNF4 computes y[m, Rows] (+)= x[m, Cols]·Wᵀ for small m.
func (w *NF4) gemvNF4(y, x []float32, m int, acc bool) {
	n, k := w.Rows, w.Cols
	checkLen("MulNT", y, m*n, x, m*k)
	if noProduct(y, m, n, k, acc) {
		return
	}
	bs := w.BlockSize
	kern := activeDec.nf4Gemv
	if kern == nil || bs%64 != 0 || k%bs != 0 {
		// No fused kernel for this CPU or shape (rows that start inside a block).
		if activeDec != genericDecoders {
			mulNT(w, y, x, m, acc) // assembly decoders + kernels' GEMV beat the Go rows (3–15x)
			return
		}
		kernels.Parallel(n, gemvChunkRows, func(lo, hi int) { w.gemvRowsGo(y, x, m, lo, hi, acc) })
		return
	}
	xsb := kernels.Scratch(m * k)
	xs := (*xsb)[:m*k]
	for i := range m {
		interleaveNF4(xs[i*k:(i+1)*k], x[i*k:(i+1)*k])
	}
	bpr := k / bs // blocks per row
	kernels.Parallel(n, gemvChunkRows, func(lo, hi int) {
		var sbuf *[]float32
		for r0 := lo; r0 < hi; r0 += gemvChunkRows {
			r1 := min(hi, r0+gemvChunkRows)
			var sc []float32
			if w.Nested == nil {
				sc = w.Absmax[r0*bpr : r1*bpr]
			} else {
				if sbuf == nil {
					sbuf = kernels.Scratch(gemvChunkRows * bpr)
				}
				sc = (*sbuf)[:(r1-r0)*bpr]
				w.Nested.values(sc, r0*bpr)
			}
			for i := range m {
				kern(&w.Data[r0*k/2], &xs[i*k], k, r1-r0, bs, &sc[0], &w.Code, &y[i*n+r0], acc)
			}
		}
		if sbuf != nil {
			kernels.ReleaseScratch(sbuf)
		}
	})
	kernels.ReleaseScratch(xsb)
}

// interleaveNF4 re-orders x (len a multiple of 32) for nf4GemvAVX512: per group of 32,
// the even-indexed values, then the odd-indexed ones.
func interleaveNF4(dst, x []float32) {
	for g := 0; g+32 <= len(x); g += 32 {
		s, d := x[g:g+32], dst[g:g+32]
		for j := range 16 {
			d[j], d[16+j] = s[2*j], s[2*j+1]
		}
	}
}

// values writes absmax values b0, b0+1, … into dst, as Value computes them.
func (q *NestedAbsmax) values(dst []float32, b0 int) {
	f := activeDec.nestedScales
	for len(dst) > 0 {
		nb := b0 / q.BlockSize
		cnt := min(len(dst), (nb+1)*q.BlockSize-b0)
		a, src := q.Absmax[nb], q.Q[b0:b0+cnt]
		done := 0
		if f != nil && cnt >= 16 {
			done = cnt / 16 * 16
			f(&dst[0], &src[0], cnt/16, &q.Code, a, q.Offset)
		}
		for i := done; i < cnt; i++ {
			dst[i] = float32(q.Code[src[i]]*a) + q.Offset
		}
		dst, b0 = dst[cnt:], b0+cnt
	}
}

// gemvRowsGo is the plain-Go twin of nf4GemvAVX512, for any shape and block size:
// outputs [lo, hi) of the m rows of X.
func (w *NF4) gemvRowsGo(y, x []float32, m, lo, hi int, acc bool) {
	n, k, bs := w.Rows, w.Cols, w.BlockSize
	for r := lo; r < hi; r++ {
		start := r * k
		for i := range m {
			xi := x[i*k : (i+1)*k]
			var s float32
			for pos := start; pos < start+k; {
				b := pos / bs
				end := min(start+k, (b+1)*bs)
				s += w.BlockAbsmax(b) * nf4DotGo(w.Data, pos, xi[pos-start:end-start], &w.Code)
				pos = end
			}
			if acc {
				y[i*n+r] += s
			} else {
				y[i*n+r] = s
			}
		}
	}
}

// nf4DotGo returns Σ code[nibble pos+p]·x[p] over len(x), the nibbles in bitsandbytes'
// order (high half first), with two partial sums (even and odd values).
func nf4DotGo(data []byte, pos int, x []float32, code *[16]float32) float32 {
	var s0, s1 float32
	p := 0
	if pos%2 == 1 {
		s1 = code[data[pos/2]&15] * x[0]
		p = 1
	}
	for ; p+1 < len(x); p += 2 {
		b := data[(pos+p)/2]
		s0 += code[b>>4] * x[p]
		s1 += code[b&15] * x[p+1]
	}
	if p < len(x) {
		s0 += code[data[(pos+p)/2]>>4] * x[p]
	}
	return s0 + s1
}

// gemvInt8 computes y[m, Rows] (+)= x[m, Cols]·Wᵀ for small m.
func (w *Int8) gemvInt8(y, x []float32, m int, acc bool) {
	n, k := w.Rows, w.Cols
	checkLen("MulNT", y, m*n, x, m*k)
	if noProduct(y, m, n, k, acc) {
		return
	}
	kern := activeDec.i8Gemv
	if kern == nil && activeDec != genericDecoders {
		mulNT(w, y, x, m, acc) // assembly decoders without a fused kernel (AVX2): see gemvNF4
		return
	}
	kernels.Parallel(n, gemvChunkRows, func(lo, hi int) {
		if kern == nil {
			w.gemvRowsGo(y, x, m, lo, hi, acc)
			return
		}
		for r0 := lo; r0 < hi; r0 += gemvChunkRows {
			r1 := min(hi, r0+gemvChunkRows)
			for i := range m {
				kern(&w.Data[r0*k], &x[i*k], k, r1-r0, &w.Scale[r0], &y[i*n+r0], acc)
			}
		}
	})
}

// gemvRowsGo is the plain-Go twin of i8GemvAVX512: outputs [lo, hi) of the m rows of X.
func (w *Int8) gemvRowsGo(y, x []float32, m, lo, hi int, acc bool) {
	n, k := w.Rows, w.Cols
	for r := lo; r < hi; r++ {
		q := w.Data[r*k : (r+1)*k]
		for i := range m {
			xi := x[i*k : (i+1)*k]
			var s0, s1 float32
			p := 0
			for ; p+1 < k; p += 2 {
				s0 += float32(q[p]) * xi[p]
				s1 += float32(q[p+1]) * xi[p+1]
			}
			if p < k {
				s0 += float32(q[p]) * xi[p]
			}
			s := (s0 + s1) * w.Scale[r]
			if acc {
				y[i*n+r] += s
			} else {
				y[i*n+r] = s
			}
		}
	}
}
