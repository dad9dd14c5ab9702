#include "textflag.h"

// NEON decoders from quantised codes to f32 for the GEMM panels (see decode.go).
// Every value is code·scale rounded once to f32, as the Go twins compute it.
// Instructions the Go assembler has no mnemonic for are WORD-encoded; each macro
// names the instruction it encodes (arguments are vector register numbers).

// fmul vD.4s, vN.4s, vM.4s
#define FMUL4(D, N, M) WORD $(0x6E20DC00 | ((M)<<16) | ((N)<<5) | (D))
// scvtf vD.4s, vN.4s  (int32 to f32)
#define SCVTF4(D, N) WORD $(0x4E21D800 | ((N)<<5) | (D))
// sxtl vD.8h, vN.8b  /  sxtl2 vD.8h, vN.16b  (sign-extend bytes to halfwords)
#define SXTLB(D, N) WORD $(0x0F08A400 | ((N)<<5) | (D))
#define SXTL2B(D, N) WORD $(0x4F08A400 | ((N)<<5) | (D))
// sxtl vD.4s, vN.4h  /  sxtl2 vD.4s, vN.8h  (sign-extend halfwords to words)
#define SXTLH(D, N) WORD $(0x0F10A400 | ((N)<<5) | (D))
#define SXTL2H(D, N) WORD $(0x4F10A400 | ((N)<<5) | (D))

// func nf4DecodeNEON(dst *float32, src *byte, n16 int, code *[16]float32, scale float32)
// The 16 scaled codes code[j]·scale are split into four byte planes (plane b holds
// byte b of every entry) with two rounds of UZP1/UZP2; then per 8 source bytes the
// nibbles are interleaved high/low into 16 indices, one TBL per plane looks up the
// bytes of the 16 results, and ST4 interleaves the planes back into 16 floats.
TEXT ·nf4DecodeNEON(SB), NOSPLIT, $0-36
	MOVD  dst+0(FP), R0
	MOVD  src+8(FP), R1
	MOVD  n16+16(FP), R2
	MOVD  code+24(FP), R3
	MOVWU scale+32(FP), R4
	VDUP  R4, V31.S4
	VLD1  (R3), [V0.S4, V1.S4, V2.S4, V3.S4]
	FMUL4(0, 0, 31)
	FMUL4(1, 1, 31)
	FMUL4(2, 2, 31)
	FMUL4(3, 3, 31)
	VUZP1 V1.B16, V0.B16, V4.B16   // bytes 0 and 2 of entries 0–7
	VUZP2 V1.B16, V0.B16, V5.B16   // bytes 1 and 3 of entries 0–7
	VUZP1 V3.B16, V2.B16, V6.B16   // bytes 0 and 2 of entries 8–15
	VUZP2 V3.B16, V2.B16, V7.B16   // bytes 1 and 3 of entries 8–15
	VUZP1 V6.B16, V4.B16, V16.B16  // plane 0
	VUZP1 V7.B16, V5.B16, V17.B16  // plane 1
	VUZP2 V6.B16, V4.B16, V18.B16  // plane 2
	VUZP2 V7.B16, V5.B16, V19.B16  // plane 3
	VMOVI $15, V30.B16

nf4loop:
	VLD1.P 8(R1), [V8.B8]
	VUSHR  $4, V8.B8, V9.B8
	VAND   V30.B16, V8.B16, V10.B16
	VZIP1  V10.B16, V9.B16, V11.B16 // high nibble first: hi0, lo0, hi1, lo1, ...
	VTBL   V11.B16, [V16.B16], V20.B16
	VTBL   V11.B16, [V17.B16], V21.B16
	VTBL   V11.B16, [V18.B16], V22.B16
	VTBL   V11.B16, [V19.B16], V23.B16
	VST4.P [V20.B16, V21.B16, V22.B16, V23.B16], 64(R0)
	SUB    $1, R2
	CBNZ   R2, nf4loop
	RET

// func i8DecodeNEON(dst *float32, src *int8, groups int, scale float32)
// 16 values per group: sign-extend to int32 in two steps, convert, scale.
TEXT ·i8DecodeNEON(SB), NOSPLIT, $0-28
	MOVD  dst+0(FP), R0
	MOVD  src+8(FP), R1
	MOVD  groups+16(FP), R2
	MOVWU scale+24(FP), R4
	VDUP  R4, V31.S4

i8loop:
	VLD1.P 16(R1), [V0.B16]
	SXTLB(1, 0)
	SXTL2B(2, 0)
	SXTLH(3, 1)
	SXTL2H(4, 1)
	SXTLH(5, 2)
	SXTL2H(6, 2)
	SCVTF4(3, 3)
	SCVTF4(4, 4)
	SCVTF4(5, 5)
	SCVTF4(6, 6)
	FMUL4(3, 3, 31)
	FMUL4(4, 4, 31)
	FMUL4(5, 5, 31)
	FMUL4(6, 6, 31)
	VST1.P [V3.S4, V4.S4, V5.S4, V6.S4], 64(R0)
	SUB    $1, R2
	CBNZ   R2, i8loop
	RET
