package kernels

import (
	"math/bits"
	"sync"
	"unsafe"
)

// The GEMM driver computes C[m×n] (+)= A[m×k]·B[k×n] in the Goto/BLIS way: the output
// is cut into tasks (column groups × row groups) run on the worker pool; each task
// walks k in blocks of kcBlock, packs its columns of B for that block into nr-wide
// panels (converting bf16 to f32 on the way: the packed panel is the only f32 copy of
// a bf16 weight, and it is per task and per k block), and runs the register-blocked
// micro-kernel over mr×nr tiles. A is read in place (row-major, stride lda); only a
// ragged last row tile is copied into a zero-padded scratch tile, and ragged tiles of
// C go through a scratch tile too, so the micro-kernel always does full tiles.

// kcBlock is the k block: one packed B panel (kc×nr floats) plus the A rows it meets
// should stay in L1. (A variable so benchmarks can sweep it.)
var kcBlock = 192

const (
	mcBlock    = 384 // rows per pass over a packed B block: A block (mc×kc) in L2
	taskCols   = 256 // columns per task
	minTaskOps = 1 << 16
)

// A microKernel computes C[mr×nr] (+)= A[mr×kc]·B[kc×nr] for one tile: A row-major with
// a stride of lda floats, B a packed panel (nr floats per k step), C row-major with a
// stride of ldc floats; acc adds to C instead of overwriting it.
type microKernel struct {
	mr, nr int
	fn     func(kc int, a *float32, lda int, b *float32, c *float32, ldc int, acc bool)
}

// A packer packs B[p0:p0+kc, j0:j0+nc] into ceil(nc/nr) panels of kc×nr floats, panel
// after panel, zero-filling the columns past nc.
type packer func(dst []float32, p0, kc, j0, nc, nr int)

// bufPools holds pooled f32 buffers by size class: capacities m·2^s with m = 4…7, so a
// class is at most 25% larger than the requests it serves. One pool for every size
// would hand a small request a huge buffer, and drop a too-small buffer on a large
// request to allocate another: the pooled set then creeps up to many copies of the
// largest request (the LM head's bf16 logits gradient) while the dropped ones wait
// for the GC. With classes a request only meets buffers of its own class.
var bufPools [4 * 64]sync.Pool

// bufClass returns the class of a request for n floats and its capacity.
func bufClass(n int) (class, capacity int) {
	n = max(n, 1)
	sh := max(0, bits.Len(uint(n-1))-3)
	m := (n + 1<<sh - 1) >> sh // 4…8 (or less for tiny n)
	if m == 8 {
		m, sh = 4, sh+1
	}
	m = max(m, 4)
	return 4*sh + m - 4, m << sh
}

func getBuf(n int) *[]float32 {
	c, size := bufClass(n)
	if b, ok := bufPools[c].Get().(*[]float32); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]float32, n, size)
	return &b
}

// putBuf returns a buffer from getBuf to its class's pool (others are let go).
func putBuf(b *[]float32) {
	if c, size := bufClass(cap(*b)); size == cap(*b) {
		bufPools[c].Put(b)
	}
}

// Scratch returns a pooled f32 buffer of length n (contents undefined); give it back
// with ReleaseScratch. Kernels outside this package (quant's fused GEMMs) share the pool.
func Scratch(n int) *[]float32 { return getBuf(n) }

// ScratchBF16 is Scratch for n bf16 values: a pooled buffer and its bf16 view (contents
// undefined); give the buffer back with ReleaseScratch.
func ScratchBF16(n int) (*[]float32, []BF16) {
	b := getBuf((n + 1) / 2)
	return b, asBF16(*b, n)
}

// ReleaseScratch returns a buffer from Scratch or ScratchBF16 to the pool.
func ReleaseScratch(b *[]float32) { putBuf(b) }

// narrowCols is the widest output the narrow micro-kernel (when the kernel set has
// one) takes over from the wide one.
const narrowCols = 8

// gemm runs the driver with micro-kernel mk, or with the kernel set's narrow kernel
// when the output is at most narrowCols wide. c has stride ldc; a has stride lda.
func gemm(mk *microKernel, m, n, k int, a []float32, lda int, pack packer, c []float32, ldc int, acc bool) {
	if m <= 0 || n <= 0 {
		return
	}
	if n <= narrowCols && active.narrow.fn != nil {
		mk = &active.narrow
	}
	if k <= 0 {
		if !acc {
			for i := range m {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	mr, nr := mk.mr, mk.nr
	nPanels := (n + nr - 1) / nr
	mTiles := (m + mr - 1) / mr
	panelsPerTask := min(nPanels, max(1, taskCols/nr))
	nTasks := (nPanels + panelsPerTask - 1) / panelsPerTask
	mGroups := 1
	if t := Threads(); t > 1 && nTasks < 2*t && 2*m*n*k >= minTaskOps*t {
		mGroups = min(mTiles, (2*t+nTasks-1)/nTasks)
	}
	tilesPerGroup := (mTiles + mGroups - 1) / mGroups
	mGroups = (mTiles + tilesPerGroup - 1) / tilesPerGroup
	mc := max(mr, mcBlock/mr*mr)
	kcMax := min(k, kcBlock)

	task := func(t int) {
		tn, tm := t%nTasks, t/nTasks
		j0 := tn * panelsPerTask * nr
		j1 := min(n, j0+panelsPerTask*nr)
		i0 := tm * tilesPerGroup * mr
		i1 := min(m, i0+tilesPerGroup*mr)
		np := (j1 - j0 + nr - 1) / nr
		buf := getBuf(kcMax*np*nr + mr*kcMax + mr*nr)
		bp := (*buf)[:kcMax*np*nr]
		atmp := (*buf)[kcMax*np*nr : kcMax*np*nr+mr*kcMax]
		ctmp := (*buf)[kcMax*np*nr+mr*kcMax:]
		for p0 := 0; p0 < k; p0 += kcBlock {
			kc := min(kcBlock, k-p0)
			pack(bp, p0, kc, j0, j1-j0, nr)
			add := acc || p0 > 0
			for ic := i0; ic < i1; ic += mc {
				ie := min(i1, ic+mc)
				if rest := (ie - ic) % mr; rest != 0 {
					// Ragged last row tile: copy its rows of this k block into a
					// zero-padded scratch tile (stride kc).
					r0 := ie - rest
					clear(atmp[:mr*kc])
					for r := range rest {
						copy(atmp[r*kc:r*kc+kc], a[(r0+r)*lda+p0:])
					}
				}
				for jp := range np {
					jc := j0 + jp*nr
					nw := min(nr, j1-jc)
					tileRows(mk, kc, a, lda, p0, ic, ie, atmp, &bp[jp*kc*nr], c, ldc, jc, nw, add, ctmp)
				}
			}
		}
		putBuf(buf)
	}
	parallelFor(nTasks*mGroups, task)
}

// A transposer16 transposes 16 rows × 16·nblk columns of a row-major matrix (stride
// srcStride) into 16·nblk rows of 16 floats at dst (stride dstStride floats).
type transposer16[T float32 | BF16] func(dst *float32, dstStride int, src *T, srcStride int, nblk int)

// packNT returns a packer for B = Wᵀ with W[n×k] row-major with row stride ldw
// (B[p][j] = W[j*ldw+p]), converting bf16 to f32. tr, if not nil, does the 16×16
// blocks; the plain loop does ragged edges.
func packNT[T float32 | BF16](w []T, ldw int, tr transposer16[T]) packer {
	return func(dst []float32, p0, kc, j0, nc, nr int) {
		np := (nc + nr - 1) / nr
		kfast := 0
		if tr != nil && nr%16 == 0 {
			kfast = kc / 16 * 16
		}
		for jp := range np {
			pan := dst[jp*kc*nr : (jp+1)*kc*nr]
			for jj := 0; jj < nr; jj++ {
				j := jp*nr + jj
				if j >= nc {
					for p := range kc {
						pan[p*nr+jj] = 0
					}
					continue
				}
				p := 0
				if kfast > 0 && jj%16 == 0 && j+16 <= nc {
					tr(&pan[jj], nr, &w[(j0+j)*ldw+p0], ldw, kfast/16)
					for r := range 16 {
						row := w[(j0+j+r)*ldw+p0+kfast : (j0+j+r)*ldw+p0+kc]
						for q, v := range row {
							pan[(kfast+q)*nr+jj+r] = toF32(v)
						}
					}
					jj += 15
					continue
				}
				row := w[(j0+j)*ldw+p0+p : (j0+j)*ldw+p0+kc]
				for q, v := range row {
					pan[q*nr+jj] = toF32(v)
				}
			}
		}
	}
}

func toF32[T float32 | BF16](v T) float32 {
	if unsafe.Sizeof(v) == 2 { // resolved at compile time per instantiation
		return BF16ToF32(*(*BF16)(unsafe.Pointer(&v)))
	}
	return *(*float32)(unsafe.Pointer(&v))
}

// packRows returns a packer for B stored row-major with stride ldb (B[p][j] = b[p*ldb+j]).
func packRows(b []float32, ldb int) packer {
	return func(dst []float32, p0, kc, j0, nc, nr int) {
		np := (nc + nr - 1) / nr
		for jp := range np {
			pan := dst[jp*kc*nr : (jp+1)*kc*nr]
			c0 := j0 + jp*nr
			w := min(nr, nc-jp*nr)
			for p := range kc {
				d := pan[p*nr : p*nr+nr]
				copy(d, b[(p0+p)*ldb+c0:(p0+p)*ldb+c0+w])
				clear(d[w:])
			}
		}
	}
}

// packRowsBF16 is packRows for bf16 B, widening to f32; wide, when set, packs one
// full 32-column panel (kc rows, source stride ldb).
func packRowsBF16(b []BF16, ldb int, wide func(dst *float32, src *BF16, ldb, kc int)) packer {
	return func(dst []float32, p0, kc, j0, nc, nr int) {
		np := (nc + nr - 1) / nr
		for jp := range np {
			pan := dst[jp*kc*nr : (jp+1)*kc*nr]
			c0 := j0 + jp*nr
			w := min(nr, nc-jp*nr)
			if wide != nil && w == 32 && nr == 32 {
				_ = b[(p0+kc-1)*ldb+c0+w-1] // the assembly reads up to here
				wide(&pan[0], &b[p0*ldb+c0], ldb, kc)
				continue
			}
			for p := range kc {
				d := pan[p*nr : p*nr+nr]
				src := b[(p0+p)*ldb+c0 : (p0+p)*ldb+c0+w]
				for q, v := range src {
					d[q] = BF16ToF32(v)
				}
				clear(d[w:])
			}
		}
	}
}

// transpose writes dst[j*rows+i] = src[i*ld+j] for i < rows, j < cols.
func transpose(dst, src []float32, rows, cols, ld int) {
	const blk = 32
	for i0 := 0; i0 < rows; i0 += blk {
		for j0 := 0; j0 < cols; j0 += blk {
			for i := i0; i < min(i0+blk, rows); i++ {
				s := src[i*ld+j0 : i*ld+min(j0+blk, cols)]
				for jj, v := range s {
					dst[(j0+jj)*rows+i] = v
				}
			}
		}
	}
}

// unsafeSlice views n floats at p as a slice (for the plain-Go micro-kernel and vector
// kernels, which share the assembly kernels' pointer signatures).
func unsafeSlice(p *float32, n int) []float32 { return unsafe.Slice(p, n) }

// tileRows runs micro-kernel mk over rows [i0, i1) of A (stride lda, from column p0)
// against one packed kc×nr panel, writing — or with add, adding — the nw valid columns
// c[i, jc:jc+nw]. A ragged last row tile is read from atmp (packed by the caller, kc
// wide) and ragged outputs go through ctmp (mr×nr).
func tileRows(mk *microKernel, kc int, a []float32, lda, p0, i0, i1 int, atmp []float32, panel *float32,
	c []float32, ldc, jc, nw int, add bool, ctmp []float32) {
	mr, nr := mk.mr, mk.nr
	for i := i0; i < i1; i += mr {
		rows := min(mr, i1-i)
		ap, la := &a[i*lda+p0], lda
		if rows < mr {
			ap, la = &atmp[0], kc
		}
		if rows == mr && nw == nr {
			mk.fn(kc, ap, la, panel, &c[i*ldc+jc], ldc, add)
			continue
		}
		mk.fn(kc, ap, la, panel, &ctmp[0], nr, false)
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
