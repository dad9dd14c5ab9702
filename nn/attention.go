package nn

import (
	"math"
	"sync"

	"github.com/bidora/bidora/kernels"
)

// AttnShape describes a batch for attention: B sequences of T tokens (right-padded),
// Hq query heads and Hkv key/value heads (grouped-query attention: query head h uses
// key/value head h/(Hq/Hkv)), each of width D.
//
// Layouts: q and out are [B·T, Hq·D]; k and v are [B·T, Hkv·D]; lse is [B, Hq, T].
type AttnShape struct {
	B, T, Hq, Hkv, D int
	// Lengths[b] is the number of real tokens of sequence b (keys at or beyond it are
	// masked); nil means every sequence is T long.
	Lengths []int
	// Segments, when non-nil ([B·T]), restricts attention to keys with the same
	// segment id as the query (packed rows).
	Segments []int32
	// Window, when positive, is a sliding window: query i sees only keys j with
	// i − Window < j ≤ i (transformers' sliding-window causal mask). Within a
	// packed segment positions and indices differ by a constant, so the window is
	// the same counted in either.
	Window int
}

// attnBlock is the number of keys scored at once by the decoder's online softmax
// (AttentionDecode): scratch per worker is attnBlock floats, never T².
const attnBlock = 64

// Block sizes of the blocked (flash-attention style) training kernels. The forward
// works on fwdQ queries × fwdK keys, the backward on bwdK keys × bwdQ queries: the
// row count of each product (96) is a multiple of every micro-kernel's row tile
// (12, 6, 4) and the column count (64) of every panel width (32, 16, 4).
const (
	fwdQ, fwdK = 96, 64
	bwdK, bwdQ = 96, 64
)

func (s *AttnShape) length(b int) int {
	if s.Lengths == nil {
		return s.T
	}
	return min(s.Lengths[b], s.T)
}

// visible reports whether query i may attend to key j of sequence b (j ≤ i assumed).
func (s *AttnShape) visible(b, i, j int) bool {
	if s.Window > 0 && j <= i-s.Window {
		return false
	}
	return s.Segments == nil || s.Segments[b*s.T+i] == s.Segments[b*s.T+j]
}

// firstKey is the first key any query from i0 on can see (0 without a window).
func (s *AttnShape) firstKey(i0 int) int {
	if s.Window <= 0 {
		return 0
	}
	return max(0, i0-s.Window+1)
}

// masked reports whether the score of query i for key j of sequence b is masked out.
func (s *AttnShape) masked(b, i, j, length int) bool {
	return j > i || j >= length || !s.visible(b, i, j)
}

// needsMask reports whether any score of the queries [i0, i0+nq) × keys [j0, j0+nk)
// of a sequence of the given length is masked.
func (s *AttnShape) needsMask(i0, nq, j0, nk, length int) bool {
	return s.Segments != nil || j0+nk-1 > i0 || j0+nk > length || (s.Window > 0 && j0 <= i0+nq-1-s.Window)
}

// pairRows maps work item w of ⌈n/2⌉ to the rows w and n−1−w, so that every item
// carries the same causal work (the two rows are equal for the middle row of odd n).
func pairRows(w, n int) (int, int) { return w, n - 1 - w }

// attnWork is the per-call scratch of the blocked kernels: packed key/value (forward)
// or query/output-gradient (backward) blocks, shared read-only by all workers. It is
// pooled so that the layers of a step reuse it.
type attnWork struct {
	a, b, c, d []kernels.Packed
	kt         []float32   // backward: Kᵀ per (sequence, kv head), [D, T]
	dkvp       []float32   // backward: dK and dV partials of query-head slices 1… (see AttentionBackward)
	dqt        [][]float32 // backward: per-worker dQᵀ accumulators [the worker's query heads, D, T]
}

var attnPool sync.Pool

// attnScratch is one worker's block buffers, pooled (the kernels do not allocate in
// steady state).
type attnScratch struct {
	s, o, st, dpt, dkv, sub []float32
	m                       [fwdQ]float32
	l                       [fwdQ]float64
	dsp                     kernels.Packed
}

var scratchPool sync.Pool

func getAttnScratch(D int) *attnScratch {
	x, _ := scratchPool.Get().(*attnScratch)
	if x == nil {
		x = &attnScratch{}
	}
	x.s = growF32(x.s, fwdQ*fwdK)
	x.o = growF32(x.o, fwdQ*D)
	x.st = growF32(x.st, bwdK*bwdQ)
	x.dpt = growF32(x.dpt, bwdK*bwdQ)
	x.dkv = growF32(x.dkv, 2*bwdK*D)
	x.sub = growF32(x.sub, bwdQ)
	return x
}

func getAttnWork(nPacked int) *attnWork {
	w, _ := attnPool.Get().(*attnWork)
	if w == nil {
		w = &attnWork{}
	}
	grow := func(p []kernels.Packed) []kernels.Packed {
		if cap(p) < nPacked {
			return make([]kernels.Packed, nPacked)
		}
		return p[:nPacked]
	}
	w.a, w.b, w.c, w.d = grow(w.a), grow(w.b), grow(w.c), grow(w.d)
	return w
}

func growF32(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// AttentionForward computes causal softmax(q·kᵀ/√D)·v with the masks of sh and
// stores the log-sum-exp of each query's scores in lse for the backward. It works
// flash-attention style: per (sequence, head, block of 96 queries) it walks the key
// blocks of 64 up to the diagonal, scores a block with one small GEMM against the
// pre-packed, pre-scaled keys, updates an online softmax (vectorised exp) and adds
// P·V with a second small GEMM, so scratch grows with the block, never with T². A
// query with no visible key (only possible past a sequence's length or with
// segments) gets a zero output and lse = −Inf.
func AttentionForward(out, lse, q, k, v []float32, sh *AttnShape) {
	B, T, Hq, Hkv, D := sh.B, sh.T, sh.Hq, sh.Hkv, sh.D
	if B*T == 0 {
		return
	}
	group := Hq / Hkv
	qs, ks := Hq*D, Hkv*D
	scale := float32(1 / math.Sqrt(float64(D)))
	nkb := (T + fwdK - 1) / fwdK
	w := getAttnWork(B * Hkv * nkb)
	defer attnPool.Put(w)
	// Pack every key block as Kᵀ (scaled) and every value block as V, once.
	kernels.Parallel(B*Hkv*nkb, 1, func(lo, hi int) {
		for u := lo; u < hi; u++ {
			b, kh, kb := u/(Hkv*nkb), (u/nkb)%Hkv, u%nkb
			j0 := kb * fwdK
			nk := min(fwdK, T-j0)
			off := (b*T+j0)*ks + kh*D
			w.a[u].PackT(k[off:], ks, D, nk)
			w.a[u].Scale(scale)
			w.b[u].Pack(v[off:], ks, nk, D)
		}
	})
	nqb := (T + fwdQ - 1) / fwdQ
	half := (nqb + 1) / 2
	kernels.Parallel(B*Hq*half, 1, func(lo, hi int) {
		x := getAttnScratch(D)
		defer scratchPool.Put(x)
		for u := lo; u < hi; u++ {
			b, h, pw := u/(Hq*half), (u/half)%Hq, u%half
			qb1, qb2 := pairRows(pw, nqb)
			for _, qb := range [2]int{qb1, qb2} {
				attnBlockForward(out, lse, q, w.a, w.b, sh, b, h, h/group, qb, x.s, x.o, x.m[:], x.l[:], qs)
				if qb1 == qb2 {
					break
				}
			}
		}
	})
}

// attnBlockForward computes the output rows and lse of query block qb of head h.
func attnBlockForward(out, lse, q []float32, kt, vp []kernels.Packed, sh *AttnShape, b, h, kh, qb int,
	s, o, m []float32, l []float64, qs int) {
	T, D := sh.T, sh.D
	nkb := (T + fwdK - 1) / fwdK
	i0 := qb * fwdQ
	nq := min(fwdQ, T-i0)
	length := sh.length(b)
	kend := min(i0+nq, length) // keys past this are masked for every query of the block
	clear(o[:nq*D])
	for r := range nq {
		m[r], l[r] = float32(math.Inf(-1)), 0
	}
	qa := q[(b*T+i0)*qs+h*D:]
	// Key blocks wholly before the window of the block's first query are skipped.
	for j0 := sh.firstKey(i0) / fwdK * fwdK; j0 < kend; j0 += fwdK {
		pk := &kt[(b*sh.Hkv+kh)*nkb+j0/fwdK]
		nk := pk.N
		kernels.MulPacked(s, fwdK, qa, qs, nq, pk, false)
		if sh.needsMask(i0, nq, j0, nk, length) {
			for r := range nq {
				row := s[r*fwdK : r*fwdK+nk]
				for c := range row {
					if sh.masked(b, i0+r, j0+c, length) {
						row[c] = float32(math.Inf(-1))
					}
				}
			}
		}
		for r := range nq {
			row := s[r*fwdK : r*fwdK+nk]
			bm := kernels.Max(row)
			if math.IsInf(float64(bm), -1) {
				clear(row) // no visible key in this block: P = 0
				continue
			}
			if bm > m[r] {
				if l[r] > 0 {
					c := float32(math.Exp(float64(m[r] - bm)))
					kernels.Scale(c, o[r*D:(r+1)*D])
					l[r] *= float64(c)
				}
				m[r] = bm
			}
			l[r] += kernels.ExpShiftSum(row, m[r])
		}
		kernels.MulPacked(o, D, s, fwdK, nq, &vp[(b*sh.Hkv+kh)*nkb+j0/fwdK], true)
	}
	for r := range nq {
		i := i0 + r
		oi := out[(b*T+i)*qs+h*D : (b*T+i)*qs+(h+1)*D]
		li := (b*sh.Hq+h)*T + i
		if l[r] == 0 {
			clear(oi)
			lse[li] = float32(math.Inf(-1))
			continue
		}
		inv := float32(1 / l[r])
		for d, x := range o[r*D : (r+1)*D] {
			oi[d] = x * inv
		}
		lse[li] = m[r] + float32(math.Log(l[r]))
	}
}

// AttentionBackward computes dq, dk and dv (overwritten) from dout, given the forward's
// inputs, output and lse. delta [B·Hq·T] is scratch. It recomputes the probabilities
// from lse (no T² storage), flash-attention style: per (sequence, kv head, block of
// 96 keys) — so dk and dv rows have one owner — and for every query head of the group
// and every block of 64 queries at or after the keys, it forms Sᵀ = K·Qᵀ and
// dPᵀ = V·dOᵀ with small GEMMs, Pᵀ = exp(Sᵀ − lse) (vectorised),
// dSᵀ = Pᵀ⊙(dPᵀ − δ), and accumulates dV += Pᵀ·dO, dK += dSᵀ·Q and dQᵀ += Kᵀ·dSᵀ
// (dQᵀ per worker, summed at the end). When that gives fewer than 2·Threads() work
// units, the group's query heads are split into slices with their own dK/dV partials
// (summed at the end). The split depends on Threads(), so results at different
// thread counts agree up to float reassociation (about 1e-7 relative), not bit for bit.
func AttentionBackward(dq, dk, dv, dout, out, lse, q, k, v, delta []float32, sh *AttnShape) {
	B, T, Hq, Hkv, D := sh.B, sh.T, sh.Hq, sh.Hkv, sh.D
	if B*T == 0 {
		return
	}
	group := Hq / Hkv
	qs, ks := Hq*D, Hkv*D
	scale := float32(1 / math.Sqrt(float64(D)))
	// delta_i = dout_i · out_i (the softmax backward's row term).
	kernels.Parallel(B*T, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			b, i := r/T, r%T
			for h := 0; h < Hq; h++ {
				o := r*qs + h*D
				delta[(b*Hq+h)*T+i] = kernels.Dot(dout[o:o+D], out[o:o+D])
			}
		}
	})
	nqb := (T + bwdQ - 1) / bwdQ
	w := getAttnWork(B * Hq * nqb)
	defer attnPool.Put(w)
	// Pack every query block as (scale·Q)ᵀ and scale·Q, every output-gradient block as
	// dOᵀ and dO; transpose K per (sequence, kv head).
	kernels.Parallel(B*Hq*nqb, 1, func(lo, hi int) {
		for u := lo; u < hi; u++ {
			b, h, qb := u/(Hq*nqb), (u/nqb)%Hq, u%nqb
			i0 := qb * bwdQ
			nq := min(bwdQ, T-i0)
			off := (b*T+i0)*qs + h*D
			w.a[u].PackT(q[off:], qs, D, nq)
			w.a[u].Scale(scale)
			w.b[u].PackT(dout[off:], qs, D, nq)
			w.c[u].Pack(dout[off:], qs, nq, D)
			w.d[u].Pack(q[off:], qs, nq, D)
			w.d[u].Scale(scale)
		}
	})
	// Kᵀ per (sequence, kv head), split over blocks of 64 keys as well, so that this
	// pass has B·Hkv·⌈T/64⌉ units (not B·Hkv: 2 at batch 1 on a 2-KV-head model).
	const ktBlock = 64
	nkt := (T + ktBlock - 1) / ktBlock
	w.kt = growF32(w.kt, B*Hkv*D*T)
	kernels.Parallel(B*Hkv*nkt, 1, func(lo, hi int) {
		for u := lo; u < hi; u++ {
			bk, jb := u/nkt, u%nkt
			b, kh := bk/Hkv, bk%Hkv
			dst := w.kt[bk*D*T : (bk+1)*D*T]
			for j := jb * ktBlock; j < min(T, (jb+1)*ktBlock); j++ {
				src := k[(b*T+j)*ks+kh*D : (b*T+j)*ks+(kh+1)*D]
				for d, x := range src {
					dst[d*T+j] = x
				}
			}
		}
	})
	nkb := (T + bwdK - 1) / bwdK
	half := (nkb + 1) / 2
	pairs, slices := bwdSplit(sh, kernels.Threads())
	units := pairs * slices
	parts := min(kernels.Threads(), units)
	for len(w.dqt) < parts {
		w.dqt = append(w.dqt, nil)
	}
	// sliceHeads is the query heads [h0, h1) of slice sl of kv head kh.
	sliceHeads := func(kh, sl int) (int, int) {
		return kh*group + sl*group/slices, kh*group + (sl+1)*group/slices
	}
	// unitHeads is unit u's (sequence, kv head, slice) and its heads [h0, h1) in
	// b·Hq+h numbering.
	unitHeads := func(u int) (b, kh, sl, h0, h1 int) {
		b, kh, sl = u/(Hkv*slices*half), (u/(slices*half))%Hkv, (u/half)%slices
		h0, h1 = sliceHeads(kh, sl)
		return b, kh, sl, b*Hq + h0, b*Hq + h1
	}
	// Part p runs units [p·units/parts, (p+1)·units/parts): a contiguous run of
	// (sequence, kv head, slice) triples, whose query heads are the only rows of dQ it
	// touches; its dQᵀ accumulator covers just those (heads [pr[p][0], pr[p][1]) in
	// b·Hq+h numbering), so memory and the final sum grow with parts + B·Hq heads,
	// not parts × B·Hq.
	pr := make([][2]int, parts)
	for p := range pr {
		_, _, _, h0, _ := unitHeads(p * units / parts)
		_, _, _, _, h1 := unitHeads((p+1)*units/parts - 1)
		pr[p] = [2]int{h0, h1}
	}
	var dkp, dvp []float32 // partial dK, dV of slices 1…: [slices−1, B, Hkv, T, D]
	if slices > 1 {
		n := (slices - 1) * B * Hkv * T * D
		w.dkvp = growF32(w.dkvp, 2*n)
		dkp, dvp = w.dkvp[:n], w.dkvp[n:2*n]
	}
	kernels.Parallel(parts, 1, func(lo, hi int) {
		x := getAttnScratch(D)
		defer scratchPool.Put(x)
		for part := lo; part < hi; part++ {
			w.dqt[part] = growF32(w.dqt[part], (pr[part][1]-pr[part][0])*D*T)
			dqt := w.dqt[part]
			clear(dqt)
			for u := part * units / parts; u < (part+1)*units/parts; u++ {
				b, kh, sl, _, _ := unitHeads(u)
				h0, h1 := sliceHeads(kh, sl)
				kb1, kb2 := pairRows(u%half, nkb)
				for _, kb := range [2]int{kb1, kb2} {
					bw := attnBwdBlock{sh: sh, w: w, b: b, kh: kh, kb: kb, h0: h0, h1: h1, nqb: nqb,
						st: x.st, dpt: x.dpt, dkv: x.dkv, sub: x.sub, dsp: &x.dsp, dqt: dqt, hq0: pr[part][0],
						dk: dk, dv: dv, off: (b*T+kb*bwdK)*ks + kh*D, stride: ks}
					if sl > 0 {
						bw.dk, bw.dv = dkp, dvp
						bw.off, bw.stride = (((sl-1)*B+b)*Hkv+kh)*T*D+kb*bwdK*D, D
					}
					bw.run(k, v, lse, delta)
					if kb1 == kb2 {
						break
					}
				}
			}
		}
	})
	if slices > 1 {
		// dK, dV += the other slices' partials, in slice order.
		kernels.Parallel(B*T, 16, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				b, j := r/T, r%T
				for kh := range Hkv {
					o := r*ks + kh*D
					dkr, dvr := dk[o:o+D], dv[o:o+D]
					for sl := 1; sl < slices; sl++ {
						po := (((sl-1)*B+b)*Hkv+kh)*T*D + j*D
						kernels.Axpy(1, dkp[po:po+D], dkr)
						kernels.Axpy(1, dvp[po:po+D], dvr)
					}
				}
			}
		})
	}
	// dq = scale · Σ_workers dQᵀ (in worker order, over the workers that cover the
	// head), transposed back to [B·T, Hq·D]; split over heads and blocks of rows.
	const rowBlock = 64
	nrb := (T + rowBlock - 1) / rowBlock
	kernels.Parallel(B*Hq*nrb, 1, func(lo, hi int) {
		var cover []int
		for u := lo; u < hi; u++ {
			bh, rb := u/nrb, u%nrb
			b, h := bh/Hq, bh%Hq
			cover = cover[:0]
			for p := range parts {
				if pr[p][0] <= bh && bh < pr[p][1] {
					cover = append(cover, p)
				}
			}
			for i := rb * rowBlock; i < min(T, (rb+1)*rowBlock); i++ {
				row := dq[(b*T+i)*qs+h*D : (b*T+i)*qs+(h+1)*D]
				for d := range row {
					var s float32
					for _, p := range cover {
						s += w.dqt[p][(bh-pr[p][0])*D*T+d*T+i]
					}
					row[d] = scale * s
				}
			}
		}
	})
}

// bwdSplit returns how AttentionBackward splits its main pass at the given thread
// count: pairs (sequence, kv head, pair of key blocks) items, each split over slices
// of the group's query heads, so pairs·slices work units. With few pairs (batch 1, 2
// KV heads: 6 at 512 tokens) the slices are the fewest that give 2·threads units (at
// most one head each). Slice 0 writes dK and dV directly, slice i ≥ 1 into its
// partial buffer (B·Hkv·T·D each, added in slice order at the end); as slices > 1
// only while pairs·(slices−1) < 2·threads, that memory is bounded by the thread count
// times a block of keys, not by the model.
func bwdSplit(sh *AttnShape, threads int) (pairs, slices int) {
	nkb := (sh.T + bwdK - 1) / bwdK
	pairs = sh.B * sh.Hkv * ((nkb + 1) / 2)
	slices = 1
	if pairs > 0 && pairs < 2*threads {
		slices = min(sh.Hq/sh.Hkv, (2*threads+pairs-1)/pairs)
	}
	return pairs, slices
}

// attnBwdBlock is one key block's share of the backward, over query heads [h0, h1)
// of its kv head.
type attnBwdBlock struct {
	sh                *AttnShape
	w                 *attnWork
	b, kh, kb, h0, h1 int
	nqb               int
	st, dpt, dkv, sub []float32
	dsp               *kernels.Packed
	dqt               []float32 // this worker's dQᵀ rows, from query head hq0 (b·Hq+h numbering)
	hq0               int
	// dk, dv receive the block's key rows r at off + r·stride.
	dk, dv      []float32
	off, stride int
}

func (x *attnBwdBlock) run(k, v, lse, delta []float32) {
	sh, w := x.sh, x.w
	T, Hq, D := sh.T, sh.Hq, sh.D
	ks := sh.Hkv * D
	b, kh := x.b, x.kh
	j0 := x.kb * bwdK
	nk := min(bwdK, T-j0)
	length := sh.length(b)
	dkb, dvb := x.dkv[:nk*D], x.dkv[bwdK*D:bwdK*D+nk*D]
	clear(dkb)
	clear(dvb)
	if j0 < length {
		ka := k[(b*T+j0)*ks+kh*D:]
		va := v[(b*T+j0)*ks+kh*D:]
		kt := w.kt[(b*sh.Hkv+kh)*D*T+j0:]
		for h := x.h0; h < x.h1; h++ {
			for qb := j0 / bwdQ; qb < x.nqb; qb++ {
				u := (b*Hq+h)*x.nqb + qb
				i0 := qb * bwdQ
				if sh.firstKey(i0) > j0+nk-1 {
					break // this query block and all later ones are past the window of these keys
				}
				nq := w.a[u].N
				li := (b*Hq+h)*T + i0
				for c := range nq {
					x.sub[c] = lse[li+c]
					if math.IsInf(float64(x.sub[c]), -1) {
						x.sub[c] = float32(math.Inf(1)) // no visible key: P = 0
					}
				}
				// Pᵀ = exp(K·(scale·Q)ᵀ − lse).
				kernels.MulPacked(x.st, bwdQ, ka, ks, nk, &w.a[u], false)
				mask := sh.needsMask(i0, nq, j0, nk, length)
				for r := range nk {
					row := x.st[r*bwdQ : r*bwdQ+nq]
					if mask {
						for c := range row {
							if sh.masked(b, i0+c, j0+r, length) {
								row[c] = float32(math.Inf(-1))
							}
						}
					}
					kernels.ExpSub(row, x.sub)
				}
				// dSᵀ = Pᵀ ⊙ (V·dOᵀ − δ).
				kernels.MulPacked(x.dpt, bwdQ, va, ks, nk, &w.b[u], false)
				dl := delta[li : li+nq]
				for r := range nk {
					p := x.st[r*bwdQ : r*bwdQ+nq]
					ds := x.dpt[r*bwdQ : r*bwdQ+nq]
					for c, pv := range p {
						ds[c] = pv * (ds[c] - dl[c])
					}
				}
				kernels.MulPacked(dvb, D, x.st, bwdQ, nk, &w.c[u], true)
				kernels.MulPacked(dkb, D, x.dpt, bwdQ, nk, &w.d[u], true)
				// dQᵀ[:, i0:i0+nq] += Kᵀ·dSᵀ (scaled at the end).
				x.dsp.Pack(x.dpt, bwdQ, nk, nq)
				kernels.MulPacked(x.dqt[(b*Hq+h-x.hq0)*D*T+i0:], T, kt, T, D, x.dsp, true)
			}
		}
	}
	for r := range nk {
		o := x.off + r*x.stride
		copy(x.dk[o:o+D], dkb[r*D:(r+1)*D])
		copy(x.dv[o:o+D], dvb[r*D:(r+1)*D])
	}
}
