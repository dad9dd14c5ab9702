package nn

import (
	"math"

	"github.com/bidora/bidora/kernels"
)

// CrossEntropy is the LM head (logits = h·Headᵀ) fused with softmax cross-entropy and
// its backward, computed over chunks of rows so that at most ChunkRows×vocab logits
// exist at once (never a full [T, vocab] matrix). Only rows with a target are
// computed. It owns its scratch; one CrossEntropy is not safe for concurrent use.
type CrossEntropy struct {
	Head      *Weight // [vocab, d]
	ChunkRows int

	rows   []int
	x, dx  []float32 // [ChunkRows, d]
	logits []float32 // [ChunkRows, vocab]
}

// NewCrossEntropy sizes the chunk so that its logits take about maxLogitBytes
// (at least one row; 128 MiB when maxLogitBytes ≤ 0: about 220 rows of a 152k
// vocabulary, enough that packing the LM head weight per chunk costs little next to
// the products).
func NewCrossEntropy(head *Weight, maxLogitBytes int) *CrossEntropy {
	if maxLogitBytes <= 0 {
		maxLogitBytes = 128 << 20
	}
	c := max(1, maxLogitBytes/(4*head.Rows))
	return &CrossEntropy{Head: head, ChunkRows: c}
}

// LossAndGrad returns the sum of −log softmax(h_t·Headᵀ)[targets[t]] over the n rows
// of h [n, d] that have a target (targets < 0, such as HF's −100, mark rows without
// one), and how many such rows there are. When
// dh is non-nil it is overwritten with gradScale·∂loss/∂h (zero on ignored rows).
func (c *CrossEntropy) LossAndGrad(h []float32, targets []int32, n int, dh []float32, gradScale float32) (float64, int) {
	V, d := c.Head.Rows, c.Head.Cols
	c.rows = c.rows[:0]
	for t := 0; t < n; t++ {
		if targets[t] >= 0 {
			c.rows = append(c.rows, t)
		}
	}
	if dh != nil {
		clear(dh[:n*d])
	}
	chunk := min(c.ChunkRows, max(1, len(c.rows)))
	if len(c.x) < chunk*d {
		c.x = make([]float32, chunk*d)
		c.dx = make([]float32, chunk*d)
		c.logits = make([]float32, chunk*V)
	}
	losses := make([]float64, chunk)
	var total float64
	for r0 := 0; r0 < len(c.rows); r0 += chunk {
		rows := c.rows[r0:min(r0+chunk, len(c.rows))]
		m := len(rows)
		for i, t := range rows {
			copy(c.x[i*d:(i+1)*d], h[t*d:(t+1)*d])
		}
		c.Head.MulNT(c.logits, c.x, m, false)
		kernels.Parallel(m, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				l := c.logits[i*V : (i+1)*V]
				tg := int(targets[rows[i]])
				target := l[tg]
				mx := kernels.Max(l)
				// One vectorised exp per logit, kept in place: e = exp(l − max), then
				// normalised into the gradient. Without dh the exps are thrown away.
				s := kernels.ExpShiftSum(l, mx)
				losses[i] = float64(mx) + math.Log(s) - float64(target)
				if dh == nil {
					continue
				}
				kernels.Scale(gradScale/float32(s), l)
				l[tg] -= gradScale
			}
		})
		for _, v := range losses[:m] {
			total += v
		}
		if dh != nil {
			c.Head.MulNN(c.dx, c.logits, m, false)
			for i, t := range rows {
				copy(dh[t*d:(t+1)*d], c.dx[i*d:(i+1)*d])
			}
		}
	}
	return total, len(c.rows)
}
