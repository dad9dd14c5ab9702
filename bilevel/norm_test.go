package bilevel

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bidora/bidora/kernels"
)

// TestNormThreads checks that the chunked parallel norm of V gives the same bits at 1, 2
// and 16 threads and equals a serial float64 sum within 1e-12 relative, on tensor sizes
// around the chunk length.
func TestNormThreads(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var x [][]float32
	for _, n := range []int{0, 1, chunkLen - 1, chunkLen, chunkLen + 1, 3*chunkLen + 17, 5} {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		x = append(x, v)
	}
	var ss float64
	for _, v := range x {
		for _, f := range v {
			ss += float64(f) * float64(f)
		}
	}
	want := math.Sqrt(ss)
	prev := kernels.Threads()
	defer kernels.SetThreads(prev)
	var first float64
	for i, th := range []int{1, 2, 16} {
		kernels.SetThreads(th)
		got := norm(x)
		if i == 0 {
			first = got
		} else if got != first {
			t.Errorf("threads %d: norm %v, want the 1-thread bits %v", th, got, first)
		}
		if math.Abs(got-want) > 1e-12*want {
			t.Errorf("threads %d: norm %v, want %v", th, got, want)
		}
	}
}
