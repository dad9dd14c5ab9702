#include "textflag.h"

// Vectorised float32 exp and the softmax helpers built on it. n is a multiple of 16
// (AVX-512) or 8 (AVX2); the Go wrappers do the tail with expGo, the plain-Go twin,
// which runs the same algorithm:
//   x clamped to [-110, 89] (NaN passes through), k = round(x·log2 e),
//   r = x − k·ln2 (two-part ln2), exp(r) by its degree-7 Taylor polynomial (Horner,
//   FMA), times 2^k (VSCALEFPS on AVX-512; on AVX2 as 2^(k>>1)·2^(k−k>>1) so that
//   k = 128 overflows to +Inf and k down to −159 underflows through subnormals to 0).

// expc holds each constant 8 times (32 bytes), for AVX2 memory operands; AVX-512
// broadcasts the first copy. Offsets: lo 0, hi 32, log2e 64, ln2hi 96, ln2lo 128,
// c7 160, c6 192, c5 224, c4 256, c3 288, c2 320, one 352, bias (int32 127) 384.
// lo
DATA expc<>+0(SB)/4, $0xc2dc0000
DATA expc<>+4(SB)/4, $0xc2dc0000
DATA expc<>+8(SB)/4, $0xc2dc0000
DATA expc<>+12(SB)/4, $0xc2dc0000
DATA expc<>+16(SB)/4, $0xc2dc0000
DATA expc<>+20(SB)/4, $0xc2dc0000
DATA expc<>+24(SB)/4, $0xc2dc0000
DATA expc<>+28(SB)/4, $0xc2dc0000
// hi
DATA expc<>+32(SB)/4, $0x42b20000
DATA expc<>+36(SB)/4, $0x42b20000
DATA expc<>+40(SB)/4, $0x42b20000
DATA expc<>+44(SB)/4, $0x42b20000
DATA expc<>+48(SB)/4, $0x42b20000
DATA expc<>+52(SB)/4, $0x42b20000
DATA expc<>+56(SB)/4, $0x42b20000
DATA expc<>+60(SB)/4, $0x42b20000
// log2e
DATA expc<>+64(SB)/4, $0x3fb8aa3b
DATA expc<>+68(SB)/4, $0x3fb8aa3b
DATA expc<>+72(SB)/4, $0x3fb8aa3b
DATA expc<>+76(SB)/4, $0x3fb8aa3b
DATA expc<>+80(SB)/4, $0x3fb8aa3b
DATA expc<>+84(SB)/4, $0x3fb8aa3b
DATA expc<>+88(SB)/4, $0x3fb8aa3b
DATA expc<>+92(SB)/4, $0x3fb8aa3b
// ln2hi
DATA expc<>+96(SB)/4, $0x3f318000
DATA expc<>+100(SB)/4, $0x3f318000
DATA expc<>+104(SB)/4, $0x3f318000
DATA expc<>+108(SB)/4, $0x3f318000
DATA expc<>+112(SB)/4, $0x3f318000
DATA expc<>+116(SB)/4, $0x3f318000
DATA expc<>+120(SB)/4, $0x3f318000
DATA expc<>+124(SB)/4, $0x3f318000
// ln2lo
DATA expc<>+128(SB)/4, $0xb95e8083
DATA expc<>+132(SB)/4, $0xb95e8083
DATA expc<>+136(SB)/4, $0xb95e8083
DATA expc<>+140(SB)/4, $0xb95e8083
DATA expc<>+144(SB)/4, $0xb95e8083
DATA expc<>+148(SB)/4, $0xb95e8083
DATA expc<>+152(SB)/4, $0xb95e8083
DATA expc<>+156(SB)/4, $0xb95e8083
// c7
DATA expc<>+160(SB)/4, $0x39500d01
DATA expc<>+164(SB)/4, $0x39500d01
DATA expc<>+168(SB)/4, $0x39500d01
DATA expc<>+172(SB)/4, $0x39500d01
DATA expc<>+176(SB)/4, $0x39500d01
DATA expc<>+180(SB)/4, $0x39500d01
DATA expc<>+184(SB)/4, $0x39500d01
DATA expc<>+188(SB)/4, $0x39500d01
// c6
DATA expc<>+192(SB)/4, $0x3ab60b61
DATA expc<>+196(SB)/4, $0x3ab60b61
DATA expc<>+200(SB)/4, $0x3ab60b61
DATA expc<>+204(SB)/4, $0x3ab60b61
DATA expc<>+208(SB)/4, $0x3ab60b61
DATA expc<>+212(SB)/4, $0x3ab60b61
DATA expc<>+216(SB)/4, $0x3ab60b61
DATA expc<>+220(SB)/4, $0x3ab60b61
// c5
DATA expc<>+224(SB)/4, $0x3c088889
DATA expc<>+228(SB)/4, $0x3c088889
DATA expc<>+232(SB)/4, $0x3c088889
DATA expc<>+236(SB)/4, $0x3c088889
DATA expc<>+240(SB)/4, $0x3c088889
DATA expc<>+244(SB)/4, $0x3c088889
DATA expc<>+248(SB)/4, $0x3c088889
DATA expc<>+252(SB)/4, $0x3c088889
// c4
DATA expc<>+256(SB)/4, $0x3d2aaaab
DATA expc<>+260(SB)/4, $0x3d2aaaab
DATA expc<>+264(SB)/4, $0x3d2aaaab
DATA expc<>+268(SB)/4, $0x3d2aaaab
DATA expc<>+272(SB)/4, $0x3d2aaaab
DATA expc<>+276(SB)/4, $0x3d2aaaab
DATA expc<>+280(SB)/4, $0x3d2aaaab
DATA expc<>+284(SB)/4, $0x3d2aaaab
// c3
DATA expc<>+288(SB)/4, $0x3e2aaaab
DATA expc<>+292(SB)/4, $0x3e2aaaab
DATA expc<>+296(SB)/4, $0x3e2aaaab
DATA expc<>+300(SB)/4, $0x3e2aaaab
DATA expc<>+304(SB)/4, $0x3e2aaaab
DATA expc<>+308(SB)/4, $0x3e2aaaab
DATA expc<>+312(SB)/4, $0x3e2aaaab
DATA expc<>+316(SB)/4, $0x3e2aaaab
// c2
DATA expc<>+320(SB)/4, $0x3f000000
DATA expc<>+324(SB)/4, $0x3f000000
DATA expc<>+328(SB)/4, $0x3f000000
DATA expc<>+332(SB)/4, $0x3f000000
DATA expc<>+336(SB)/4, $0x3f000000
DATA expc<>+340(SB)/4, $0x3f000000
DATA expc<>+344(SB)/4, $0x3f000000
DATA expc<>+348(SB)/4, $0x3f000000
// one
DATA expc<>+352(SB)/4, $0x3f800000
DATA expc<>+356(SB)/4, $0x3f800000
DATA expc<>+360(SB)/4, $0x3f800000
DATA expc<>+364(SB)/4, $0x3f800000
DATA expc<>+368(SB)/4, $0x3f800000
DATA expc<>+372(SB)/4, $0x3f800000
DATA expc<>+376(SB)/4, $0x3f800000
DATA expc<>+380(SB)/4, $0x3f800000
// bias
DATA expc<>+384(SB)/4, $0x7f
DATA expc<>+388(SB)/4, $0x7f
DATA expc<>+392(SB)/4, $0x7f
DATA expc<>+396(SB)/4, $0x7f
DATA expc<>+400(SB)/4, $0x7f
DATA expc<>+404(SB)/4, $0x7f
DATA expc<>+408(SB)/4, $0x7f
DATA expc<>+412(SB)/4, $0x7f
GLOBL expc<>(SB), RODATA|NOPTR, $416

#define LOADC512 \
	VBROADCASTSS expc<>+0(SB), Z16; \
	VBROADCASTSS expc<>+32(SB), Z17; \
	VBROADCASTSS expc<>+64(SB), Z18; \
	VBROADCASTSS expc<>+96(SB), Z19; \
	VBROADCASTSS expc<>+128(SB), Z20; \
	VBROADCASTSS expc<>+160(SB), Z21; \
	VBROADCASTSS expc<>+192(SB), Z22; \
	VBROADCASTSS expc<>+224(SB), Z23; \
	VBROADCASTSS expc<>+256(SB), Z24; \
	VBROADCASTSS expc<>+288(SB), Z25; \
	VBROADCASTSS expc<>+320(SB), Z26; \
	VBROADCASTSS expc<>+352(SB), Z27

// EXP512 replaces X by exp(X), using N and P as scratch.
#define EXP512(X, N, P) \
	VMAXPS       X, Z16, X; \
	VMINPS       X, Z17, X; \
	VMULPS       Z18, X, N; \
	VRNDSCALEPS  $0, N, N; \
	VFNMADD231PS Z19, N, X; \
	VFNMADD231PS Z20, N, X; \
	VMOVAPS      Z21, P; \
	VFMADD213PS  Z22, X, P; \
	VFMADD213PS  Z23, X, P; \
	VFMADD213PS  Z24, X, P; \
	VFMADD213PS  Z25, X, P; \
	VFMADD213PS  Z26, X, P; \
	VFMADD213PS  Z27, X, P; \
	VFMADD213PS  Z27, X, P; \
	VSCALEFPS    N, P, X

#define HSUM512(Z, Y, X, T) \
	VEXTRACTF64X4 $1, Z, Y15; \
	VADDPS        Y15, Y, Y; \
	VEXTRACTF128  $1, Y, X15; \
	VADDPS        X15, X, X; \
	VPERMILPS     $0x4e, X, X15; \
	VADDPS        X15, X, X; \
	VPERMILPS     $0xb1, X, X15; \
	VADDPS        X15, X, X

// The loops below serve both widths: w is the vector width in bytes (64 for Z, 32
// for Y registers), each step handles two vectors va, vb (w/2 floats), expa and expb
// are the width's exp macro applied to va and vb (EXP512_A/B, EXP256_A/B), and CX (a
// multiple of w/4) counts floats. Both define the labels loop and tail; EXP_BODY also
// done (and returns), EXPSUM_LOOP jumps to the kernel's own done.
#define EXP512_A EXP512(Z0, Z1, Z2)
#define EXP512_B EXP512(Z3, Z4, Z5)
#define EXP256_A EXP256(Y0, Y1, Y2, Y3)
#define EXP256_B EXP256(Y4, Y5, Y6, Y7)

// Operations pre(off, v) on a loaded vector for EXP_BODY.
#define NOSUB(off, v)
#define SUBSI(off, v) \
	VSUBPS  off(SI), v, v

// EXP_BODY(w, va, vb, expa, expb, src, pre): DI[i] = exp(pre(src[i])), src SI (exp) or
// DI (expSub, with pre = SUBSI: x − sub at SI); SI and DI both advance. Then
// VZEROUPPER and RET.
#define EXP_BODY(w, va, vb, expa, expb, src, pre) \
	CMPQ CX, $(w/2); \
	JLT  tail; \
loop: \
	VMOVUPS (src), va; \
	VMOVUPS w(src), vb; \
	pre(0, va); \
	pre(w, vb); \
	expa; \
	expb; \
	VMOVUPS va, (DI); \
	VMOVUPS vb, w(DI); \
	ADDQ    $(2*w), SI; \
	ADDQ    $(2*w), DI; \
	SUBQ    $(w/2), CX; \
	CMPQ    CX, $(w/2); \
	JGE     loop; \
tail: \
	TESTQ CX, CX; \
	JZ    done; \
	VMOVUPS (src), va; \
	pre(0, va); \
	expa; \
	VMOVUPS va, (DI); \
done: \
	VZEROUPPER; \
	RET

// EXPSUM_LOOP(w, va, vb, expa, expb, shift, sa, sb): DI[i] = exp(DI[i] − shift), the
// results summed into sa (and sb, for the second vector of a step); jumps to done.
#define EXPSUM_LOOP(w, va, vb, expa, expb, shift, sa, sb) \
	CMPQ         CX, $(w/2); \
	JLT          tail; \
loop: \
	VMOVUPS (DI), va; \
	VMOVUPS w(DI), vb; \
	VSUBPS  shift, va, va; \
	VSUBPS  shift, vb, vb; \
	expa; \
	expb; \
	VMOVUPS va, (DI); \
	VMOVUPS vb, w(DI); \
	VADDPS  va, sa, sa; \
	VADDPS  vb, sb, sb; \
	ADDQ    $(2*w), DI; \
	SUBQ    $(w/2), CX; \
	CMPQ    CX, $(w/2); \
	JGE     loop; \
tail: \
	TESTQ CX, CX; \
	JZ    done; \
	VMOVUPS (DI), va; \
	VSUBPS  shift, va, va; \
	expa; \
	VMOVUPS va, (DI); \
	VADDPS  va, sa, sa

// func expAVX512(dst, src *float32, n int)
TEXT ·expAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	LOADC512
	EXP_BODY(64, Z0, Z3, EXP512_A, EXP512_B, SI, NOSUB)

// func expSumAVX512(x *float32, n int, shift float32) float32
TEXT ·expSumAVX512(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS shift+16(FP), Z28
	LOADC512
	VPXORD       Z8, Z8, Z8
	VPXORD       Z9, Z9, Z9
	EXPSUM_LOOP(64, Z0, Z3, EXP512_A, EXP512_B, Z28, Z8, Z9)

done:
	VADDPS Z9, Z8, Z8
	HSUM512(Z8, Y8, X8, X15)
	VZEROUPPER
	MOVSS  X8, ret+24(FP)
	RET

// func expSubAVX512(x, sub *float32, n int)
TEXT ·expSubAVX512(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), DI
	MOVQ sub+8(FP), SI
	MOVQ n+16(FP), CX
	LOADC512
	EXP_BODY(64, Z0, Z3, EXP512_A, EXP512_B, DI, SUBSI)

// func maxAVX512(x *float32, n int) float32
TEXT ·maxAVX512(SB), NOSPLIT, $0-20
	MOVQ    x+0(FP), SI
	MOVQ    n+8(FP), CX
	VMOVUPS (SI), Z0
	VMOVAPS Z0, Z1
	VMOVAPS Z0, Z2
	VMOVAPS Z0, Z3
	CMPQ    CX, $64
	JLT     tail

loop:
	VMAXPS (SI), Z0, Z0
	VMAXPS 64(SI), Z1, Z1
	VMAXPS 128(SI), Z2, Z2
	VMAXPS 192(SI), Z3, Z3
	ADDQ   $256, SI
	SUBQ   $64, CX
	CMPQ   CX, $64
	JGE    loop

tail:
	TESTQ CX, CX
	JZ    done

tail1:
	VMAXPS (SI), Z0, Z0
	ADDQ   $64, SI
	SUBQ   $16, CX
	JNZ    tail1

done:
	VMAXPS        Z1, Z0, Z0
	VMAXPS        Z3, Z2, Z2
	VMAXPS        Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VPERMILPS     $0x4e, X0, X1
	VMAXPS        X1, X0, X0
	VPERMILPS     $0xb1, X0, X1
	VMAXPS        X1, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+16(FP)
	RET

// func scaleAVX512(alpha float32, x *float32, n int)
TEXT ·scaleAVX512(SB), NOSPLIT, $0-24
	VBROADCASTSS alpha+0(FP), Z31
	MOVQ         x+8(FP), DI
	MOVQ         n+16(FP), CX
	CMPQ         CX, $64
	JLT          tail

loop:
	VMULPS  (DI), Z31, Z0
	VMULPS  64(DI), Z31, Z1
	VMULPS  128(DI), Z31, Z2
	VMULPS  192(DI), Z31, Z3
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ    $256, DI
	SUBQ    $64, CX
	CMPQ    CX, $64
	JGE     loop

tail:
	TESTQ CX, CX
	JZ    done

tail1:
	VMULPS  (DI), Z31, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, DI
	SUBQ    $16, CX
	JNZ     tail1

done:
	VZEROUPPER
	RET

// EXP256 replaces X by exp(X), using N, P and T as scratch; Y14 and Y15 hold the
// clamp bounds.
#define EXP256(X, N, P, T) \
	VMAXPS       X, Y14, X; \
	VMINPS       X, Y15, X; \
	VMULPS       expc<>+64(SB), X, N; \
	VROUNDPS     $0, N, N; \
	VFNMADD231PS expc<>+96(SB), N, X; \
	VFNMADD231PS expc<>+128(SB), N, X; \
	VMOVUPS      expc<>+160(SB), P; \
	VFMADD213PS  expc<>+192(SB), X, P; \
	VFMADD213PS  expc<>+224(SB), X, P; \
	VFMADD213PS  expc<>+256(SB), X, P; \
	VFMADD213PS  expc<>+288(SB), X, P; \
	VFMADD213PS  expc<>+320(SB), X, P; \
	VFMADD213PS  expc<>+352(SB), X, P; \
	VFMADD213PS  expc<>+352(SB), X, P; \
	VCVTPS2DQ    N, N; \
	VPSRAD       $1, N, T; \
	VPSUBD       T, N, N; \
	VPADDD       expc<>+384(SB), T, T; \
	VPSLLD       $23, T, T; \
	VPADDD       expc<>+384(SB), N, N; \
	VPSLLD       $23, N, N; \
	VMULPS       T, P, P; \
	VMULPS       N, P, X

#define LOADC256 \
	VMOVUPS expc<>+0(SB), Y14; \
	VMOVUPS expc<>+32(SB), Y15

#define HSUM256(Y, X, T) \
	VEXTRACTF128 $1, Y, T; \
	VADDPS       T, X, X; \
	VPERMILPS    $0x4e, X, T; \
	VADDPS       T, X, X; \
	VPERMILPS    $0xb1, X, T; \
	VADDPS       T, X, X

// func expAVX2(dst, src *float32, n int)
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	LOADC256
	EXP_BODY(32, Y0, Y4, EXP256_A, EXP256_B, SI, NOSUB)

// func expSumAVX2(x *float32, n int, shift float32) float32
TEXT ·expSumAVX2(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS shift+16(FP), Y13
	LOADC256
	VXORPS       Y8, Y8, Y8
	VXORPS       Y9, Y9, Y9
	EXPSUM_LOOP(32, Y0, Y4, EXP256_A, EXP256_B, Y13, Y8, Y9)

done:
	VADDPS Y9, Y8, Y8
	HSUM256(Y8, X8, X1)
	VZEROUPPER
	MOVSS  X8, ret+24(FP)
	RET

// func expSubAVX2(x, sub *float32, n int)
TEXT ·expSubAVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), DI
	MOVQ sub+8(FP), SI
	MOVQ n+16(FP), CX
	LOADC256
	EXP_BODY(32, Y0, Y4, EXP256_A, EXP256_B, DI, SUBSI)

// func maxAVX2(x *float32, n int) float32
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ    x+0(FP), SI
	MOVQ    n+8(FP), CX
	VMOVUPS (SI), Y0
	VMOVAPS Y0, Y1
	CMPQ    CX, $16
	JLT     tail

loop:
	VMAXPS (SI), Y0, Y0
	VMAXPS 32(SI), Y1, Y1
	ADDQ   $64, SI
	SUBQ   $16, CX
	CMPQ   CX, $16
	JGE    loop

tail:
	TESTQ  CX, CX
	JZ     done
	VMAXPS (SI), Y0, Y0

done:
	VMAXPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4e, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1
	VMAXPS       X1, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+16(FP)
	RET

// func scaleAVX2(alpha float32, x *float32, n int)
TEXT ·scaleAVX2(SB), NOSPLIT, $0-24
	VBROADCASTSS alpha+0(FP), Y15
	MOVQ         x+8(FP), DI
	MOVQ         n+16(FP), CX

loop:
	VMULPS  (DI), Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	SUBQ    $8, CX
	JNZ     loop
	VZEROUPPER
	RET

// func siluMulAVX512(a, gate, u *float32, n int)
// a = g·u / (1 + exp(−g)).
TEXT ·siluMulAVX512(SB), NOSPLIT, $0-32
	MOVQ   a+0(FP), DI
	MOVQ   gate+8(FP), SI
	MOVQ   u+16(FP), DX
	MOVQ   n+24(FP), CX
	LOADC512
	VPXORD Z28, Z28, Z28

loop:
	VMOVUPS (SI), Z6
	VSUBPS  Z6, Z28, Z0
	EXP512(Z0, Z1, Z2)
	VADDPS  Z27, Z0, Z0
	VMULPS  (DX), Z6, Z6
	VDIVPS  Z0, Z6, Z6
	VMOVUPS Z6, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	SUBQ    $16, CX
	JNZ     loop
	VZEROUPPER
	RET

// func siluMulBwdAVX512(dg, du, da, gate, u *float32, n int)
// σ = 1/(1 + exp(−g)); du = da·g·σ; dg = da·u·σ·(1 + g·(1 − σ)).
TEXT ·siluMulBwdAVX512(SB), NOSPLIT, $0-48
	MOVQ   dg+0(FP), DI
	MOVQ   du+8(FP), R8
	MOVQ   da+16(FP), R9
	MOVQ   gate+24(FP), SI
	MOVQ   u+32(FP), DX
	MOVQ   n+40(FP), CX
	LOADC512
	VPXORD Z28, Z28, Z28

loop:
	VMOVUPS      (SI), Z6
	VSUBPS       Z6, Z28, Z0
	EXP512(Z0, Z1, Z2)
	VADDPS       Z27, Z0, Z0
	VDIVPS       Z0, Z27, Z7
	VMOVUPS      (R9), Z8
	VMULPS       Z6, Z8, Z10
	VMULPS       Z7, Z10, Z10
	VMOVUPS      Z10, (R8)
	VSUBPS       Z7, Z27, Z11
	VFMADD213PS  Z27, Z6, Z11
	VMULPS       (DX), Z8, Z12
	VMULPS       Z7, Z12, Z12
	VMULPS       Z11, Z12, Z12
	VMOVUPS      Z12, (DI)
	ADDQ         $64, SI
	ADDQ         $64, DX
	ADDQ         $64, DI
	ADDQ         $64, R8
	ADDQ         $64, R9
	SUBQ         $16, CX
	JNZ          loop
	VZEROUPPER
	RET

// func siluMulAVX2(a, gate, u *float32, n int)
TEXT ·siluMulAVX2(SB), NOSPLIT, $0-32
	MOVQ   a+0(FP), DI
	MOVQ   gate+8(FP), SI
	MOVQ   u+16(FP), DX
	MOVQ   n+24(FP), CX
	LOADC256
	VXORPS Y13, Y13, Y13

loop:
	VMOVUPS (SI), Y6
	VSUBPS  Y6, Y13, Y0
	EXP256(Y0, Y1, Y2, Y3)
	VADDPS  expc<>+352(SB), Y0, Y0
	VMULPS  (DX), Y6, Y6
	VDIVPS  Y0, Y6, Y6
	VMOVUPS Y6, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	SUBQ    $8, CX
	JNZ     loop
	VZEROUPPER
	RET

// func siluMulBwdAVX2(dg, du, da, gate, u *float32, n int)
TEXT ·siluMulBwdAVX2(SB), NOSPLIT, $0-48
	MOVQ    dg+0(FP), DI
	MOVQ    du+8(FP), R8
	MOVQ    da+16(FP), R9
	MOVQ    gate+24(FP), SI
	MOVQ    u+32(FP), DX
	MOVQ    n+40(FP), CX
	LOADC256
	VXORPS  Y13, Y13, Y13
	VMOVUPS expc<>+352(SB), Y12

loop:
	VMOVUPS     (SI), Y6
	VSUBPS      Y6, Y13, Y0
	EXP256(Y0, Y1, Y2, Y3)
	VADDPS      Y12, Y0, Y0
	VDIVPS      Y0, Y12, Y7
	VMOVUPS     (R9), Y8
	VMULPS      Y6, Y8, Y10
	VMULPS      Y7, Y10, Y10
	VMOVUPS     Y10, (R8)
	VSUBPS      Y7, Y12, Y11
	VFMADD213PS Y12, Y6, Y11
	VMULPS      (DX), Y8, Y9
	VMULPS      Y7, Y9, Y9
	VMULPS      Y11, Y9, Y9
	VMOVUPS     Y9, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DX
	ADDQ        $32, DI
	ADDQ        $32, R8
	ADDQ        $32, R9
	SUBQ        $8, CX
	JNZ         loop
	VZEROUPPER
	RET
