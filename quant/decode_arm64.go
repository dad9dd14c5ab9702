package quant

import "golang.org/x/sys/cpu"

//go:noescape
func nf4DecodeNEON(dst *float32, src *byte, n16 int, code *[16]float32, scale float32)

//go:noescape
func i8DecodeNEON(dst *float32, src *int8, groups int, scale float32)

// archDecoders returns the NEON decoder set (decode_arm64.s) when the CPU reports
// ASIMD (every ARMv8-A core; x/sys/cpu assumes it where the OS gives no feature bits).
func archDecoders() []*decoderSet {
	if cpu.ARM64.HasASIMD {
		return []*decoderSet{{name: "neon", nf4: nf4DecodeNEON, i8: i8DecodeNEON, i8Group: 16}}
	}
	return nil
}
