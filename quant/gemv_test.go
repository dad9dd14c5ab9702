package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// randNF4 builds an NF4 matrix with random codes and block scales (in [0.5, 1.5)·s),
// any block size; with dq the scales are double-quantised as QuantizeNF4 does.
func randNF4(t *testing.T, r *rand.Rand, rows, cols, bs int, dq bool) *NF4 {
	t.Helper()
	n := rows * cols
	w := &NF4{Rows: rows, Cols: cols, BlockSize: bs, Code: NF4Code, DType: "float32",
		Data: make([]byte, (n+1)/2), Absmax: make([]float32, (n+bs-1)/bs)}
	for i := range w.Data {
		w.Data[i] = byte(r.IntN(256))
	}
	for i := range w.Absmax {
		w.Absmax[i] = 0.02 * (0.5 + r.Float32())
	}
	if dq {
		nested, err := DoubleQuantize(w.Absmax)
		if err != nil {
			t.Fatal(err)
		}
		w.Nested, w.Absmax = nested, nil
	}
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	return w
}

// exactNT returns Y = X·Wᵀ with W dequantised (code·scale rounded to f32, as
// Dequantize writes it), summed in float64, and Σ|x·w| per output.
func exactNT(w Matrix, x []float32, m int) (ref, mag []float64) {
	n, k := w.Shape()
	wf := make([]float32, n*k)
	w.Dequantize(wf)
	ref, mag = make([]float64, m*n), make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s, g float64
			for p := range k {
				v := float64(x[i*k+p]) * float64(wf[j*k+p])
				s += v
				g += math.Abs(v)
			}
			ref[i*n+j], mag[i*n+j] = s, g
		}
	}
	return ref, mag
}

// gemvBound is the rounding bound of a k-term f32 dot product whose terms are scaled
// once more (per block or row) than the reference's: (k+4)·2⁻²³·Σ|x·w| (twice the
// textbook γ_{k+2} with u = 2⁻²⁴), plus the magnitude of an accumulated y.
func gemvBound(k int, mag, y0 float64) float64 {
	return float64(k+4)*0x1p-23*mag + 0x1p-23*math.Abs(y0) + 1e-30
}

// TestGemvQuant checks the decode GEMVs (MulNT with m ≤ 4) of every decoder set (the
// fused AVX-512 kernels, the Go twin, and the tiled path that AVX2 and the shapes the
// kernel does not take run) against the float64 product with the dequantised weights,
// with the bound of gemvBound, and each against the plain-Go twin within twice that, on
// awkward shapes: k not a multiple of the block (rows starting mid-block and at odd
// nibbles), m = 1…4, primes, block sizes 64/128/256, plain and double-quantised
// scales (with more than one nested block), overwrite and accumulate. X is followed
// in memory by +Inf, so a read past its end shows; overwrite starts from NaN.
func TestGemvQuant(t *testing.T) {
	type shape struct{ n, k, bs int }
	shapes := []shape{{1, 1, 64}, {3, 7, 64}, {5, 64, 64}, {7, 63, 64}, {4, 65, 64}, {13, 128, 64},
		{17, 192, 64}, {11, 97, 64}, {67, 896, 64}, {9, 256, 128}, {6, 768, 256}, {3, 31, 128}}
	if !testing.Short() {
		shapes = append(shapes, shape{131, 4864, 64}, shape{1031, 64, 64}) // 1031·64/64 > 256 blocks: nested blocks switch inside a chunk
	}
	r := rand.New(rand.NewPCG(3, 4))
	inf := float32(math.Inf(1))
	for _, s := range shapes {
		for _, dq := range []bool{false, true} {
			nf4 := randNF4(t, r, s.n, s.k, s.bs, dq)
			mats := []Matrix{nf4}
			if s.bs == 64 && !dq {
				wf := make([]float32, s.n*s.k)
				for i := range wf {
					wf[i] = float32(r.NormFloat64()) * 0.02
				}
				i8, err := QuantizeInt8(wf, s.n, s.k)
				if err != nil {
					t.Fatal(err)
				}
				mats = append(mats, i8)
			}
			for _, w := range mats {
				for m := 1; m <= 4; m++ {
					xbuf := make([]float32, m*s.k+64)
					for i := range xbuf {
						xbuf[i] = inf
					}
					x := xbuf[:m*s.k]
					for i := range x {
						x[i] = float32(r.NormFloat64())
					}
					ref, mag := exactNT(w, x, m)
					y0 := make([]float32, m*s.n)
					for i := range y0 {
						y0[i] = float32(r.NormFloat64())
					}
					for _, acc := range []bool{false, true} {
						name := fmt.Sprintf("%s/%dx%d/bs%d/dq=%v/m%d/acc=%v", w.Kind(), s.n, s.k, s.bs, dq, m, acc)
						var twin []float32
						for _, impl := range append([]string{"generic"}, Impls()...) {
							if err := SetImpl(impl); err != nil {
								t.Fatal(err)
							}
							y := make([]float32, len(y0))
							for i := range y {
								y[i] = float32(math.NaN())
							}
							if acc {
								copy(y, y0)
							}
							w.MulNT(y, x, m, acc)
							for i, v := range y {
								want, init := ref[i], 0.0
								if acc {
									init = float64(y0[i])
									want += init
								}
								tol := gemvBound(s.k, mag[i], init)
								if d := math.Abs(float64(v) - want); !(d <= tol) {
									t.Fatalf("%s %s: y[%d] = %g, want %g (|diff| %.3g > bound %.3g)", name, impl, i, v, want, d, tol)
								}
								if twin != nil {
									if d := math.Abs(float64(v - twin[i])); !(d <= 2*tol) {
										t.Fatalf("%s %s: y[%d] = %g, the Go twin %g (|diff| %.3g > %.3g)", name, impl, i, v, twin[i], d, 2*tol)
									}
								}
							}
							if impl == "generic" {
								twin = y
							}
						}
					}
				}
			}
		}
	}
	if err := SetImpl(Impls()[0]); err != nil {
		t.Fatal(err)
	}
}

// TestNestedValues checks the vectorised double-quantised absmax decoding against
// BlockAbsmax, bit for bit, from starts inside a nested block and across two.
func TestNestedValues(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	w := randNF4(t, r, 600, 64, 64, true)
	for _, impl := range Impls() {
		if err := SetImpl(impl); err != nil {
			t.Fatal(err)
		}
		for _, span := range [][2]int{{0, 600}, {3, 17}, {250, 300}, {255, 1}, {511, 89}} {
			dst := make([]float32, span[1])
			w.Nested.values(dst, span[0])
			for i, v := range dst {
				if want := w.BlockAbsmax(span[0] + i); v != want {
					t.Fatalf("%s: absmax %d = %g, want %g", impl, span[0]+i, v, want)
				}
			}
		}
	}
	if err := SetImpl(Impls()[0]); err != nil {
		t.Fatal(err)
	}
}
