#include "textflag.h"
#include "neon_arm64.h"

// bfdot vD.4s, vN.8h, vM.2h[I]  (FEAT_BF16, by element: each lane j of vD += vN[2j]·vM[2I]
// + vN[2j+1]·vM[2I+1], the bf16 pair products summed in f32)
#define BFDOTE(D, N, M, I) WORD $(0x4F40F000 | ((M)<<16) | (((I)&1)<<21) | (((I)>>1)<<11) | ((N)<<5) | (D))

// bf16-compute micro-kernel for CPUs with FEAT_BF16 (the contract of bf16Set.kern in
// bf16compute.go): C[8×8] (+)= A[8×2kp]·B[2kp×8], A bf16 row-major (stride lda bf16
// values), B a packed pair panel (8 words of two bf16 per pair step), C f32. The
// layout is the f32 8×8 kernel's (gemm_arm64.s) with a pair of k values where that
// has one: 16 bytes of an A row hold four pairs, BFDOT by element takes one of them
// against the 8 columns' pairs in two registers. A pair tail of 1–3 goes one pair at
// a time, the A pair in lane 0.

// func gemmBF16Kern8x8BFDOT(kp int, a *BF16, lda int, b *uint32, c *float32, ldc int, acc bool)
TEXT ·gemmBF16Kern8x8BFDOT(SB), NOSPLIT, $0-49
	MOVD  kp+0(FP), R0
	MOVD  a+8(FP), R7
	MOVD  lda+16(FP), R2
	MOVD  b+24(FP), R3
	MOVD  c+32(FP), R4
	MOVD  ldc+40(FP), R5
	MOVBU acc+48(FP), R6
	LSL   $1, R2
	LSL   $2, R5
	ADD   R2, R7, R8
	ADD   R2, R8, R9
	ADD   R2, R9, R10
	ADD   R2, R10, R11
	ADD   R2, R11, R12
	ADD   R2, R12, R13
	ADD   R2, R13, R14
	VEOR  V0.B16, V0.B16, V0.B16
	VEOR  V1.B16, V1.B16, V1.B16
	VEOR  V2.B16, V2.B16, V2.B16
	VEOR  V3.B16, V3.B16, V3.B16
	VEOR  V4.B16, V4.B16, V4.B16
	VEOR  V5.B16, V5.B16, V5.B16
	VEOR  V6.B16, V6.B16, V6.B16
	VEOR  V7.B16, V7.B16, V7.B16
	VEOR  V8.B16, V8.B16, V8.B16
	VEOR  V9.B16, V9.B16, V9.B16
	VEOR  V10.B16, V10.B16, V10.B16
	VEOR  V11.B16, V11.B16, V11.B16
	VEOR  V12.B16, V12.B16, V12.B16
	VEOR  V13.B16, V13.B16, V13.B16
	VEOR  V14.B16, V14.B16, V14.B16
	VEOR  V15.B16, V15.B16, V15.B16
	LSR   $2, R0, R19
	AND   $3, R0, R20
	CBZ   R19, tail

loop4:
	VLD1.P 16(R7), [V16.S4]
	VLD1.P 16(R8), [V17.S4]
	VLD1.P 16(R9), [V18.S4]
	VLD1.P 16(R10), [V19.S4]
	VLD1.P 16(R11), [V20.S4]
	VLD1.P 16(R12), [V21.S4]
	VLD1.P 16(R13), [V22.S4]
	VLD1.P 16(R14), [V23.S4]
	VLD1.P 32(R3), [V24.S4, V25.S4]
	BFDOTE(0, 24, 16, 0)
	BFDOTE(1, 25, 16, 0)
	BFDOTE(2, 24, 17, 0)
	BFDOTE(3, 25, 17, 0)
	BFDOTE(4, 24, 18, 0)
	BFDOTE(5, 25, 18, 0)
	BFDOTE(6, 24, 19, 0)
	BFDOTE(7, 25, 19, 0)
	BFDOTE(8, 24, 20, 0)
	BFDOTE(9, 25, 20, 0)
	BFDOTE(10, 24, 21, 0)
	BFDOTE(11, 25, 21, 0)
	BFDOTE(12, 24, 22, 0)
	BFDOTE(13, 25, 22, 0)
	BFDOTE(14, 24, 23, 0)
	BFDOTE(15, 25, 23, 0)
	VLD1.P 32(R3), [V26.S4, V27.S4]
	BFDOTE(0, 26, 16, 1)
	BFDOTE(1, 27, 16, 1)
	BFDOTE(2, 26, 17, 1)
	BFDOTE(3, 27, 17, 1)
	BFDOTE(4, 26, 18, 1)
	BFDOTE(5, 27, 18, 1)
	BFDOTE(6, 26, 19, 1)
	BFDOTE(7, 27, 19, 1)
	BFDOTE(8, 26, 20, 1)
	BFDOTE(9, 27, 20, 1)
	BFDOTE(10, 26, 21, 1)
	BFDOTE(11, 27, 21, 1)
	BFDOTE(12, 26, 22, 1)
	BFDOTE(13, 27, 22, 1)
	BFDOTE(14, 26, 23, 1)
	BFDOTE(15, 27, 23, 1)
	VLD1.P 32(R3), [V24.S4, V25.S4]
	BFDOTE(0, 24, 16, 2)
	BFDOTE(1, 25, 16, 2)
	BFDOTE(2, 24, 17, 2)
	BFDOTE(3, 25, 17, 2)
	BFDOTE(4, 24, 18, 2)
	BFDOTE(5, 25, 18, 2)
	BFDOTE(6, 24, 19, 2)
	BFDOTE(7, 25, 19, 2)
	BFDOTE(8, 24, 20, 2)
	BFDOTE(9, 25, 20, 2)
	BFDOTE(10, 24, 21, 2)
	BFDOTE(11, 25, 21, 2)
	BFDOTE(12, 24, 22, 2)
	BFDOTE(13, 25, 22, 2)
	BFDOTE(14, 24, 23, 2)
	BFDOTE(15, 25, 23, 2)
	VLD1.P 32(R3), [V26.S4, V27.S4]
	BFDOTE(0, 26, 16, 3)
	BFDOTE(1, 27, 16, 3)
	BFDOTE(2, 26, 17, 3)
	BFDOTE(3, 27, 17, 3)
	BFDOTE(4, 26, 18, 3)
	BFDOTE(5, 27, 18, 3)
	BFDOTE(6, 26, 19, 3)
	BFDOTE(7, 27, 19, 3)
	BFDOTE(8, 26, 20, 3)
	BFDOTE(9, 27, 20, 3)
	BFDOTE(10, 26, 21, 3)
	BFDOTE(11, 27, 21, 3)
	BFDOTE(12, 26, 22, 3)
	BFDOTE(13, 27, 22, 3)
	BFDOTE(14, 26, 23, 3)
	BFDOTE(15, 27, 23, 3)
	SUB   $1, R19
	CBNZ  R19, loop4

tail:
	CBZ   R20, store

tail1:
	FMOVS.P 4(R7), F16
	FMOVS.P 4(R8), F17
	FMOVS.P 4(R9), F18
	FMOVS.P 4(R10), F19
	FMOVS.P 4(R11), F20
	FMOVS.P 4(R12), F21
	FMOVS.P 4(R13), F22
	FMOVS.P 4(R14), F23
	VLD1.P 32(R3), [V24.S4, V25.S4]
	BFDOTE(0, 24, 16, 0)
	BFDOTE(1, 25, 16, 0)
	BFDOTE(2, 24, 17, 0)
	BFDOTE(3, 25, 17, 0)
	BFDOTE(4, 24, 18, 0)
	BFDOTE(5, 25, 18, 0)
	BFDOTE(6, 24, 19, 0)
	BFDOTE(7, 25, 19, 0)
	BFDOTE(8, 24, 20, 0)
	BFDOTE(9, 25, 20, 0)
	BFDOTE(10, 24, 21, 0)
	BFDOTE(11, 25, 21, 0)
	BFDOTE(12, 24, 22, 0)
	BFDOTE(13, 25, 22, 0)
	BFDOTE(14, 24, 23, 0)
	BFDOTE(15, 25, 23, 0)
	SUB   $1, R20
	CBNZ  R20, tail1

store:
	CBZ   R6, overwrite
	VLD1  (R4), [V24.S4, V25.S4]
	FADD4(0, 0, 24)
	FADD4(1, 1, 25)
	VST1  [V0.S4, V1.S4], (R4)
	ADD   R5, R4
	VLD1  (R4), [V24.S4, V25.S4]
	FADD4(2, 2, 24)
	FADD4(3, 3, 25)
	VST1  [V2.S4, V3.S4], (R4)
	ADD   R5, R4
	VLD1  (R4), [V24.S4, V25.S4]
	FADD4(4, 4, 24)
	FADD4(5, 5, 25)
	VST1  [V4.S4, V5.S4], (R4)
	ADD   R5, R4
	VLD1  (R4), [V24.S4, V25.S4]
	FADD4(6, 6, 24)
	FADD4(7, 7, 25)
	VST1  [V6.S4, V7.S4], (R4)
	ADD   R5, R4
	VLD1  (R4), [V24.S4, V25.S4]
	FADD4(8, 8, 24)
	FADD4(9, 9, 25)
	VST1  [V8.S4, V9.S4], (R4)
	ADD   R5, R4
	VLD1  (R4), [V24.S4, V25.S4]
	FADD4(10, 10, 24)
	FADD4(11, 11, 25)
	VST1  [V10.S4, V11.S4], (R4)
	ADD   R5, R4
	VLD1  (R4), [V24.S4, V25.S4]
	FADD4(12, 12, 24)
	FADD4(13, 13, 25)
	VST1  [V12.S4, V13.S4], (R4)
	ADD   R5, R4
	VLD1  (R4), [V24.S4, V25.S4]
	FADD4(14, 14, 24)
	FADD4(15, 15, 25)
	VST1  [V14.S4, V15.S4], (R4)
	RET

overwrite:
	VST1  [V0.S4, V1.S4], (R4)
	ADD   R5, R4
	VST1  [V2.S4, V3.S4], (R4)
	ADD   R5, R4
	VST1  [V4.S4, V5.S4], (R4)
	ADD   R5, R4
	VST1  [V6.S4, V7.S4], (R4)
	ADD   R5, R4
	VST1  [V8.S4, V9.S4], (R4)
	ADD   R5, R4
	VST1  [V10.S4, V11.S4], (R4)
	ADD   R5, R4
	VST1  [V12.S4, V13.S4], (R4)
	ADD   R5, R4
	VST1  [V14.S4, V15.S4], (R4)
	RET
