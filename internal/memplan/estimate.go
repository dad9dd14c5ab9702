// Package memplan estimates the memory a LoRA/DoRA/BiDoRA training run needs
// for a model shape, and picks quantisation, batch size, gradient accumulation
// and sequence length that fit the memory a machine has (auto-adjust).
//
// The estimate mirrors the buffers bidora's model allocates for a training
// step: frozen weights stay in their stored or quantised form, adapters and
// optimiser state are f32, activations are f32, attention is tiled (no T²
// buffer), gradient checkpointing keeps each layer's input plus the whole
// activations of as many layers as a fixed budget holds (the rest are
// recomputed), and the cross-entropy works on a bounded chunk of vocabulary
// logits. The constants were checked against measured peak RSS of
// `bidora bench` (go run ./tools/memcheck); TestMeasuredPeakRSS keeps the
// estimate within 15% of those measurements.
package memplan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bidora/bidora/modelcfg"
)

// Quant is how the frozen projection weights are held.
type Quant string

// Quantisation modes. QuantAuto lets AutoAdjust choose.
const (
	QuantNone Quant = "none" // as stored: Settings.BaseDType (bf16 or f32)
	QuantInt8 Quant = "int8" // row-wise absmax 8-bit
	QuantNF4  Quant = "nf4"  // bitsandbytes NF4, blocks of 64, double-quantised absmax
	QuantAuto Quant = "auto"
)

// Constants of the estimate, one place each.
const (
	// BytesBF16 is the size of a bf16 weight.
	BytesBF16 = 2
	// BytesF32 is the size of an f32 value (activations, adapters, optimiser state).
	BytesF32 = 4
	// NF4BlockSize is the number of weights sharing one absmax (bitsandbytes default).
	NF4BlockSize = 64
	// NF4DoubleQuantBlock is the number of 8-bit absmax values sharing one f32
	// scale under double quantisation (bitsandbytes uses 256).
	NF4DoubleQuantBlock = 256
	// LogitBytes bounds the chunk of vocabulary logits the fused cross-entropy
	// materialises at once: it mirrors the default of model.Options.MaxLogitBytes
	// (nn.NewCrossEntropy uses 128 MiB when it is 0), so the chunk holds
	// LogitBytes/(4·vocab) tokens, about 220 for a 152k vocabulary.
	LogitBytes = 128 << 20
	// KeptActivationsBudget mirrors model.KeptActivationsBudget, the default
	// budget: with gradient checkpointing the layers below the last keep their
	// whole activations through the backward, instead of having them recomputed,
	// while kept·perLayer ≤ the budget. It is memory a checkpointed step really
	// holds, up to 512 MiB. TestConstants pins the value and
	// TestConstantsMatchModel compares it with the model's. AutoAdjust replaces
	// it with a budget sized for the machine (KeptShare).
	KeptActivationsBudget = 512 << 20
	// KeptShare is the largest share of the memory budget auto-adjust gives to
	// kept activations, and only out of what the rest of the run leaves free:
	// keeping a layer only saves its recomputation, so it never costs batch or
	// sequence length. A quarter lets a 0.5B model at 512 tokens keep every
	// layer from about 5 GB of RAM, while a machine with little to spare keeps
	// none.
	KeptShare = 0.25
	// RuntimeOverhead covers what the buffers above do not: the Go runtime and
	// GC headroom, per-thread GEMM and attention tiles, quantisation scratch, the
	// tokenizer's tables, the dataset's token ids and bookkeeping. bench runs
	// measure 33–197 MiB above the counted buffers (tools/memcheck), more with
	// more tokens (about 40 MiB per 1024 tokens at Qwen2.5-0.5B's shape) and with
	// NF4; 128 MiB puts every measured run within 0.98–1.06× of its peak RSS.
	// It was 256 MiB while the estimate did not count the kept activations and
	// charged 2×1024 tokens of logits; with those right it made small runs ~10%
	// high.
	RuntimeOverhead = 128 << 20
)

// Base dtypes of the frozen weights that are not quantised (Settings.BaseDType):
// the embeddings, the LM head and the projections with QuantNone.
const (
	BaseBF16 = "bf16" // 2 B per weight; also what "" means
	BaseF32  = "f32"  // 4 B per weight: an f32 checkpoint as stored, or --base-dtype f32
)

// BaseBytes is the size of one weight held in base dtype d (BaseBF16 or BaseF32).
func BaseBytes(d string) int64 {
	if d == BaseF32 {
		return BytesF32
	}
	return BytesBF16
}

// WeightBytes is the memory of one out×in projection matrix held in mode q, with
// a bf16 base (ProjectionBytes for an f32 one).
//
//   - none: 2 B per weight (bf16).
//   - int8: 1 B per weight + one f32 absmax scale per output row.
//   - nf4: 0.5 B per weight + one absmax per 64-weight block; with double
//     quantisation that absmax is 8 bits, plus one f32 scale per 256 blocks.
func WeightBytes(out, in int, q Quant) int64 {
	n := int64(out) * int64(in)
	switch q {
	case QuantInt8:
		return n + int64(out)*BytesF32
	case QuantNF4:
		blocks := ceilDiv(n, NF4BlockSize)
		return ceilDiv(n, 2) + blocks + ceilDiv(blocks, NF4DoubleQuantBlock)*BytesF32
	default:
		return n * BytesBF16
	}
}

// ProjectionBytes is WeightBytes for a base held in base dtype d: with QuantNone
// the matrix takes BaseBytes(d) per weight; quantised, the base dtype does not matter.
func ProjectionBytes(out, in int, q Quant, d string) int64 {
	if q == QuantInt8 || q == QuantNF4 {
		return WeightBytes(out, in, q)
	}
	return int64(out) * int64(in) * BaseBytes(d)
}

// Settings are the training choices that change memory.
type Settings struct {
	Quant Quant
	// BaseDType is how the frozen weights that are not quantised are held:
	// BaseBF16 ("" too) or BaseF32.
	BaseDType string
	// Method is "lora", "dora" or "bidora".
	Method string
	Rank   int
	// Targets are projection names; "all-linear" means all seven.
	Targets []string
	// Optimizer is "adamw" (default) or "sgd".
	Optimizer         string
	BatchSize         int
	SeqLen            int
	GradCheckpointing bool
	// Dropout is the adapter dropout rate; above 0 every adapted projection keeps
	// its dropped-out input for the backward.
	Dropout float64
	// KeptBudget bounds the kept activations (see KeptLayers) in bytes: 0 means
	// KeptActivationsBudget, the library default; a negative value keeps none.
	// AutoAdjust sizes it from the memory left over (Plan.KeptBudget).
	KeptBudget int64
}

// keptBudget is the budget s asks for in bytes (0 for none).
func (s Settings) keptBudget() int64 {
	switch {
	case s.KeptBudget == 0:
		return KeptActivationsBudget
	case s.KeptBudget < 0:
		return 0
	}
	return s.KeptBudget
}

// Estimate is the memory breakdown in bytes.
type Estimate struct {
	// Weights is the frozen projections in their quantised form plus biases.
	Weights int64 `json:"weights"`
	// Embeddings is embed_tokens and lm_head (when untied), in Settings.BaseDType,
	// and the RMSNorm weights.
	Embeddings int64 `json:"embeddings"`
	// Adapter is adapter parameters, their gradients and the optimiser state.
	Adapter int64 `json:"adapter"`
	// AdapterParams is the number of trainable parameters.
	AdapterParams int64 `json:"adapter_params"`
	// Activations is what the forward pass keeps for the backward pass (with
	// checkpointing: the layer inputs and one layer's full activations) plus
	// the backward pass's working buffers.
	Activations int64 `json:"activations"`
	// KeptActivations is, with checkpointing, the full activations of the layers
	// below the last that the model keeps instead of recomputing them, within
	// Settings.KeptBudget; 0 without checkpointing (Activations has them all).
	KeptActivations int64 `json:"kept_activations"`
	// Logits is the cross-entropy's chunk of vocabulary logits and of hidden
	// states with their gradient.
	Logits int64 `json:"logits"`
	// Overhead is RuntimeOverhead.
	Overhead int64 `json:"overhead"`
	// Total is the sum of the above.
	Total int64 `json:"total"`
}

// ExpandTargets turns a target list into projection names ("all-linear" → all seven).
func ExpandTargets(targets []string) []string {
	if len(targets) == 0 {
		return []string{"q_proj", "k_proj", "v_proj", "o_proj"}
	}
	if slices.Contains(targets, "all-linear") {
		return slices.Clone(modelcfg.Projections)
	}
	return targets
}

// AdapterParams counts the trainable parameters: r·(in+out) per targeted
// projection and layer, plus the out-sized magnitude vector for DoRA/BiDoRA.
func AdapterParams(cfg *modelcfg.Config, s Settings) int64 {
	var per int64
	for _, p := range ExpandTargets(s.Targets) {
		out, in, ok := cfg.ProjShape(p)
		if !ok {
			continue
		}
		per += int64(s.Rank) * int64(in+out)
		if s.Method == "dora" || s.Method == "bidora" {
			per += int64(out)
		}
	}
	return per * int64(cfg.NumHiddenLayers)
}

// Compute estimates the memory of a training run. A shape or settings so large
// that the byte counts could overflow int64 give an estimate of math.MaxInt64
// (see tooLarge), which fits no budget.
func Compute(cfg *modelcfg.Config, s Settings) Estimate {
	if tooLarge(cfg, s) {
		return saturated()
	}
	var e Estimate
	h := int64(cfg.HiddenSize)
	L, V := int64(cfg.NumHiddenLayers), int64(cfg.VocabSize)
	nq := int64(cfg.NumAttentionHeads * cfg.HeadDim)
	nkv := int64(cfg.NumKeyValueHeads * cfg.HeadDim)

	// Frozen projections, quantised or in the base dtype; q/k/v biases (Qwen2) stay bf16.
	for _, p := range modelcfg.Projections {
		out, in, _ := cfg.ProjShape(p)
		e.Weights += ProjectionBytes(out, in, s.Quant, s.BaseDType) * L
	}
	if cfg.QKVBias() {
		e.Weights += (nq + 2*nkv) * BytesBF16 * L
	}
	// Embeddings, lm_head and norms are never quantised (as in bitsandbytes); the
	// embeddings and lm_head are held in the base dtype.
	e.Embeddings = V * h * BaseBytes(s.BaseDType)
	if !cfg.TieWordEmbeddings {
		e.Embeddings += V * h * BaseBytes(s.BaseDType)
	}
	e.Embeddings += (2*L + 1) * h * BytesBF16

	// Adapter: f32 parameters + f32 gradients + optimiser state
	// (AdamW: m and v, 2 f32; SGD: one momentum buffer). BiDoRA's hypergradient
	// keeps one more f32 copy of the parameters and of their gradients.
	e.AdapterParams = AdapterParams(cfg, s)
	perParam := int64(2 * BytesF32)
	if s.Optimizer == "sgd" {
		perParam += BytesF32
	} else {
		perParam += 2 * BytesF32
	}
	if s.Method == "bidora" {
		perParam += 2 * BytesF32
	}
	e.Adapter = e.AdapterParams * perParam

	// Activations, in f32 elements per token.
	tokens := int64(max(s.BatchSize, 1)) * int64(max(s.SeqLen, 1))
	e.Activations = ActivationsPerToken(cfg, s) * tokens * BytesF32
	e.KeptActivations = KeptLayers(cfg, s) * LayerActivationsPerToken(cfg, s) * tokens * BytesF32

	// Fused cross-entropy: a chunk of logits (LogitBytes) plus the chunk's hidden
	// states and their gradient.
	chunk := min(tokens, max(LogitBytes/(BytesF32*V), 1))
	e.Logits = chunk*V*BytesF32 + 2*chunk*h*BytesF32

	e.Overhead = RuntimeOverhead
	e.Total = e.Weights + e.Embeddings + e.Adapter + e.Activations + e.KeptActivations + e.Logits + e.Overhead
	return e
}

// targetDims sums, over the targeted projections, the adapter rank and the
// output and input widths, and takes the largest of each (the model sizes its
// shared backward scratch for the largest).
func targetDims(cfg *modelcfg.Config, s Settings) (sumOut, sumIn, maxOut, maxIn, n int64) {
	for _, p := range ExpandTargets(s.Targets) {
		out, in, ok := cfg.ProjShape(p)
		if !ok {
			continue
		}
		sumOut, sumIn, n = sumOut+int64(out), sumIn+int64(in), n+1
		maxOut, maxIn = max(maxOut, int64(out)), max(maxIn, int64(in))
	}
	return
}

func isDoRA(s Settings) bool { return s.Method == "dora" || s.Method == "bidora" }

// LayerActivationsPerToken is the number of f32 values one decoder layer keeps
// per token for its backward pass (the model's layerActs; the layer's input is
// counted with the saved layer inputs):
//
//	3·hidden        attention-norm output, residual after attention, MLP-norm output
//	2               the two RMSNorm reciprocal RMS values
//	2·q + 2·kv      q and attention output (q-sized), k and v after RoPE
//	heads           one log-sum-exp per head (tiled attention keeps no T×T matrix)
//	3·intermediate  gate, up and silu(gate)·up
//	r per target    the adapter's x·Aᵀ
//	out per target  DoRA/BiDoRA only: the adapted output before the magnitude scale
//	in per target   with dropout only: the dropped-out input
func LayerActivationsPerToken(cfg *modelcfg.Config, s Settings) int64 {
	h, inter := int64(cfg.HiddenSize), int64(cfg.IntermediateSize)
	nq := int64(cfg.NumAttentionHeads * cfg.HeadDim)
	nkv := int64(cfg.NumKeyValueHeads * cfg.HeadDim)
	sumOut, sumIn, _, _, n := targetDims(cfg, s)
	v := 3*h + 2 + 2*nq + 2*nkv + int64(cfg.NumAttentionHeads) + 3*inter + n*int64(s.Rank)
	if isDoRA(s) {
		v += sumOut
	}
	if s.Dropout > 0 {
		v += sumIn
	}
	return v
}

// BackwardScratchPerToken is the f32 working space per token of one layer's
// backward pass: the gradients of the residual stream, of a norm output and of
// the final norm output (3·hidden), of q, the attention output, k and v
// (2·q + 2·kv), of gate, up and their product (3·intermediate), one softmax
// statistic per head, and the adapters' shared scratch (the rank, plus the
// widest output for DoRA and the widest input with dropout).
func BackwardScratchPerToken(cfg *modelcfg.Config, s Settings) int64 {
	h, inter := int64(cfg.HiddenSize), int64(cfg.IntermediateSize)
	nq := int64(cfg.NumAttentionHeads * cfg.HeadDim)
	nkv := int64(cfg.NumKeyValueHeads * cfg.HeadDim)
	_, _, maxOut, maxIn, n := targetDims(cfg, s)
	v := 3*h + 2*nq + 2*nkv + 3*inter + int64(cfg.NumAttentionHeads)
	if n > 0 {
		v += int64(s.Rank)
	}
	if isDoRA(s) {
		v += maxOut
	}
	if s.Dropout > 0 {
		v += maxIn
	}
	return v
}

// ActivationsPerToken is the f32 values per token the run holds at its peak,
// apart from the kept layers (KeptLayers): every layer's input and the last
// layer's output ((L+1)·hidden), the final norm output and its reciprocal RMS
// (hidden+1), the backward scratch, and the full activations of one layer with
// checkpointing (the buffer the recomputed layers share) or of every layer
// without.
func ActivationsPerToken(cfg *modelcfg.Config, s Settings) int64 {
	h, L := int64(cfg.HiddenSize), int64(cfg.NumHiddenLayers)
	layers := L
	if s.GradCheckpointing {
		layers = 1
	}
	return (L+1)*h + h + 1 + layers*LayerActivationsPerToken(cfg, s) + BackwardScratchPerToken(cfg, s)
}

// KeptLayers is how many layers below the last keep their full activations
// through a checkpointed backward: min(L−1, budget/perLayer), budget s.KeptBudget
// with perLayer one layer's activation bytes for the step's tokens, the same
// rule as the model's keptLayers. 0 without checkpointing.
func KeptLayers(cfg *modelcfg.Config, s Settings) int64 {
	L := int64(cfg.NumHiddenLayers)
	tokens := int64(max(s.BatchSize, 1)) * int64(max(s.SeqLen, 1))
	per := LayerActivationsPerToken(cfg, s) * tokens * BytesF32
	if !s.GradCheckpointing || L < 2 || per <= 0 {
		return 0
	}
	return min(L-1, s.keptBudget()/per)
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// String renders the estimate on one line.
func (e Estimate) String() string {
	parts := []string{
		"weights " + FormatBytes(e.Weights),
		"embeddings " + FormatBytes(e.Embeddings),
		"adapter+optimizer " + FormatBytes(e.Adapter),
		"activations " + FormatBytes(e.Activations),
		"kept activations " + FormatBytes(e.KeptActivations),
		"logits " + FormatBytes(e.Logits),
		"overhead " + FormatBytes(e.Overhead),
	}
	return fmt.Sprintf("%s (%s)", FormatBytes(e.Total), strings.Join(parts, ", "))
}

// FormatBytes prints a byte count in GiB/MiB/KiB with one decimal ("15.2 GiB").
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
