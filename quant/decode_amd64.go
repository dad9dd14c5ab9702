package quant

import "golang.org/x/sys/cpu"

//go:noescape
func nf4DecodeAVX512(dst *float32, src *byte, n16 int, code *[16]float32, scale float32)

//go:noescape
func i8DecodeAVX512(dst *float32, src *int8, groups int, scale float32)

//go:noescape
func nf4DecodeAVX2(dst *float32, src *byte, n16 int, code *[16]float32, scale float32)

//go:noescape
func nf4GemvAVX512(data *byte, x *float32, k, rows, bs int, scales *float32, code *[16]float32, y *float32, acc bool)

//go:noescape
func i8GemvAVX512(data *int8, x *float32, k, rows int, scales *float32, y *float32, acc bool)

//go:noescape
func nestedScalesAVX512(dst *float32, q *byte, n16 int, code *[256]float32, a, off float32)

//go:noescape
func i8DecodeAVX2(dst *float32, src *int8, groups int, scale float32)

// archDecoders returns the assembly decoder sets the CPU and OS support, fastest first.
func archDecoders() []*decoderSet {
	var out []*decoderSet
	x := cpu.X86
	if x.HasAVX512F && x.HasAVX512BW && x.HasAVX512VL {
		out = append(out, &decoderSet{name: "avx512", nf4: nf4DecodeAVX512, i8: i8DecodeAVX512, i8Group: 16,
			nf4Gemv: nf4GemvAVX512, i8Gemv: i8GemvAVX512, nestedScales: nestedScalesAVX512})
	}
	if x.HasAVX2 {
		out = append(out, &decoderSet{name: "avx2", nf4: nf4DecodeAVX2, i8: i8DecodeAVX2, i8Group: 8})
	}
	return out
}
