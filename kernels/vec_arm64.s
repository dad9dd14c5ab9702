#include "textflag.h"
#include "neon_arm64.h"

// Vector kernels for NEON: dot, axpy, max, scale, and the float32 exp with the
// softmax and SiLU helpers built on it. n is a multiple of 4 (the impl's vec); the
// Go wrappers do the rest. exp runs the algorithm of expGo (exp.go):
//   x clamped to [-110, 89] (FMAX/FMIN pass NaN through), k = round(x·log2 e),
//   r = x − k·ln2 (two-part ln2), exp(r) by its degree-7 Taylor polynomial (Horner,
//   FMA), times 2^(k>>1)·2^(k−k>>1) so that k = 128 overflows to +Inf and k down to
//   −159 underflows through subnormals to 0.

// expc holds each constant 4 times (16 bytes), loaded once into v16–v28 in this
// order: lo, hi, log2e, ln2hi, ln2lo, c7, c6, c5, c4, c3, c2, one, bias (int32 127).
DATA expc<>+0(SB)/8, $0xc2dc0000c2dc0000 // lo
DATA expc<>+8(SB)/8, $0xc2dc0000c2dc0000
DATA expc<>+16(SB)/8, $0x42b2000042b20000 // hi
DATA expc<>+24(SB)/8, $0x42b2000042b20000
DATA expc<>+32(SB)/8, $0x3fb8aa3b3fb8aa3b // log2e
DATA expc<>+40(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expc<>+48(SB)/8, $0x3f3180003f318000 // ln2hi
DATA expc<>+56(SB)/8, $0x3f3180003f318000
DATA expc<>+64(SB)/8, $0xb95e8083b95e8083 // ln2lo
DATA expc<>+72(SB)/8, $0xb95e8083b95e8083
DATA expc<>+80(SB)/8, $0x39500d0139500d01 // c7
DATA expc<>+88(SB)/8, $0x39500d0139500d01
DATA expc<>+96(SB)/8, $0x3ab60b613ab60b61 // c6
DATA expc<>+104(SB)/8, $0x3ab60b613ab60b61
DATA expc<>+112(SB)/8, $0x3c0888893c088889 // c5
DATA expc<>+120(SB)/8, $0x3c0888893c088889
DATA expc<>+128(SB)/8, $0x3d2aaaab3d2aaaab // c4
DATA expc<>+136(SB)/8, $0x3d2aaaab3d2aaaab
DATA expc<>+144(SB)/8, $0x3e2aaaab3e2aaaab // c3
DATA expc<>+152(SB)/8, $0x3e2aaaab3e2aaaab
DATA expc<>+160(SB)/8, $0x3f0000003f000000 // c2
DATA expc<>+168(SB)/8, $0x3f0000003f000000
DATA expc<>+176(SB)/8, $0x3f8000003f800000 // one
DATA expc<>+184(SB)/8, $0x3f8000003f800000
DATA expc<>+192(SB)/8, $0x0000007f0000007f // bias
DATA expc<>+200(SB)/8, $0x0000007f0000007f
GLOBL expc<>(SB), RODATA|NOPTR, $208

// LOADEXPC loads the exp constants into v16–v28 (R9 is clobbered).
#define LOADEXPC \
	MOVD   $expc<>(SB), R9; \
	VLD1.P 64(R9), [V16.S4, V17.S4, V18.S4, V19.S4]; \
	VLD1.P 64(R9), [V20.S4, V21.S4, V22.S4, V23.S4]; \
	VLD1.P 64(R9), [V24.S4, V25.S4, V26.S4, V27.S4]; \
	VLD1   (R9), [V28.S4]

// EXP4 replaces vX by exp(vX), with temporaries vT1–vT3 (constants in v16–v28).
#define EXP4(X, T1, T2, T3) \
	FMAX4(X, X, 16); \
	FMIN4(X, X, 17); \
	FMUL4(T1, X, 18); \
	FRINTN4(T1, T1); \
	FMLS4(X, T1, 19); \
	FMLS4(X, T1, 20); \
	VMOVR(T2, 22); \
	FMLA4(T2, 21, X); \
	VMOVR(T3, 23); \
	FMLA4(T3, T2, X); \
	VMOVR(T2, 24); \
	FMLA4(T2, T3, X); \
	VMOVR(T3, 25); \
	FMLA4(T3, T2, X); \
	VMOVR(T2, 26); \
	FMLA4(T2, T3, X); \
	VMOVR(T3, 27); \
	FMLA4(T3, T2, X); \
	VMOVR(T2, 27); \
	FMLA4(T2, T3, X); \
	FCVTZS4(T1, T1); \
	SSHR1(T3, T1); \
	ISUB4(T1, T1, T3); \
	IADD4(T3, T3, 28); \
	SHL23(T3, T3); \
	IADD4(T1, T1, 28); \
	SHL23(T1, T1); \
	FMUL4(X, T2, T3); \
	FMUL4(X, X, T1)

// func dotNEON(a, b *float32, n int) float32
TEXT ·dotNEON(SB), NOSPLIT, $0-28
	MOVD a+0(FP), R0
	MOVD b+8(FP), R1
	MOVD n+16(FP), R2
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	CMP  $16, R2
	BLT  dottail

dotloop:
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1.P 64(R1), [V8.S4, V9.S4, V10.S4, V11.S4]
	FMLA4(0, 4, 8)
	FMLA4(1, 5, 9)
	FMLA4(2, 6, 10)
	FMLA4(3, 7, 11)
	SUB    $16, R2
	CMP    $16, R2
	BGE    dotloop

dottail:
	CBZ R2, dotdone

dottail1:
	VLD1.P 16(R0), [V4.S4]
	VLD1.P 16(R1), [V8.S4]
	FMLA4(0, 4, 8)
	SUB    $4, R2
	CBNZ   R2, dottail1

dotdone:
	FADD4(0, 0, 1)
	FADD4(2, 2, 3)
	FADD4(0, 0, 2)
	FADDP4(0, 0, 0)
	FADDP4(0, 0, 0)
	FMOVS F0, ret+24(FP)
	RET

// func axpyNEON(alpha float32, x, y *float32, n int)
TEXT ·axpyNEON(SB), NOSPLIT, $0-32
	MOVWU alpha+0(FP), R3
	MOVD  x+8(FP), R0
	MOVD  y+16(FP), R1
	MOVD  n+24(FP), R2
	VDUP  R3, V31.S4
	CMP   $16, R2
	BLT   axpytail

axpyloop:
	VLD1.P 64(R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1   (R1), [V4.S4, V5.S4, V6.S4, V7.S4]
	FMLA4(4, 0, 31)
	FMLA4(5, 1, 31)
	FMLA4(6, 2, 31)
	FMLA4(7, 3, 31)
	VST1.P [V4.S4, V5.S4, V6.S4, V7.S4], 64(R1)
	SUB    $16, R2
	CMP    $16, R2
	BGE    axpyloop

axpytail:
	CBZ R2, axpydone

axpytail1:
	VLD1.P 16(R0), [V0.S4]
	VLD1   (R1), [V4.S4]
	FMLA4(4, 0, 31)
	VST1.P [V4.S4], 16(R1)
	SUB    $4, R2
	CBNZ   R2, axpytail1

axpydone:
	RET

// func maxNEON(x *float32, n int) float32
TEXT ·maxNEON(SB), NOSPLIT, $0-20
	MOVD x+0(FP), R0
	MOVD n+8(FP), R2
	VLD1 (R0), [V0.S4]
	VMOVR(1, 0)
	VMOVR(2, 0)
	VMOVR(3, 0)
	CMP  $16, R2
	BLT  maxtail

maxloop:
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	FMAX4(0, 0, 4)
	FMAX4(1, 1, 5)
	FMAX4(2, 2, 6)
	FMAX4(3, 3, 7)
	SUB    $16, R2
	CMP    $16, R2
	BGE    maxloop

maxtail:
	CBZ R2, maxdone

maxtail1:
	VLD1.P 16(R0), [V4.S4]
	FMAX4(0, 0, 4)
	SUB    $4, R2
	CBNZ   R2, maxtail1

maxdone:
	FMAX4(0, 0, 1)
	FMAX4(2, 2, 3)
	FMAX4(0, 0, 2)
	FMAXV4(0, 0)
	FMOVS F0, ret+16(FP)
	RET

// func scaleNEON(alpha float32, x *float32, n int)
TEXT ·scaleNEON(SB), NOSPLIT, $0-24
	MOVWU alpha+0(FP), R3
	MOVD  x+8(FP), R0
	MOVD  n+16(FP), R2
	VDUP  R3, V31.S4
	CMP   $16, R2
	BLT   scaletail

scaleloop:
	VLD1   (R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	FMUL4(0, 0, 31)
	FMUL4(1, 1, 31)
	FMUL4(2, 2, 31)
	FMUL4(3, 3, 31)
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R0)
	SUB    $16, R2
	CMP    $16, R2
	BGE    scaleloop

scaletail:
	CBZ R2, scaledone

scaletail1:
	VLD1   (R0), [V0.S4]
	FMUL4(0, 0, 31)
	VST1.P [V0.S4], 16(R0)
	SUB    $4, R2
	CBNZ   R2, scaletail1

scaledone:
	RET

// func expNEON(dst, src *float32, n int)
// Two vectors per pass where n allows, for two independent dependency chains.
TEXT ·expNEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD n+16(FP), R2
	LOADEXPC
	CMP  $8, R2
	BLT  exptail

exploop:
	VLD1.P 32(R1), [V0.S4, V1.S4]
	EXP4(0, 2, 3, 4)
	EXP4(1, 5, 6, 7)
	VST1.P [V0.S4, V1.S4], 32(R0)
	SUB    $8, R2
	CMP    $8, R2
	BGE    exploop

exptail:
	CBZ R2, expdone
	VLD1   (R1), [V0.S4]
	EXP4(0, 2, 3, 4)
	VST1   [V0.S4], (R0)

expdone:
	RET

// func expSumNEON(x *float32, n int, shift float32) float32
// x[i] = exp(x[i] − shift); returns the sum (four f32 partial sums per lane pair).
TEXT ·expSumNEON(SB), NOSPLIT, $0-28
	MOVD  x+0(FP), R0
	MOVD  n+8(FP), R2
	MOVWU shift+16(FP), R3
	VDUP  R3, V31.S4
	LOADEXPC
	VEOR  V29.B16, V29.B16, V29.B16
	VEOR  V30.B16, V30.B16, V30.B16
	CMP   $8, R2
	BLT   esumtail

esumloop:
	VLD1   (R0), [V0.S4, V1.S4]
	FSUB4(0, 0, 31)
	FSUB4(1, 1, 31)
	EXP4(0, 2, 3, 4)
	EXP4(1, 5, 6, 7)
	FADD4(29, 29, 0)
	FADD4(30, 30, 1)
	VST1.P [V0.S4, V1.S4], 32(R0)
	SUB    $8, R2
	CMP    $8, R2
	BGE    esumloop

esumtail:
	CBZ R2, esumdone
	VLD1   (R0), [V0.S4]
	FSUB4(0, 0, 31)
	EXP4(0, 2, 3, 4)
	FADD4(29, 29, 0)
	VST1   [V0.S4], (R0)

esumdone:
	FADD4(29, 29, 30)
	FADDP4(29, 29, 29)
	FADDP4(29, 29, 29)
	FMOVS F29, ret+24(FP)
	RET

// func expSubNEON(x, sub *float32, n int)
// x[i] = exp(x[i] − sub[i]).
TEXT ·expSubNEON(SB), NOSPLIT, $0-24
	MOVD x+0(FP), R0
	MOVD sub+8(FP), R1
	MOVD n+16(FP), R2
	LOADEXPC
	CMP  $8, R2
	BLT  esubtail

esubloop:
	VLD1   (R0), [V0.S4, V1.S4]
	VLD1.P 32(R1), [V8.S4, V9.S4]
	FSUB4(0, 0, 8)
	FSUB4(1, 1, 9)
	EXP4(0, 2, 3, 4)
	EXP4(1, 5, 6, 7)
	VST1.P [V0.S4, V1.S4], 32(R0)
	SUB    $8, R2
	CMP    $8, R2
	BGE    esubloop

esubtail:
	CBZ R2, esubdone
	VLD1   (R0), [V0.S4]
	VLD1   (R1), [V8.S4]
	FSUB4(0, 0, 8)
	EXP4(0, 2, 3, 4)
	VST1   [V0.S4], (R0)

esubdone:
	RET

// func siluMulNEON(a, gate, u *float32, n int)
// a = g·u / (1 + exp(−g)), in the order of the plain-Go twin.
TEXT ·siluMulNEON(SB), NOSPLIT, $0-32
	MOVD a+0(FP), R0
	MOVD gate+8(FP), R1
	MOVD u+16(FP), R3
	MOVD n+24(FP), R2
	LOADEXPC
	VEOR V29.B16, V29.B16, V29.B16

siluloop:
	VLD1.P 16(R1), [V8.S4]
	VLD1.P 16(R3), [V9.S4]
	FSUB4(0, 29, 8)
	EXP4(0, 2, 3, 4)
	FADD4(0, 0, 27)
	FMUL4(8, 8, 9)
	FDIV4(8, 8, 0)
	VST1.P [V8.S4], 16(R0)
	SUB    $4, R2
	CBNZ   R2, siluloop
	RET

// func siluMulBwdNEON(dg, du, da, gate, u *float32, n int)
// σ = 1/(1 + exp(−g)); du = da·g·σ; dg = da·u·σ·(1 + g·(1 − σ)).
TEXT ·siluMulBwdNEON(SB), NOSPLIT, $0-48
	MOVD dg+0(FP), R0
	MOVD du+8(FP), R4
	MOVD da+16(FP), R5
	MOVD gate+24(FP), R1
	MOVD u+32(FP), R3
	MOVD n+40(FP), R2
	LOADEXPC
	VEOR V29.B16, V29.B16, V29.B16

silubloop:
	VLD1.P 16(R1), [V8.S4]
	VLD1.P 16(R3), [V9.S4]
	VLD1.P 16(R5), [V10.S4]
	FSUB4(0, 29, 8)
	EXP4(0, 2, 3, 4)
	FADD4(0, 0, 27)
	FDIV4(11, 27, 0)
	FMUL4(12, 10, 8)
	FMUL4(12, 12, 11)
	VST1.P [V12.S4], 16(R4)
	FSUB4(13, 27, 11)
	VMOVR(14, 27)
	FMLA4(14, 8, 13)
	FMUL4(12, 10, 9)
	FMUL4(12, 12, 11)
	FMUL4(12, 12, 14)
	VST1.P [V12.S4], 16(R0)
	SUB    $4, R2
	CBNZ   R2, silubloop
	RET
