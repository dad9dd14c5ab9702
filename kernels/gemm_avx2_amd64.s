#include "textflag.h"
#include "gemm_amd64.h"

// AVX2/FMA GEMM micro-kernel: C[6×16] (+)= A[6×kc] · B[kc×16].
// Same layout as the AVX-512 kernel: A row-major with stride lda floats, B a packed
// panel of 16 floats per k step, C row-major with stride ldc floats.
// Registers: Y0–Y11 accumulators, Y12/Y13 the B row, Y14/Y15 broadcasts;
// R8/R9 point at rows 0 and 3; DX = lda in bytes. The k loop and the zeroing and
// storing of the tile are the shared macros of gemm_amd64.h.

#define ROW(addr, acc0, acc1, bc) \
	VBROADCASTSS addr, bc; \
	VFMADD231PS Y12, bc, acc0; \
	VFMADD231PS Y13, bc, acc1

#define STEP(ao, bo) \
	VMOVUPS bo(BX), Y12; \
	VMOVUPS bo+32(BX), Y13; \
	ROW(ao(R8), Y0, Y1, Y14); \
	ROW(ao(R8)(DX*1), Y2, Y3, Y15); \
	ROW(ao(R8)(DX*2), Y4, Y5, Y14); \
	ROW(ao(R9), Y6, Y7, Y15); \
	ROW(ao(R9)(DX*1), Y8, Y9, Y14); \
	ROW(ao(R9)(DX*2), Y10, Y11, Y15)

// func gemmKern6x16(kc int, a *float32, lda int, b *float32, c *float32, ldc int, acc bool)
TEXT ·gemmKern6x16(SB), NOSPLIT, $0-49
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), R8
	MOVQ lda+16(FP), DX
	MOVQ b+24(FP), BX
	MOVQ c+32(FP), DI
	MOVQ ldc+40(FP), SI
	SHLQ $2, DX
	SHLQ $2, SI
	LEAQ (R8)(DX*2), R9
	ADDQ DX, R9
	GEMM_FOR_Y0_Y11(GEMM_ZEROY2)
	GEMM_KLOOP(64, GEMM_ADV6)
	GEMM_FINISH(acc+48(FP), GEMM_FOR_Y0_Y11, GEMM_STORE2, GEMM_ADDSTORE2)
