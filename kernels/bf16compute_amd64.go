package kernels

import "golang.org/x/sys/cpu"

//go:noescape
func gemmBF16Kern12x32(kp int, a *BF16, lda int, b *uint32, c *float32, ldc int, acc bool)

//go:noescape
func roundBF16AVX512(dst *BF16, src *float32, n int)

//go:noescape
func packPairsBF16AVX512(dst *uint32, src *BF16, ldb, kp int)

// bf16PeakLoop and f32PeakLoop are register-only throughput probes (benchmarks).
func bf16PeakLoop(n int)
func f32PeakLoop(n int)

var bf16AVX512 = &bf16Set{
	native: true,
	mr:     12,
	nr:     32,
	kern:   gemmBF16Kern12x32,
	round:  roundBF16AVX512,
	pairs:  packPairsBF16AVX512,
	trans:  packT16AVX512,
}

// The AVX-512 set gains the bf16 kernels where the CPU has AVX512_BF16.
func init() {
	if cpu.X86.HasAVX512BF16 {
		avx512Impl.bf16 = bf16AVX512
	}
}
