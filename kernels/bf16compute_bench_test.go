package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkBF16Compute compares the bf16-compute GEMMs with today's f32-compute GEMMs
// (bf16 weights widened to f32) on the frozen products of one qwen2.5-0.5b layer at
// seq 512, forward (NT) and input gradient (NN), on 1 and 2 threads:
//
//	go test ./kernels -run '^$' -bench 'BF16Compute' -count 5
//
// cpuGFLOP/s (1 thread) divides by the thread's CPU time, which a busy machine
// disturbs less than wall time.
func BenchmarkBF16Compute(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, th := range []int{1, 2} {
		benchWithThreads(b, th, func(b *testing.B) {
			for _, c := range projCases[:4] {
				m, n, k := c.m, c.n, c.k
				x, w, dy := randSlice(r, m*k), randSlice(r, n*k), randSlice(r, m*n)
				wb, _ := toBF16(w)
				y, dx := make([]float32, m*n), make([]float32, m*k)
				flops := 2.0 * float64(m) * float64(n) * float64(k)
				b.Run(fmt.Sprintf("%s/%dx%dx%d", c.name, m, n, k), func(b *testing.B) {
					b.Run("NT-f32", func(b *testing.B) {
						loopCPU(b, flops, func() { MatMulNTBF16(y, x, wb, m, n, k, false) })
					})
					b.Run("NT-bf16", func(b *testing.B) {
						loopCPU(b, flops, func() { MatMulNTBF16Compute(y, x, wb, m, n, k, false) })
					})
					b.Run("NN-f32", func(b *testing.B) {
						loopCPU(b, flops, func() { MatMulNNBF16(dx, dy, wb, m, n, k, false) })
					})
					b.Run("NN-bf16", func(b *testing.B) {
						loopCPU(b, flops, func() { MatMulNNBF16Compute(dx, dy, wb, m, n, k, false) })
					})
				})
			}
		})
	}
}

// BenchmarkBF16MicroKernel times the bf16 micro-kernel alone on L1-resident operands
// (kp = kpBlock pairs): the ceiling the driver can reach.
func BenchmarkBF16MicroKernel(b *testing.B) {
	prev := Threads()
	SetThreads(1)
	defer SetThreads(prev)
	for _, s := range []*bf16Set{activeBF16(), bf16Generic} {
		kp := kpBlock
		a := make([]BF16, s.mr*2*kp)
		bp := make([]uint32, kp*s.nr)
		for i := range a {
			a[i] = F32ToBF16(1 + float32(i%7)/8)
		}
		for i := range bp {
			bp[i] = 0x3f803f80
		}
		c := make([]float32, s.mr*s.nr)
		b.Run(fmt.Sprintf("%dx%d-native=%v", s.mr, s.nr, s.native), func(b *testing.B) {
			loopCPU(b, 4*float64(s.mr*s.nr*kp), func() { s.kern(kp, &a[0], 2*kp, &bp[0], &c[0], s.nr, false) })
		})
	}
}
