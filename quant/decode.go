package quant

import (
	"fmt"
	"strings"
)

// A decoder set converts codes to f32 for the GEMM panels. The assembly ones work on
// whole groups (16 NF4 values from 8 bytes; 16 int8 values for AVX-512, 8 for AVX2); the
// wrappers below do the rest in Go. All of them give bit-identical results
// (code·scale in f32).
type decoderSet struct {
	name string
	// nf4 decodes 16·n16 values from 8·n16 bytes (high nibble first) with one scale.
	nf4 func(dst *float32, src *byte, n16 int, code *[16]float32, scale float32)
	// i8 decodes i8Group·groups values with one scale.
	i8      func(dst *float32, src *int8, groups int, scale float32)
	i8Group int
	// The decode GEMVs (gemv.go), nil where the set has none (the Go rows run then).
	nf4Gemv      nf4GemvFunc
	i8Gemv       i8GemvFunc
	nestedScales nestedScalesFunc
}

var genericDecoders = &decoderSet{name: "generic"}

// decoders lists the sets usable on this CPU, fastest first; the plain-Go one is last.
var decoders = append(archDecoders(), genericDecoders)

var activeDec = decoders[0]

// Impl reports the decoder set in use: "avx512", "avx2" or "generic".
func Impl() string { return activeDec.name }

// Impls lists the decoder sets usable on this CPU, fastest first.
func Impls() []string {
	names := make([]string, len(decoders))
	for i, d := range decoders {
		names[i] = d.name
	}
	return names
}

// SetImpl switches to the named decoder set (one of Impls()); for tests and
// benchmarks, while no kernel runs.
func SetImpl(name string) error {
	for _, d := range decoders {
		if d.name == name {
			activeDec = d
			return nil
		}
	}
	return fmt.Errorf("quant: implementation %q not available on this CPU (have %s)", name, strings.Join(Impls(), ", "))
}

// decodeNF4Pairs writes dst[2i], dst[2i+1] = code[hi(src[i])]·scale, code[lo(src[i])]·scale.
func decodeNF4Pairs(dst []float32, src []byte, code *[16]float32, scale float32) {
	dst = dst[:2*len(src)]
	done := 0
	if d := activeDec; d.nf4 != nil {
		if n16 := len(src) / 8; n16 > 0 {
			d.nf4(&dst[0], &src[0], n16, code, scale)
			done = n16 * 8
		}
	}
	decodeNF4PairsGo(dst[2*done:], src[done:], code, scale)
}

// decodeInt8 writes dst[i] = float32(src[i])·scale.
func decodeInt8(dst []float32, src []int8, scale float32) {
	dst = dst[:len(src)]
	done := 0
	if d := activeDec; d.i8 != nil {
		if g := len(src) / d.i8Group; g > 0 {
			d.i8(&dst[0], &src[0], g, scale)
			done = g * d.i8Group
		}
	}
	decodeInt8Go(dst[done:], src[done:], scale)
}
