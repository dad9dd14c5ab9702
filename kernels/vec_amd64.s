#include "textflag.h"

// Vector kernels over n floats; n is a multiple of 16 (AVX-512) or 8 (AVX2): the Go
// wrappers do the tail.

#define HSUM_X0 \
	VPERMILPS $0x4e, X0, X1; \
	VADDPS    X1, X0, X0; \
	VPERMILPS $0xb1, X0, X1; \
	VADDPS    X1, X0, X0

// DOT_LOOP(w, a0, a1, a2, a3, t0, t1, t2, t3): a0 + a1 + a2 + a3 += a[i]·b[i] over
// the CX floats at SI (a) and DI (b), CX a multiple of w/4, with vector registers of w
// bytes (Z or Y): four vectors (w floats) a step while w or more remain, then one.
// t0–t3 are scratch. It defines the labels loop, tail and tail1 and jumps to done.
#define DOT_LOOP(w, a0, a1, a2, a3, t0, t1, t2, t3) \
	CMPQ   CX, $(w); \
	JLT    tail; \
loop: \
	VMOVUPS     (SI), t0; \
	VMOVUPS     w(SI), t1; \
	VMOVUPS     2*w(SI), t2; \
	VMOVUPS     3*w(SI), t3; \
	VFMADD231PS (DI), t0, a0; \
	VFMADD231PS w(DI), t1, a1; \
	VFMADD231PS 2*w(DI), t2, a2; \
	VFMADD231PS 3*w(DI), t3, a3; \
	ADDQ        $(4*w), SI; \
	ADDQ        $(4*w), DI; \
	SUBQ        $(w), CX; \
	CMPQ        CX, $(w); \
	JGE         loop; \
tail: \
	TESTQ CX, CX; \
	JZ    done; \
tail1: \
	VMOVUPS     (SI), t0; \
	VFMADD231PS (DI), t0, a0; \
	ADDQ        $(w), SI; \
	ADDQ        $(w), DI; \
	SUBQ        $(w/4), CX; \
	JNZ         tail1

// AXPY_BODY(w, v0, v1, v2, v3, va): y[i] += alpha·x[i] over the CX floats at SI (x)
// and DI (y), alpha broadcast in va, vector registers of w bytes, v0–v3 scratch; then
// VZEROUPPER and RET. It defines the labels loop, tail, tail1 and done.
#define AXPY_BODY(w, v0, v1, v2, v3, va) \
	CMPQ         CX, $(w); \
	JLT          tail; \
loop: \
	VMOVUPS     (DI), v0; \
	VMOVUPS     w(DI), v1; \
	VMOVUPS     2*w(DI), v2; \
	VMOVUPS     3*w(DI), v3; \
	VFMADD231PS (SI), va, v0; \
	VFMADD231PS w(SI), va, v1; \
	VFMADD231PS 2*w(SI), va, v2; \
	VFMADD231PS 3*w(SI), va, v3; \
	VMOVUPS     v0, (DI); \
	VMOVUPS     v1, w(DI); \
	VMOVUPS     v2, 2*w(DI); \
	VMOVUPS     v3, 3*w(DI); \
	ADDQ        $(4*w), SI; \
	ADDQ        $(4*w), DI; \
	SUBQ        $(w), CX; \
	CMPQ        CX, $(w); \
	JGE         loop; \
tail: \
	TESTQ CX, CX; \
	JZ    done; \
tail1: \
	VMOVUPS     (DI), v0; \
	VFMADD231PS (SI), va, v0; \
	VMOVUPS     v0, (DI); \
	ADDQ        $(w), SI; \
	ADDQ        $(w), DI; \
	SUBQ        $(w/4), CX; \
	JNZ         tail1; \
done: \
	VZEROUPPER; \
	RET

// func dotAVX512(a, b *float32, n int) float32
TEXT ·dotAVX512(SB), NOSPLIT, $0-28
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DI
	MOVQ   n+16(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	DOT_LOOP(64, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)

done:
	VADDPS        Z1, Z0, Z0
	VADDPS        Z3, Z2, Z2
	VADDPS        Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	HSUM_X0
	VZEROUPPER
	MOVSS         X0, ret+24(FP)
	RET

// func axpyAVX512(alpha float32, x, y *float32, n int)
TEXT ·axpyAVX512(SB), NOSPLIT, $0-32
	VBROADCASTSS alpha+0(FP), Z31
	MOVQ         x+8(FP), SI
	MOVQ         y+16(FP), DI
	MOVQ         n+24(FP), CX
	AXPY_BODY(64, Z0, Z1, Z2, Z3, Z31)

// func dotAVX2(a, b *float32, n int) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	DOT_LOOP(32, Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7)

done:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	HSUM_X0
	VZEROUPPER
	MOVSS        X0, ret+24(FP)
	RET

// func axpyAVX2(alpha float32, x, y *float32, n int)
TEXT ·axpyAVX2(SB), NOSPLIT, $0-32
	VBROADCASTSS alpha+0(FP), Y15
	MOVQ         x+8(FP), SI
	MOVQ         y+16(FP), DI
	MOVQ         n+24(FP), CX
	AXPY_BODY(32, Y0, Y1, Y2, Y3, Y15)
