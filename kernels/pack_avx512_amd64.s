#include "textflag.h"

// Transposing pack for the NT GEMM: 16 rows of W (stride srcStride elements) times
// 16·nblk columns become 16·nblk rows of 16 floats in dst (stride dstStride floats):
// dst[c*dstStride + r] = W[r*srcStride + c]. Each 16×16 block is loaded into Z0–Z15,
// transposed in registers (unpack ps, unpack pd, two 128-bit lane shuffles) and
// stored as 16 rows.

#define TRANSPOSE16 \
	VUNPCKLPS Z1, Z0, Z16; \
	VUNPCKHPS Z1, Z0, Z17; \
	VUNPCKLPS Z3, Z2, Z18; \
	VUNPCKHPS Z3, Z2, Z19; \
	VUNPCKLPS Z5, Z4, Z20; \
	VUNPCKHPS Z5, Z4, Z21; \
	VUNPCKLPS Z7, Z6, Z22; \
	VUNPCKHPS Z7, Z6, Z23; \
	VUNPCKLPS Z9, Z8, Z24; \
	VUNPCKHPS Z9, Z8, Z25; \
	VUNPCKLPS Z11, Z10, Z26; \
	VUNPCKHPS Z11, Z10, Z27; \
	VUNPCKLPS Z13, Z12, Z28; \
	VUNPCKHPS Z13, Z12, Z29; \
	VUNPCKLPS Z15, Z14, Z30; \
	VUNPCKHPS Z15, Z14, Z31; \
	VUNPCKLPD Z18, Z16, Z0; \
	VUNPCKHPD Z18, Z16, Z1; \
	VUNPCKLPD Z19, Z17, Z2; \
	VUNPCKHPD Z19, Z17, Z3; \
	VUNPCKLPD Z22, Z20, Z4; \
	VUNPCKHPD Z22, Z20, Z5; \
	VUNPCKLPD Z23, Z21, Z6; \
	VUNPCKHPD Z23, Z21, Z7; \
	VUNPCKLPD Z26, Z24, Z8; \
	VUNPCKHPD Z26, Z24, Z9; \
	VUNPCKLPD Z27, Z25, Z10; \
	VUNPCKHPD Z27, Z25, Z11; \
	VUNPCKLPD Z30, Z28, Z12; \
	VUNPCKHPD Z30, Z28, Z13; \
	VUNPCKLPD Z31, Z29, Z14; \
	VUNPCKHPD Z31, Z29, Z15; \
	VSHUFF32X4 $0x88, Z4, Z0, Z16; \
	VSHUFF32X4 $0x88, Z5, Z1, Z17; \
	VSHUFF32X4 $0x88, Z6, Z2, Z18; \
	VSHUFF32X4 $0x88, Z7, Z3, Z19; \
	VSHUFF32X4 $0xdd, Z4, Z0, Z20; \
	VSHUFF32X4 $0xdd, Z5, Z1, Z21; \
	VSHUFF32X4 $0xdd, Z6, Z2, Z22; \
	VSHUFF32X4 $0xdd, Z7, Z3, Z23; \
	VSHUFF32X4 $0x88, Z12, Z8, Z24; \
	VSHUFF32X4 $0x88, Z13, Z9, Z25; \
	VSHUFF32X4 $0x88, Z14, Z10, Z26; \
	VSHUFF32X4 $0x88, Z15, Z11, Z27; \
	VSHUFF32X4 $0xdd, Z12, Z8, Z28; \
	VSHUFF32X4 $0xdd, Z13, Z9, Z29; \
	VSHUFF32X4 $0xdd, Z14, Z10, Z30; \
	VSHUFF32X4 $0xdd, Z15, Z11, Z31; \
	VSHUFF32X4 $0x88, Z24, Z16, Z0; \
	VSHUFF32X4 $0x88, Z25, Z17, Z1; \
	VSHUFF32X4 $0x88, Z26, Z18, Z2; \
	VSHUFF32X4 $0x88, Z27, Z19, Z3; \
	VSHUFF32X4 $0x88, Z28, Z20, Z4; \
	VSHUFF32X4 $0x88, Z29, Z21, Z5; \
	VSHUFF32X4 $0x88, Z30, Z22, Z6; \
	VSHUFF32X4 $0x88, Z31, Z23, Z7; \
	VSHUFF32X4 $0xdd, Z24, Z16, Z8; \
	VSHUFF32X4 $0xdd, Z25, Z17, Z9; \
	VSHUFF32X4 $0xdd, Z26, Z18, Z10; \
	VSHUFF32X4 $0xdd, Z27, Z19, Z11; \
	VSHUFF32X4 $0xdd, Z28, Z20, Z12; \
	VSHUFF32X4 $0xdd, Z29, Z21, Z13; \
	VSHUFF32X4 $0xdd, Z30, Z22, Z14; \
	VSHUFF32X4 $0xdd, Z31, Z23, Z15

// Store Z0–Z15 as 16 rows at DI with a stride of R8 bytes; DI advances by 16 rows.
#define STORE16 \
	VMOVUPS Z0, (DI); \
	ADDQ R8, DI; \
	VMOVUPS Z1, (DI); \
	ADDQ R8, DI; \
	VMOVUPS Z2, (DI); \
	ADDQ R8, DI; \
	VMOVUPS Z3, (DI); \
	ADDQ R8, DI; \
	VMOVUPS Z4, (DI); \
	ADDQ R8, DI; \
	VMOVUPS Z5, (DI); \
	ADDQ R8, DI; \
	VMOVUPS Z6, (DI); \
	ADDQ R8, DI; \
	VMOVUPS Z7, (DI); \
	ADDQ R8, DI; \
	VMOVUPS Z8, (DI); \
	ADDQ R8, DI; \
	VMOVUPS Z9, (DI); \
	ADDQ R8, DI; \
	VMOVUPS Z10, (DI); \
	ADDQ R8, DI; \
	VMOVUPS Z11, (DI); \
	ADDQ R8, DI; \
	VMOVUPS Z12, (DI); \
	ADDQ R8, DI; \
	VMOVUPS Z13, (DI); \
	ADDQ R8, DI; \
	VMOVUPS Z14, (DI); \
	ADDQ R8, DI; \
	VMOVUPS Z15, (DI); \
	ADDQ R8, DI

// Source rows: SI = row 0, R9 = row 4, R10 = row 8, R11 = row 12, DX = stride (bytes).
#define ROWPTRS(shift) \
	SHLQ $shift, DX; \
	LEAQ (SI)(DX*4), R9; \
	LEAQ (R9)(DX*4), R10; \
	LEAQ (R10)(DX*4), R11; \
	LEAQ (DX)(DX*2), R12

// LOADF32(addr, z) loads 16 floats; LOADBF(addr, z) widens 16 bf16 to floats.
#define LOADF32(addr, z) \
	VMOVUPS addr, z

#define LOADBF(addr, z) \
	VPMOVZXWD addr, z; \
	VPSLLD    $16, z, z

// PACKT16(shift, load, step) is all of a transposing pack after its arguments are loaded
// (DI dst, R8 dstStride, SI src, DX srcStride, CX nblk): source elements are 1<<shift
// bytes, each read with load(addr, z), and a block of 16 columns is step bytes wide.
#define PACKT16(shift, load, step) \
	SHLQ $2, R8; \
	ROWPTRS(shift); \
	TESTQ CX, CX; \
	JZ    done; \
loop: \
	load((SI), Z0); \
	load((SI)(DX*1), Z1); \
	load((SI)(DX*2), Z2); \
	load((SI)(R12*1), Z3); \
	load((R9), Z4); \
	load((R9)(DX*1), Z5); \
	load((R9)(DX*2), Z6); \
	load((R9)(R12*1), Z7); \
	load((R10), Z8); \
	load((R10)(DX*1), Z9); \
	load((R10)(DX*2), Z10); \
	load((R10)(R12*1), Z11); \
	load((R11), Z12); \
	load((R11)(DX*1), Z13); \
	load((R11)(DX*2), Z14); \
	load((R11)(R12*1), Z15); \
	TRANSPOSE16; \
	STORE16; \
	ADDQ $step, SI; \
	ADDQ $step, R9; \
	ADDQ $step, R10; \
	ADDQ $step, R11; \
	DECQ CX; \
	JNZ  loop; \
done: \
	VZEROUPPER; \
	RET

// func packT16AVX512(dst *float32, dstStride int, src *float32, srcStride int, nblk int)
TEXT ·packT16AVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ dstStride+8(FP), R8
	MOVQ src+16(FP), SI
	MOVQ srcStride+24(FP), DX
	MOVQ nblk+32(FP), CX
	PACKT16(2, LOADF32, 64)

// func packT16BF16AVX512(dst *float32, dstStride int, src *uint16, srcStride int, nblk int)
TEXT ·packT16BF16AVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ dstStride+8(FP), R8
	MOVQ src+16(FP), SI
	MOVQ srcStride+24(FP), DX
	MOVQ nblk+32(FP), CX
	PACKT16(1, LOADBF, 32)

// func packRowsBF16AVX512(dst *float32, src *uint16, ldb int, kc int)
// Widens kc rows of 32 bf16 (row stride ldb elements) into kc consecutive rows of 32
// floats at dst: one full-width packed panel of the NN / TN GEMM.
TEXT ·packRowsBF16AVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ldb+16(FP), DX
	MOVQ kc+24(FP), CX
	SHLQ $1, DX
	TESTQ CX, CX
	JZ    done

loop:
	VPMOVZXWD (SI), Z0
	VPMOVZXWD 32(SI), Z1
	VPSLLD    $16, Z0, Z0
	VPSLLD    $16, Z1, Z1
	VMOVUPS   Z0, (DI)
	VMOVUPS   Z1, 64(DI)
	ADDQ      DX, SI
	ADDQ      $128, DI
	DECQ      CX
	JNZ       loop

done:
	VZEROUPPER
	RET
