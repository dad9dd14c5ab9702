package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bidora/bidora/kernels"
)

// TestBF16Compute checks the bf16-compute GEMMs of NF4 and INT8 matrices against the
// float64 product of the dequantised weight and the unrounded activations, with the
// bf16 bound (2·2⁻⁸ + γ)·Σ|xᵢ·wᵢ| (activation and weight each rounded to bf16, 2⁻⁹
// relative, ×2 margin; γ = (k+2)·2⁻²⁴ for the f32 sums), on ragged shapes and with
// small panels forcing many tiles.
func TestBF16Compute(t *testing.T) {
	prev := panelFloats
	defer func() { panelFloats = prev }()
	r := rand.New(rand.NewPCG(9, 9))
	prevThreads := kernels.Threads()
	defer kernels.SetThreads(prevThreads)
	for _, c := range []struct{ panel, threads int }{{prev, prevThreads}, {700, 3}, {150, 1}} {
		pf := c.panel
		panelFloats = pf
		kernels.SetThreads(c.threads)
		for _, s := range [][3]int{{5, 70, 64}, {13, 33, 128}, {37, 96, 192}, {9, 200, 320}, {6, 31, 75}, {14, 1, 33}} {
			m, n, k := s[0], s[1], s[2]
			w := make([]float32, n*k)
			for i := range w {
				w[i] = float32(r.NormFloat64())
			}
			nf4, err := QuantizeNF4(w, n, k, NF4Options{DoubleQuant: true})
			if err != nil {
				t.Fatal(err)
			}
			i8, err := QuantizeInt8(w, n, k)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []interface {
				ranged
				BF16Computer
			}{nf4, i8} {
				deq := make([]float32, n*k)
				q.DequantizeRange(deq, 0)
				x, dy := randVec(r, m*k), randVec(r, m*n)
				for _, acc := range []bool{false, true} {
					name := fmt.Sprintf("%T m=%d n=%d k=%d panel=%d acc=%v", q, m, n, k, pf, acc)
					y0, dx0 := randVec(r, m*n), randVec(r, m*k)
					y, dx := append([]float32(nil), y0...), append([]float32(nil), dx0...)
					q.MulNTBF16(y, x, m, acc)
					q.MulNNBF16(dx, dy, m, acc)
					for i := range m {
						for j := range n {
							var s, g float64
							for p := range k {
								v := float64(x[i*k+p]) * float64(deq[j*k+p])
								s, g = s+v, g+math.Abs(v)
							}
							checkBF16(t, "MulNTBF16 "+name, y[i*n+j], s, g, y0[i*n+j], acc, k)
						}
						for j := range k {
							var s, g float64
							for p := range n {
								v := float64(dy[i*n+p]) * float64(deq[p*k+j])
								s, g = s+v, g+math.Abs(v)
							}
							checkBF16(t, "MulNNBF16 "+name, dx[i*k+j], s, g, dx0[i*k+j], acc, n)
						}
					}
				}
			}
		}
	}
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func checkBF16(t *testing.T, what string, got float32, want, mag float64, init float32, acc bool, k int) {
	t.Helper()
	rel := 2.0/256 + float64(k+2)/(1<<24)
	bound := rel * mag
	if acc {
		want += float64(init)
		bound += rel * math.Abs(float64(init))
	}
	if d := math.Abs(float64(got) - want); !(d <= bound+1e-30) {
		t.Fatalf("%s: %g, want %g (|diff| %g > %g)", what, got, want, d, bound)
	}
}
