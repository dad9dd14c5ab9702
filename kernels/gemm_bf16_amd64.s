#include "textflag.h"
#include "gemm_amd64.h"

// bf16-compute kernels for CPUs with AVX512_BF16. Go's assembler does not know the
// AVX512_BF16 instructions, so they are emitted byte by byte from their EVEX encoding
// (Intel SDM vol. 2, "EVEX encoding"; checked with objdump on the test binary):
//
//	62 P0 P1 P2 opcode ModRM, register operands only, zmm length (L'L = 10), W0,
//	map 0F38 (mm = 10), prefix F3 (pp = 10), no masking, no broadcast.
//	P0 = R̄ X̄ B̄ R̄' 0 0 1 0: R, R' extend ModRM.reg (bits 3, 4), X, B extend ModRM.rm
//	     (bits 4, 3), all stored inverted;
//	P1 = W v̄v̄v̄v̄ 1 p p: the second source register, low 4 bits inverted;
//	P2 = z L'L b V̄' a a a: V' is bit 4 of the second source, inverted.
//
// The macros take register numbers 0–31 (Zn) and compute those bytes.

// DPBF16(acc, b, a): VDPBF16PS Z(a), Z(b), Z(acc) — for each of the 16 f32 lanes,
// acc += b.bf16[2i]·a.bf16[2i] + b.bf16[2i+1]·a.bf16[2i+1] (EVEX.512.F3.0F38.W0 52 /r;
// reg = acc, vvvv = b, rm = a).
#define DPBF16(acc, b, a) \
	BYTE $0x62; \
	BYTE $((1-(((acc)>>3)&1))<<7 | (1-(((a)>>4)&1))<<6 | (1-(((a)>>3)&1))<<5 | (1-(((acc)>>4)&1))<<4 | 2); \
	BYTE $(((~(b))&15)<<3 | 6); \
	BYTE $(0x40 | (1-(((b)>>4)&1))<<3); \
	BYTE $0x52; \
	BYTE $(0xC0 | ((acc)&7)<<3 | ((a)&7))

// CVTBF16(d, s): VCVTNEPS2BF16 Z(s), Y(d) — 16 f32 to 16 bf16, round to nearest even,
// NaN quieted, denormals to signed zero (EVEX.512.F3.0F38.W0 72 /r; reg = d, rm = s).
#define CVTBF16(d, s) \
	BYTE $0x62; \
	BYTE $((1-(((d)>>3)&1))<<7 | (1-(((s)>>4)&1))<<6 | (1-(((s)>>3)&1))<<5 | (1-(((d)>>4)&1))<<4 | 2); \
	BYTE $0x7E; \
	BYTE $0x48; \
	BYTE $0x72; \
	BYTE $(0xC0 | ((d)&7)<<3 | ((s)&7))

// bf16 GEMM micro-kernel: C[12×32] (+)= A[12×2kp] · B[2kp×32] in bf16 pairs.
// A is bf16, row-major, lda bf16 elements between rows (even), each 32-bit word one
// (k, k+1) pair; B is a packed panel of kp pair-rows, 32 pairs (128 bytes) each, the
// pair of column j holding (B[2p][j], B[2p+1][j]); C is f32 with a stride of ldc.
// Registers as in gemmKern12x32: Z0–Z23 accumulators (row r in Z(2r), Z(2r+1)),
// Z24/Z25 the B pair-row, Z26/Z27 a broadcast A pair; R8–R11 rows 0, 3, 6, 9;
// DX = lda in bytes. The loop and the C-tile code are gemm_amd64.h's, shared with
// gemmKern12x32; STEP is the one part that differs.

// BROW(addr, acc0, acc1, bc, n): broadcast the A pair at addr into bc (= Z(n)) and
// accumulate its products with the B pair-row Z24/Z25 into Z(acc0), Z(acc1).
#define BROW(addr, acc0, acc1, bc, n) \
	VBROADCASTSS addr, bc; \
	DPBF16(acc0, 24, n); \
	DPBF16(acc1, 25, n)

#define STEP(ao, bo) \
	VMOVUPS bo(BX), Z24; \
	VMOVUPS bo+64(BX), Z25; \
	BROW(ao(R8), 0, 1, Z26, 26); \
	BROW(ao(R8)(DX*1), 2, 3, Z27, 27); \
	BROW(ao(R8)(DX*2), 4, 5, Z26, 26); \
	BROW(ao(R9), 6, 7, Z27, 27); \
	BROW(ao(R9)(DX*1), 8, 9, Z26, 26); \
	BROW(ao(R9)(DX*2), 10, 11, Z27, 27); \
	BROW(ao(R10), 12, 13, Z26, 26); \
	BROW(ao(R10)(DX*1), 14, 15, Z27, 27); \
	BROW(ao(R10)(DX*2), 16, 17, Z26, 26); \
	BROW(ao(R11), 18, 19, Z27, 27); \
	BROW(ao(R11)(DX*1), 20, 21, Z26, 26); \
	BROW(ao(R11)(DX*2), 22, 23, Z27, 27)

// func gemmBF16Kern12x32(kp int, a *BF16, lda int, b *uint32, c *float32, ldc int, acc bool)
TEXT ·gemmBF16Kern12x32(SB), NOSPLIT, $0-49
	MOVQ kp+0(FP), CX
	MOVQ a+8(FP), R8
	MOVQ lda+16(FP), DX
	MOVQ b+24(FP), BX
	MOVQ c+32(FP), DI
	MOVQ ldc+40(FP), SI
	SHLQ $1, DX
	GEMM_TILE12X32(acc+48(FP))

// func roundBF16AVX512(dst *BF16, src *float32, n int)
// dst[i] = bf16(src[i]) (round to nearest even) for n a multiple of 16.
TEXT ·roundBF16AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	JZ   rdone

rloop:
	VMOVUPS (SI), Z0
	CVTBF16(1, 0) // Y1 = bf16(Z0)
	VMOVDQU Y1, (DI)
	ADDQ $64, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  rloop

rdone:
	VZEROUPPER
	RET

// func packPairsBF16AVX512(dst *uint32, src *BF16, ldb, kp int)
// One full 32-column pair panel of a row-major bf16 B (stride ldb): for p < kp,
// dst[p*32+j] = src[2p*ldb+j] | src[(2p+1)*ldb+j]<<16.
TEXT ·packPairsBF16AVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ldb+16(FP), DX
	MOVQ kp+24(FP), CX
	SHLQ $1, DX
	TESTQ CX, CX
	JZ    pdone

ploop:
	VPMOVZXWD (SI), Z0
	VPMOVZXWD 32(SI), Z1
	VPMOVZXWD (SI)(DX*1), Z2
	VPMOVZXWD 32(SI)(DX*1), Z3
	VPSLLD    $16, Z2, Z2
	VPSLLD    $16, Z3, Z3
	VPORD     Z2, Z0, Z0
	VPORD     Z3, Z1, Z1
	VMOVDQU32 Z0, (DI)
	VMOVDQU32 Z1, 64(DI)
	LEAQ      (SI)(DX*2), SI
	ADDQ      $128, DI
	DECQ      CX
	JNZ       ploop

pdone:
	VZEROUPPER
	RET

// func bf16PeakLoop(n int)
// Register-only VDPBF16PS throughput probe: n iterations of 24 independent
// accumulations (Z0–Z23 += Z30·Z31), no memory traffic. Each instruction is 16 lanes
// × 2 products = 64 flops.
TEXT ·bf16PeakLoop(SB), NOSPLIT, $0-8
	MOVQ n+0(FP), CX
	VPXORD Z30, Z30, Z30
	VPXORD Z31, Z31, Z31
	TESTQ CX, CX
	JZ    bdone

bloop:
	DPBF16(0, 30, 31)
	DPBF16(1, 30, 31)
	DPBF16(2, 30, 31)
	DPBF16(3, 30, 31)
	DPBF16(4, 30, 31)
	DPBF16(5, 30, 31)
	DPBF16(6, 30, 31)
	DPBF16(7, 30, 31)
	DPBF16(8, 30, 31)
	DPBF16(9, 30, 31)
	DPBF16(10, 30, 31)
	DPBF16(11, 30, 31)
	DPBF16(12, 30, 31)
	DPBF16(13, 30, 31)
	DPBF16(14, 30, 31)
	DPBF16(15, 30, 31)
	DPBF16(16, 30, 31)
	DPBF16(17, 30, 31)
	DPBF16(18, 30, 31)
	DPBF16(19, 30, 31)
	DPBF16(20, 30, 31)
	DPBF16(21, 30, 31)
	DPBF16(22, 30, 31)
	DPBF16(23, 30, 31)
	DECQ CX
	JNZ  bloop

bdone:
	VZEROUPPER
	RET

// func f32PeakLoop(n int)
// The same probe with VFMADD231PS (16 lanes × 1 FMA = 32 flops per instruction).
TEXT ·f32PeakLoop(SB), NOSPLIT, $0-8
	MOVQ n+0(FP), CX
	VPXORD Z30, Z30, Z30
	VPXORD Z31, Z31, Z31
	TESTQ CX, CX
	JZ    fdone

floop:
	VFMADD231PS Z30, Z31, Z0
	VFMADD231PS Z30, Z31, Z1
	VFMADD231PS Z30, Z31, Z2
	VFMADD231PS Z30, Z31, Z3
	VFMADD231PS Z30, Z31, Z4
	VFMADD231PS Z30, Z31, Z5
	VFMADD231PS Z30, Z31, Z6
	VFMADD231PS Z30, Z31, Z7
	VFMADD231PS Z30, Z31, Z8
	VFMADD231PS Z30, Z31, Z9
	VFMADD231PS Z30, Z31, Z10
	VFMADD231PS Z30, Z31, Z11
	VFMADD231PS Z30, Z31, Z12
	VFMADD231PS Z30, Z31, Z13
	VFMADD231PS Z30, Z31, Z14
	VFMADD231PS Z30, Z31, Z15
	VFMADD231PS Z30, Z31, Z16
	VFMADD231PS Z30, Z31, Z17
	VFMADD231PS Z30, Z31, Z18
	VFMADD231PS Z30, Z31, Z19
	VFMADD231PS Z30, Z31, Z20
	VFMADD231PS Z30, Z31, Z21
	VFMADD231PS Z30, Z31, Z22
	VFMADD231PS Z30, Z31, Z23
	DECQ CX
	JNZ  floop

fdone:
	VZEROUPPER
	RET
