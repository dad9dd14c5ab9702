package memplan

import (
	"math"

	"github.com/bidora/bidora/modelcfg"
)

// overflowLimit is where the estimate stops being computed exactly: any run
// that large (an exbibyte) does not fit anywhere, and the int64 products of
// Compute could wrap around to small or negative numbers beyond it.
const overflowLimit = 1 << 60

// tooLarge reports whether Compute's products could leave int64 for this shape
// and these settings, from generous upper bounds taken in float64: an absurd
// config (2^62 layers) or absurd flags (--batch-size 2^40, --rank 2^50).
func tooLarge(cfg *modelcfg.Config, s Settings) bool {
	f := func(n int) float64 { return math.Abs(float64(n)) }
	L, V := f(cfg.NumHiddenLayers), f(cfg.VocabSize)
	nq := f(cfg.NumAttentionHeads) * f(cfg.HeadDim)
	nkv := f(cfg.NumKeyValueHeads) * f(cfg.HeadDim)
	dim := max(f(cfg.HiddenSize), f(cfg.IntermediateSize), nq, nkv, f(cfg.NumAttentionHeads))
	rank := f(s.Rank)
	tokens := max(f(s.BatchSize), 1) * max(f(s.SeqLen), 1)
	// Per token and layer: at most ~20 hidden-sized values, a rank and two
	// widths per projection; the bounds below overshoot every term of Compute.
	perLayer := 32*dim + 7*(rank+2*dim)
	bytes := 4*((L+3)*perLayer*tokens*2+ // activations, kept activations, scratch
		(rank+1)*2*dim*7*L*8+ // adapter, gradients, optimiser state
		(7*dim*dim+4*dim)*L+2*V*dim+ // weights, embeddings
		tokens*(V+2*dim)) + // logits chunk
		4*(max(f(s.Threads), 1)+1)*(tokens+BF16RowTile)*(V+dim+2) // bf16-compute scratch
	return !(bytes < overflowLimit)
}

// saturated is the estimate of a run too large to compute: every part that
// could be that large is math.MaxInt64, so it fits no budget.
func saturated() Estimate {
	return Estimate{Weights: math.MaxInt64, Embeddings: math.MaxInt64, Adapter: math.MaxInt64,
		AdapterParams: math.MaxInt64, Activations: math.MaxInt64, Overhead: RuntimeOverhead, Total: math.MaxInt64}
}
