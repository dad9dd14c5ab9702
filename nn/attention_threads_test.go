package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bidora/bidora/kernels"
)

// At batch 1 the backward splits each group's query heads when (sequence, kv head,
// key-block pair) items are fewer than 2·Threads(): the unit counts of the shapes
// users train (qwen2.5-0.5b: Hq 14, Hkv 2; 7B: 28/4; Llama 3 8B: 32/8) reach
// 2·16 at 16 threads, and a single thread never splits.
func TestAttentionBackwardSplit(t *testing.T) {
	for _, c := range []struct{ hq, hkv, T int }{
		{14, 2, 512}, {14, 2, 2048}, {28, 4, 512}, {28, 4, 2048}, {32, 8, 512}, {32, 8, 2048},
	} {
		sh := AttnShape{B: 1, T: c.T, Hq: c.hq, Hkv: c.hkv, D: 64}
		if p, s := bwdSplit(&sh, 1); s != 1 {
			t.Errorf("Hq %d Hkv %d T %d: 1 thread splits into %d slices (%d pairs)", c.hq, c.hkv, c.T, s, p)
		}
		p, s := bwdSplit(&sh, 16)
		if p*s < 32 {
			t.Errorf("Hq %d Hkv %d T %d at 16 threads: %d units (%d pairs × %d slices), want ≥ 32", c.hq, c.hkv, c.T, p*s, p, s)
		}
		if s > 1 && p*(s-1) >= 32 {
			t.Errorf("Hq %d Hkv %d T %d at 16 threads: %d slices of %d pairs, more than needed", c.hq, c.hkv, c.T, s, p)
		}
	}
}

// AttentionBackward at 16 threads (heads split into slices, several dQ
// accumulators) equals the 1-thread result within 1e-5 of each tensor's largest value,
// with padding, segments and a window too, and on shapes whose slices hold unequal
// head counts (group 7 in 2 slices at 3 threads).
func TestAttentionBackwardThreads(t *testing.T) {
	segs := func(B, T int) []int32 {
		s := make([]int32, B*T)
		for i := range s {
			s[i] = int32((i % T) / 45)
		}
		return s
	}
	cases := []struct {
		name string
		sh   AttnShape
	}{
		{"qwen-0.5b-heads", AttnShape{B: 1, T: 300, Hq: 14, Hkv: 2, D: 32}},
		{"group4-ragged", AttnShape{B: 2, T: 211, Hq: 8, Hkv: 2, D: 24, Lengths: []int{211, 100}}},
		{"segments-window", AttnShape{B: 1, T: 260, Hq: 6, Hkv: 2, D: 16, Segments: segs(1, 260), Window: 70}},
		{"mha", AttnShape{B: 1, T: 130, Hq: 3, Hkv: 3, D: 8}},
	}
	prev := kernels.Threads()
	defer kernels.SetThreads(prev)
	for _, c := range cases {
		sh := c.sh
		rng := rand.New(rand.NewPCG(4, uint64(sh.T)))
		nq, nk, nl := sh.B*sh.T*sh.Hq*sh.D, sh.B*sh.T*sh.Hkv*sh.D, sh.B*sh.Hq*sh.T
		q, k, v, dout := randF32(rng, nq, 2), randF32(rng, nk, 2), randF32(rng, nk, 1), randF32(rng, nq, 1)
		run := func(th int) (dq, dk, dv []float32) {
			kernels.SetThreads(th)
			out, lse := make([]float32, nq), make([]float32, nl)
			AttentionForward(out, lse, q, k, v, &sh)
			dq, dk, dv = make([]float32, nq), make([]float32, nk), make([]float32, nk)
			for _, g := range [][]float32{dq, dk, dv} {
				for i := range g {
					g[i] = float32(math.NaN()) // every gradient must be written
				}
			}
			AttentionBackward(dq, dk, dv, dout, out, lse, q, k, v, make([]float32, nl), &sh)
			return dq, dk, dv
		}
		dq1, dk1, dv1 := run(1)
		for _, th := range []int{3, 16} {
			t.Run(fmt.Sprintf("%s/threads=%d", c.name, th), func(t *testing.T) {
				if p, s := bwdSplit(&sh, th); th == 16 && sh.Hq > sh.Hkv && s == 1 {
					t.Fatalf("no head split at 16 threads (%d pairs)", p)
				}
				dq, dk, dv := run(th)
				for _, x := range []struct {
					name      string
					got, want []float32
				}{{"dq", dq, dq1}, {"dk", dk, dk1}, {"dv", dv, dv1}} {
					var scale float64
					for _, w := range x.want {
						scale = math.Max(scale, math.Abs(float64(w)))
					}
					for i, g := range x.got {
						if d := math.Abs(float64(g - x.want[i])); !(d <= 1e-5*scale) {
							t.Fatalf("%s[%d] = %g at %d threads, %g at 1 (largest |value| %g)", x.name, i, g, th, x.want[i], scale)
						}
					}
				}
			})
		}
	}
}
