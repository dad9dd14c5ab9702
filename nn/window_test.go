package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bidora/bidora/kernels"
)

// windowRef is grouped-query attention in f64 written out plainly with the
// sliding-window causal mask: query i of sequence b sees key j iff
// i − W < j ≤ i (W = 0: no window), j < length(b), and j is in i's segment.
func windowRef(q, k, v []float64, sh *AttnShape) []float64 {
	B, T, Hq, Hkv, D := sh.B, sh.T, sh.Hq, sh.Hkv, sh.D
	out := make([]float64, B*T*Hq*D)
	for b := range B {
		length := T
		if sh.Lengths != nil {
			length = min(T, sh.Lengths[b])
		}
		for h := range Hq {
			kh := h / (Hq / Hkv)
			for i := range T {
				var ps []float64
				var js []int
				mx := math.Inf(-1)
				for j := 0; j < length; j++ {
					if j > i || (sh.Window > 0 && j <= i-sh.Window) ||
						(sh.Segments != nil && sh.Segments[b*T+i] != sh.Segments[b*T+j]) {
						continue
					}
					s := dot64(q[(b*T+i)*Hq*D+h*D:][:D], k[(b*T+j)*Hkv*D+kh*D:][:D]) / math.Sqrt(float64(D))
					ps, js = append(ps, s), append(js, j)
					mx = math.Max(mx, s)
				}
				var z float64
				for n := range ps {
					ps[n] = math.Exp(ps[n] - mx)
					z += ps[n]
				}
				for n, j := range js {
					for d := range D {
						out[(b*T+i)*Hq*D+h*D+d] += ps[n] / z * v[(b*T+j)*Hkv*D+kh*D+d]
					}
				}
			}
		}
	}
	return out
}

// TestAttentionWindow checks the training kernels with a sliding window against
// windowRef: the forward everywhere, the backward by central differences (all
// entries on small shapes, a sample on large ones) and against the row-at-a-time
// twin, on awkward sizes: windows of 1, of a block's width ± 1, longer than the
// sequence, with padding and packed segments, several kernel sets and workers.
func TestAttentionWindow(t *testing.T) {
	segs := func(B, T, every int) []int32 {
		s := make([]int32, B*T)
		for i := range s {
			s[i] = int32((i % T) / every)
		}
		return s
	}
	cases := []struct {
		name string
		sh   AttnShape
	}{
		{"w1", AttnShape{B: 1, T: 7, Hq: 2, Hkv: 1, D: 4, Window: 1}},
		{"w3-gqa-padded", AttnShape{B: 2, T: 13, Hq: 4, Hkv: 2, D: 6, Lengths: []int{13, 9}, Window: 3}},
		{"w4-segments", AttnShape{B: 2, T: 11, Hq: 2, Hkv: 1, D: 4, Lengths: []int{11, 8}, Window: 4,
			Segments: []int32{0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1}}},
		{"longer-than-T", AttnShape{B: 1, T: 9, Hq: 3, Hkv: 3, D: 5, Window: 50}},
		{"w63", AttnShape{B: 1, T: 230, Hq: 2, Hkv: 1, D: 17, Window: 63}},
		{"w65-ragged", AttnShape{B: 2, T: 257, Hq: 3, Hkv: 1, D: 8, Lengths: []int{257, 140}, Window: 65}},
		{"w97-segments", AttnShape{B: 2, T: 301, Hq: 4, Hkv: 2, D: 8, Lengths: []int{301, 250}, Window: 97, Segments: segs(2, 301, 120)}},
		{"w200", AttnShape{B: 1, T: 290, Hq: 2, Hkv: 2, D: 16, Window: 200}},
	}
	prevImpl, prevThreads := kernels.Impl(), kernels.Threads()
	defer func() { _ = kernels.SetImpl(prevImpl); kernels.SetThreads(prevThreads) }()
	for _, c := range cases {
		sh := c.sh
		rng := rand.New(rand.NewPCG(11, uint64(sh.T*1000+sh.Window)))
		nq, nk, nl := sh.B*sh.T*sh.Hq*sh.D, sh.B*sh.T*sh.Hkv*sh.D, sh.B*sh.Hq*sh.T
		q, k, v := randF32(rng, nq, 1.5), randF32(rng, nk, 1.5), randF32(rng, nk, 1)
		r := f64s(randF32(rng, nq, 1))
		for b := range sh.B { // padded queries carry no gradient in the model
			for i := sh.length(b); i < sh.T; i++ {
				clear(r[(b*sh.T+i)*sh.Hq*sh.D : (b*sh.T+i+1)*sh.Hq*sh.D])
			}
		}
		dout := make([]float32, nq)
		for i, x := range r {
			dout[i] = float32(x)
		}
		q64, k64, v64 := f64s(q), f64s(k), f64s(v)
		want := windowRef(q64, k64, v64, &sh)
		loss := func() float64 { return dot64(windowRef(q64, k64, v64, &sh), r) }
		// The window must change the answer, or the case tests nothing.
		full := sh
		full.Window = 0
		if sh.Window < sh.T && maxAbsDiff(want, windowRef(q64, k64, v64, &full)) < 1e-3 {
			t.Fatalf("%s: the window does not change the output", c.name)
		}
		rowsOut, rowsLse := make([]float32, nq), make([]float32, nl)
		attentionForwardRows(rowsOut, rowsLse, q, k, v, &sh)
		wdq, wdk, wdv := make([]float32, nq), make([]float32, nk), make([]float32, nk)
		attentionBackwardRows(wdq, wdk, wdv, dout, rowsOut, rowsLse, q, k, v, make([]float32, nl), &sh)
		var ndq, ndk, ndv []float64
		var idx []int
		if sh.T <= 20 {
			ndq, ndk, ndv = numGrad(q64, loss), numGrad(k64, loss), numGrad(v64, loss)
		} else {
			idx = []int{0, 9, nk / 3, nk / 2, nk - 7}
		}
		for _, impl := range kernels.Impls() {
			for _, th := range []int{1, 3} {
				t.Run(fmt.Sprintf("%s/%s/threads=%d", c.name, impl, th), func(t *testing.T) {
					_ = kernels.SetImpl(impl)
					kernels.SetThreads(th)
					out, lse := make([]float32, nq), make([]float32, nl)
					AttentionForward(out, lse, q, k, v, &sh)
					assertClose(t, "out vs reference", out, want, 1e-5)
					dq, dk, dv := make([]float32, nq), make([]float32, nk), make([]float32, nk)
					for _, g := range [][]float32{dq, dk, dv} {
						for i := range g {
							g[i] = float32(math.NaN()) // every gradient must be written
						}
					}
					AttentionBackward(dq, dk, dv, dout, out, lse, q, k, v, make([]float32, nl), &sh)
					assertClose(t, "dq vs rows", dq, f64s(wdq), 1e-5)
					assertClose(t, "dk vs rows", dk, f64s(wdk), 1e-5)
					assertClose(t, "dv vs rows", dv, f64s(wdv), 1e-5)
					if ndq != nil {
						assertClose(t, "dq", dq, ndq, 1e-5)
						assertClose(t, "dk", dk, ndk, 1e-5)
						assertClose(t, "dv", dv, ndv, 1e-5)
						return
					}
					if impl != kernels.Impls()[0] || th != 1 {
						return // the sampled finite differences are slow; once per case
					}
					for _, x := range []struct {
						name string
						g    []float32
						p    []float64
					}{{"dq", dq, q64}, {"dk", dk, k64}, {"dv", dv, v64}} {
						for _, i := range idx {
							assertClose(t, fmt.Sprintf("%s[%d]", x.name, i), x.g[i:i+1], numGrad(x.p[i:i+1], loss), 1e-4)
						}
					}
				})
			}
		}
	}
}

func maxAbsDiff(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// TestAttentionDecodeWindow: prefilling in chunks and decoding token by token with
// a window equals windowed attention over the whole sequence, also past the window.
func TestAttentionDecodeWindow(t *testing.T) {
	for _, c := range []struct {
		T, Hq, Hkv, D, W int
		chunks           []int
	}{
		{12, 4, 2, 8, 1, nil},
		{40, 4, 2, 8, 5, []int{17}},
		{200, 3, 1, 16, 70, []int{130, 3}},
		{150, 2, 2, 8, 64, []int{64, 65}},
	} {
		t.Run(fmt.Sprintf("T%d-W%d", c.T, c.W), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, uint64(c.T)))
			sh := &CacheShape{Hq: c.Hq, Hkv: c.Hkv, D: c.D, Cap: c.T + 3, Window: c.W}
			qd, kd := c.Hq*c.D, c.Hkv*c.D
			q, k, v := randF32(rng, c.T*qd, 1.5), randF32(rng, c.T*kd, 1.5), randF32(rng, c.T*kd, 1)
			want := windowRef(f64s(q), f64s(k), f64s(v), &AttnShape{B: 1, T: c.T, Hq: c.Hq, Hkv: c.Hkv, D: c.D, Window: c.W})
			kc, vc := make([]float32, sh.Len()), make([]float32, sh.Len())
			got := make([]float32, c.T*qd)
			for start, ci := 0, 0; start < c.T; ci++ {
				n := 1
				if ci < len(c.chunks) {
					n = c.chunks[ci]
				}
				n = min(n, c.T-start)
				StoreKV(kc, vc, k[start*kd:], v[start*kd:], start, n, sh)
				AttentionDecode(got[start*qd:], q[start*qd:], kc, vc, start, n, sh)
				start += n
			}
			assertClose(t, "out", got, want, 1e-5)
		})
	}
}
