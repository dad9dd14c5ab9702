package memplan

import (
	"fmt"

	"github.com/bidora/bidora/modelcfg"
)

const (
	// BudgetFraction is the share of the memory a run may plan to use; the rest
	// is left to the OS, page cache and estimate error.
	BudgetFraction = 0.8
	// WeightShareLimit is the largest share of the budget the frozen weights may
	// take when auto-adjust picks the quantisation: the rest is for activations,
	// a useful batch and sequence length. With the default 7B model it reproduces
	// the original tool's rule of thumb (bf16 from ~40 GB, int8 from ~20 GB, NF4
	// below) while deciding from the model's actual size.
	WeightShareLimit = 0.5
	// MinSeqLen is the shortest sequence length auto-adjust will shrink to.
	MinSeqLen = 256
)

// Machine is the memory auto-adjust can plan for.
type Machine struct {
	// RAMBytes is the RAM available to this process (cgroup limit applied).
	RAMBytes int64
	// GPUName and GPUMemoryBytes describe the first GPU; zero when there is none.
	GPUName        string
	GPUMemoryBytes int64
	// GPUBackend says whether bidora can train on that GPU (no backend exists yet).
	GPUBackend bool
}

// Fixed marks choices the user made explicitly; auto-adjust leaves them alone.
type Fixed struct {
	BatchSize, GradAccum, SeqLen bool
}

// Request is what the user asked for. Settings.Quant may be QuantAuto.
type Request struct {
	Settings
	GradAccum int
	Fixed     Fixed
	// BaseDTypeAuto says Settings.BaseDType was resolved from the checkpoint (not
	// asked for): with quantization auto, an f32 base that does not fit may be held
	// in bf16 before quantising (Plan.BaseDType says which).
	BaseDTypeAuto bool
}

// Plan is auto-adjust's answer.
type Plan struct {
	// Device is "cpu" or "gpu": where the memory planned for lives.
	Device      string `json:"device"`
	MemoryBytes int64  `json:"memory_bytes"`
	BudgetBytes int64  `json:"budget_bytes"`
	Quant       Quant  `json:"quantization"`
	BaseDType   string `json:"base_dtype,omitempty"` // how unquantised frozen weights are held
	BatchSize   int    `json:"batch_size"`
	GradAccum   int    `json:"grad_accum"`
	SeqLen      int    `json:"max_seq_len"`
	// KeptBudget is the kept-activation budget chosen for the machine, in bytes
	// (Settings.KeptBudget: negative when none are kept); pass it to the model
	// (model.Options.KeptActivationsBudget).
	KeptBudget int64    `json:"kept_activations_budget"`
	Estimate   Estimate `json:"estimate"`
	// Fits reports whether Estimate.Total is within BudgetBytes.
	Fits bool `json:"fits"`
	// Reasons explain each choice, in order, for people.
	Reasons []string `json:"reasons"`
}

// AutoAdjust picks quantisation (when req.Quant is QuantAuto), batch size,
// gradient accumulation (keeping batch×accum where it can) and sequence length
// so that the estimate fits BudgetFraction of the machine's memory.
func AutoAdjust(cfg *modelcfg.Config, req Request, m Machine) Plan {
	p := Plan{Device: "cpu", MemoryBytes: m.RAMBytes, BatchSize: max(req.BatchSize, 1),
		GradAccum: max(req.GradAccum, 1), SeqLen: max(req.SeqLen, 1)}
	switch {
	case m.GPUMemoryBytes > 0 && m.GPUBackend:
		p.Device, p.MemoryBytes = "gpu", m.GPUMemoryBytes
		p.reason("planning for GPU %s with %s of memory", m.GPUName, FormatBytes(m.GPUMemoryBytes))
	case m.GPUMemoryBytes > 0:
		p.reason("GPU %s (%s) found, but bidora has no GPU backend yet: planning for CPU RAM",
			m.GPUName, FormatBytes(m.GPUMemoryBytes))
	}
	p.BudgetBytes = int64(float64(p.MemoryBytes) * BudgetFraction)
	if p.Device == "cpu" {
		p.reason("budget %s = %.0f%% of %s available RAM", FormatBytes(p.BudgetBytes), BudgetFraction*100, FormatBytes(p.MemoryBytes))
	} else {
		p.reason("budget %s = %.0f%% of GPU memory", FormatBytes(p.BudgetBytes), BudgetFraction*100)
	}

	if maxPos := cfg.MaxPositionEmbeddings; maxPos > 0 && p.SeqLen > maxPos {
		if req.Fixed.SeqLen {
			p.reason("warning: max-seq-len %d is longer than the model's context of %d", p.SeqLen, maxPos)
		} else {
			p.reason("max-seq-len %d → %d, the model's context length", p.SeqLen, maxPos)
			p.SeqLen = maxPos
		}
	}

	s := req.Settings
	s.SeqLen, s.BatchSize = p.SeqLen, p.BatchSize
	s.KeptBudget = -1 // sized last, from what the rest leaves
	p.Quant, p.BaseDType = p.pickQuant(cfg, s, req.BaseDTypeAuto)
	s.Quant, s.BaseDType = p.Quant, p.BaseDType

	effective := p.BatchSize * p.GradAccum
	fits := func(s Settings) bool { return Compute(cfg, s).Total <= p.BudgetBytes }
	if !fits(s) && !req.Fixed.BatchSize && s.BatchSize > 1 {
		first := Compute(cfg, s).Total
		for b := s.BatchSize - 1; b >= 1; b-- {
			if !req.Fixed.GradAccum && effective%b != 0 {
				continue
			}
			s.BatchSize = b
			if fits(s) {
				break
			}
		}
		if !req.Fixed.GradAccum {
			p.GradAccum = effective / s.BatchSize
		}
		p.reason("batch %d needs %s > budget: batch %d × grad-accum %d (effective batch %d)",
			p.BatchSize, FormatBytes(first), s.BatchSize, p.GradAccum, s.BatchSize*p.GradAccum)
		p.BatchSize = s.BatchSize
	}
	if !fits(s) && !req.Fixed.SeqLen {
		from := s.SeqLen
		for s.SeqLen > MinSeqLen && !fits(s) {
			s.SeqLen = max(s.SeqLen/2, MinSeqLen)
		}
		p.reason("max-seq-len %d → %d so that batch %d fits", from, s.SeqLen, s.BatchSize)
		p.SeqLen = s.SeqLen
	}
	s.KeptBudget = KeptBudgetFor(cfg, s, p.BudgetBytes)
	p.KeptBudget = s.KeptBudget
	p.Estimate = Compute(cfg, s)
	if s.GradCheckpointing {
		if k := KeptLayers(cfg, s); k > 0 {
			p.reason("kept activations: budget %s (up to %.0f%% of the budget, from what the run leaves free): %d of %d layers keep theirs through the backward",
				FormatBytes(s.KeptBudget), KeptShare*100, k, cfg.NumHiddenLayers)
		} else {
			p.reason("kept activations: none (no memory to spare for a layer's): every layer is recomputed in the backward")
		}
	}
	p.Fits = p.Estimate.Total <= p.BudgetBytes
	if p.Fits {
		p.reason("estimate %s fits the %s budget", FormatBytes(p.Estimate.Total), FormatBytes(p.BudgetBytes))
	} else {
		p.reason("does not fit: estimate %s exceeds the %s budget even at quantization %s, batch %d, max-seq-len %d; use a smaller model, a lower --rank or --max-seq-len, or more memory",
			FormatBytes(p.Estimate.Total), FormatBytes(p.BudgetBytes), p.Quant, s.BatchSize, s.SeqLen)
	}
	return p
}

// KeptBudgetFor sizes the kept-activation budget for a run with settings s
// (s.KeptBudget ignored) within budget bytes: what the run leaves free, at most
// KeptShare of budget, and negative (none) when that is not a positive amount.
func KeptBudgetFor(cfg *modelcfg.Config, s Settings, budget int64) int64 {
	s.KeptBudget = -1
	free := min(budget-Compute(cfg, s).Total, int64(float64(budget)*KeptShare))
	if free <= 0 {
		return -1
	}
	return free
}

// pickQuant returns s.Quant when the user chose one, and otherwise the most
// precise mode whose frozen weights take at most WeightShareLimit of the budget
// and whose run fits at batch 1 (falling back to NF4).
func (p *Plan) pickQuant(cfg *modelcfg.Config, s Settings, baseAuto bool) (Quant, string) {
	if s.Quant != QuantAuto && s.Quant != "" {
		e := Compute(cfg, s)
		p.reason("quantization %s (as requested): frozen weights %s = %.0f%% of the budget",
			s.Quant, FormatBytes(e.Weights+e.Embeddings), share(e.Weights+e.Embeddings, p.BudgetBytes))
		return s.Quant, s.BaseDType
	}
	type candidate struct {
		q    Quant
		base string
	}
	candidates := []candidate{{QuantNone, s.BaseDType}}
	if baseAuto && s.BaseDType == BaseF32 {
		// An f32 checkpoint held in bf16 loses less than quantising it.
		candidates = append(candidates, candidate{QuantNone, BaseBF16})
	}
	candidates = append(candidates, candidate{QuantInt8, s.BaseDType}, candidate{QuantNF4, s.BaseDType})
	for _, c := range candidates {
		t := s
		t.Quant, t.BaseDType, t.BatchSize = c.q, c.base, 1
		t.SeqLen = min(t.SeqLen, 512)
		e := Compute(cfg, t)
		w := e.Weights + e.Embeddings
		sh := share(w, p.BudgetBytes)
		name := string(c.q)
		if c.q == QuantNone {
			name = baseName(c.base)
		}
		if sh <= WeightShareLimit*100 && e.Total <= p.BudgetBytes {
			p.reason("quantization %s: frozen weights %s = %.0f%% of the budget (limit %.0f%%)", describe(c.q, c.base), FormatBytes(w), sh, WeightShareLimit*100)
			return c.q, c.base
		}
		if c.q != QuantNF4 {
			p.reason("not %s: frozen weights %s would take %.0f%% of the budget (limit %.0f%%)", name, FormatBytes(w), sh, WeightShareLimit*100)
		} else {
			p.reason("quantization nf4, the smallest: frozen weights %s = %.0f%% of the budget", FormatBytes(w), sh)
		}
	}
	return QuantNF4, s.BaseDType
}

func describe(q Quant, base string) string {
	if q == QuantNone {
		return "none (" + baseName(base) + " weights)"
	}
	return string(q)
}

func baseName(base string) string {
	if base == BaseF32 {
		return BaseF32
	}
	return BaseBF16
}

func share(n, budget int64) float64 {
	if budget <= 0 {
		return 1e9
	}
	return float64(n) / float64(budget) * 100
}

func (p *Plan) reason(format string, args ...any) {
	p.Reasons = append(p.Reasons, fmt.Sprintf(format, args...))
}
