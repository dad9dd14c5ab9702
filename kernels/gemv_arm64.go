package kernels

// Assembly GEMV kernels (gemv_arm64.s): for m ≤ 4 rows of X and a multiple of 4
// weight rows, Y[i][r] (+)= Σₚ X[i][p]·W[r][p] over the first k&^7 columns (the Go
// tail does the rest).

//go:noescape
func gemvF32NEON(m, k int, x *float32, ldx int, w *float32, ldw int, rows int, y *float32, ldy int, acc bool)

//go:noescape
func gemvBF16NEON(m, k int, x *float32, ldx int, w *BF16, ldw int, rows int, y *float32, ldy int, acc bool)

var (
	gemvBF16NEONOps = &gemvOps[BF16]{kern: gemvBF16NEON, mMax: 4, kStep: 8, tail: dotBF16Go}
	gemvF32NEONOps  = &gemvOps[float32]{kern: gemvF32NEON, mMax: 4, kStep: 8, tail: dotF32Go}
)

// archGemv returns the assembly GEMV kernels of the named kernel set, or nil ones
// when it has none (the pure-Go twin runs then).
func archGemv(name string) (*gemvOps[BF16], *gemvOps[float32]) {
	if name == "neon" {
		return gemvBF16NEONOps, gemvF32NEONOps
	}
	return nil, nil
}
