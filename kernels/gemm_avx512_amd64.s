#include "textflag.h"
#include "gemm_amd64.h"

// AVX-512 GEMM micro-kernel: C[12×32] (+)= A[12×kc] · B[kc×32].
// A is row-major with a row stride of lda floats (rows r at a + r*lda); B is a packed
// panel, 32 floats per k step; C is row-major with a stride of ldc floats.
// Registers: Z0–Z23 accumulators (row r in Z(2r), Z(2r+1)), Z24/Z25 the B row,
// Z26/Z27 broadcasts of A; R8–R11 point at rows 0, 3, 6, 9; DX = lda in bytes.
// The k loop and the C-tile code are the shared macros of gemm_amd64.h (the bf16
// kernel gemmBF16Kern12x32 uses them too); STEP is this kernel's own part.

#define ROW(addr, acc0, acc1, bc) \
	VBROADCASTSS addr, bc; \
	VFMADD231PS Z24, bc, acc0; \
	VFMADD231PS Z25, bc, acc1

#define STEP(ao, bo) \
	VMOVUPS bo(BX), Z24; \
	VMOVUPS bo+64(BX), Z25; \
	ROW(ao(R8), Z0, Z1, Z26); \
	ROW(ao(R8)(DX*1), Z2, Z3, Z27); \
	ROW(ao(R8)(DX*2), Z4, Z5, Z26); \
	ROW(ao(R9), Z6, Z7, Z27); \
	ROW(ao(R9)(DX*1), Z8, Z9, Z26); \
	ROW(ao(R9)(DX*2), Z10, Z11, Z27); \
	ROW(ao(R10), Z12, Z13, Z26); \
	ROW(ao(R10)(DX*1), Z14, Z15, Z27); \
	ROW(ao(R10)(DX*2), Z16, Z17, Z26); \
	ROW(ao(R11), Z18, Z19, Z27); \
	ROW(ao(R11)(DX*1), Z20, Z21, Z26); \
	ROW(ao(R11)(DX*2), Z22, Z23, Z27)

// func gemmKern12x32(kc int, a *float32, lda int, b *float32, c *float32, ldc int, acc bool)
TEXT ·gemmKern12x32(SB), NOSPLIT, $0-49
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), R8
	MOVQ lda+16(FP), DX
	MOVQ b+24(FP), BX
	MOVQ c+32(FP), DI
	MOVQ ldc+40(FP), SI
	SHLQ $2, DX
	GEMM_TILE12X32(acc+48(FP))
