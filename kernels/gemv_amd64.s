#include "textflag.h"

// Matrix–vector kernels for decoding: Y[m×rows] (+)= X[m×k] · W[rows×k]ᵀ for m ≤ 4
// rows of X (AVX2: m ≤ 2) and a multiple of 4 weight rows, streamed once.
//
// func gemvXxx(m, k int, x *float32, ldx int, w *T, ldw int, rows int, y *float32, ldy int, acc bool)
//
// x rows i at x + i*ldx floats, weight row r at w + r*ldw elements, y rows i at
// y + i*ldy floats; rows > 0 and a multiple of 4; k > 0. With acc, y is added to.
// ldw = 0 is allowed (all four weight rows alias one row: the driver's n-tail).
//
// Per group of 4 weight rows, each k step of 16 (8) loads and widens the 4 weight
// vectors once and multiplies them into every X row: accumulators acc[i][r] for X row
// i and weight row r, reduced horizontally at the end of the group into 4 contiguous
// outputs per X row.
//
// Registers (both widths): AX k index (elements), CX k rounded down to the vector
// width, R8–R11 the 4 weight rows, R14 = ldw in bytes, DI/R12/R13/BX X rows 0–3,
// DX the Y row 0 pointer, SI = ldy in bytes.
//
// AVX-512 only: the k loop is unrolled to 32 columns (R15 = k&^31), and during it SI
// is a software-prefetch pointer running 4 KiB ahead of the group's first weight row
// through the (contiguous when ldw = k) weight matrix, one line per line consumed. Each
// group of 4 rows of a decode shape is only 2–10 KB long, too short for the hardware
// stream prefetcher to ramp up on its four streams: out of DRAM the bf16 kernel ran at
// ~8 GB/s without it and ~11–13 with it (docs/benchmarks/gemv.md).

// ---------------------------------------------------------------- AVX-512

// Weights: Z16–Z19 (rows 0–3); X vector Z20; accumulators Z(4i+r).
#define W4_BF16(off) \
	VPMOVZXWD off(R8)(AX*2), Z16; \
	VPMOVZXWD off(R9)(AX*2), Z17; \
	VPMOVZXWD off(R10)(AX*2), Z18; \
	VPMOVZXWD off(R11)(AX*2), Z19; \
	VPSLLD    $16, Z16, Z16; \
	VPSLLD    $16, Z17, Z17; \
	VPSLLD    $16, Z18, Z18; \
	VPSLLD    $16, Z19, Z19

// The k tail: lanes outside K1 read nothing and are zero.
#define W4_BF16_TAIL \
	VPMOVZXWD.Z (R8)(AX*2), K1, Z16; \
	VPMOVZXWD.Z (R9)(AX*2), K1, Z17; \
	VPMOVZXWD.Z (R10)(AX*2), K1, Z18; \
	VPMOVZXWD.Z (R11)(AX*2), K1, Z19; \
	VPSLLD      $16, Z16, Z16; \
	VPSLLD      $16, Z17, Z17; \
	VPSLLD      $16, Z18, Z18; \
	VPSLLD      $16, Z19, Z19

#define W4_F32(off) \
	VMOVUPS off(R8)(AX*4), Z16; \
	VMOVUPS off(R9)(AX*4), Z17; \
	VMOVUPS off(R10)(AX*4), Z18; \
	VMOVUPS off(R11)(AX*4), Z19

#define W4_F32_TAIL \
	VMOVUPS.Z (R8)(AX*4), K1, Z16; \
	VMOVUPS.Z (R9)(AX*4), K1, Z17; \
	VMOVUPS.Z (R10)(AX*4), K1, Z18; \
	VMOVUPS.Z (R11)(AX*4), K1, Z19

#define FMA4_512(a0, a1, a2, a3) \
	VFMADD231PS Z16, Z20, a0; \
	VFMADD231PS Z17, Z20, a1; \
	VFMADD231PS Z18, Z20, a2; \
	VFMADD231PS Z19, Z20, a3

#define XROW_512(xp, off, a0, a1, a2, a3) \
	VMOVUPS off(xp)(AX*4), Z20; \
	FMA4_512(a0, a1, a2, a3)

#define XROW_512_TAIL(xp, a0, a1, a2, a3) \
	VMOVUPS.Z (xp)(AX*4), K1, Z20; \
	FMA4_512(a0, a1, a2, a3)

#define ZERO4_512(a0, a1, a2, a3) \
	VPXORD a0, a0, a0; \
	VPXORD a1, a1, a1; \
	VPXORD a2, a2, a2; \
	VPXORD a3, a3, a3

// Horizontal sums of four accumulators into x0 = [Σz0, Σz1, Σz2, Σz3].
#define RED4_512(z0, z1, z2, z3, y0, y1, y2, y3, x0) \
	VEXTRACTF64X4 $1, z0, Y16; \
	VEXTRACTF64X4 $1, z1, Y17; \
	VEXTRACTF64X4 $1, z2, Y18; \
	VEXTRACTF64X4 $1, z3, Y19; \
	VADDPS        Y16, y0, y0; \
	VADDPS        Y17, y1, y1; \
	VADDPS        Y18, y2, y2; \
	VADDPS        Y19, y3, y3; \
	VHADDPS       y1, y0, y0; \
	VHADDPS       y3, y2, y2; \
	VHADDPS       y2, y0, y0; \
	VEXTRACTF32X4 $1, y0, X16; \
	VADDPS        X16, x0, x0

// y[0:4] = x0 (+ y[0:4] when acc: K2 = 0xf, else K2 = 0 and nothing is read).
#define STORE4_512(addr, x0) \
	VMOVUPS.Z addr, K2, X17; \
	VADDPS    X17, x0, x0; \
	VMOVUPS   x0, addr

// Next group of 4 weight rows and 4 outputs: back to label mN while rows remain,
// else return.
#define NEXT_GROUP(mN) \
	LEAQ (R11)(R14*1), R8; \
	LEAQ (R8)(R14*1), R9; \
	LEAQ (R9)(R14*1), R10; \
	LEAQ (R10)(R14*1), R11; \
	ADDQ $16, DX; \
	SUBQ $4, rows+48(FP); \
	JNZ  mN; \
	VZEROUPPER; \
	RET

// Common set-up. wshift: log2 of the weight element size; vmask: vector width - 1.
#define SETUP(wshift, vmask) \
	MOVQ    k+8(FP), CX; \
	MOVQ    x+16(FP), DI; \
	MOVQ    ldx+24(FP), BX; \
	MOVQ    w+32(FP), R8; \
	MOVQ    ldw+40(FP), R14; \
	MOVQ    y+56(FP), DX; \
	MOVQ    ldy+64(FP), SI; \
	SHLQ    $2, BX; \
	SHLQ    $wshift, R14; \
	SHLQ    $2, SI; \
	LEAQ    (DI)(BX*1), R12; \
	LEAQ    (R12)(BX*1), R13; \
	ADDQ    R13, BX; \
	LEAQ    (R8)(R14*1), R9; \
	LEAQ    (R9)(R14*1), R10; \
	LEAQ    (R10)(R14*1), R11; \
	ANDQ    $~vmask, CX; \
	MOVQ    k+8(FP), R15; \
	ANDQ    $~(2*vmask+1), R15

#define SETUP_MASKS_512 \
	MOVQ    k+8(FP), CX; \
	ANDL    $15, CX; \
	MOVL    $1, AX; \
	SHLL    CX, AX; \
	DECL    AX; \
	KMOVW   AX, K1; \
	MOVBLZX acc+72(FP), AX; \
	NEGL    AX; \
	KMOVW   AX, K2


// Prefetch of the k loop (32 columns of 4 weight rows): one 64-byte line per line
// consumed, 4 for bf16 and 8 for f32 weights.
#define PF4_512(o) \
	PREFETCHT0 o(SI); \
	PREFETCHT0 o+64(SI); \
	PREFETCHT0 o+128(SI); \
	PREFETCHT0 o+192(SI)

#define PF_BF16_512 \
	PF4_512(0); \
	ADDQ $256, SI

#define PF_F32_512 \
	PF4_512(0); \
	PF4_512(256); \
	ADDQ $512, SI

// Per-X-row operations op(xp, off, a0, a1, a2, a3) for XROWS512_m: X row pointer xp,
// its four accumulators a0–a3; off is the byte offset along k.
#define ZROW_512(xp, off, a0, a1, a2, a3) ZERO4_512(a0, a1, a2, a3)
#define TROW_512(xp, off, a0, a1, a2, a3) XROW_512_TAIL(xp, a0, a1, a2, a3)

// XROWS512_m(op, off) applies op to the first m X rows (DI, R12, R13, BX with
// accumulators Z0–Z3, Z4–Z7, Z8–Z11, Z12–Z15).
#define XROWS512_1(op, off) \
	op(DI, off, Z0, Z1, Z2, Z3)

#define XROWS512_2(op, off) \
	XROWS512_1(op, off); \
	op(R12, off, Z4, Z5, Z6, Z7)

#define XROWS512_3(op, off) \
	XROWS512_2(op, off); \
	op(R13, off, Z8, Z9, Z10, Z11)

#define XROWS512_4(op, off) \
	XROWS512_3(op, off); \
	op(BX, off, Z12, Z13, Z14, Z15)

// SUMS512_m reduces the first m X rows' accumulators and stores them to Y rows 0..m-1
// (DX, stride SI).
#define SUMS512_1 \
	RED4_512(Z0, Z1, Z2, Z3, Y0, Y1, Y2, Y3, X0); \
	STORE4_512((DX), X0)

#define SUMS512_2 \
	SUMS512_1; \
	RED4_512(Z4, Z5, Z6, Z7, Y4, Y5, Y6, Y7, X4); \
	STORE4_512((DX)(SI*1), X4)

#define SUMS512_3 \
	SUMS512_2; \
	RED4_512(Z8, Z9, Z10, Z11, Y8, Y9, Y10, Y11, X8); \
	STORE4_512((DX)(SI*2), X8)

#define SUMS512_4 \
	SUMS512_3; \
	RED4_512(Z12, Z13, Z14, Z15, Y12, Y13, Y14, Y15, X12); \
	LEAQ (DX)(SI*2), AX; \
	ADDQ SI, AX; \
	STORE4_512((AX), X12)

// CASE512(mN, loop, one, tail, sum, xrows, sums, w4, w4tail, whalf, pf): the loop over
// the groups of 4 weight rows for one X row count (xrows = XROWS512_m, sums = SUMS512_m),
// entered at label mN; loop, one, tail and sum name its other labels. Weights are loaded
// by w4(off) / w4tail (W4_BF16 or W4_F32), whalf is the byte offset of the second 16
// columns in a weight row, pf the prefetch step (PF_BF16_512 or PF_F32_512).
#define CASE512(mN, loop, one, tail, sum, xrows, sums, w4, w4tail, whalf, pf) \
mN: \
	xrows(ZROW_512, 0); \
	LEAQ 4096(R8), SI; \
	XORQ AX, AX; \
	CMPQ AX, R15; \
	JGE  one; \
loop: \
	w4(0); \
	xrows(XROW_512, 0); \
	w4(whalf); \
	xrows(XROW_512, 64); \
	pf; \
	ADDQ $32, AX; \
	CMPQ AX, R15; \
	JLT  loop; \
one: \
	CMPQ AX, CX; \
	JGE  tail; \
	w4(0); \
	xrows(XROW_512, 0); \
	ADDQ $16, AX; \
tail: \
	KORTESTW K1, K1; \
	JZ       sum; \
	w4tail; \
	xrows(TROW_512, 0); \
sum: \
	MOVQ ldy+64(FP), SI; \
	SHLQ $2, SI; \
	sums; \
	NEXT_GROUP(mN)

// GEMV512(w4, w4tail, whalf, pf): all of an AVX-512 kernel after SETUP: dispatch on m
// and the four cases.
#define GEMV512(w4, w4tail, whalf, pf) \
	MOVQ m+0(FP), AX; \
	CMPQ AX, $1; \
	JEQ  m1; \
	CMPQ AX, $2; \
	JEQ  m2; \
	CMPQ AX, $3; \
	JEQ  m3; \
	JMP  m4; \
	CASE512(m1, m1_loop, m1_one, m1_tail, m1_sum, XROWS512_1, SUMS512_1, w4, w4tail, whalf, pf); \
	CASE512(m2, m2_loop, m2_one, m2_tail, m2_sum, XROWS512_2, SUMS512_2, w4, w4tail, whalf, pf); \
	CASE512(m3, m3_loop, m3_one, m3_tail, m3_sum, XROWS512_3, SUMS512_3, w4, w4tail, whalf, pf); \
	CASE512(m4, m4_loop, m4_one, m4_tail, m4_sum, XROWS512_4, SUMS512_4, w4, w4tail, whalf, pf)

// func gemvBF16AVX512(m, k int, x *float32, ldx int, w *BF16, ldw int, rows int, y *float32, ldy int, acc bool)
TEXT ·gemvBF16AVX512(SB), NOSPLIT, $0-73
	SETUP_MASKS_512
	SETUP(1, 15)
	GEMV512(W4_BF16, W4_BF16_TAIL, 32, PF_BF16_512)

// func gemvF32AVX512(m, k int, x *float32, ldx int, w *float32, ldw int, rows int, y *float32, ldy int, acc bool)
TEXT ·gemvF32AVX512(SB), NOSPLIT, $0-73
	SETUP_MASKS_512
	SETUP(2, 15)
	GEMV512(W4_F32, W4_F32_TAIL, 64, PF_F32_512)

// ---------------------------------------------------------------- AVX2/FMA
//
// m ≤ 2; only the first k&^7 columns are used (the Go driver adds the k tail).
// Weights: Y8–Y11; X vector Y12; Y13 = all ones when acc, else zero; Y14/Y15 scratch;
// accumulators Y(4i+r).

#define W4_BF16_AVX2 \
	VPMOVZXWD (R8)(AX*2), Y8; \
	VPMOVZXWD (R9)(AX*2), Y9; \
	VPMOVZXWD (R10)(AX*2), Y10; \
	VPMOVZXWD (R11)(AX*2), Y11; \
	VPSLLD    $16, Y8, Y8; \
	VPSLLD    $16, Y9, Y9; \
	VPSLLD    $16, Y10, Y10; \
	VPSLLD    $16, Y11, Y11

#define W4_F32_AVX2 \
	VMOVUPS (R8)(AX*4), Y8; \
	VMOVUPS (R9)(AX*4), Y9; \
	VMOVUPS (R10)(AX*4), Y10; \
	VMOVUPS (R11)(AX*4), Y11

#define XROW_AVX2(xp, a0, a1, a2, a3) \
	VMOVUPS     (xp)(AX*4), Y12; \
	VFMADD231PS Y8, Y12, a0; \
	VFMADD231PS Y9, Y12, a1; \
	VFMADD231PS Y10, Y12, a2; \
	VFMADD231PS Y11, Y12, a3

#define ZERO4_AVX2(a0, a1, a2, a3) \
	VXORPS a0, a0, a0; \
	VXORPS a1, a1, a1; \
	VXORPS a2, a2, a2; \
	VXORPS a3, a3, a3

#define RED4_AVX2(y0, y1, y2, y3, x0) \
	VHADDPS      y1, y0, y0; \
	VHADDPS      y3, y2, y2; \
	VHADDPS      y2, y0, y0; \
	VEXTRACTF128 $1, y0, X14; \
	VADDPS       X14, x0, x0

// y[0:4] = x0 + (y[0:4] & Y13).
#define STORE4_AVX2(addr, x0) \
	VANDPS  addr, X13, X15; \
	VADDPS  X15, x0, x0; \
	VMOVUPS x0, addr


// CASE2(mN, loop, sum, xrows, sums, w4): as CASE512 for the AVX2 kernels, one X row
// (xrows = XROW_AVX2 on DI) or two, no k tail and no prefetch.
#define CASE2(mN, loop, sum, xrows, sums, w4) \
mN: \
	xrows(ZROW_AVX2); \
	XORQ AX, AX; \
	CMPQ AX, CX; \
	JGE  sum; \
loop: \
	w4; \
	xrows(XROW_AVX2); \
	ADDQ $8, AX; \
	CMPQ AX, CX; \
	JLT  loop; \
sum: \
	sums; \
	NEXT_GROUP(mN)

#define ZROW_AVX2(xp, a0, a1, a2, a3) ZERO4_AVX2(a0, a1, a2, a3)

#define XROWS2_1(op) \
	op(DI, Y0, Y1, Y2, Y3)

#define XROWS2_2(op) \
	XROWS2_1(op); \
	op(R12, Y4, Y5, Y6, Y7)

#define SUMS2_1 \
	RED4_AVX2(Y0, Y1, Y2, Y3, X0); \
	STORE4_AVX2((DX), X0)

#define SUMS2_2 \
	SUMS2_1; \
	RED4_AVX2(Y4, Y5, Y6, Y7, X4); \
	STORE4_AVX2((DX)(SI*1), X4)

// GEMV2(w4): all of an AVX2 kernel after SETUP: Y13 from acc, dispatch on m, two cases.
#define GEMV2(w4) \
	VXORPS      Y13, Y13, Y13; \
	CMPB        acc+72(FP), $0; \
	JEQ         noacc; \
	VPCMPEQD    Y13, Y13, Y13; \
noacc: \
	CMPQ m+0(FP), $1; \
	JNE  m2; \
	CASE2(m1, m1_loop, m1_sum, XROWS2_1, SUMS2_1, w4); \
	CASE2(m2, m2_loop, m2_sum, XROWS2_2, SUMS2_2, w4)

// func gemvBF16AVX2(m, k int, x *float32, ldx int, w *BF16, ldw int, rows int, y *float32, ldy int, acc bool)
TEXT ·gemvBF16AVX2(SB), NOSPLIT, $0-73
	SETUP(1, 7)
	GEMV2(W4_BF16_AVX2)

// func gemvF32AVX2(m, k int, x *float32, ldx int, w *float32, ldw int, rows int, y *float32, ldy int, acc bool)
TEXT ·gemvF32AVX2(SB), NOSPLIT, $0-73
	SETUP(2, 7)
	GEMV2(W4_F32_AVX2)
