package quant

import (
	"slices"
	"testing"
)

// TestNEONDecodersChosen fails when an arm64 build runs only the plain-Go decoders:
// the comparisons with the twins (TestDecode*, TestGemvQuant) prove the assembly only
// when the NEON set is registered and active by default.
func TestNEONDecodersChosen(t *testing.T) {
	if got := Impl(); got != "neon" {
		t.Fatalf("Impl() = %q on arm64, want neon (have %v)", got, Impls())
	}
	if !slices.Equal(Impls(), []string{"neon", "generic"}) {
		t.Fatalf("Impls() = %v, want [neon generic]", Impls())
	}
}
