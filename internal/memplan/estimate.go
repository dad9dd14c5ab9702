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
// logits. With bf16 compute (Settings.BF16) the frozen-weight products' bf16
// copies of their activation operands are charged as the kernels' buffer pool
// keeps them in a long run (BF16ScratchBytes). The constants were checked against measured peak RSS of
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
	// BF16RowTile is the row tile of the bf16-compute GEMM on amd64 (12 rows): the
	// bf16 copy of a product's activation operand is padded to a multiple of it.
	BF16RowTile = 12
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
	// BF16 says which frozen-weight products run in bf16 compute (BF16ProductsFor
	// turns a --compute mode into it); the zero value is f32 compute everywhere.
	BF16 BF16Products
	// Threads is the number of kernel worker threads (kernels.Threads()); 0 counts
	// as 1. Only the bf16-compute scratch depends on it (BF16ScratchBytes).
	Threads int
}

// BF16Products says which frozen-weight products round their activation operand to
// bf16 (bf16 compute): the model marks each frozen weight for bf16 compute or not
// from its compute mode, and the estimate charges the scratch of those that are.
type BF16Products struct {
	// Head is the LM head: the logits X·Wᵀ and the hidden-state gradient dLogits·W.
	Head bool `json:"head"`
	// Projections are the per-layer projections held in the base dtype (QuantNone).
	Projections bool `json:"projections"`
	// Quantised are the projections held in NF4 or INT8.
	Quantised bool `json:"quantised"`
}

// Compute modes of the frozen-weight products (the CLI's --compute).
const (
	ComputeAuto = "auto"
	ComputeBF16 = "bf16"
	ComputeF32  = "f32"
)

// BF16ProductsFor gives the products that run in bf16 compute under a --compute
// mode, the way the model marks its weights: "bf16" all of them; "f32" and "" none;
// "auto" none when native is false (the CPU has no bf16 dot products:
// kernels.NativeBF16) and otherwise all of them, NF4/INT8 projections included
// (TestBF16ProductsMatchModel holds this to the model's rule).
func BF16ProductsFor(mode string, native bool) (BF16Products, error) {
	all := BF16Products{Head: true, Projections: true, Quantised: true}
	switch mode {
	case "", ComputeF32:
		return BF16Products{}, nil
	case ComputeBF16:
		return all, nil
	case ComputeAuto:
		if !native {
			return BF16Products{}, nil
		}
		return all, nil
	}
	return BF16Products{}, fmt.Errorf("compute %q: want auto, bf16 or f32", mode)
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
	// BF16Scratch is the bf16 copies of activation operands that bf16 compute
	// makes and the kernels' buffer pool keeps (BF16ScratchBytes); 0 with f32
	// compute.
	BF16Scratch int64 `json:"bf16_scratch"`
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
	chunk := logitChunk(cfg, tokens)
	e.Logits = chunk*V*BytesF32 + 2*chunk*h*BytesF32

	e.BF16Scratch = BF16ScratchBytes(cfg, s)

	e.Overhead = RuntimeOverhead
	e.Total = e.Weights + e.Embeddings + e.Adapter + e.Activations + e.KeptActivations + e.Logits + e.BF16Scratch + e.Overhead
	return e
}

// logitChunk is the cross-entropy's chunk of tokens for the step's tokens.
func logitChunk(cfg *modelcfg.Config, tokens int64) int64 {
	return min(tokens, max(LogitBytes/(BytesF32*int64(cfg.VocabSize)), 1))
}

// BF16CopyBytes is the bf16 copy of an m×k activation operand that a bf16-compute
// product makes: rows padded to BF16RowTile, k to even, 2 B each.
func BF16CopyBytes(m, k int64) int64 {
	return ceilDiv(m, BF16RowTile) * BF16RowTile * 2 * ceilDiv(k, 2) * BytesBF16
}

// BF16LargestCopy is the largest bf16 activation copy of any product that s runs
// in bf16 compute (0 with none):
//
//	LM head      forward: chunk × hidden; input gradient: chunk × vocab (dLogits),
//	             chunk the cross-entropy's chunk of tokens (LogitBytes / (4·vocab),
//	             220 tokens for a 152k vocabulary: 66 MiB)
//	projections  forward: tokens × in; input gradient: tokens × out, for every
//	             projection (not only the targeted ones): tokens × the widest
//	             in or out (the intermediate size, from down_proj and gate/up)
//
// tokens = batch × sequence. The projections count when they are held
// unquantised and BF16.Projections is set, or quantised and BF16.Quantised is.
func BF16LargestCopy(cfg *modelcfg.Config, s Settings) int64 {
	tokens := int64(max(s.BatchSize, 1)) * int64(max(s.SeqLen, 1))
	var largest int64
	if s.BF16.Head {
		chunk := logitChunk(cfg, tokens)
		largest = BF16CopyBytes(chunk, max(int64(cfg.VocabSize), int64(cfg.HiddenSize)))
	}
	quantised := s.Quant == QuantInt8 || s.Quant == QuantNF4
	if (quantised && s.BF16.Quantised) || (!quantised && s.BF16.Projections) {
		var wide int64
		for _, p := range modelcfg.Projections {
			out, in, ok := cfg.ProjShape(p)
			if ok {
				wide = max(wide, int64(out), int64(in))
			}
		}
		largest = max(largest, BF16CopyBytes(tokens, wide))
	}
	return largest
}

// BF16PooledCopies is how many copies of the largest bf16 activation copy a run
// holds at its peak, with t kernel threads: t + 1.
//
// Every bf16-compute product takes its activation copy from the kernels' scratch
// pool, which keeps buffers by size class (so per-worker pack buffers never hold a
// copy's memory), but as a sync.Pool it caches buffers per P: the goroutine running
// the LM head's products moves between the t Ps, and each may keep a copy of its
// own. Measured (docs/benchmarks.md, "bf16 compute round three"), Qwen2.5-0.5B at
// 256 tokens, whose largest copy is the LM head's 66 MiB, after 30 steps: 2.7 copies
// above f32 compute with 2 threads, 11 with 8 (GOMAXPROCS 8); 3.1–4.7 at 512–2048
// tokens with 2 threads.
func BF16PooledCopies(threads int) int64 {
	return int64(max(threads, 1)) + 1
}

// BF16ScratchBytes is the memory bf16 compute adds: BF16PooledCopies(s.Threads)
// × BF16LargestCopy. The per-worker pack panels (at most 192 pair steps × 256
// columns of 32-bit words, 192 KiB, and a 12×32 tile) are the f32 GEMM's size and
// are in RuntimeOverhead; 0 with f32 compute.
func BF16ScratchBytes(cfg *modelcfg.Config, s Settings) int64 {
	return BF16PooledCopies(s.Threads) * BF16LargestCopy(cfg, s)
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
	}
	if e.BF16Scratch > 0 {
		parts = append(parts, "bf16 compute scratch "+FormatBytes(e.BF16Scratch))
	}
	parts = append(parts, "overhead "+FormatBytes(e.Overhead))
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
