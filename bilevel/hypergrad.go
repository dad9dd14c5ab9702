package bilevel

import (
	"context"
	"math"

	"github.com/bidora/bidora/kernels"
)

// Float is the element type of the parameter slices (float32 for the engine,
// float64 for exact checks).
type Float interface{ ~float32 | ~float64 }

// Levels gives Hypergradient access to a model's two parameter groups and to the
// gradients of the two losses at the current parameters.
type Levels[F Float] struct {
	Dir     [][]F // direction parameters V (lora_A, lora_B); perturbed and restored bit for bit
	DirGrad [][]F // gradient slices of Dir, written by UpperGrad
	MagGrad [][]F // gradient slices of the magnitudes m, written by UpperGrad and LowerGrad
	// UpperGrad sets DirGrad and MagGrad to the gradient of the mean upper-level
	// (validation) loss and returns that loss.
	UpperGrad func(ctx context.Context) (float64, error)
	// LowerGrad sets MagGrad to ∇_m of the mean lower-level (training) loss on the
	// lower step's batch, with everything fixed (dropout masks included) except Dir.
	LowerGrad func(ctx context.Context) error
}

// HyperStats describes one hypergradient.
type HyperStats struct {
	UpperLoss float64 // mean upper-level loss at the current parameters
	VNorm     float64 // ‖v‖ = ‖∂L_val/∂V‖
	Eps       float64 // the finite-difference step ε (0 for first order)
}

// Hypergradient writes into g (shaped like MagGrad) the DARTS one-step
// finite-difference hypergradient of the upper loss with respect to the magnitudes,
//
//	v = ∂L_val/∂V,  ε = radius/‖v‖,
//	g = ∂L_val/∂m − [∇_m L_tr(V + εv) − ∇_m L_tr(V − εv)] / (2ε),
//
// or with firstOrder only ∂L_val/∂m. There is no inner learning-rate factor ξ in front
// of the second term: this is the implicit-differentiation reading of DARTS (the best
// response's Jacobian with the inverse lower-level Hessian replaced by the identity)
// that the official BiDoRA code gets from Betty's "darts" hypergradient, not DARTS'
// unrolled form −ξ·∇²_{m,V}L_tr·v, where ξ is the inner step size. On return Dir
// holds exactly its values at entry.
func Hypergradient[F Float](ctx context.Context, l Levels[F], radius float64, firstOrder bool, g [][]F) (HyperStats, error) {
	var st HyperStats
	loss, err := l.UpperGrad(ctx)
	if err != nil {
		return st, err
	}
	st.UpperLoss = loss
	for i := range g {
		copy(g[i], l.MagGrad[i])
	}
	st.VNorm = norm(l.DirGrad)
	if firstOrder || st.VNorm == 0 {
		return st, nil
	}
	eps := radius / st.VNorm
	st.Eps = eps
	v := clone2(l.DirGrad)
	v0 := clone2(l.Dir)
	restore := func() {
		for i := range l.Dir {
			copy(l.Dir[i], v0[i])
		}
	}
	defer restore()
	shift := func(sign float64) {
		forChunks(l.Dir, func(i, lo, hi int) {
			d := l.Dir[i]
			for j := lo; j < hi; j++ {
				d[j] = F(float64(v0[i][j]) + sign*eps*float64(v[i][j]))
			}
		})
	}
	shift(1)
	if err := l.LowerGrad(ctx); err != nil {
		return st, err
	}
	gp := clone2(l.MagGrad)
	shift(-1)
	if err := l.LowerGrad(ctx); err != nil {
		return st, err
	}
	inv := 1 / (2 * eps)
	forChunks(g, func(i, lo, hi int) {
		for j := lo; j < hi; j++ {
			g[i][j] = F(float64(g[i][j]) - (float64(gp[i][j])-float64(l.MagGrad[i][j]))*inv)
		}
	})
	return st, nil
}

// chunkLen is the fixed piece of a tensor that one pool task handles: fixed, not
// derived from the thread count, so that norm's sum does not depend on --threads.
const chunkLen = 1 << 14

// chunks lists the (tensor, lo, hi) chunks of x.
func chunks[F Float](x [][]F) [][3]int {
	var idx [][3]int
	for i, v := range x {
		for lo := 0; lo < len(v); lo += chunkLen {
			idx = append(idx, [3]int{i, lo, min(len(v), lo+chunkLen)})
		}
	}
	return idx
}

// forChunks runs fn(i, lo, hi) over every chunk [lo, hi) of every tensor x[i] on the
// kernels pool (the element-wise passes over V, which grow with the adapter).
func forChunks[F Float](x [][]F, fn func(i, lo, hi int)) {
	idx := chunks(x)
	kernels.Parallel(len(idx), 1, func(a, b int) {
		for _, c := range idx[a:b] {
			fn(c[0], c[1], c[2])
		}
	})
}

// norm returns the L2 norm of all of x, summed in float64 per chunk and the chunks in
// order: the same bits at any thread count.
func norm[F Float](x [][]F) float64 {
	idx := chunks(x)
	part := make([]float64, len(idx))
	kernels.Parallel(len(idx), 1, func(a, b int) {
		for c := a; c < b; c++ {
			var s float64
			for _, v := range x[idx[c][0]][idx[c][1]:idx[c][2]] {
				s += float64(v) * float64(v)
			}
			part[c] = s
		}
	})
	var ss float64
	for _, v := range part {
		ss += v
	}
	return math.Sqrt(ss)
}

func clone2[F Float](x [][]F) [][]F {
	out := make([][]F, len(x))
	for i := range x {
		out[i] = append([]F(nil), x[i]...)
	}
	return out
}
