package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bidora/bidora/kernels"
)

// attentionForwardRows is the previous, row-at-a-time AttentionForward, kept as the
// plain twin the blocked kernels are tested against. It computes causal softmax(q·kᵀ/√D)·v with the masks of sh, one query
// row at a time with an online softmax over blocks of keys (flash-attention style), and
// stores the log-sum-exp of each query's scores in lse for the backward. A query with
// no visible key (only possible past a sequence's length) gets a zero output and
// lse = −Inf.
func attentionForwardRows(out, lse, q, k, v []float32, sh *AttnShape) {
	B, T, Hq, Hkv, D := sh.B, sh.T, sh.Hq, sh.Hkv, sh.D
	group := Hq / Hkv
	scale := float32(1 / math.Sqrt(float64(D)))
	half := (T + 1) / 2
	kernels.Parallel(B*Hq*half, 1, func(lo, hi int) {
		var s [attnBlock]float32
		for w := lo; w < hi; w++ {
			b, h, pw := w/(Hq*half), (w/half)%Hq, w%half
			i1, i2 := pairRows(pw, T)
			for _, i := range [2]int{i1, i2} {
				attnRowForwardRef(out, lse, q, k, v, sh, b, h, h/group, i, scale, s[:])
				if i1 == i2 {
					break
				}
			}
		}
	})
}

func attnRowForwardRef(out, lse, q, k, v []float32, sh *AttnShape, b, h, kh, i int, scale float32, s []float32) {
	T, D := sh.T, sh.D
	qs, ks := sh.Hq*D, sh.Hkv*D
	qi := q[(b*T+i)*qs+h*D : (b*T+i)*qs+(h+1)*D]
	oi := out[(b*T+i)*qs+h*D : (b*T+i)*qs+(h+1)*D]
	clear(oi)
	kend := min(i+1, sh.length(b))
	m, l := float32(math.Inf(-1)), float64(0)
	for j0 := 0; j0 < kend; j0 += attnBlock {
		j1 := min(j0+attnBlock, kend)
		bmax := float32(math.Inf(-1))
		for j := j0; j < j1; j++ {
			if !sh.visible(b, i, j) {
				s[j-j0] = float32(math.Inf(-1))
				continue
			}
			kj := k[(b*T+j)*ks+kh*D : (b*T+j)*ks+(kh+1)*D]
			sc := kernels.Dot(qi, kj) * scale
			s[j-j0] = sc
			bmax = max(bmax, sc)
		}
		if math.IsInf(float64(bmax), -1) {
			continue
		}
		if bmax > m {
			if l > 0 {
				c := float32(math.Exp(float64(m - bmax)))
				for d := range oi {
					oi[d] *= c
				}
				l *= float64(c)
			}
			m = bmax
		}
		for j := j0; j < j1; j++ {
			if math.IsInf(float64(s[j-j0]), -1) {
				continue
			}
			p := float32(math.Exp(float64(s[j-j0] - m)))
			l += float64(p)
			kernels.Axpy(p, v[(b*T+j)*ks+kh*D:(b*T+j)*ks+(kh+1)*D], oi)
		}
	}
	li := (b*sh.Hq+h)*T + i
	if l == 0 {
		lse[li] = float32(math.Inf(-1))
		return
	}
	inv := float32(1 / l)
	for d := range oi {
		oi[d] *= inv
	}
	lse[li] = m + float32(math.Log(l))
}

// attentionBackwardRows is the row-at-a-time twin of AttentionBackward. It computes dq, dk and dv (overwritten) from dout, given the forward's
// inputs, output and lse. delta [B·Hq·T] is scratch. It recomputes the probabilities
// from lse (no T² storage) in two passes that parallelise without write conflicts:
// one over queries for dq, one over keys for dk and dv.
func attentionBackwardRows(dq, dk, dv, dout, out, lse, q, k, v, delta []float32, sh *AttnShape) {
	B, T, Hq, Hkv, D := sh.B, sh.T, sh.Hq, sh.Hkv, sh.D
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
	half := (T + 1) / 2
	// Pass 1: dq_i = scale · Σ_j ds_ij · k_j.
	kernels.Parallel(B*Hq*half, 1, func(lo, hi int) {
		for w := lo; w < hi; w++ {
			b, h, pw := w/(Hq*half), (w/half)%Hq, w%half
			kh := h / group
			i1, i2 := pairRows(pw, T)
			for _, i := range [2]int{i1, i2} {
				li := (b*Hq+h)*T + i
				o := (b*T+i)*qs + h*D
				dqi := dq[o : o+D]
				clear(dqi)
				if !math.IsInf(float64(lse[li]), -1) {
					qi, doi := q[o:o+D], dout[o:o+D]
					kend := min(i+1, sh.length(b))
					for j := 0; j < kend; j++ {
						if !sh.visible(b, i, j) {
							continue
						}
						ko := (b*T+j)*ks + kh*D
						p := float32(math.Exp(float64(kernels.Dot(qi, k[ko:ko+D])*scale - lse[li])))
						ds := p * (kernels.Dot(doi, v[ko:ko+D]) - delta[li])
						kernels.Axpy(scale*ds, k[ko:ko+D], dqi)
					}
				}
				if i1 == i2 {
					break
				}
			}
		}
	})
	// Pass 2: dv_j = Σ_i p_ij · dout_i and dk_j = scale · Σ_i ds_ij · q_i over the
	// query heads sharing key/value head kh.
	kernels.Parallel(B*Hkv*half, 1, func(lo, hi int) {
		for w := lo; w < hi; w++ {
			b, kh, pw := w/(Hkv*half), (w/half)%Hkv, w%half
			j1, j2 := pairRows(pw, T)
			for _, j := range [2]int{j1, j2} {
				ko := (b*T+j)*ks + kh*D
				dkj, dvj := dk[ko:ko+D], dv[ko:ko+D]
				clear(dkj)
				clear(dvj)
				if j < sh.length(b) {
					kj, vj := k[ko:ko+D], v[ko:ko+D]
					for h := kh * group; h < (kh+1)*group; h++ {
						for i := j; i < T; i++ {
							li := (b*Hq+h)*T + i
							if !sh.visible(b, i, j) || math.IsInf(float64(lse[li]), -1) {
								continue
							}
							o := (b*T+i)*qs + h*D
							qi, doi := q[o:o+D], dout[o:o+D]
							p := float32(math.Exp(float64(kernels.Dot(qi, kj)*scale - lse[li])))
							kernels.Axpy(p, doi, dvj)
							ds := p * (kernels.Dot(doi, vj) - delta[li])
							kernels.Axpy(scale*ds, qi, dkj)
						}
					}
				}
				if j1 == j2 {
					break
				}
			}
		}
	})
}

// TestAttentionBlockedVsRows checks the blocked kernels against the row-at-a-time
// twin on awkward sizes (several query and key blocks, ragged last blocks, head
// widths off the vector width, padding, segments), on every kernel set and with
// several workers.
func TestAttentionBlockedVsRows(t *testing.T) {
	segs := func(B, T int) []int32 {
		s := make([]int32, B*T)
		for i := range s {
			s[i] = int32((i % T) / 37)
		}
		return s
	}
	cases := []struct {
		name string
		sh   AttnShape
	}{
		{"one", AttnShape{B: 1, T: 1, Hq: 2, Hkv: 1, D: 5}},
		{"qwen-heads", AttnShape{B: 1, T: 200, Hq: 14, Hkv: 2, D: 64}},
		{"ragged", AttnShape{B: 2, T: 257, Hq: 3, Hkv: 1, D: 17, Lengths: []int{257, 131}}},
		{"segments", AttnShape{B: 2, T: 163, Hq: 4, Hkv: 2, D: 8, Lengths: []int{150, 163}, Segments: segs(2, 163)}},
		{"empty-row", AttnShape{B: 2, T: 70, Hq: 2, Hkv: 2, D: 33, Lengths: []int{0, 65}}},
	}
	prevImpl, prevThreads := kernels.Impl(), kernels.Threads()
	defer func() { _ = kernels.SetImpl(prevImpl); kernels.SetThreads(prevThreads) }()
	for _, c := range cases {
		sh := c.sh
		rng := rand.New(rand.NewPCG(9, uint64(sh.T)))
		nq, nk := sh.B*sh.T*sh.Hq*sh.D, sh.B*sh.T*sh.Hkv*sh.D
		q, k, v, dout := randF32(rng, nq, 2), randF32(rng, nk, 2), randF32(rng, nk, 1), randF32(rng, nq, 1)
		nl := sh.B * sh.Hq * sh.T
		wantOut, wantLse := make([]float32, nq), make([]float32, nl)
		attentionForwardRows(wantOut, wantLse, q, k, v, &sh)
		wdq, wdk, wdv := make([]float32, nq), make([]float32, nk), make([]float32, nk)
		attentionBackwardRows(wdq, wdk, wdv, dout, wantOut, wantLse, q, k, v, make([]float32, nl), &sh)
		for _, impl := range kernels.Impls() {
			for _, th := range []int{1, 3, 16} { // 16: more workers than (sequence, kv head) pairs
				t.Run(fmt.Sprintf("%s/%s/threads=%d", c.name, impl, th), func(t *testing.T) {
					_ = kernels.SetImpl(impl)
					kernels.SetThreads(th)
					out, lse := make([]float32, nq), make([]float32, nl)
					for i := range out {
						out[i] = float32(math.NaN()) // every output must be written
					}
					AttentionForward(out, lse, q, k, v, &sh)
					assertClose(t, "out", out, f64s(wantOut), 2e-6)
					for i, w := range wantLse {
						if math.IsInf(float64(w), -1) != math.IsInf(float64(lse[i]), -1) ||
							!math.IsInf(float64(w), -1) && math.Abs(float64(lse[i]-w)) > 2e-6*math.Max(1, math.Abs(float64(w))) {
							t.Fatalf("lse[%d] = %g, want %g", i, lse[i], w)
						}
					}
					dq, dk, dv := make([]float32, nq), make([]float32, nk), make([]float32, nk)
					for _, g := range [][]float32{dq, dk, dv} {
						for i := range g {
							g[i] = float32(math.NaN())
						}
					}
					AttentionBackward(dq, dk, dv, dout, out, lse, q, k, v, make([]float32, nl), &sh)
					assertClose(t, "dq", dq, f64s(wdq), 1e-5)
					assertClose(t, "dk", dk, f64s(wdk), 1e-5)
					assertClose(t, "dv", dv, f64s(wdv), 1e-5)
				})
			}
		}
	}
}
