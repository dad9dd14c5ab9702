#include "textflag.h"
#include "neon_arm64.h"

// GEMV kernels for NEON (the contract of gemvOps.kern in gemv.go, kStep 8): for m ≤ 4
// rows of X and rows (a multiple of 4) weight rows, Y[i][r] (+)= Σₚ X[i][p]·W[r][p]
// over the first k&^7 columns. Each pass takes four weight rows and eight columns;
// bf16 weights are widened in registers by interleaving them with zero halves (ZIP1,
// ZIP2: bf16 is the high half of an f32). Per row of X and weight row the partial
// sums sit in the lanes of one register; three FADDPs turn four such registers into
// the four outputs of that row. m = 2, 3 run the four-row code with the missing rows
// of X aliased to row 0 (read, never stored); m = 1 has its own loop.

// func gemvF32NEON(m, k int, x *float32, ldx int, w *float32, ldw int, rows int, y *float32, ldy int, acc bool)
TEXT ·gemvF32NEON(SB), NOSPLIT, $0-73
	MOVD  m+0(FP), R0
	MOVD  k+8(FP), R1
	MOVD  x+16(FP), R10
	MOVD  ldx+24(FP), R3
	MOVD  w+32(FP), R4
	MOVD  ldw+40(FP), R5
	MOVD  rows+48(FP), R6
	MOVD  y+56(FP), R7
	MOVD  ldy+64(FP), R8
	MOVBU acc+72(FP), R9
	LSR   $3, R1
	LSL   $2, R3
	LSL   $2, R5
	LSL   $2, R8
	MOVD  R10, R11
	MOVD  R10, R12
	MOVD  R10, R13
	CMP   $1, R0
	BEQ   fone
	ADD   R3, R10, R11
	CMP   $3, R0
	BLT   fgroup
	ADD   R3, R11, R12
	CMP   $4, R0
	BLT   fgroup
	ADD   R3, R12, R13

fgroup:
	MOVD  R4, R14
	ADD   R5, R14, R15
	ADD   R5, R15, R19
	ADD   R5, R19, R20
	ADD   R5, R20, R4
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
	MOVD  R10, R21
	MOVD  R11, R22
	MOVD  R12, R23
	MOVD  R13, R24
	MOVD  R1, R25
	CBZ   R25, freduce

floop:
	VLD1.P 32(R21), [V16.S4, V17.S4]
	VLD1.P 32(R22), [V18.S4, V19.S4]
	VLD1.P 32(R23), [V20.S4, V21.S4]
	VLD1.P 32(R24), [V22.S4, V23.S4]
	VLD1.P 32(R14), [V24.S4, V25.S4]
	FMLA4(0, 16, 24)
	FMLA4(0, 17, 25)
	FMLA4(4, 18, 24)
	FMLA4(4, 19, 25)
	FMLA4(8, 20, 24)
	FMLA4(8, 21, 25)
	FMLA4(12, 22, 24)
	FMLA4(12, 23, 25)
	VLD1.P 32(R15), [V26.S4, V27.S4]
	FMLA4(1, 16, 26)
	FMLA4(1, 17, 27)
	FMLA4(5, 18, 26)
	FMLA4(5, 19, 27)
	FMLA4(9, 20, 26)
	FMLA4(9, 21, 27)
	FMLA4(13, 22, 26)
	FMLA4(13, 23, 27)
	VLD1.P 32(R19), [V24.S4, V25.S4]
	FMLA4(2, 16, 24)
	FMLA4(2, 17, 25)
	FMLA4(6, 18, 24)
	FMLA4(6, 19, 25)
	FMLA4(10, 20, 24)
	FMLA4(10, 21, 25)
	FMLA4(14, 22, 24)
	FMLA4(14, 23, 25)
	VLD1.P 32(R20), [V26.S4, V27.S4]
	FMLA4(3, 16, 26)
	FMLA4(3, 17, 27)
	FMLA4(7, 18, 26)
	FMLA4(7, 19, 27)
	FMLA4(11, 20, 26)
	FMLA4(11, 21, 27)
	FMLA4(15, 22, 26)
	FMLA4(15, 23, 27)
	SUB   $1, R25
	CBNZ  R25, floop

freduce:
	FADDP4(0, 0, 1)
	FADDP4(2, 2, 3)
	FADDP4(0, 0, 2)
	FADDP4(4, 4, 5)
	FADDP4(6, 6, 7)
	FADDP4(4, 4, 6)
	FADDP4(8, 8, 9)
	FADDP4(10, 10, 11)
	FADDP4(8, 8, 10)
	FADDP4(12, 12, 13)
	FADDP4(14, 14, 15)
	FADDP4(12, 12, 14)
	MOVD  R7, R2
	CBZ   R9, fst0
	VLD1  (R2), [V24.S4]
	FADD4(0, 0, 24)
fst0:
	VST1  [V0.S4], (R2)
	CMP   $2, R0
	BLT   fnext
	ADD   R8, R2
	CBZ   R9, fst1
	VLD1  (R2), [V24.S4]
	FADD4(4, 4, 24)
fst1:
	VST1  [V4.S4], (R2)
	CMP   $3, R0
	BLT   fnext
	ADD   R8, R2
	CBZ   R9, fst2
	VLD1  (R2), [V24.S4]
	FADD4(8, 8, 24)
fst2:
	VST1  [V8.S4], (R2)
	CMP   $4, R0
	BLT   fnext
	ADD   R8, R2
	CBZ   R9, fst3
	VLD1  (R2), [V24.S4]
	FADD4(12, 12, 24)
fst3:
	VST1  [V12.S4], (R2)

fnext:
	ADD   $16, R7
	SUB   $4, R6
	CBNZ  R6, fgroup
	RET

// One row of X: eight accumulators (two per weight row), no padding rows.
fone:
	MOVD  R4, R14
	ADD   R5, R14, R15
	ADD   R5, R15, R19
	ADD   R5, R19, R20
	ADD   R5, R20, R4
	VEOR  V0.B16, V0.B16, V0.B16
	VEOR  V1.B16, V1.B16, V1.B16
	VEOR  V2.B16, V2.B16, V2.B16
	VEOR  V3.B16, V3.B16, V3.B16
	VEOR  V4.B16, V4.B16, V4.B16
	VEOR  V5.B16, V5.B16, V5.B16
	VEOR  V6.B16, V6.B16, V6.B16
	VEOR  V7.B16, V7.B16, V7.B16
	MOVD  R10, R21
	MOVD  R1, R25
	CBZ   R25, fonereduce

foneloop:
	VLD1.P 32(R21), [V16.S4, V17.S4]
	VLD1.P 32(R14), [V22.S4, V23.S4]
	FMLA4(0, 16, 22)
	FMLA4(1, 17, 23)
	VLD1.P 32(R15), [V24.S4, V25.S4]
	FMLA4(2, 16, 24)
	FMLA4(3, 17, 25)
	VLD1.P 32(R19), [V26.S4, V27.S4]
	FMLA4(4, 16, 26)
	FMLA4(5, 17, 27)
	VLD1.P 32(R20), [V28.S4, V29.S4]
	FMLA4(6, 16, 28)
	FMLA4(7, 17, 29)
	SUB   $1, R25
	CBNZ  R25, foneloop

fonereduce:
	FADD4(0, 0, 1)
	FADD4(2, 2, 3)
	FADD4(4, 4, 5)
	FADD4(6, 6, 7)
	FADDP4(0, 0, 2)
	FADDP4(4, 4, 6)
	FADDP4(0, 0, 4)
	CBZ   R9, fonest
	VLD1  (R7), [V24.S4]
	FADD4(0, 0, 24)
fonest:
	VST1  [V0.S4], (R7)
	ADD   $16, R7
	SUB   $4, R6
	CBNZ  R6, fone
	RET

// func gemvBF16NEON(m, k int, x *float32, ldx int, w *BF16, ldw int, rows int, y *float32, ldy int, acc bool)
TEXT ·gemvBF16NEON(SB), NOSPLIT, $0-73
	MOVD  m+0(FP), R0
	MOVD  k+8(FP), R1
	MOVD  x+16(FP), R10
	MOVD  ldx+24(FP), R3
	MOVD  w+32(FP), R4
	MOVD  ldw+40(FP), R5
	MOVD  rows+48(FP), R6
	MOVD  y+56(FP), R7
	MOVD  ldy+64(FP), R8
	MOVBU acc+72(FP), R9
	LSR   $3, R1
	LSL   $2, R3
	LSL   $1, R5
	LSL   $2, R8
	VEOR  V31.B16, V31.B16, V31.B16
	MOVD  R10, R11
	MOVD  R10, R12
	MOVD  R10, R13
	CMP   $1, R0
	BEQ   bone
	ADD   R3, R10, R11
	CMP   $3, R0
	BLT   bgroup
	ADD   R3, R11, R12
	CMP   $4, R0
	BLT   bgroup
	ADD   R3, R12, R13

bgroup:
	MOVD  R4, R14
	ADD   R5, R14, R15
	ADD   R5, R15, R19
	ADD   R5, R19, R20
	ADD   R5, R20, R4
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
	MOVD  R10, R21
	MOVD  R11, R22
	MOVD  R12, R23
	MOVD  R13, R24
	MOVD  R1, R25
	CBZ   R25, breduce

bloop:
	VLD1.P 32(R21), [V16.S4, V17.S4]
	VLD1.P 32(R22), [V18.S4, V19.S4]
	VLD1.P 32(R23), [V20.S4, V21.S4]
	VLD1.P 32(R24), [V22.S4, V23.S4]
	VLD1.P 16(R14), [V28.H8]
	VZIP1 V28.H8, V31.H8, V24.H8
	VZIP2 V28.H8, V31.H8, V25.H8
	FMLA4(0, 16, 24)
	FMLA4(0, 17, 25)
	FMLA4(4, 18, 24)
	FMLA4(4, 19, 25)
	FMLA4(8, 20, 24)
	FMLA4(8, 21, 25)
	FMLA4(12, 22, 24)
	FMLA4(12, 23, 25)
	VLD1.P 16(R15), [V29.H8]
	VZIP1 V29.H8, V31.H8, V26.H8
	VZIP2 V29.H8, V31.H8, V27.H8
	FMLA4(1, 16, 26)
	FMLA4(1, 17, 27)
	FMLA4(5, 18, 26)
	FMLA4(5, 19, 27)
	FMLA4(9, 20, 26)
	FMLA4(9, 21, 27)
	FMLA4(13, 22, 26)
	FMLA4(13, 23, 27)
	VLD1.P 16(R19), [V28.H8]
	VZIP1 V28.H8, V31.H8, V24.H8
	VZIP2 V28.H8, V31.H8, V25.H8
	FMLA4(2, 16, 24)
	FMLA4(2, 17, 25)
	FMLA4(6, 18, 24)
	FMLA4(6, 19, 25)
	FMLA4(10, 20, 24)
	FMLA4(10, 21, 25)
	FMLA4(14, 22, 24)
	FMLA4(14, 23, 25)
	VLD1.P 16(R20), [V29.H8]
	VZIP1 V29.H8, V31.H8, V26.H8
	VZIP2 V29.H8, V31.H8, V27.H8
	FMLA4(3, 16, 26)
	FMLA4(3, 17, 27)
	FMLA4(7, 18, 26)
	FMLA4(7, 19, 27)
	FMLA4(11, 20, 26)
	FMLA4(11, 21, 27)
	FMLA4(15, 22, 26)
	FMLA4(15, 23, 27)
	SUB   $1, R25
	CBNZ  R25, bloop

breduce:
	FADDP4(0, 0, 1)
	FADDP4(2, 2, 3)
	FADDP4(0, 0, 2)
	FADDP4(4, 4, 5)
	FADDP4(6, 6, 7)
	FADDP4(4, 4, 6)
	FADDP4(8, 8, 9)
	FADDP4(10, 10, 11)
	FADDP4(8, 8, 10)
	FADDP4(12, 12, 13)
	FADDP4(14, 14, 15)
	FADDP4(12, 12, 14)
	MOVD  R7, R2
	CBZ   R9, bst0
	VLD1  (R2), [V24.S4]
	FADD4(0, 0, 24)
bst0:
	VST1  [V0.S4], (R2)
	CMP   $2, R0
	BLT   bnext
	ADD   R8, R2
	CBZ   R9, bst1
	VLD1  (R2), [V24.S4]
	FADD4(4, 4, 24)
bst1:
	VST1  [V4.S4], (R2)
	CMP   $3, R0
	BLT   bnext
	ADD   R8, R2
	CBZ   R9, bst2
	VLD1  (R2), [V24.S4]
	FADD4(8, 8, 24)
bst2:
	VST1  [V8.S4], (R2)
	CMP   $4, R0
	BLT   bnext
	ADD   R8, R2
	CBZ   R9, bst3
	VLD1  (R2), [V24.S4]
	FADD4(12, 12, 24)
bst3:
	VST1  [V12.S4], (R2)

bnext:
	ADD   $16, R7
	SUB   $4, R6
	CBNZ  R6, bgroup
	RET

// One row of X: eight accumulators (two per weight row), no padding rows.
bone:
	MOVD  R4, R14
	ADD   R5, R14, R15
	ADD   R5, R15, R19
	ADD   R5, R19, R20
	ADD   R5, R20, R4
	VEOR  V0.B16, V0.B16, V0.B16
	VEOR  V1.B16, V1.B16, V1.B16
	VEOR  V2.B16, V2.B16, V2.B16
	VEOR  V3.B16, V3.B16, V3.B16
	VEOR  V4.B16, V4.B16, V4.B16
	VEOR  V5.B16, V5.B16, V5.B16
	VEOR  V6.B16, V6.B16, V6.B16
	VEOR  V7.B16, V7.B16, V7.B16
	MOVD  R10, R21
	MOVD  R1, R25
	CBZ   R25, bonereduce

boneloop:
	VLD1.P 32(R21), [V16.S4, V17.S4]
	VLD1.P 16(R14), [V18.H8]
	VZIP1 V18.H8, V31.H8, V22.H8
	VZIP2 V18.H8, V31.H8, V23.H8
	FMLA4(0, 16, 22)
	FMLA4(1, 17, 23)
	VLD1.P 16(R15), [V19.H8]
	VZIP1 V19.H8, V31.H8, V24.H8
	VZIP2 V19.H8, V31.H8, V25.H8
	FMLA4(2, 16, 24)
	FMLA4(3, 17, 25)
	VLD1.P 16(R19), [V20.H8]
	VZIP1 V20.H8, V31.H8, V26.H8
	VZIP2 V20.H8, V31.H8, V27.H8
	FMLA4(4, 16, 26)
	FMLA4(5, 17, 27)
	VLD1.P 16(R20), [V21.H8]
	VZIP1 V21.H8, V31.H8, V28.H8
	VZIP2 V21.H8, V31.H8, V29.H8
	FMLA4(6, 16, 28)
	FMLA4(7, 17, 29)
	SUB   $1, R25
	CBNZ  R25, boneloop

bonereduce:
	FADD4(0, 0, 1)
	FADD4(2, 2, 3)
	FADD4(4, 4, 5)
	FADD4(6, 6, 7)
	FADDP4(0, 0, 2)
	FADDP4(4, 4, 6)
	FADDP4(0, 0, 4)
	CBZ   R9, bonest
	VLD1  (R7), [V24.S4]
	FADD4(0, 0, 24)
bonest:
	VST1  [V0.S4], (R7)
	ADD   $16, R7
	SUB   $4, R6
	CBNZ  R6, bone
	RET
