package kernels

import (
	"math"
	"unsafe"
)

// bf16 compute: the frozen-weight products of training (Y = X·Wᵀ forward, dX = dY·W
// backward) with the activation operand rounded to bf16 (round to nearest even) and
// bf16 pairs multiplied and accumulated in f32, as VDPBF16PS does — what bf16 autocast
// does on GPUs. The weight operand is bf16 as stored, or an f32 weight rounded to bf16
// while it is packed.
//
// The driver mirrors gemm: the activation operand is rounded once into a bf16 copy
// (rows padded to the micro-kernel's height and to an even k, with zeros), tasks pack
// their columns of B per k block into panels of (k, k+1) pairs (32 bits per column and
// pair step), and the micro-kernel runs over full tiles; ragged outputs go through a
// scratch tile.

// A bf16Set is the bf16-compute kernel set of an impl: a micro-kernel on the pair
// layout and optional fast helpers (nil: the plain-Go loops run).
type bf16Set struct {
	native bool // runs on the CPU's bf16 dot-product instructions
	mr, nr int
	// kern computes C[mr×nr] (+)= A[mr×2kp]·B[2kp×nr]: A bf16 row-major with stride
	// lda (even), B a packed pair panel (nr words per pair step), C f32 with stride ldc.
	kern func(kp int, a *BF16, lda int, b *uint32, c *float32, ldc int, acc bool)
	// round rounds n floats (a multiple of 16) to bf16 like roundBF16.
	round func(dst *BF16, src *float32, n int)
	// pairs packs one full nr = 32 pair panel of a row-major bf16 B with stride ldb.
	pairs func(dst *uint32, src *BF16, ldb, kp int)
	// trans transposes 16×16 blocks of 32-bit words (the NT packer of bf16 weights).
	trans transposer16[float32]
}

// bf16Generic is the plain-Go twin, used by kernel sets without native bf16.
var bf16Generic = &bf16Set{mr: 4, nr: 16, kern: gemmBF16KernGo}

// bf16Off, when set, hides the native bf16 kernels (SetNativeBF16).
var bf16Off bool

func activeBF16() *bf16Set {
	if s := active.bf16; s != nil && !bf16Off {
		return s
	}
	return bf16Generic
}

// NativeBF16 reports whether the active kernel set multiplies bf16 pairs in hardware
// (AVX512_BF16's VDPBF16PS). Without it the bf16-compute GEMMs still work, on the
// plain-Go twin, much slower than the f32 kernels: callers choosing a compute mode
// automatically should use bf16 only when NativeBF16 is true.
func NativeBF16() bool { return activeBF16().native }

// SetNativeBF16 enables (the default) or hides the native bf16 kernels, so that tests
// and benchmarks can see what a CPU without them does. Call it while no kernel runs.
func SetNativeBF16(on bool) { bf16Off = !on }

// roundBF16 rounds f to bf16 as VCVTNEPS2BF16 does: to nearest even, NaN quieted,
// denormal inputs to a zero of the same sign.
func roundBF16(f float32) BF16 {
	u := math.Float32bits(f)
	switch {
	case u&0x7f800000 == 0:
		return BF16(u>>16) & 0x8000
	case u&0x7fffffff > 0x7f800000:
		return BF16(u>>16) | 0x40
	}
	u += 0x7fff + (u>>16)&1
	return BF16(u >> 16)
}

// RoundBF16 rounds src to bf16 into dst[:len(src)] (to nearest even, NaN quieted,
// denormals to signed zero: the rounding of the bf16-compute GEMMs).
func RoundBF16(dst []BF16, src []float32) {
	n := len(src)
	dst = dst[:n]
	v := 0
	if s := activeBF16(); s.round != nil {
		v = n / 16 * 16
		if v > 0 {
			s.round(&dst[0], &src[0], v)
		}
	}
	for i := v; i < n; i++ {
		dst[i] = roundBF16(src[i])
	}
}

// bf16Val widens a bf16 input as VDPBF16PS reads it: denormals count as zero.
func bf16Val(b uint32) float32 {
	if b&0x7f80 == 0 {
		return 0
	}
	return math.Float32frombits(b << 16)
}

// gemmBF16KernGo is the plain-Go twin of the bf16 micro-kernel (any mr×nr from the
// set): per pair step, acc += a.lo·b.lo + a.hi·b.hi in f32. Both products are exact in
// f32 (8-bit significands), so only the additions round.
func gemmBF16KernGo(kp int, a *BF16, lda int, b *uint32, c *float32, ldc int, acc bool) {
	const mr, nr = 4, 16
	as := unsafe.Slice(a, (mr-1)*lda+2*kp)
	bs := unsafe.Slice(b, kp*nr)
	cs := unsafe.Slice(c, (mr-1)*ldc+nr)
	var t [mr][nr]float32
	for p := range kp {
		brow := bs[p*nr : p*nr+nr]
		for r := range mr {
			lo, hi := bf16Val(uint32(as[r*lda+2*p])), bf16Val(uint32(as[r*lda+2*p+1]))
			tr := &t[r]
			for j, w := range brow {
				s := tr[j] + lo*bf16Val(w&0xffff)
				tr[j] = s + hi*bf16Val(w>>16)
			}
		}
	}
	for r := range mr {
		d := cs[r*ldc : r*ldc+nr]
		if acc {
			for j := range d {
				d[j] += t[r][j]
			}
		} else {
			copy(d, t[r][:])
		}
	}
}

// A pairPacker packs pair rows [p0, p0+kp) of B (row 2p holds the low halves, 2p+1
// the high; rows at or past B's k are zero) and columns [j0, j0+nc) into ⌈nc/nr⌉
// panels of kp×nr words, zero-filling columns past nc.
type pairPacker func(dst []uint32, p0, kp, j0, nc, nr int)

// bf16Bits gives the bf16 bits of a weight element: bf16 as stored, f32 rounded.
func bf16Bits[T float32 | BF16](v T) uint32 {
	if unsafe.Sizeof(v) == 2 {
		return uint32(*(*BF16)(unsafe.Pointer(&v)))
	}
	return uint32(roundBF16(*(*float32)(unsafe.Pointer(&v))))
}

// packPairsNT packs B = Wᵀ for W[n×k] row-major (stride k): the pair (p, j) is
// W[j][2p], W[j][2p+1]. For bf16 W with even k those are one 32-bit word, and whole
// 16×16 word blocks go through s.trans.
func packPairsNT[T float32 | BF16](w []T, k int, s *bf16Set) pairPacker {
	var words []float32
	if s.trans != nil && k%2 == 0 && unsafe.Sizeof(w[0]) == 2 && len(w) > 0 {
		words = unsafe.Slice((*float32)(unsafe.Pointer(&w[0])), len(w)/2)
	}
	return func(dst []uint32, p0, kp, j0, nc, nr int) {
		np := (nc + nr - 1) / nr
		kfast := 0
		if words != nil && nr%16 == 0 {
			kfast = kp / 16 * 16
		}
		for jp := range np {
			pan := dst[jp*kp*nr : (jp+1)*kp*nr]
			for jj := 0; jj < nr; jj++ {
				j := jp*nr + jj
				if j >= nc {
					for p := range kp {
						pan[p*nr+jj] = 0
					}
					continue
				}
				p := 0
				if kfast > 0 && jj%16 == 0 && j+16 <= nc {
					s.trans((*float32)(unsafe.Pointer(&pan[jj])), nr, &words[(j0+j)*(k/2)+p0], k/2, kfast/16)
					for r := range 16 {
						row := w[(j0+j+r)*k:]
						for q := kfast; q < kp; q++ {
							pan[q*nr+jj+r] = pairAt(row, 2*(p0+q), k)
						}
					}
					jj += 15
					continue
				}
				row := w[(j0+j)*k:]
				for ; p < kp; p++ {
					pan[p*nr+jj] = pairAt(row, 2*(p0+p), k)
				}
			}
		}
	}
}

// pairAt returns row[c] | row[c+1]<<16 as bf16 bits, the high half zero when c+1 ≥ k.
func pairAt[T float32 | BF16](row []T, c, k int) uint32 {
	lo := bf16Bits(row[c])
	if c+1 >= k {
		return lo
	}
	return lo | bf16Bits(row[c+1])<<16
}

// packPairsNN packs B = W for W[kb×n] row-major with stride n (B's k is kb): the pair
// (p, j) is W[2p][j], W[2p+1][j]. Full 32-wide panels of bf16 W go through s.pairs.
func packPairsNN[T float32 | BF16](w []T, kb, n int, s *bf16Set) pairPacker {
	fast := s.pairs != nil && unsafe.Sizeof(w[0]) == 2
	return func(dst []uint32, p0, kp, j0, nc, nr int) {
		np := (nc + nr - 1) / nr
		full := min(kp, kb/2-p0) // pair rows with both halves inside B
		for jp := range np {
			pan := dst[jp*kp*nr : (jp+1)*kp*nr]
			c0 := j0 + jp*nr
			wd := min(nr, nc-jp*nr)
			p := 0
			if fast && wd == 32 && nr == 32 && full > 0 {
				src := unsafe.Slice((*BF16)(unsafe.Pointer(&w[0])), len(w))
				_ = src[(2*(p0+full)-1)*n+c0+31] // the assembly reads up to here
				s.pairs(&pan[0], &src[2*p0*n+c0], n, full)
				p = full
			}
			for ; p < kp; p++ {
				d := pan[p*nr : p*nr+nr]
				r := 2 * (p0 + p)
				lo := w[r*n+c0 : r*n+c0+wd]
				if r+1 < kb {
					hi := w[(r+1)*n+c0 : (r+1)*n+c0+wd]
					for q := range lo {
						d[q] = bf16Bits(lo[q]) | bf16Bits(hi[q])<<16
					}
				} else {
					for q := range lo {
						d[q] = bf16Bits(lo[q])
					}
				}
				clear(d[wd:])
			}
		}
	}
}

// kpBlock is the k block of the bf16 driver in pairs: a packed panel of kpBlock×32
// words (24 KiB) and the 12 bf16 A rows it meets (9 KiB) stay in L1.
var kpBlock = 192

// asBF16 views a pooled f32 buffer as bf16 (n bf16 values need ⌈n/2⌉ floats).
func asBF16(b []float32, n int) []BF16 {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*BF16)(unsafe.Pointer(&b[0])), 2*len(b))[:n]
}

func asWords(b []float32) []uint32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&b[0])), len(b))
}

// gemmBF16 computes C[m×n] (+)= bf16(A)[m×k]·B[k×n] with B given by pack, A f32
// row-major with stride lda, C with stride ldc.
func gemmBF16(s *bf16Set, m, n, k int, a []float32, lda int, pack pairPacker, c []float32, ldc int, acc bool) {
	if m <= 0 || n <= 0 {
		return
	}
	if k <= 0 {
		clearRows(c, m, n, ldc, acc)
		return
	}
	r := roundRows(s, a, m, k, lda)
	gemmBF16Rounded(s, m, n, k, r.b, r.ka, pack, c, ldc, acc)
	r.Release()
}

// clearRows zeroes C[m×n] (stride ldc) unless acc: the product with k = 0.
func clearRows(c []float32, m, n, ldc int, acc bool) {
	if !acc {
		for i := range m {
			clear(c[i*ldc : i*ldc+n])
		}
	}
}

// A BF16Rows is an activation operand X[m×k] rounded to bf16 once, in the layout the
// bf16-compute GEMMs read (rows padded with zeros to the micro-kernel's height, k to
// an even count), for callers that multiply one operand with many weight tiles — the
// quantised GEMMs of package quant, where rounding per tile would cost as much as the
// tile's product. Get one with RoundRows, give it back with Release.
type BF16Rows struct {
	s        *bf16Set
	m, k, ka int        // rows, columns, row stride of b (even)
	buf      *[]float32 // pooled storage of b; nil for a view made by Cols
	b        []BF16
}

// RoundRows rounds x[m×k] (row stride ldx ≥ k) to bf16 (to nearest even) for the
// bf16-compute products MatMulNTRows and MatMulNNRows.
func RoundRows(x []float32, m, k, ldx int) *BF16Rows {
	if m < 0 || k < 0 || ldx < k || (m > 0 && len(x) < (m-1)*ldx+k) {
		panic("kernels: RoundRows: bad shape or short buffer")
	}
	return roundRows(activeBF16(), x, m, k, ldx)
}

func roundRows(s *bf16Set, a []float32, m, k, lda int) *BF16Rows {
	kp := (k + 1) / 2
	ka := 2 * kp
	mt := (m + s.mr - 1) / s.mr * s.mr
	buf := getBuf((mt*ka + 1) / 2)
	ab := asBF16(*buf, mt*ka)
	Parallel(mt, 16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d := ab[i*ka : i*ka+ka]
			if i >= m {
				clear(d)
				continue
			}
			RoundBF16(d[:k], a[i*lda:i*lda+k])
			if ka > k {
				d[k] = 0
			}
		}
	})
	return &BF16Rows{s: s, m: m, k: k, ka: ka, buf: buf, b: ab}
}

// Rows returns the operand's row count m.
func (r *BF16Rows) Rows() int { return r.m }

// Cols returns a view of columns [lo, hi) of the operand, valid until the operand is
// released (a view needs no Release of its own). Columns pair up, so lo must be even,
// and hi too unless it is the operand's last column.
func (r *BF16Rows) Cols(lo, hi int) *BF16Rows {
	if lo < 0 || lo%2 != 0 || hi < lo || hi > r.k || (hi%2 != 0 && hi != r.k) {
		panic("kernels: BF16Rows.Cols: bad column range")
	}
	return &BF16Rows{s: r.s, m: r.m, k: hi - lo, ka: r.ka, b: r.b[lo:]}
}

// Release gives the operand's storage back to the pool; r must not be used after.
func (r *BF16Rows) Release() {
	if r.buf != nil {
		putBuf(r.buf)
		r.buf, r.b = nil, nil
	}
}

// MatMulNTRows computes Y[m×n] (+)= A·Wᵀ for the rounded operand A[m×k] and bf16 weights
// W[n×k] (row-major), Y with row stride ldy ≥ n: MatMulNTBF16Compute with the rounding
// done once by RoundRows. With accumulate, Y +=.
func MatMulNTRows(y []float32, ldy int, a *BF16Rows, w []BF16, n int, accumulate bool) {
	a.product("MatMulNTRows", y, ldy, n, len(w), packPairsNT(w, a.k, a.s), accumulate)
}

// MatMulNNRows computes dX[m×kw] (+)= A·W for the rounded operand A[m×n] and bf16 weights
// W[n×kw] (row-major), dX with row stride ldx ≥ kw: MatMulNNBF16Compute with the rounding
// done once by RoundRows. With accumulate, dX +=.
func MatMulNNRows(dx []float32, ldx int, a *BF16Rows, w []BF16, kw int, accumulate bool) {
	a.product("MatMulNNRows", dx, ldx, kw, len(w), packPairsNN(w, a.k, kw, a.s), accumulate)
}

// product computes C[m×width] (+)= A·B for the operand A[m×k] and the weight B[k×width]
// given by pack (a weight of wlen values, k·width of them used), C with row stride ldc.
func (a *BF16Rows) product(op string, c []float32, ldc, width, wlen int, pack pairPacker, acc bool) {
	m, k := a.m, a.k
	if width < 0 || ldc < width || wlen < k*width || (m > 0 && width > 0 && len(c) < (m-1)*ldc+width) {
		panic("kernels: " + op + ": bad shape or short buffer")
	}
	if m == 0 || width == 0 {
		return
	}
	if k == 0 {
		clearRows(c, m, width, ldc, acc)
		return
	}
	gemmBF16Rounded(a.s, m, width, k, a.b, a.ka, pack, c, ldc, acc)
}

// gemmBF16Rounded is gemmBF16 on an operand already rounded: ab holds ⌈m/mr⌉·mr rows of
// stride ka (even), the columns past k up to the next even count zero.
func gemmBF16Rounded(s *bf16Set, m, n, k int, ab []BF16, ka int, pack pairPacker, c []float32, ldc int, acc bool) {
	mr, nr := s.mr, s.nr
	kp := (k + 1) / 2
	mTiles := (m + mr - 1) / mr

	nPanels := (n + nr - 1) / nr
	panelsPerTask := min(nPanels, max(1, taskCols/nr))
	nTasks := (nPanels + panelsPerTask - 1) / panelsPerTask
	mGroups := 1
	if t := Threads(); t > 1 && nTasks < 2*t && 2*m*n*k >= minTaskOps*t {
		mGroups = min(mTiles, (2*t+nTasks-1)/nTasks)
	}
	tilesPerGroup := (mTiles + mGroups - 1) / mGroups
	mGroups = (mTiles + tilesPerGroup - 1) / tilesPerGroup
	mc := max(mr, mcBlock/mr*mr) // an A block of mcBlock rows × 2·kpBlock bf16 in L2
	// k blocks of about equal size (at most kpBlock pairs, a multiple of 16 for the NT
	// packer's 16×16 transposes): no short last block whose C tile traffic would cost
	// as much as a full one's.
	nkb := (kp + kpBlock - 1) / kpBlock
	kpMax := min(kp, ((kp+nkb-1)/nkb+15)/16*16)

	task := func(t int) {
		tn, tm := t%nTasks, t/nTasks
		j0 := tn * panelsPerTask * nr
		j1 := min(n, j0+panelsPerTask*nr)
		i0 := tm * tilesPerGroup * mr
		i1 := min(mTiles*mr, i0+tilesPerGroup*mr)
		np := (j1 - j0 + nr - 1) / nr
		buf := getBuf(kpMax*np*nr + mr*nr)
		bp := asWords((*buf)[:kpMax*np*nr])
		ctmp := (*buf)[kpMax*np*nr:]
		for p0 := 0; p0 < kp; p0 += kpMax {
			kc := min(kpMax, kp-p0)
			pack(bp, p0, kc, j0, j1-j0, nr)
			add := acc || p0 > 0
			for ic := i0; ic < i1; ic += mc {
				ie := min(i1, ic+mc)
				for jp := range np {
					jc := j0 + jp*nr
					nw := min(nr, j1-jc)
					panel := &bp[jp*kc*nr]
					for i := ic; i < ie; i += mr {
						ap := &ab[i*ka+2*p0]
						rows := min(mr, m-i)
						if rows == mr && nw == nr {
							s.kern(kc, ap, ka, panel, &c[i*ldc+jc], ldc, add)
							continue
						}
						s.kern(kc, ap, ka, panel, &ctmp[0], nr, false)
						for r := range rows {
							dst := c[(i+r)*ldc+jc : (i+r)*ldc+jc+nw]
							src := ctmp[r*nr : r*nr+nw]
							if add {
								for q, v := range src {
									dst[q] += v
								}
							} else {
								copy(dst, src)
							}
						}
					}
				}
			}
		}
		putBuf(buf)
	}
	parallelFor(nTasks*mGroups, task)
}

// MatMulNTBF16Compute computes Y[m×n] = bf16(X[m×k])·W[n×k]ᵀ with bf16 weights: X is
// rounded to bf16, products of bf16 pairs are accumulated in f32. With accumulate,
// Y += instead. For m ≤ 4 (decoding, where streaming W is the cost) it is MatMulNTBF16
// in f32, which costs no more.
func MatMulNTBF16Compute(y, x []float32, w []BF16, m, n, k int, accumulate bool) {
	checkLen("MatMulNTBF16Compute", y, m*n, x, m*k, len(w), n*k)
	if m <= gemvMaxRows {
		GemvBF16(y, x, w, m, n, k, accumulate)
		return
	}
	s := activeBF16()
	gemmBF16(s, m, n, k, x, k, packPairsNT(w, k, s), y, n, accumulate)
}

// MatMulNTF32Compute16 is MatMulNTBF16Compute for f32 weights, rounded to bf16 while
// they are packed (no bf16 copy of the weight is kept).
func MatMulNTF32Compute16(y, x, w []float32, m, n, k int, accumulate bool) {
	checkLen("MatMulNTF32Compute16", y, m*n, x, m*k, len(w), n*k)
	if m <= gemvMaxRows {
		GemvF32(y, x, w, m, n, k, accumulate)
		return
	}
	s := activeBF16()
	gemmBF16(s, m, n, k, x, k, packPairsNT(w, k, s), y, n, accumulate)
}

// MatMulNNBF16Compute computes dX[m×k] = bf16(dY[m×n])·W[n×k] with bf16 weights (the
// input gradient of a frozen linear layer in bf16 compute). With accumulate, dX +=.
func MatMulNNBF16Compute(dx, dy []float32, w []BF16, m, n, k int, accumulate bool) {
	checkLen("MatMulNNBF16Compute", dx, m*k, dy, m*n, len(w), n*k)
	s := activeBF16()
	gemmBF16(s, m, k, n, dy, n, packPairsNN(w, n, k, s), dx, k, accumulate)
}

// MatMulNNF32Compute16 is MatMulNNBF16Compute for f32 weights, rounded while packed.
func MatMulNNF32Compute16(dx, dy, w []float32, m, n, k int, accumulate bool) {
	checkLen("MatMulNNF32Compute16", dx, m*k, dy, m*n, len(w), n*k)
	s := activeBF16()
	gemmBF16(s, m, k, n, dy, n, packPairsNN(w, n, k, s), dx, k, accumulate)
}
