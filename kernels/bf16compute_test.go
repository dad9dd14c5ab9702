package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The bf16-compute GEMMs are checked two ways on awkward shapes (1, primes, odd k,
// ragged tiles and k blocks), for every kernel set and for the plain-Go twin:
//
//   - against the exact (float64) product of the bf16-rounded operands, with the f32
//     accumulation bound γ·Σ|aᵢ·bᵢ|, γ = (k+2)·2⁻²⁴ (the bf16 products are exact in
//     f32; only the sums round) — an indexing, packing or rounding mistake misses it;
//   - against the exact product of the unrounded f32 operands, with the bf16 bound
//     (u_a + u_w + u_a·u_w + γ)·Σ|aᵢ·bᵢ|, u = 2⁻⁸ for each operand bf16 rounding
//     touches (2⁻⁹ relative per value, ×2 margin), u_w = 0 for bf16 weights: the
//     accuracy the bf16 compute promises.
//
// The native kernel and the twin are also compared with each other: they differ only in
// summation order, within 2γ·Σ|aᵢ·bᵢ|.

// bf16Exact rounds like the kernels (RNE, denormals to zero) and widens.
func bf16Exact(v float32) float64 { return float64(bf16Val(uint32(roundBF16(v)))) }

func checkBound(t *testing.T, what string, got, init []float32, exact, mag []float64, rel float64) {
	t.Helper()
	bad := 0
	for i, g := range got {
		want, bound := exact[i], rel*mag[i]
		if init != nil {
			want += float64(init[i])
			bound += rel * math.Abs(float64(init[i]))
		}
		bound += 1e-30
		if d := math.Abs(float64(g) - want); !(d <= bound) {
			if bad++; bad <= 3 {
				t.Errorf("%s: element %d = %g, want %g (|diff| %g > bound %g)", what, i, g, want, d, bound)
			}
		}
	}
	if bad > 3 {
		t.Errorf("%s: %d of %d elements out of bound", what, bad, len(got))
	}
}

func bf16Shapes() []shape {
	small := []int{1, 2, 3, 7, 13, 17, 33}
	if testing.Short() {
		small = []int{1, 2, 7, 17, 33}
	}
	var out []shape
	for _, m := range small {
		for _, n := range small {
			for _, k := range small {
				out = append(out, shape{m, n, k})
			}
		}
	}
	return append(out,
		shape{31, 63, 65}, shape{65, 127, 31}, shape{127, 33, 257}, shape{257, 65, 63},
		shape{13, 300, 520}, // several column tasks, k blocks with a ragged tail
		shape{400, 17, 301}, // more rows than one row block, odd k over a k block
		shape{37, 96, 800},  // three k blocks of pairs, full panels
		shape{100, 8, 300},  // rank-wide output
		shape{2, 1000, 3},   // wide and shallow
		shape{1, 1, 1000},   // one long dot product
	)
}

func TestBF16Compute(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const uBF16 = 1.0 / 256
	run := func(t *testing.T) {
		if active.name != "generic" && active.bf16 == nil {
			t.Skip("runs the plain-Go twin, as the generic set does")
		}
		for _, sh := range bf16Shapes() {
			m, n, k := sh.m, sh.n, sh.k
			x, dy, w := randSlice(r, m*k), randSlice(r, m*n), randSlice(r, n*k)
			wbits, _ := toBF16(w)
			at := func(s []float32, ld int, rnd bool) func(i, j int) float64 {
				return func(i, j int) float64 {
					if rnd {
						return bf16Exact(s[i*ld+j])
					}
					return float64(s[i*ld+j])
				}
			}
			tr := func(s []float32, ld int, rnd bool) func(i, j int) float64 {
				return func(i, j int) float64 { return at(s, ld, rnd)(j, i) }
			}
			ntR, magNTR := exactGEMM(m, n, k, at(x, k, true), tr(w, k, true))
			ntF, magNTF := exactGEMM(m, n, k, at(x, k, false), tr(w, k, false))
			nnR, magNNR := exactGEMM(m, k, n, at(dy, n, true), at(w, k, true))
			nnF, magNNF := exactGEMM(m, k, n, at(dy, n, false), at(w, k, false))
			s := activeBF16()
			for _, acc := range []bool{false, true} {
				name := fmt.Sprintf("m=%d n=%d k=%d acc=%v", m, n, k, acc)
				initNT, initNN := randSlice(r, m*n), randSlice(r, m*k)
				start := func(init []float32) ([]float32, []float32) {
					out := randSlice(r, len(init))
					if acc {
						copy(out, init)
						return out, init
					}
					return out, nil
				}
				gammaNT, gammaNN := float64(k+2)/(1<<24), float64(n+2)/(1<<24)
				// bf16 weights (their bf16 value is the weight: u_w = 0 against w
				// rounded, which toBF16 did), driver called directly so that m ≤ 4
				// runs the bf16 GEMM too.
				y, init := start(initNT)
				gemmBF16(s, m, n, k, x, k, packPairsNT(wbits, k, s), y, n, acc)
				checkBound(t, "NT bf16 w vs rounded "+name, y, init, ntR, magNTR, gammaNT)
				twin := append([]float32(nil), init...)
				if !acc {
					twin = make([]float32, m*n)
				}
				gemmBF16(bf16Generic, m, n, k, x, k, packPairsNT(wbits, k, bf16Generic), twin, n, acc)
				checkBound(t, "NT twin vs native "+name, y, nil, f64(twin), magNTR, 2*gammaNT)
				// f32 weights rounded while packed.
				y, init = start(initNT)
				gemmBF16(s, m, n, k, x, k, packPairsNT(w, k, s), y, n, acc)
				checkBound(t, "NT f32 w vs rounded "+name, y, init, ntR, magNTR, gammaNT)
				checkBound(t, "NT f32 w vs exact "+name, y, init, ntF, magNTF, 2*uBF16+uBF16*uBF16+gammaNT)
				// Public entry points (m ≤ 4 stays f32, within the bf16 bound too).
				y, init = start(initNT)
				MatMulNTF32Compute16(y, x, w, m, n, k, acc)
				checkBound(t, "MatMulNTF32Compute16 "+name, y, init, ntF, magNTF, 2*uBF16+uBF16*uBF16+gammaNT)
				y, init = start(initNT)
				MatMulNTBF16Compute(y, x, wbits, m, n, k, acc)
				checkBound(t, "MatMulNTBF16Compute "+name, y, init, ntR, magNTR, uBF16+gammaNT)

				dx, init := start(initNN)
				MatMulNNBF16Compute(dx, dy, wbits, m, n, k, acc)
				checkBound(t, "NN bf16 w vs rounded "+name, dx, init, nnR, magNNR, gammaNN)
				twin = append([]float32(nil), init...)
				if !acc {
					twin = make([]float32, m*k)
				}
				gemmBF16(bf16Generic, m, k, n, dy, n, packPairsNN(wbits, n, k, bf16Generic), twin, k, acc)
				checkBound(t, "NN twin vs native "+name, dx, nil, f64(twin), magNNR, 2*gammaNN)
				dx, init = start(initNN)
				MatMulNNF32Compute16(dx, dy, w, m, n, k, acc)
				checkBound(t, "NN f32 w vs rounded "+name, dx, init, nnR, magNNR, gammaNN)
				checkBound(t, "NN f32 w vs exact "+name, dx, init, nnF, magNNF, 2*uBF16+uBF16*uBF16+gammaNN)
			}
		}
	}
	withImpls(t, func(t *testing.T) { withThreads(t, run) })
}

func f64(s []float32) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}

// TestRoundBF16 checks the vector rounding against the scalar twin on special values
// (ties both ways, NaN, infinities, denormals, the largest finite) and random ones.
func TestRoundBF16(t *testing.T) {
	specials := []uint32{0, 0x80000000, 0x3f808000, 0x3f818000, 0x3f80ffff, 0x3f807fff,
		0x7f800000, 0xff800000, 0x7fc00001, 0x7f800001, 0xffa00000, 0x00000001, 0x807fffff,
		0x00800000, 0x7f7fffff, 0xff7fffff, 0x7f7f8000}
	r := rand.New(rand.NewPCG(5, 6))
	src := make([]float32, 0, 103)
	for _, u := range specials {
		src = append(src, math.Float32frombits(u))
	}
	for len(src) < cap(src) {
		src = append(src, math.Float32frombits(r.Uint32()))
	}
	want := []BF16{0, 0x8000, 0x3f80, 0x3f82, 0x3f81, 0x3f80, 0x7f80, 0xff80, 0x7fc0, 0x7fc0, 0xffe0,
		0, 0x8000, 0x0080, 0x7f80, 0xff80, 0x7f80}
	for i, w := range want {
		if got := roundBF16(src[i]); got != w {
			t.Errorf("roundBF16(%#08x) = %#04x, want %#04x", specials[i], got, w)
		}
	}
	withImpls(t, func(t *testing.T) {
		dst := make([]BF16, len(src))
		RoundBF16(dst, src)
		for i, v := range src {
			if want := roundBF16(v); dst[i] != want {
				t.Errorf("RoundBF16(%#08x) = %#04x, want %#04x", math.Float32bits(v), dst[i], want)
			}
		}
	})
}

// TestNativeBF16Switch checks that hiding the native kernels leaves a working twin and
// that NativeBF16 follows the CPU, SetImpl and SetNativeBF16.
func TestNativeBF16Switch(t *testing.T) {
	prev := active.name
	defer func() { _ = SetImpl(prev); SetNativeBF16(true) }()
	if err := SetImpl("generic"); err != nil {
		t.Fatal(err)
	}
	if NativeBF16() {
		t.Error("generic kernels report native bf16")
	}
	_ = SetImpl(prev)
	native := active.bf16 != nil
	if NativeBF16() != native {
		t.Errorf("NativeBF16() = %v with the %s set (bf16 kernels %v)", NativeBF16(), prev, native)
	}
	SetNativeBF16(false)
	if NativeBF16() {
		t.Error("NativeBF16() true after SetNativeBF16(false)")
	}
	SetNativeBF16(true)
	if NativeBF16() != native {
		t.Error("SetNativeBF16(true) did not restore the native kernels")
	}
}

// TestBF16Rows checks the products on an operand rounded once (RoundRows): outputs with
// a row stride wider than the product (the margins must stay untouched), and NN products
// summed over column bands of the operand (Cols views, even band edges, an odd last
// band), against the exact product of the rounded operands with the f32 bound.
func TestBF16Rows(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	run := func(t *testing.T) {
		if active.name != "generic" && active.bf16 == nil {
			t.Skip("runs the plain-Go twin, as the generic set does")
		}
		for _, sh := range []shape{{1, 1, 1}, {5, 7, 9}, {13, 33, 64}, {17, 65, 31}, {31, 100, 257}, {40, 37, 401}} {
			m, n, k := sh.m, sh.n, sh.k
			x, dy := randSlice(r, m*k), randSlice(r, m*n)
			w := randSlice(r, n*k)
			wbits, _ := toBF16(w)
			rnd := func(s []float32, ld int) func(i, j int) float64 {
				return func(i, j int) float64 { return bf16Exact(s[i*ld+j]) }
			}
			ntR, magNT := exactGEMM(m, n, k, rnd(x, k), func(i, j int) float64 { return rnd(w, k)(j, i) })
			nnR, magNN := exactGEMM(m, k, n, rnd(dy, n), rnd(w, k))
			for _, acc := range []bool{false, true} {
				name := fmt.Sprintf("m=%d n=%d k=%d acc=%v", m, n, k, acc)
				const pad = 3
				// NT into columns [pad, pad+n) of rows of stride n+2·pad.
				ld := n + 2*pad
				big := randSlice(r, m*ld)
				orig := append([]float32(nil), big...)
				a := RoundRows(x, m, k, k)
				MatMulNTRows(big[pad:], ld, a, wbits, n, acc)
				a.Release()
				got, init := make([]float32, m*n), make([]float32, m*n)
				for i := range m {
					copy(got[i*n:], big[i*ld+pad:i*ld+pad+n])
					copy(init[i*n:], orig[i*ld+pad:i*ld+pad+n])
					for j := range pad {
						if big[i*ld+j] != orig[i*ld+j] || big[i*ld+pad+n+j] != orig[i*ld+pad+n+j] {
							t.Fatalf("NT %s: row %d: margin overwritten", name, i)
						}
					}
				}
				if !acc {
					init = nil
				}
				checkBound(t, "MatMulNTRows "+name, got, init, ntR, magNT, float64(k+2)/(1<<24))

				// NN over bands of 4 operand columns (= rows of W), then the rest.
				ld = k + 2*pad
				big = randSlice(r, m*ld)
				orig = append([]float32(nil), big...)
				a = RoundRows(dy, m, n, n)
				for lo := 0; lo < n; lo += 4 {
					hi := min(n, lo+4)
					MatMulNNRows(big[pad:], ld, a.Cols(lo, hi), wbits[lo*k:hi*k], k, acc || lo > 0)
				}
				a.Release()
				got, init = make([]float32, m*k), make([]float32, m*k)
				for i := range m {
					copy(got[i*k:], big[i*ld+pad:i*ld+pad+k])
					copy(init[i*k:], orig[i*ld+pad:i*ld+pad+k])
				}
				if !acc {
					init = nil
				}
				checkBound(t, "MatMulNNRows "+name, got, init, nnR, magNN, float64(n+2)/(1<<24))
			}
		}
	}
	withImpls(t, func(t *testing.T) { withThreads(t, run) })
}
