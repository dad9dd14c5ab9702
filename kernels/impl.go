package kernels

import (
	"fmt"
	"strings"
)

// An impl is one complete set of kernels for a class of CPU.
type impl struct {
	name string
	gemm microKernel
	// narrow, when set, replaces gemm for outputs at most narrowCols wide (rank-wide
	// LoRA products), which would otherwise pad the wide micro-kernel's columns.
	narrow microKernel
	// packT and packTBF16, when set, transpose 16×16 blocks for the NT packer.
	packT     transposer16[float32]
	packTBF16 transposer16[BF16]
	// packRowsBF16, when set, widens one full 32-column panel for the NN packer.
	packRowsBF16 func(dst *float32, src *BF16, ldb, kc int)
	// dot and axpy work on the first n elements, n a multiple of vec (the wrappers do
	// the tail in Go).
	vec  int
	dot  func(a, b *float32, n int) float32
	axpy func(alpha float32, x, y *float32, n int)
	// Vector exp and softmax helpers (exp.go), same contract as dot and axpy.
	exp    func(dst, src *float32, n int)
	expSum func(x *float32, n int, shift float32) float32
	expSub func(x, sub *float32, n int)
	max    func(x *float32, n int) float32
	scale  func(alpha float32, x *float32, n int)
	// SiLU-gated product and its backward (silu.go).
	siluMul    func(a, g, u *float32, n int)
	siluMulBwd func(dg, du, da, g, u *float32, n int)
	// bf16, when set, is the native bf16-compute GEMM (bf16compute.go); without it the
	// bf16-compute products run on the plain-Go twin.
	bf16 *bf16Set
}

// impls lists the kernel sets this build can run on this CPU, fastest first; the
// plain-Go set is always last. It is filled once at start-up from CPU features.
var impls = append(archImpls(), genericImpl)

var active = impls[0]

// Impl reports the kernel set in use: "avx512", "avx2" or "generic".
func Impl() string { return active.name }

// Impls lists the kernel sets usable on this CPU, fastest first.
func Impls() []string {
	names := make([]string, len(impls))
	for i, im := range impls {
		names[i] = im.name
	}
	return names
}

// SetImpl switches every kernel to the named set (one of Impls()). It is meant for
// tests and benchmarks comparing paths; call it while no kernel runs.
func SetImpl(name string) error {
	for _, im := range impls {
		if im.name == name {
			active = im
			return nil
		}
	}
	return fmt.Errorf("kernels: implementation %q not available on this CPU (have %s)", name, strings.Join(Impls(), ", "))
}
