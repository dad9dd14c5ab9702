package optim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bidora/bidora/kernels"
)

// gradParams returns parameters of the given sizes with N(0, 1) gradients (and data),
// the same for the same seed.
func gradParams(seed uint64, sizes []int) []Param {
	r := rand.New(rand.NewPCG(seed, 7))
	ps := make([]Param, len(sizes))
	for i, n := range sizes {
		ps[i] = Param{Data: make([]float32, n), Grad: make([]float32, n), NoDecay: i%3 == 2}
		for j := range n {
			ps[i].Data[j], ps[i].Grad[j] = float32(r.NormFloat64()), float32(r.NormFloat64())
		}
	}
	return ps
}

// Sizes that straddle the fixed chunks of GradNorm in every way: empty, shorter than a
// chunk, exactly one, crossing one or several chunk boundaries.
var clipSizes = []int{0, 5, normChunk - 3, normChunk, 1, 0, 3*normChunk + 17, 40000, 2}

// GradNorm equals a serial float64 sum of squares within 1e-12 relative, and is the
// same bit for bit at 1, 2, 7 and 16 threads; clipping scales every gradient by
// torch's maxNorm/(norm+1e-6), identically at every thread count.
func TestGradNormThreadsDeterministic(t *testing.T) {
	prev := kernels.Threads()
	defer kernels.SetThreads(prev)
	ref := gradParams(3, clipSizes)
	var ss float64
	for _, p := range ref {
		for _, g := range p.Grad {
			ss += float64(g) * float64(g)
		}
	}
	want := math.Sqrt(ss)
	var norm1 float64
	var clipped1 []Param
	for _, th := range []int{1, 2, 7, 16} {
		kernels.SetThreads(th)
		ps := gradParams(3, clipSizes)
		n := GradNorm(ps)
		if rel := math.Abs(n-want) / want; rel > 1e-12 {
			t.Fatalf("threads %d: norm %.17g, float64 reference %.17g (rel %g)", th, n, want, rel)
		}
		maxNorm := want / 3
		if got := ClipGradNorm(ps, maxNorm); got != n {
			t.Fatalf("threads %d: ClipGradNorm returned %.17g, GradNorm %.17g", th, got, n)
		}
		c := float32(maxNorm / (n + 1e-6))
		for i := range ps {
			for j, g := range ps[i].Grad {
				if w := ref[i].Grad[j] * c; g != w {
					t.Fatalf("threads %d: param %d grad %d clipped to %g, want %g·%g = %g", th, i, j, g, ref[i].Grad[j], c, w)
				}
			}
		}
		if th == 1 {
			norm1, clipped1 = n, ps
			continue
		}
		if n != norm1 {
			t.Fatalf("threads %d: norm %.17g, 1 thread %.17g (must be bit-identical)", th, n, norm1)
		}
		for i := range ps {
			for j, g := range ps[i].Grad {
				if g != clipped1[i].Grad[j] {
					t.Fatalf("threads %d: param %d clipped grad %d = %g, 1 thread %g", th, i, j, g, clipped1[i].Grad[j])
				}
			}
		}
	}
}

// ZeroGrads and ScaleGrads touch every gradient value, and only gradients.
func TestZeroScaleGrads(t *testing.T) {
	prev := kernels.Threads()
	defer kernels.SetThreads(prev)
	kernels.SetThreads(16)
	ref := gradParams(5, clipSizes)
	ps := gradParams(5, clipSizes)
	ScaleGrads(ps, 0.5)
	for i := range ps {
		for j, g := range ps[i].Grad {
			if g != ref[i].Grad[j]*0.5 || ps[i].Data[j] != ref[i].Data[j] {
				t.Fatalf("ScaleGrads: param %d value %d: grad %g data %g, want %g and %g", i, j, g, ps[i].Data[j], ref[i].Grad[j]*0.5, ref[i].Data[j])
			}
		}
	}
	ZeroGrads(ps)
	for i := range ps {
		for j, g := range ps[i].Grad {
			if g != 0 || ps[i].Data[j] != ref[i].Data[j] {
				t.Fatalf("ZeroGrads: param %d value %d: grad %g data %g", i, j, g, ps[i].Data[j])
			}
		}
	}
}

// The parallel SGD step (with and without momentum, weight decay, NoDecay) equals a
// serial reference of torch.optim.SGD's rule bit for bit at 1 and 16 threads.
func TestSGDThreads(t *testing.T) {
	prev := kernels.Threads()
	defer kernels.SetThreads(prev)
	for _, mom := range []float64{0, 0.9} {
		ref := gradParams(9, clipSizes)
		bufs := make([][]float32, len(ref))
		for step := range 3 {
			for i, p := range ref {
				wd := float32(0.01)
				if p.NoDecay {
					wd = 0
				}
				if bufs[i] == nil {
					bufs[i] = make([]float32, len(p.Data))
				}
				for j, g := range p.Grad {
					d := g + wd*p.Data[j]
					if mom != 0 {
						m := float32(mom)
						if step == 0 {
							m = 0
						}
						bufs[i][j] = m*bufs[i][j] + d
						d = bufs[i][j]
					}
					p.Data[j] -= float32(0.05) * d
				}
			}
		}
		for _, th := range []int{1, 16} {
			kernels.SetThreads(th)
			ps := gradParams(9, clipSizes)
			o := &SGD{Momentum: mom, WeightDecay: 0.01}
			for range 3 {
				o.Step(ps, 0.05)
			}
			for i := range ps {
				for j, v := range ps[i].Data {
					if v != ref[i].Data[j] {
						t.Fatalf("momentum %g, threads %d: param %d value %d = %g, reference %g", mom, th, i, j, v, ref[i].Data[j])
					}
				}
			}
		}
	}
}

// BenchmarkClipGradNorm measures both passes (sum of squares, then scaling) over
// 4.2M gradient values in 64 tensors, the size of an r = 8 all-linear adapter of a
// 0.5B model, at 1 and 2 threads.
func BenchmarkClipGradNorm(b *testing.B) {
	sizes := make([]int, 64)
	for i := range sizes {
		sizes[i] = 65536 + 17*i
	}
	ps := gradParams(1, sizes)
	maxNorm := GradNorm(ps) / 2
	prev := kernels.Threads()
	defer kernels.SetThreads(prev)
	// The serial two-pass loop ClipGradNorm was before it ran on the pool, for the ratio.
	b.Run("serial-loop", func(b *testing.B) {
		b.SetBytes(int64(4 * 65536 * len(sizes)))
		for b.Loop() {
			var ss float64
			for _, p := range ps {
				for _, g := range p.Grad {
					ss += float64(g) * float64(g)
				}
			}
			if c := maxNorm / (math.Sqrt(ss) + 1e-6); c < 1 {
				for _, p := range ps {
					for j := range p.Grad {
						p.Grad[j] *= float32(c)
					}
				}
			}
		}
	})
	for _, th := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", th), func(b *testing.B) {
			kernels.SetThreads(th)
			b.SetBytes(int64(4 * 65536 * len(sizes)))
			for b.Loop() {
				ClipGradNorm(ps, maxNorm)
			}
		})
	}
}
