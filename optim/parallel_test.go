package optim

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/bidora/bidora/kernels"
)

// parallelValues visits every value of every parameter exactly once, whatever the
// sizes (empty ones included) and the thread count; and an AdamW step split over 7
// threads equals the 1-thread step bit for bit (it is element-wise).
func TestParallelValues(t *testing.T) {
	sizes := []int{0, 1, 20000, 3, 40000, 0, 17, stepGrain, stepGrain + 1}
	mk := func() []Param {
		r := rand.New(rand.NewPCG(1, 2))
		ps := make([]Param, len(sizes))
		for i, n := range sizes {
			ps[i] = Param{Data: make([]float32, n), Grad: make([]float32, n), NoDecay: i%2 == 1}
			for j := range n {
				ps[i].Data[j], ps[i].Grad[j] = float32(r.NormFloat64()), float32(r.NormFloat64())
			}
		}
		return ps
	}
	prev := kernels.Threads()
	defer kernels.SetThreads(prev)
	var want []Param
	for _, th := range []int{1, 7} {
		kernels.SetThreads(th)
		ps := mk()
		seen := make([][]atomic.Int32, len(ps))
		for i, p := range ps {
			seen[i] = make([]atomic.Int32, len(p.Data))
		}
		parallelValues(ps, func(i, lo, hi int) {
			for j := lo; j < hi; j++ {
				seen[i][j].Add(1)
			}
		})
		for i := range seen {
			for j := range seen[i] {
				if c := seen[i][j].Load(); c != 1 {
					t.Fatalf("threads %d: param %d value %d visited %d times", th, i, j, c)
				}
			}
		}
		o := NewAdamW(0.1)
		for range 3 {
			o.Step(ps, 1e-2)
		}
		if want == nil {
			want = ps
			continue
		}
		for i := range ps {
			for j := range ps[i].Data {
				if ps[i].Data[j] != want[i].Data[j] {
					t.Fatalf("threads %d: param %d value %d = %g, 1 thread %g", th, i, j, ps[i].Data[j], want[i].Data[j])
				}
			}
		}
	}
}
