package model

import (
	"math"
	"math/rand/v2"

	"github.com/bidora/bidora/kernels"
	"github.com/bidora/bidora/nn"
)

// OrthReg evaluates BiDoRA's orthogonality regulariser on the direction,
//
//	R = λ · mean_k ‖D_k D_kᵀ − I‖_F,   D_k = rownorm(W_k + s·B_k·A_k)  [out, in],
//
// over every adapted projection k, and ADDS ∂R/∂A and ∂R/∂B into the adapters' A and
// B gradients. It returns R.
//
// The exact Gram matrix costs O(out²·in) per projection. With 0 < rows < out, rows
// output rows S are drawn uniformly without replacement (seeded by seed, a separate
// stream per projection) and F² = ‖DDᵀ − I‖²_F = Σ_i ρ_i, ρ_i = Σ_j (d_i·d_j − δ_ij)²,
// is estimated by (out/|S|)·Σ_{i∈S} ρ_i. That estimate and its gradient are unbiased
// for F² and ∇F² (each row is in S with probability |S|/out); the norm and its
// gradient are then F̂ = √F̂² and ∇F̂²/(2F̂), which are consistent but carry a small
// bias of order Var(F̂²)/F² (exact, and the same code path, when rows ≤ 0 or rows ≥
// out). The cost is about 4·(|S| + r)·out·in flops per projection, which is what
// (|S|+r)/2 tokens cost in the forward and backward, and it needs no [out, out] or
// [out, in] buffer: the frozen weight is only touched through Weight.Row, MulNT and
// MulNN, so quantised weights work too.
func (m *Model) OrthReg(lambda float64, rows int, seed uint64) float64 {
	var lins []*nn.Linear
	for _, ly := range m.Layers {
		for _, p := range ly.Proj {
			if p.Adapter != nil {
				lins = append(lins, p)
			}
		}
	}
	if len(lins) == 0 || lambda == 0 {
		return 0
	}
	var total float64
	for k, lin := range lins {
		sel, c := sampleRows(lin.W.Rows, rows, seed, k)
		g := newOrthGrad(lin)
		f2 := g.accumulate(lin, sel, c)
		f := math.Sqrt(f2)
		total += f
		if f == 0 {
			continue
		}
		// ∇F̂ = ∇F̂²/(2F̂) = (c/F̂)·½∇Σ_S ρ_i, and g holds ½∇Σ_S ρ_i.
		g.addTo(lin.Adapter, lambda/float64(len(lins))*c/f)
	}
	return lambda * total / float64(len(lins))
}

// sampleRows returns the rows of projection k to use and the Horvitz–Thompson factor
// out/|S|.
func sampleRows(out, rows int, seed uint64, k int) ([]int, float64) {
	if rows <= 0 || rows >= out {
		sel := make([]int, out)
		for i := range sel {
			sel[i] = i
		}
		return sel, 1
	}
	rng := rand.New(rand.NewPCG(seed, 0xb1d0+uint64(k)))
	perm := make([]int, out)
	for i := range perm {
		perm[i] = i
	}
	for i := 0; i < rows; i++ { // partial Fisher–Yates
		j := i + rng.IntN(out-i)
		perm[i], perm[j] = perm[j], perm[i]
	}
	return perm[:rows], float64(out) / float64(rows)
}

// orthBlock is the number of sampled rows processed together.
const orthBlock = 64

// orthGrad accumulates, for one projection, G = ½·∇_{(A,B)} Σ_{i∈S} ρ_i.
type orthGrad struct {
	wt         *nn.Weight
	out, in, r int
	scale      float32
	n          []float32 // row norms of V = W + s·B·A
	dA, dB     []float32 // [r, in], [out, r]: ½ gradient without the 1/n projection's ψ term
	psi        []float64 // [out]: Σ over S rows of E∘C, column and row sums (ψ of the projection)
}

func newOrthGrad(lin *nn.Linear) *orthGrad {
	a := lin.Adapter
	out, in := lin.W.Rows, lin.W.Cols
	return &orthGrad{wt: lin.W.Exact(), out: out, in: in, r: a.R, scale: a.Scale,
		dA: make([]float32, a.R*in), dB: make([]float32, out*a.R), psi: make([]float64, out)}
}

// accumulate computes the row norms, then walks the sampled rows S in blocks: with
// D_S the sampled unit rows, C = D_S·Dᵀ [|S|, out] and E = C − I_S, it sums ρ = Σ E²,
// and accumulates (in units of ½∇) the terms of ∂/∂D = scatter_S(E·D) + Eᵀ·D_S
// pushed through D = diag(1/n)·V into A and B, except the part of the row-norm
// projection (I − d dᵀ), which needs ψ_o = d_o·(∂/∂d_o) over all blocks and is added
// by addTo. It returns c·Σ_{i∈S} ρ_i (the estimate of F²).
func (g *orthGrad) accumulate(lin *nn.Linear, sel []int, c float64) float64 {
	a, w := lin.Adapter, lin.W
	out, in, r := g.out, g.in, g.r
	s := g.scale
	g.n = make([]float32, out)
	nn.RowNormsWithDelta(g.n, w, a.A, a.B, a.R, a.Scale)
	blk := min(orthBlock, len(sel))
	ds := make([]float32, blk*in)  // D_S
	cs := make([]float32, blk*out) // C, then E
	es := make([]float32, blk*out) // E·diag(1/n)
	ed := make([]float32, blk*in)  // E·D
	p := make([]float32, blk*r)    // D_S·Aᵀ, then E·D·Aᵀ
	q := make([]float32, blk*r)    // E·diag(1/n)·B
	bsel := make([]float32, blk*r) // rows S of B, scaled by 1/n
	dbt := make([]float32, out*r)  // Eᵀ·(D_S·Aᵀ)
	var rho float64
	for lo := 0; lo < len(sel); lo += blk {
		rowsBlk := sel[lo:min(lo+blk, len(sel))]
		nb := len(rowsBlk)
		// D_S rows: (w_i + s·B_i·A)/n_i.
		kernels.Parallel(nb, 4, func(l, h int) {
			for bi := l; bi < h; bi++ {
				i := rowsBlk[bi]
				row := ds[bi*in : (bi+1)*in]
				w.Row(i, row)
				nn.AddRowDelta(row, i, a.A, a.B, r, s)
				kernels.Scale(1/g.n[i], row)
			}
		})
		// C = D_S·(W + s·B·A)ᵀ·diag(1/n).
		w.MulNT(cs[:nb*out], ds[:nb*in], nb, false)
		kernels.MatMulNT(p[:nb*r], ds[:nb*in], a.A, nb, r, in, false)
		kernels.Scale(s, p[:nb*r])
		kernels.MatMulNT(cs[:nb*out], p[:nb*r], a.B, nb, out, r, true)
		for bi := 0; bi < nb; bi++ {
			i := rowsBlk[bi]
			crow, erow := cs[bi*out:(bi+1)*out], es[bi*out:(bi+1)*out]
			var qi float64
			for j := range crow {
				cij := crow[j] / g.n[j]
				e := cij
				if j == i {
					e -= 1
				}
				rho += float64(e) * float64(e)
				// ψ_j gets E_ij·C_ij from the Eᵀ·D_S term (column sums), ψ_i from E·D (row sum).
				g.psi[j] += float64(e) * float64(cij)
				qi += float64(e) * float64(cij)
				crow[j] = e
				erow[j] = e / g.n[j]
			}
			g.psi[i] += qi
			for k := 0; k < r; k++ {
				bsel[bi*r+k] = a.B[i*r+k] / g.n[i]
			}
		}
		// dB (Eᵀ·D_S term): diag(1/n)·Eᵀ·(D_S·Aᵀ); p still holds s·D_S·Aᵀ.
		kernels.MatMulTN(dbt, cs[:nb*out], p[:nb*r], nb, out, r, lo > 0)
		// E·D = E·diag(1/n)·(W + s·B·A).
		w.MulNN(ed[:nb*in], es[:nb*out], nb, false)
		kernels.MatMulNN(q[:nb*r], es[:nb*out], a.B, nb, out, r, false)
		qs := make([]float32, nb*r)
		copy(qs, q[:nb*r])
		kernels.Scale(s, qs)
		kernels.MatMulNN(ed[:nb*in], qs, a.A, nb, r, in, true)
		// dB (E·D term), rows S: (1/n_i)·(E·D)_i·Aᵀ.
		kernels.MatMulNT(p[:nb*r], ed[:nb*in], a.A, nb, r, in, false)
		for bi, i := range rowsBlk {
			for k := 0; k < r; k++ {
				g.dB[i*r+k] += p[bi*r+k] / g.n[i]
			}
		}
		// dA: Bᵀ·diag(1/n)·scatter(E·D) + (E·diag(1/n)·B)ᵀ·D_S.
		kernels.MatMulTN(g.dA, bsel[:nb*r], ed[:nb*in], nb, r, in, true)
		kernels.MatMulTN(g.dA, q[:nb*r], ds[:nb*in], nb, r, in, true)
	}
	// dbt = Eᵀ·(s·D_S·Aᵀ) summed over blocks; it enters dB as diag(1/n)·Eᵀ·D_S·Aᵀ, and
	// the s of the chain rule is applied in addTo, so undo it here.
	for o := 0; o < out; o++ {
		for k := 0; k < r; k++ {
			g.dB[o*r+k] += dbt[o*r+k] / (s * g.n[o])
		}
	}
	return c * rho
}

// addTo finishes the gradient with the row-normalisation term −diag(ψ/n²)·V and adds
// coef·s·(Bᵀ·G_V, G_V·Aᵀ) into the adapter's GA and GB, where G_V is the ½∇ of Σρ
// with respect to V = W + s·B·A; with coef = λ/K·c/F̂ this is λ/K·∇F̂.
func (g *orthGrad) addTo(a *nn.Adapter, coef float64) {
	out, in, r, s := g.out, g.in, g.r, g.scale
	// ψ term: G_V −= diag(ψ/n²)·(W + s·B·A).
	bpsi := make([]float32, out*r) // diag(ψ/n²)·B
	for o := 0; o < out; o++ {
		f := float32(g.psi[o] / (float64(g.n[o]) * float64(g.n[o])))
		for k := 0; k < r; k++ {
			bpsi[o*r+k] = f * a.B[o*r+k]
		}
	}
	// dB −= diag(ψ/n²)·(W·Aᵀ + s·B·A·Aᵀ).
	awt := make([]float32, r*out) // A·Wᵀ = (W·Aᵀ)ᵀ
	g.wt.MulNT(awt, a.A, r, false)
	aat := make([]float32, r*r)
	kernels.MatMulNT(aat, a.A, a.A, r, r, in, false)
	for o := 0; o < out; o++ {
		f := float32(g.psi[o] / (float64(g.n[o]) * float64(g.n[o])))
		for k := 0; k < r; k++ {
			v := awt[k*out+o]
			for j := 0; j < r; j++ {
				v += s * a.B[o*r+j] * aat[j*r+k]
			}
			g.dB[o*r+k] -= f * v
		}
	}
	// dA −= Bψᵀ·W + s·(Bᵀ·Bψ)·A.
	bpsiT := make([]float32, r*out)
	for o := 0; o < out; o++ {
		for k := 0; k < r; k++ {
			bpsiT[k*out+o] = bpsi[o*r+k]
		}
	}
	tmp := make([]float32, r*in)
	g.wt.MulNN(tmp, bpsiT, r, false)
	btb := make([]float32, r*r)
	kernels.MatMulTN(btb, a.B, bpsi, out, r, r, false)
	kernels.Scale(s, btb)
	kernels.MatMulNN(tmp, btb, a.A, r, r, in, true)
	for i := range g.dA {
		g.dA[i] -= tmp[i]
	}
	// Chain rule through V = W + s·B·A: ∂/∂A = s·Bᵀ·G_V, ∂/∂B = s·G_V·Aᵀ. With
	// F̂² = c·Σρ, ∇F̂ = c·∇Σρ/(2F̂) = (c/F̂)·(½∇Σρ), the c/F̂ being in coef.
	f := float32(coef * float64(s))
	kernels.Axpy(f, g.dA, a.GA)
	kernels.Axpy(f, g.dB, a.GB)
}
