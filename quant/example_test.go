package quant_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/bidora/bidora/kernels"
	"github.com/bidora/bidora/quant"
)

// Quantise a normal(0, 0.02) weight (as HF initialises linear layers) stored in bf16,
// use it in a fused GEMM and measure the relative Frobenius error of the dequantised
// matrix against the bf16 one.
func ExampleQuantizeNF4BF16() {
	const rows, cols = 896, 896
	r := rand.New(rand.NewPCG(42, 42))
	w := make([]uint16, rows*cols)
	for i := range w {
		w[i] = kernels.F32ToBF16(float32(r.NormFloat64() * 0.02))
	}
	q, err := quant.QuantizeNF4BF16(w, rows, cols, quant.NF4Options{DoubleQuant: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	d := make([]float32, rows*cols)
	q.Dequantize(d)
	var num, den float64
	for i, b := range w {
		v := float64(kernels.BF16ToF32(b))
		num += (float64(d[i]) - v) * (float64(d[i]) - v)
		den += v * v
	}
	fmt.Printf("NF4: %.2f bits per weight, relative error %.4f\n", float64(8*q.Bytes())/(rows*cols), math.Sqrt(num/den))

	// The same weight without double quantisation, and in weight-only INT8 (one absmax
	// scale per row).
	relErr := func(m quant.Matrix) float64 {
		m.Dequantize(d)
		var num, den float64
		for i, b := range w {
			v := float64(kernels.BF16ToF32(b))
			num += (float64(d[i]) - v) * (float64(d[i]) - v)
			den += v * v
		}
		return math.Sqrt(num / den)
	}
	plain, _ := quant.QuantizeNF4BF16(w, rows, cols, quant.NF4Options{})
	f := make([]float32, rows*cols)
	for i, b := range w {
		f[i] = kernels.BF16ToF32(b)
	}
	i8, _ := quant.QuantizeInt8(f, rows, cols)
	fmt.Printf("NF4 without double quantisation: relative error %.4f\n", relErr(plain))
	fmt.Printf("INT8: %.2f bits per weight, relative error %.4f\n", float64(8*i8.Bytes())/(rows*cols), relErr(i8))
	q.Dequantize(d)

	// y = x·Wᵀ for one token, W dequantised tile by tile inside the GEMM.
	x := make([]float32, cols)
	x[0] = 1
	y := make([]float32, rows)
	q.MulNT(y, x, 1, false)
	fmt.Println("y[:3] = column 0 of W:", y[0] == d[0], y[1] == d[cols], y[2] == d[2*cols])
	// Output:
	// NF4: 4.13 bits per weight, relative error 0.0919
	// NF4 without double quantisation: relative error 0.0919
	// INT8: 8.04 bits per weight, relative error 0.0078
	// y[:3] = column 0 of W: true true true
}
