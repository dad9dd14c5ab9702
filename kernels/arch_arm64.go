package kernels

import "golang.org/x/sys/cpu"

// NEON (ASIMD) kernels in Go assembly (gemm_arm64.s, vec_arm64.s, gemv_arm64.s).
// Instructions the Go assembler has no mnemonic for are WORD-encoded by the macros of
// neon_arm64.h.

//go:noescape
func gemmKern8x8NEON(kc int, a *float32, lda int, b *float32, c *float32, ldc int, acc bool)

//go:noescape
func dotNEON(a, b *float32, n int) float32

//go:noescape
func axpyNEON(alpha float32, x, y *float32, n int)

//go:noescape
func expNEON(dst, src *float32, n int)

//go:noescape
func expSumNEON(x *float32, n int, shift float32) float32

//go:noescape
func expSubNEON(x, sub *float32, n int)

//go:noescape
func maxNEON(x *float32, n int) float32

//go:noescape
func scaleNEON(alpha float32, x *float32, n int)

//go:noescape
func siluMulNEON(a, gate, u *float32, n int)

//go:noescape
func siluMulBwdNEON(dg, du, da, gate, u *float32, n int)

// neonImpl uses an 8×8 micro-kernel: 16 accumulator registers of 4 lanes, 8 for the
// A values of four k steps, 4 for two B rows in flight (of 32 vector registers). It
// also serves outputs at most 8 wide, so it needs no narrow kernel.
var neonImpl = &impl{
	name:       "neon",
	gemm:       microKernel{mr: 8, nr: 8, fn: gemmKern8x8NEON},
	vec:        4,
	dot:        dotNEON,
	axpy:       axpyNEON,
	exp:        expNEON,
	expSum:     expSumNEON,
	expSub:     expSubNEON,
	max:        maxNEON,
	scale:      scaleNEON,
	siluMul:    siluMulNEON,
	siluMulBwd: siluMulBwdNEON,
}

// archImpls returns the NEON set when the CPU reports ASIMD (every ARMv8-A core does;
// x/sys/cpu assumes it where the OS gives no feature bits, as on macOS).
func archImpls() []*impl {
	if cpu.ARM64.HasASIMD {
		return []*impl{neonImpl}
	}
	return nil
}
