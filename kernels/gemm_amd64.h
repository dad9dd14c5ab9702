// Pieces shared by the amd64 GEMM micro-kernels (gemmKern12x32 and gemmBF16Kern12x32 on
// AVX-512, gemmKern6x16 and gemmKern12x8 on AVX2/FMA). Every kernel computes
// C[rows×cols] (+)= A·B with the same register contract:
//
//	CX  k steps left          BX  the packed B panel, one row of cols per k step
//	R8  A row 0               R9, R10, R11  A rows 3, 6, 9 (the 12-row kernels)
//	DX  lda in bytes          DI  the C tile, SI = ldc in bytes
//
// and A rows r, r+1, r+2 of a group are addressed as (Rn), (Rn)(DX*1), (Rn)(DX*2).
// Each kernel keeps its own STEP(ao, bo) macro, one k step with A at byte offset ao and
// B at byte offset bo, and its own accumulator layout; these macros are the loop and the
// bookkeeping around it, written once.

// GEMM_ROWS12 sets R9, R10, R11 to rows 3, 6, 9 of A (R8 plus 3·DX, 6·DX, 9·DX).
#define GEMM_ROWS12 \
	LEAQ (R8)(DX*2), R9; \
	ADDQ DX, R9; \
	LEAQ (R9)(DX*2), R10; \
	ADDQ DX, R10; \
	LEAQ (R10)(DX*2), R11; \
	ADDQ DX, R11

// GEMM_ADV12(n) and GEMM_ADV6(n) move the A row pointers n bytes along k.
#define GEMM_ADV12(n) \
	ADDQ $(n), R8; \
	ADDQ $(n), R9; \
	ADDQ $(n), R10; \
	ADDQ $(n), R11

#define GEMM_ADV6(n) \
	ADDQ $(n), R8; \
	ADDQ $(n), R9

// GEMM_KLOOP(bstep, adv) runs STEP over all CX k steps, four at a time and then one at a
// time; A elements are 4 bytes (an f32, or a pair of bf16), a B row is bstep bytes (a plain number), adv is
// GEMM_ADV12 or GEMM_ADV6. It defines the labels loop4, tail and tail1 and jumps to the
// label store, which the kernel places right after it.
#define GEMM_KLOOP(bstep, adv) \
	CMPQ CX, $4; \
	JLT  tail; \
loop4: \
	STEP(0, 0); \
	STEP(4, bstep); \
	STEP(8, 2*bstep); \
	STEP(12, 3*bstep); \
	adv(16); \
	ADDQ $(4*(bstep)), BX; \
	SUBQ $4, CX; \
	CMPQ CX, $4; \
	JGE  loop4; \
tail: \
	TESTQ CX, CX; \
	JZ    store; \
tail1: \
	STEP(0, 0); \
	adv(4); \
	ADDQ $(bstep), BX; \
	DECQ CX; \
	JNZ  tail1

// Row operations op(acc0, acc1, w) for GEMM_FOR_*: one C row held in two registers of
// w bytes each. GEMM_ZEROZ2 and GEMM_ZEROY2 clear them; GEMM_STORE2 stores the row and
// steps DI to the next one; GEMM_ADDSTORE2 adds the row already in C first.
#define GEMM_ZEROZ2(acc0, acc1, w) \
	VPXORD acc0, acc0, acc0; \
	VPXORD acc1, acc1, acc1

#define GEMM_ZEROY2(acc0, acc1, w) \
	VXORPS acc0, acc0, acc0; \
	VXORPS acc1, acc1, acc1

#define GEMM_STORE2(acc0, acc1, w) \
	VMOVUPS acc0, (DI); \
	VMOVUPS acc1, w(DI); \
	ADDQ SI, DI

#define GEMM_ADDSTORE2(acc0, acc1, w) \
	VADDPS (DI), acc0, acc0; \
	VADDPS w(DI), acc1, acc1; \
	VMOVUPS acc0, (DI); \
	VMOVUPS acc1, w(DI); \
	ADDQ SI, DI

// GEMM_FOR_Z0_Z23(op) applies op to Z0–Z23 as 12 pairs of zmm registers (row r of the
// 12×32 AVX-512 tile in Z(2r), Z(2r+1)), in register order.
#define GEMM_FOR_Z0_Z23(op) \
	op(Z0, Z1, 64); \
	op(Z2, Z3, 64); \
	op(Z4, Z5, 64); \
	op(Z6, Z7, 64); \
	op(Z8, Z9, 64); \
	op(Z10, Z11, 64); \
	op(Z12, Z13, 64); \
	op(Z14, Z15, 64); \
	op(Z16, Z17, 64); \
	op(Z18, Z19, 64); \
	op(Z20, Z21, 64); \
	op(Z22, Z23, 64)

// GEMM_FOR_Y0_Y11(op) applies op to Y0–Y11, the AVX2 tiles' accumulators, as 6 pairs of
// ymm registers in register order.
#define GEMM_FOR_Y0_Y11(op) \
	op(Y0, Y1, 32); \
	op(Y2, Y3, 32); \
	op(Y4, Y5, 32); \
	op(Y6, Y7, 32); \
	op(Y8, Y9, 32); \
	op(Y10, Y11, 32)

// GEMM_FINISH(flag, forall, st, addst) ends a kernel after GEMM_KLOOP: at the label
// store, C = tile (forall(st)) unless the bool at flag (the kernel's acc+48(FP)) is set,
// then C += tile (forall(addst), at the label accumulate); VZEROUPPER, RET.
#define GEMM_FINISH(flag, forall, st, addst) \
store: \
	MOVBLZX flag, AX; \
	TESTQ   AX, AX; \
	JNZ     accumulate; \
	forall(st); \
	VZEROUPPER; \
	RET; \
accumulate: \
	forall(addst); \
	VZEROUPPER; \
	RET

// GEMM_TILE12X32(flag) is all of a 12×32 AVX-512 kernel after its arguments are loaded
// and lda is turned into bytes in DX: ldc into bytes, row pointers, a zeroed tile, the k
// loop over the kernel's STEP (128-byte B rows), and GEMM_FINISH.
#define GEMM_TILE12X32(flag) \
	SHLQ $2, SI; \
	GEMM_ROWS12; \
	GEMM_FOR_Z0_Z23(GEMM_ZEROZ2); \
	GEMM_KLOOP(128, GEMM_ADV12); \
	GEMM_FINISH(flag, GEMM_FOR_Z0_Z23, GEMM_STORE2, GEMM_ADDSTORE2)
