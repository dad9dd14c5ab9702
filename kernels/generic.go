package kernels

// The plain-Go kernel set: a blocked GEMM with a 4×4 register tile for CPUs without
// AVX2/FMA or NEON (the Go compiler keeps the 16 accumulators in registers on arm64).

var genericImpl = &impl{
	name: "generic",
	gemm: microKernel{mr: 4, nr: 4, fn: gemmKern4x4Go},
	vec:  4,
	dot:  dotGo,
	axpy: axpyGo,

	exp:    expSliceGo,
	expSum: expSumGo,
	expSub: expSubGo,
	max:    maxGo,
	scale:  scaleGo,

	siluMul:    siluMulGo,
	siluMulBwd: siluMulBwdGo,
}

func gemmKern4x4Go(kc int, a *float32, lda int, b *float32, c *float32, ldc int, acc bool) {
	a0 := unsafeSlice(a, 3*lda+kc)
	a1, a2, a3 := a0[lda:lda+kc], a0[2*lda:2*lda+kc], a0[3*lda:3*lda+kc]
	a0 = a0[:kc]
	bp := unsafeSlice(b, 4*kc)
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	for ; len(bp) >= 4 && len(a0) >= 1 && len(a1) >= 1 && len(a2) >= 1 && len(a3) >= 1; bp, a0, a1, a2, a3 = bp[4:], a0[1:], a1[1:], a2[1:], a3[1:] {
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		x := a0[0]
		c00 += x * b0
		c01 += x * b1
		c02 += x * b2
		c03 += x * b3
		x = a1[0]
		c10 += x * b0
		c11 += x * b1
		c12 += x * b2
		c13 += x * b3
		x = a2[0]
		c20 += x * b0
		c21 += x * b1
		c22 += x * b2
		c23 += x * b3
		x = a3[0]
		c30 += x * b0
		c31 += x * b1
		c32 += x * b2
		c33 += x * b3
	}
	cc := unsafeSlice(c, 3*ldc+4)
	rows := [4][4]float32{{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23}, {c30, c31, c32, c33}}
	for r := range 4 {
		d := cc[r*ldc : r*ldc+4 : r*ldc+4]
		if acc {
			d[0] += rows[r][0]
			d[1] += rows[r][1]
			d[2] += rows[r][2]
			d[3] += rows[r][3]
		} else {
			d[0], d[1], d[2], d[3] = rows[r][0], rows[r][1], rows[r][2], rows[r][3]
		}
	}
}

func dotGo(a, b *float32, n int) float32 {
	x, y := unsafeSlice(a, n), unsafeSlice(b, n)
	var s0, s1, s2, s3 float32
	for i := 0; i+4 <= n; i += 4 {
		xx, yy := x[i:i+4:i+4], y[i:i+4:i+4]
		s0 += xx[0] * yy[0]
		s1 += xx[1] * yy[1]
		s2 += xx[2] * yy[2]
		s3 += xx[3] * yy[3]
	}
	return (s0 + s1) + (s2 + s3)
}

func axpyGo(alpha float32, x, y *float32, n int) {
	xs, ys := unsafeSlice(x, n), unsafeSlice(y, n)
	for i, v := range xs {
		ys[i] += alpha * v
	}
}
