package kernels

import (
	"encoding/binary"
	"os"
	"runtime"
)

//go:noescape
func gemmBF16Kern8x8BFDOT(kp int, a *BF16, lda int, b *uint32, c *float32, ldc int, acc bool)

// bf16NEON is the native bf16-compute set of arm64 cores with FEAT_BF16 (BFDOT):
// Neoverse V1/V2/N2, Cortex-X2 and later, Apple M2 and later.
var bf16NEON = &bf16Set{native: true, mr: 8, nr: 8, kern: gemmBF16Kern8x8BFDOT}

// The NEON set gains the BFDOT kernel where the OS reports FEAT_BF16.
func init() {
	if hasBF16() {
		neonImpl.bf16 = bf16NEON
	}
}

// hasBF16 reports FEAT_BF16 from the auxiliary vector's AT_HWCAP2 (HWCAP2_BF16, bit
// 14) on Linux; x/sys/cpu has no bit for it. Elsewhere (macOS) it reports false and
// the bf16-compute products run on the plain-Go twin.
func hasBF16() bool {
	if runtime.GOOS != "linux" && runtime.GOOS != "android" {
		return false
	}
	auxv, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return false
	}
	const atHWCAP2, hwcap2BF16 = 26, 1 << 14
	for ; len(auxv) >= 16; auxv = auxv[16:] {
		if binary.LittleEndian.Uint64(auxv) == atHWCAP2 {
			return binary.LittleEndian.Uint64(auxv[8:])&hwcap2BF16 != 0
		}
	}
	return false
}
