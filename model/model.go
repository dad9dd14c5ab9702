// Package model is the Llama/Qwen2 decoder of the bidora engine with LoRA, rsLoRA and
// DoRA adapters: it builds the model from a HuggingFace directory (or random weights
// of a given shape), runs forward, loss and backward for token batches, and loads and
// saves adapters in PEFT format. *Model is what the training loop trains (it
// satisfies train.Model) and what eval and generate run.
//
// Memory (docs/architecture.md, "Memory"). Frozen weights are held as stored by
// default (Options.BaseDType: f32 stays f32, bf16 stays bf16, f16 becomes bf16), or in
// bf16 or f32 as asked (zero-copy views of the mapped file when the dtypes match); the
// seven projections of every layer can be held in NF4 or INT8 instead (Options.Quant,
// package quant), quantised while loading and used by fused dequantising GEMMs (QLoRA
// / QDoRA). Only adapter
// tensors have gradients. All activation buffers live in one workspace sized for the
// largest batch seen and are reused across layers and steps. With gradient
// checkpointing (the default) the forward keeps each layer's input; the backward
// recomputes a layer's activations right before its backward, except for the last
// layer and the layers just below it whose activations fit in the kept-activation
// budget (Options.KeptActivationsBudget, by default KeptActivationsBudget),
// which keep theirs. Peak memory ≈ weights + L layer inputs + the kept activations +
// one layer's activations + one logits chunk. Without checkpointing every layer keeps
// its activations and nothing is recomputed.
//
// The loss is the fused LM-head cross-entropy of package nn, chunked over tokens.
// Gradients are those of the loss SUM (see LossAndGrad).
package model

import (
	"context"
	"fmt"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/nn"
	"github.com/bidora/bidora/optim"
	"github.com/bidora/bidora/quant"
)

// Projection indices within a layer, in modelcfg.Projections order.
const (
	projQ = iota
	projK
	projV
	projO
	projGate
	projUp
	projDown
	numProj
)

// Options controls how a model is built and run.
type Options struct {
	// Name is how the user named the base model (a hub id or a path); saved adapters
	// record it as base_model_name_or_path.
	Name string
	// F32Weights keeps the frozen weights in f32 (twice the memory of bf16); it is
	// BaseDType f32 and conflicts with BaseDType bf16.
	F32Weights bool
	// BaseDType is how Load holds the frozen weights that are not quantised
	// (embeddings, LM head, and the projections without Quant): "" or BaseAuto as
	// stored (f32 stays f32, bf16 stays bf16, f16 becomes bf16), BaseBF16 or
	// BaseF32. New, which reads nothing, draws bf16 weights unless it is BaseF32.
	BaseDType BaseDType
	// NoCheckpointing keeps every layer's activations instead of recomputing them in
	// the backward (faster, much more memory).
	NoCheckpointing bool
	// KeptActivationsBudget bounds, in bytes, the activations a checkpointed step
	// keeps through the backward for the layers just below the last instead of
	// recomputing them: 0 means the default KeptActivationsBudget, a negative value
	// keeps none. Size it for the machine with internal/memplan's auto-adjust
	// (Plan.KeptBudget), which the memory estimate counts.
	KeptActivationsBudget int64
	// Seed drives adapter initialisation, adapter dropout and random base weights.
	Seed uint64
	// MaxLogitBytes bounds the logits chunk of the fused cross-entropy (default 128 MiB).
	MaxLogitBytes int
	// Quant holds the seven projection weights of every layer quantised: quant.KindNF4
	// (bitsandbytes NF4, QLoRA) or quant.KindInt8 (row-wise absmax); "" or
	// quant.KindNone keeps them in bf16 (or f32). Embeddings, the LM head, norms and
	// biases are never quantised. Weights are quantised while loading, one tensor at a
	// time. A checkpoint saved by bitsandbytes in 4-bit form is loaded as stored
	// (NF4, whatever Quant says; see Model.PreQuantized).
	Quant quant.Kind
	// NoDoubleQuant turns off NF4's double quantisation of the block scales, which is
	// on by default as in QLoRA (4.13 instead of 4.5 bits per weight).
	NoDoubleQuant bool
	// Compute is the precision of the frozen-weight products: see Compute. The zero
	// value is f32.
	Compute Compute
}

// Layer is one decoder block.
type Layer struct {
	InputNorm, PostNorm []float32 // RMSNorm weights [hidden]
	Proj                [numProj]*nn.Linear
}

// Model is a decoder with optional adapters. It is not safe for concurrent use.
type Model struct {
	Config *modelcfg.Config
	Embed  *nn.Weight // [vocab, hidden]
	LMHead *nn.Weight // [vocab, hidden]; == Embed when tied
	Norm   []float32  // final RMSNorm weight
	Layers []*Layer

	opts    Options
	rope    *nn.RoPE
	adapter *AdapterConfig
	params  []optim.Param
	closer  interface{ Close() error }
	ws      *workspace
	steps   uint64  // dropout stream: set by SetDropoutSeed, advanced by every training pass
	bnb     bool    // projections were loaded from a bitsandbytes 4-bit checkpoint
	compute Compute // resolved Options.Compute: ComputeBF16 or ComputeF32
}

func newModel(cfg *modelcfg.Config, opts Options) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rope, err := nn.NewRoPE(cfg.HeadDim, cfg.RopeTheta, cfg.RopeScaling)
	if err != nil {
		return nil, err
	}
	compute, err := opts.Compute.Resolve()
	if err != nil {
		return nil, err
	}
	return &Model{Config: cfg, opts: opts, rope: rope, compute: compute}, nil
}

// Close releases the memory-mapped weight files (the model is unusable afterwards).
func (m *Model) Close() error {
	if m.closer == nil {
		return nil
	}
	err := m.closer.Close()
	m.closer = nil
	return err
}

// Params lists the adapter parameters: per layer, per projection, A, B and (DoRA) the
// magnitude, named with their PEFT keys.
func (m *Model) Params() []optim.Param { return m.params }

// ZeroGrad zeroes every adapter gradient.
func (m *Model) ZeroGrad() {
	for _, p := range m.params {
		clear(p.Grad)
	}
}

// Loss runs the forward pass without dropout or gradients. It returns the SUM of the
// token cross-entropies (nats) and how many tokens contributed, so that callers can
// form token-weighted means over several batches.
func (m *Model) Loss(ctx context.Context, b *dataset.Batch) (lossSum float64, tokens int, err error) {
	return m.run(ctx, b, false)
}

// LossAndGrad runs forward and backward with adapter dropout and ADDS the gradient of
// the loss sum into every Param.Grad (they accumulate until cleared, which gives
// gradient accumulation over micro-batches for free).
func (m *Model) LossAndGrad(ctx context.Context, b *dataset.Batch) (lossSum float64, tokens int, err error) {
	if len(m.params) == 0 {
		return 0, 0, fmt.Errorf("model has no adapter: nothing to train")
	}
	return m.run(ctx, b, true)
}

// Logits returns the LM-head logits for every position, [B·T, vocab] (for tests and
// generation; training never materialises them).
func (m *Model) Logits(ctx context.Context, b *dataset.Batch) ([]float32, error) {
	if err := m.prepare(b); err != nil {
		return nil, err
	}
	ws := m.ws
	if err := m.forward(ctx, ws, false, false); err != nil {
		return nil, err
	}
	n := b.B * b.T
	out := make([]float32, n*m.Config.VocabSize)
	m.LMHead.MulNT(out, ws.xf[:n*m.Config.HiddenSize], n, false)
	return out, nil
}

// FLOPs estimates the floating-point operations of one LossAndGrad (or with train
// false, one Loss) on a batch of B rows of T tokens without padding, counting the
// matrix products actually run, including the recomputation of checkpointing.
func (m *Model) FLOPs(B, T int, train bool) float64 {
	c := m.Config
	n := float64(B * T)
	var fwd, bwd float64
	for _, ly := range m.Layers {
		for _, p := range ly.Proj {
			out, in := float64(p.W.Rows), float64(p.W.Cols)
			fwd += 2 * n * out * in
			bwd += 2 * n * out * in // dx
			if a := p.Adapter; a != nil {
				r := float64(a.R)
				fwd += 2 * n * r * (in + out)
				bwd += 4 * n * r * (in + out) // dA, dB and dh, dx through A
				if a.DoRA {
					fwd += 2 * out * in * r // row norms of W + s·B·A
				}
			}
		}
		// attention: scores and weighted values, causal (half), all query heads
		att := 2 * 2 * float64(B) * float64(T) * float64(T) / 2 * float64(c.NumAttentionHeads*c.HeadDim)
		fwd += att
		bwd += 2.5 * att // recompute S, dP, dV, dK, dQ: five products vs the forward's two
	}
	head := 2 * n * float64(c.VocabSize) * float64(c.HiddenSize)
	if !train {
		return fwd + head
	}
	total := fwd + bwd + 2*head
	if L := len(m.Layers); L > 0 {
		total += fwd * float64(m.RecomputedLayers(B, T)) / float64(L) // checkpointing's recomputation
	}
	return total
}

// SetDropoutSeed fixes the dropout stream of the next training pass (the trainer
// derives it from the step, so a resumed run draws the masks an uninterrupted one
// would).
func (m *Model) SetDropoutSeed(seed uint64) { m.steps = seed }
