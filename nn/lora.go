package nn

import (
	"fmt"
	"math"

	"github.com/bidora/bidora/kernels"
)

// Adapter is the trainable low-rank branch of a linear layer [out, in]:
// A [R, in], B [out, R], and for DoRA the magnitude M [out]. Grads accumulate (+=)
// into GA, GB and GM until the caller zeroes them. Adapter parameters are f32.
//
// LoRA:  y = W·x + b + Scale·B·A·drop(x)
// DoRA (as PEFT's DoraLinearLayer): with n = ‖W + Scale·B·A‖ per output row, computed
// with B·A detached and n itself detached (no gradient flows through n), and g = M/n,
//
//	y = W·x + b + (g − 1)⊙(W·drop(x)) + g⊙Scale·B·A·drop(x).
//
// Without dropout this is y = g⊙(W·x + Scale·B·A·x) + b.
type Adapter struct {
	R       int
	Scale   float32 // alpha/r (LoRA) or alpha/√r (rsLoRA)
	Dropout float32 // probability of zeroing an input of the branch (training only)
	A, B    []float32
	GA, GB  []float32
	DoRA    bool
	M, GM   []float32
	norm    []float32 // n per output row, set by UpdateNorm
}

// LinearCache holds what a Linear's forward saves for its backward.
type LinearCache struct {
	XD []float32 // [m, in] dropped-out input (only with dropout; else x is used)
	H  []float32 // [m, R] Scale·A·drop(x)
	U  []float32 // [m, out] DoRA only: W·drop(x) + Scale·B·A·drop(x)
}

// Linear is a frozen linear layer with an optional bias and an optional adapter.
type Linear struct {
	W       *Weight
	Bias    []float32 // [out] or nil, frozen
	Adapter *Adapter  // nil for a frozen layer
}

// LinearScratch is backward scratch shared by all linears of a model; each slice must
// hold at least m×(the largest out, R or in it is used for).
type LinearScratch struct {
	DH  []float32 // [m, R]
	DYG []float32 // [m, out] DoRA: dy⊙g
	TMP []float32 // [m, in] dropout: branch input gradient before masking
}

// NewCache allocates a LinearCache for m rows.
func (l *Linear) NewCache(m int) *LinearCache {
	c := &LinearCache{}
	if a := l.Adapter; a != nil {
		c.H = make([]float32, m*a.R)
		if a.Dropout > 0 {
			c.XD = make([]float32, m*l.W.Cols)
		}
		if a.DoRA {
			c.U = make([]float32, m*l.W.Rows)
		}
	}
	return c
}

// UpdateNorm recomputes the DoRA row norms n = ‖W + Scale·B·A‖ from the current A and
// B (see RowNormsWithDelta). Call it after each parameter update and before the next
// forward.
func (a *Adapter) UpdateNorm(w *Weight) {
	if len(a.norm) != w.Rows {
		a.norm = make([]float32, w.Rows)
	}
	RowNormsWithDelta(a.norm, w, a.A, a.B, a.R, a.Scale)
}

// RowNormsWithDelta writes dst[o] = ‖W[o,:] + scale·(B·A)[o,:]‖ for every row o of w
// [out, in], with A [rank, in] and B [out, rank]: the per-row weight norm of DoRA,
// which the forward (UpdateNorm), the orthogonality regulariser and the merge share.
// Each row is built with AddRowDelta and its squares are summed in float64. On a
// quantised W (QDoRA) the norms come from quant's blockwise RowNormsWithDelta, which
// decodes one row at a time with the same arithmetic and never holds a full-precision
// copy of W.
func RowNormsWithDelta(dst []float32, w *Weight, a, b []float32, rank int, scale float32) {
	out, in := w.Rows, w.Cols
	if len(dst) < out || len(a) < rank*in || len(b) < out*rank {
		panic(fmt.Sprintf("nn: RowNormsWithDelta: buffers (%d, %d, %d) too short for [%d, %d] rank %d", len(dst), len(a), len(b), out, in, rank))
	}
	kernels.Parallel(out, 16, func(lo, hi int) {
		row := make([]float32, in)
		for o := lo; o < hi; o++ {
			w.Row(o, row)
			dst[o] = float32(DeltaRowNorm(row, o, a, b, rank, scale))
		}
	})
}

// DeltaRowNorm adds scale·(B·A)[o,:] to row (see AddRowDelta) and returns the
// Euclidean norm of the result, its squares summed in float64: the DoRA norm of row o.
func DeltaRowNorm(row []float32, o int, a, b []float32, rank int, scale float32) float64 {
	AddRowDelta(row, o, a, b, rank, scale)
	var ss float64
	for _, v := range row {
		ss += float64(v) * float64(v)
	}
	return math.Sqrt(ss)
}

// AddRowDelta adds scale·(B·A)[o,:] to row, which holds row o of a weight [out, in]
// with in = len(row), A [rank, in] and B [out, rank]. Terms whose coefficient
// scale·B[o,k] is zero are skipped, so a row the update does not touch stays
// bit-for-bit as it was (a −0 stays −0).
func AddRowDelta(row []float32, o int, a, b []float32, rank int, scale float32) {
	in := len(row)
	for k := 0; k < rank; k++ {
		if c := scale * b[o*rank+k]; c != 0 {
			kernels.Axpy(c, a[k*in:(k+1)*in], row)
		}
	}
}

// Norm returns the DoRA row norms last computed by UpdateNorm.
func (a *Adapter) Norm() []float32 { return a.norm }

// Forward computes y [m, out] from x [m, in]. In training (train true) the adapter
// branch sees dropout with the mask drawn from key; c receives what Backward needs.
func (l *Linear) Forward(y, x []float32, m int, c *LinearCache, train bool, key uint64) {
	out, in := l.W.Rows, l.W.Cols
	a := l.Adapter
	l.W.MulNT(y, x, m, false)
	if a == nil {
		l.addBias(y, m)
		return
	}
	xd := x
	dropout := train && a.Dropout > 0
	if dropout {
		xd = c.XD[:m*in]
		DropoutForward(xd, x[:m*in], a.Dropout, key)
	}
	h := c.H[:m*a.R]
	kernels.MatMulNT(h, xd, a.A, m, a.R, in, false)
	scaleInPlace(h, a.Scale)
	if !a.DoRA {
		kernels.MatMulNT(y, h, a.B, m, out, a.R, true)
		l.addBias(y, m)
		return
	}
	u := c.U[:m*out]
	if dropout {
		l.W.MulNT(u, xd, m, false)
		kernels.Parallel(m, 16, func(lo, hi int) {
			for i := lo * out; i < hi*out; i++ {
				y[i] -= u[i]
			}
		})
	} else {
		copy(u, y)
		clear(y[:m*out])
	}
	kernels.MatMulNT(u, h, a.B, m, out, a.R, true)
	// y += g⊙u (the base W·x is already in y when there is dropout; else y = g⊙u).
	g := a.M
	n := a.norm
	kernels.Parallel(m, 16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			yr, ur := y[i*out:(i+1)*out], u[i*out:(i+1)*out]
			for o := range yr {
				yr[o] += g[o] / n[o] * ur[o]
			}
		}
	})
	l.addBias(y, m)
}

func (l *Linear) addBias(y []float32, m int) {
	if l.Bias == nil {
		return
	}
	out := l.W.Rows
	kernels.Parallel(m, 16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			kernels.Axpy(1, l.Bias, y[i*out:(i+1)*out])
		}
	})
}

func scaleInPlace(x []float32, s float32) {
	for i := range x {
		x[i] *= s
	}
}

// Backward accumulates the adapter gradients from dy [m, out] and, when dx is non-nil,
// writes (or with accumulate adds) the input gradient dx [m, in]. x, c, train and key
// must be those of the matching Forward.
func (l *Linear) Backward(dx, dy, x []float32, m int, c *LinearCache, s *LinearScratch, train bool, key uint64, accumulate bool) {
	out, in := l.W.Rows, l.W.Cols
	a := l.Adapter
	if a == nil {
		if dx != nil {
			l.W.MulNN(dx, dy, m, accumulate)
		}
		return
	}
	dropout := train && a.Dropout > 0
	xd := x
	if dropout {
		xd = c.XD[:m*in]
	}
	h := c.H[:m*a.R]
	dyb := dy // gradient reaching the branch output B·h
	if a.DoRA {
		// GM[o] += Σ_i dy[i,o]·u[i,o]/n[o]; the branch sees dy⊙g.
		u := c.U[:m*out]
		dyb = s.DYG[:m*out]
		n := a.norm
		kernels.Parallel(out, 64, func(lo, hi int) {
			for o := lo; o < hi; o++ {
				var acc float64
				for i := 0; i < m; i++ {
					acc += float64(dy[i*out+o]) * float64(u[i*out+o])
				}
				a.GM[o] += float32(acc / float64(n[o]))
			}
		})
		kernels.Parallel(m, 16, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				for o := 0; o < out; o++ {
					dyb[i*out+o] = dy[i*out+o] * a.M[o] / n[o]
				}
			}
		})
	}
	kernels.MatMulTN(a.GB, dyb, h, m, out, a.R, true)
	dh := s.DH[:m*a.R]
	kernels.MatMulNN(dh, dyb, a.B, m, out, a.R, false)
	scaleInPlace(dh, a.Scale)
	kernels.MatMulTN(a.GA, dh, xd, m, a.R, in, true)
	if dx == nil {
		return
	}
	if !dropout {
		// x feeds both paths unchanged: for DoRA, d/dx of g⊙(W·x) is (dy⊙g)·W.
		l.W.MulNN(dx, dyb, m, accumulate)
		kernels.MatMulNN(dx, dh, a.A, m, a.R, in, true)
		return
	}
	// With dropout the base path sees x and the branch sees drop(x).
	l.W.MulNN(dx, dy, m, accumulate)
	tmp := s.TMP[:m*in]
	if a.DoRA {
		// (g − 1)⊙(W·drop(x)) term; dyb is consumed, so reuse its scratch.
		dg1 := s.DYG[:m*out]
		n := a.norm
		kernels.Parallel(m, 16, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				for o := 0; o < out; o++ {
					dg1[i*out+o] = dy[i*out+o] * (a.M[o]/n[o] - 1)
				}
			}
		})
		l.W.MulNN(tmp, dg1, m, false)
		kernels.MatMulNN(tmp, dh, a.A, m, a.R, in, true)
	} else {
		kernels.MatMulNN(tmp, dh, a.A, m, a.R, in, false)
	}
	DropoutBackward(dx, tmp, a.Dropout, key)
}
