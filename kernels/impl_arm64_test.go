package kernels

import (
	"slices"
	"testing"
)

// TestNEONChosen fails when an arm64 build runs the plain-Go kernels: the comparisons
// against the twins (TestMatMul, TestGemv, TestExpKernels, ...) only prove the
// assembly when the NEON set is registered and active by default.
func TestNEONChosen(t *testing.T) {
	if got := Impl(); got != "neon" {
		t.Fatalf("Impl() = %q on arm64, want neon (have %v)", got, Impls())
	}
	if !slices.Equal(Impls(), []string{"neon", "generic"}) {
		t.Fatalf("Impls() = %v, want [neon generic]", Impls())
	}
	bf, f := archGemv("neon")
	if bf == nil || f == nil {
		t.Fatal("no NEON GEMV kernels registered")
	}
}

// TestBFDOTChosen: under qemu (whose default CPU has FEAT_BF16) and on such cores the
// BFDOT kernel must be the active bf16-compute set, so that TestBF16Compute checks it;
// elsewhere it must not be.
func TestBFDOTChosen(t *testing.T) {
	if got := activeBF16() == bf16NEON; got != hasBF16() {
		t.Fatalf("BFDOT kernel active = %v, FEAT_BF16 reported = %v", got, hasBF16())
	}
	t.Logf("FEAT_BF16: %v", hasBF16())
}
