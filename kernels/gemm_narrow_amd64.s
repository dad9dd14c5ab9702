#include "textflag.h"
#include "gemm_amd64.h"

// Narrow AVX2/FMA GEMM micro-kernel for outputs at most 8 columns wide (LoRA's
// rank-wide products): C[12×8] (+)= A[12×kc] · B[kc×8], one ymm per row, so a rank-8
// output pays no padding (the wide kernels would compute 32 or 16 columns).
// Same layout as the other kernels: A row-major with stride lda floats, B a packed
// panel of 8 floats per k step, C row-major with stride ldc floats.
// Registers: Y0–Y11 accumulators, Y12 the B row, Y13–Y15 broadcasts; R8, R9, R10,
// R11 point at rows 0, 3, 6, 9; DX = lda in bytes. The k loop, row pointers, zeroing
// and the store/accumulate ending are the shared macros of gemm_amd64.h.

#define NROW(addr, acc, bc) \
	VBROADCASTSS addr, bc; \
	VFMADD231PS  Y12, bc, acc

#define STEP(ao, bo) \
	VMOVUPS bo(BX), Y12; \
	NROW(ao(R8), Y0, Y13); \
	NROW(ao(R8)(DX*1), Y1, Y14); \
	NROW(ao(R8)(DX*2), Y2, Y15); \
	NROW(ao(R9), Y3, Y13); \
	NROW(ao(R9)(DX*1), Y4, Y14); \
	NROW(ao(R9)(DX*2), Y5, Y15); \
	NROW(ao(R10), Y6, Y13); \
	NROW(ao(R10)(DX*1), Y7, Y14); \
	NROW(ao(R10)(DX*2), Y8, Y15); \
	NROW(ao(R11), Y9, Y13); \
	NROW(ao(R11)(DX*1), Y10, Y14); \
	NROW(ao(R11)(DX*2), Y11, Y15)

// NSTORE2 and NADDSTORE2 store (add into) two C rows, one ymm each, for
// GEMM_FOR_Y0_Y11 (w, the pair's width there, is unused).
#define NSTORE(acc) \
	VMOVUPS acc, (DI); \
	ADDQ    SI, DI

#define NADDSTORE(acc) \
	VADDPS  (DI), acc, acc; \
	VMOVUPS acc, (DI); \
	ADDQ    SI, DI

#define NSTORE2(acc0, acc1, w) \
	NSTORE(acc0); \
	NSTORE(acc1)

#define NADDSTORE2(acc0, acc1, w) \
	NADDSTORE(acc0); \
	NADDSTORE(acc1)

// func gemmKern12x8(kc int, a *float32, lda int, b *float32, c *float32, ldc int, acc bool)
TEXT ·gemmKern12x8(SB), NOSPLIT, $0-49
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), R8
	MOVQ lda+16(FP), DX
	MOVQ b+24(FP), BX
	MOVQ c+32(FP), DI
	MOVQ ldc+40(FP), SI
	SHLQ $2, DX
	SHLQ $2, SI
	GEMM_ROWS12
	GEMM_FOR_Y0_Y11(GEMM_ZEROY2)
	GEMM_KLOOP(32, GEMM_ADV12)
	GEMM_FINISH(acc+48(FP), GEMM_FOR_Y0_Y11, NSTORE2, NADDSTORE2)
