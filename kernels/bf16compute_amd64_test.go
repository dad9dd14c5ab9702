package kernels

import (
	"testing"

	"golang.org/x/sys/cpu"
)

// BenchmarkPeak measures one core's arithmetic peak with register-only loops (no
// memory traffic, 24 independent accumulators, far more than latency × issue width):
// VDPBF16PS (64 flops per zmm instruction) and VFMADD231PS (32 flops). The bf16 GEMM is
// quoted as a fraction of the first:
//
//	go test ./kernels -run '^$' -bench 'Peak|BF16MicroKernel' -count 5
func BenchmarkPeak(b *testing.B) {
	prev := Threads()
	SetThreads(1)
	defer SetThreads(prev)
	const n = 1 << 14
	if cpu.X86.HasAVX512BF16 {
		b.Run("vdpbf16ps", func(b *testing.B) { loopCPU(b, n*24*64, func() { bf16PeakLoop(n) }) })
	}
	if cpu.X86.HasAVX512F {
		b.Run("vfmadd231ps", func(b *testing.B) { loopCPU(b, n*24*32, func() { f32PeakLoop(n) }) })
	}
}
