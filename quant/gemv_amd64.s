#include "textflag.h"

// Fused dequantise-and-dot kernels for decoding (see gemv.go): each weight row is
// decoded in registers and multiplied into one row of X, never written out as f32.

// REDUCE16 sums the 16 lanes of z (whose low halves are y and x) into the low lane of
// x, with ty/tx as scratch.
#define REDUCE16(z, y, x, ty, tx) \
	VEXTRACTF64X4 $1, z, ty; \
	VADDPS        ty, y, y; \
	VEXTRACTF128  $1, y, tx; \
	VADDPS        tx, x, x; \
	VPERMILPS     $0x4e, x, tx; \
	VADDPS        tx, x, x; \
	VPERMILPS     $0xb1, x, tx; \
	VADDSS        tx, x, x

// func nf4GemvAVX512(data *byte, x *float32, k, rows, bs int, scales *float32, code *[16]float32, y *float32, acc bool)
//
// For rows consecutive weight rows of k values each (k a positive multiple of bs, bs
// a positive multiple of 64, so every row starts on a block boundary and row r's k/2
// bytes follow row r−1's), y[r] (+)= Σ_b scales[b] · Σ_{p in block b} code[nib p]·x[p],
// scales advancing one per block. x is the activation row re-ordered per 32 values:
// x[2j] of the group in lane j of its first 16 floats and x[2j+1] in lane j of the
// second 16, so that one dword per byte serves both of its nibbles: VPERMPS reads the
// low 4 bits of each index (the odd value's code), and the dword shifted right by 4 is
// the even value's code.
//
// Registers: SI codes, DX x (reset per row, base R12), CX values left in the row, R13
// values left in the block, BX scales, DI y, Z0 the code table, Z1 the row's total,
// Z2–Z5 the block's partial sums.
TEXT ·nf4GemvAVX512(SB), NOSPLIT, $0-65
	MOVQ    data+0(FP), SI
	MOVQ    x+8(FP), R12
	MOVQ    k+16(FP), R8
	MOVQ    rows+24(FP), R9
	MOVQ    bs+32(FP), R10
	MOVQ    scales+40(FP), BX
	MOVQ    code+48(FP), AX
	MOVQ    y+56(FP), DI
	MOVBLZX acc+64(FP), R11
	VMOVUPS (AX), Z0

nf4row:
	VPXORD Z1, Z1, Z1
	MOVQ   R12, DX
	MOVQ   R8, CX

nf4block:
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	MOVQ   R10, R13

nf4grp: // 64 values from 32 bytes
	VPMOVZXBD   (SI), Z6
	VPMOVZXBD   16(SI), Z7
	VPSRLD      $4, Z6, Z8
	VPSRLD      $4, Z7, Z9
	VPERMPS     Z0, Z6, Z6
	VPERMPS     Z0, Z7, Z7
	VPERMPS     Z0, Z8, Z8
	VPERMPS     Z0, Z9, Z9
	VFMADD231PS (DX), Z8, Z2
	VFMADD231PS 64(DX), Z6, Z3
	VFMADD231PS 128(DX), Z9, Z4
	VFMADD231PS 192(DX), Z7, Z5
	ADDQ        $32, SI
	ADDQ        $256, DX
	SUBQ        $64, R13
	JNZ         nf4grp

	VADDPS       Z3, Z2, Z2
	VADDPS       Z5, Z4, Z4
	VADDPS       Z4, Z2, Z2
	VBROADCASTSS (BX), Z10
	VFMADD231PS  Z10, Z2, Z1
	ADDQ         $4, BX
	SUBQ         R10, CX
	JNZ          nf4block

	REDUCE16(Z1, Y1, X1, Y11, X11)
	TESTQ  R11, R11
	JZ     nf4store
	VADDSS (DI), X1, X1

nf4store:
	VMOVSS X1, (DI)
	ADDQ   $4, DI
	DECQ   R9
	JNZ    nf4row
	VZEROUPPER
	RET

// func i8GemvAVX512(data *int8, x *float32, k, rows int, scales *float32, y *float32, acc bool)
//
// For rows consecutive weight rows of k > 0 codes each, y[r] (+)= scales[r] ·
// Σ_p code[r][p]·x[p]. The k tail below 16 is read under a mask.
//
// Registers: SI codes, DX x (reset per row, base R12), CX values left in the row, BX
// scales, DI y, Z1–Z4 partial sums.
TEXT ·i8GemvAVX512(SB), NOSPLIT, $0-49
	MOVQ    data+0(FP), SI
	MOVQ    x+8(FP), R12
	MOVQ    k+16(FP), R8
	MOVQ    rows+24(FP), R9
	MOVQ    scales+32(FP), BX
	MOVQ    y+40(FP), DI
	MOVBLZX acc+48(FP), R11

i8row:
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	MOVQ   R12, DX
	MOVQ   R8, CX
	CMPQ   CX, $64
	JLT    i8by16

i8by64:
	VPMOVSXBD   (SI), Z5
	VPMOVSXBD   16(SI), Z6
	VPMOVSXBD   32(SI), Z7
	VPMOVSXBD   48(SI), Z8
	VCVTDQ2PS   Z5, Z5
	VCVTDQ2PS   Z6, Z6
	VCVTDQ2PS   Z7, Z7
	VCVTDQ2PS   Z8, Z8
	VFMADD231PS (DX), Z5, Z1
	VFMADD231PS 64(DX), Z6, Z2
	VFMADD231PS 128(DX), Z7, Z3
	VFMADD231PS 192(DX), Z8, Z4
	ADDQ        $64, SI
	ADDQ        $256, DX
	SUBQ        $64, CX
	CMPQ        CX, $64
	JGE         i8by64

i8by16:
	CMPQ        CX, $16
	JLT         i8tail
	VPMOVSXBD   (SI), Z5
	VCVTDQ2PS   Z5, Z5
	VFMADD231PS (DX), Z5, Z1
	ADDQ        $16, SI
	ADDQ        $64, DX
	SUBQ        $16, CX
	JMP         i8by16

i8tail:
	TESTQ       CX, CX
	JZ          i8sum
	MOVL        $1, AX
	SHLL        CX, AX
	DECL        AX
	KMOVW       AX, K1
	VPMOVSXBD.Z (SI), K1, Z5
	VMOVUPS.Z   (DX), K1, Z6
	VCVTDQ2PS   Z5, Z5
	VFMADD231PS Z6, Z5, Z2
	ADDQ        CX, SI

i8sum:
	VADDPS Z2, Z1, Z1
	VADDPS Z4, Z3, Z3
	VADDPS Z3, Z1, Z1
	REDUCE16(Z1, Y1, X1, Y11, X11)
	VMULSS (BX), X1, X1
	TESTQ  R11, R11
	JZ     i8store
	VADDSS (DI), X1, X1

i8store:
	VMOVSS X1, (DI)
	ADDQ   $4, BX
	ADDQ   $4, DI
	DECQ   R9
	JNZ    i8row
	VZEROUPPER
	RET

// func nestedScalesAVX512(dst *float32, q *byte, n16 int, code *[256]float32, a, off float32)
//
// dst[i] = code[q[i]]·a + off for 16·n16 values, rounded after the product and after
// the sum (NestedAbsmax.Value).
TEXT ·nestedScalesAVX512(SB), NOSPLIT, $0-40
	MOVQ         dst+0(FP), DI
	MOVQ         q+8(FP), SI
	MOVQ         n16+16(FP), CX
	MOVQ         code+24(FP), AX
	VBROADCASTSS a+32(FP), Z3
	VBROADCASTSS off+36(FP), Z4

nestloop:
	VPMOVZXBD  (SI), Z1
	KXNORW     K1, K1, K1
	VGATHERDPS (AX)(Z1*4), K1, Z2
	VMULPS     Z3, Z2, Z2
	VADDPS     Z4, Z2, Z2
	VMOVUPS    Z2, (DI)
	ADDQ       $16, SI
	ADDQ       $64, DI
	DECQ       CX
	JNZ        nestloop
	VZEROUPPER
	RET
