package memplan

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/catalog"
	"github.com/bidora/bidora/modelcfg"
)

func find(t *testing.T, name string) *modelcfg.Config {
	t.Helper()
	e, ok := catalog.Find(name)
	if !ok {
		t.Fatalf("%s not in catalog", name)
	}
	return &e.Config
}

func TestWeightBytes(t *testing.T) {
	cases := []struct {
		out, in int
		q       Quant
		want    int64
	}{
		{896, 896, QuantNone, 802816 * 2},
		// 802816 B of int8 + 896 f32 row scales.
		{896, 896, QuantInt8, 802816 + 896*4},
		// 802816/2 = 401408 B of nibbles; 802816/64 = 12544 blocks with an 8-bit
		// absmax each; ceil(12544/256) = 49 f32 second-level scales = 196 B.
		{896, 896, QuantNF4, 401408 + 12544 + 196},
		// Odd sizes round up: 3 weights → 2 B, 1 block, 1 scale.
		{1, 3, QuantNF4, 2 + 1 + 4},
	}
	for _, c := range cases {
		if got := WeightBytes(c.out, c.in, c.q); got != c.want {
			t.Errorf("WeightBytes(%d, %d, %s) = %d, want %d", c.out, c.in, c.q, got, c.want)
		}
	}
}

// TestComputeQwen05 checks the estimate for Qwen2.5-0.5B against numbers worked
// out by hand: bf16 weights, LoRA r=8 on q,k,v,o, AdamW, batch 1 × 1024 tokens,
// gradient checkpointing.
//
// Shape: hidden h=896, intermediate I=4864, L=24 layers, vocab V=151936,
// 14 query heads and 2 kv heads of 64 → q width 896, kv width 128; tied embeddings.
//
//	projections per layer: q 896·896 = 802816, k = v = 128·896 = 114688, o = 802816,
//	  gate = up = down = 4864·896 = 4358144 → 14909440 per layer, ×24 = 357826560 weights,
//	  ×2 B = 715653120; q/k/v biases (896+128+128)·2 B·24 = 55296 → Weights 715708416
//	embeddings 151936·896·2 B = 272269312; norms (2·24+1)·896·2 B = 87808 → 272357120
//	adapter: r·(in+out) = 8·1792 + 8·1024 + 8·1024 + 8·1792 = 45056 per layer, ×24 =
//	  1081344 params × (4 param + 4 grad + 8 AdamW) B = 17301504
//	one layer per token: 3·896 + 2 + 2·896 + 2·128 + 14 + 3·4864 + 4·8 = 19376 f32
//	backward scratch per token: 3·896 + 2·896 + 2·128 + 3·4864 + 14 + 8 = 19350
//	activations per token: layer inputs 25·896 = 22400, final norm 896 + 1, one layer
//	  19376, scratch 19350 → 62023 f32 × 1024 tokens × 4 B = 254046208
//	kept layers: one layer is 19376·1024·4 = 79364096 B; 512 MiB / that = 6 (≤ 23)
//	  → 6 · 79364096 = 476184576
//	logits: 128 MiB / (4·151936) = 220 tokens; 220·151936·4 = 133703680 plus their
//	  hidden states and gradient 2·220·896·4 = 1576960 → 135280640
//	overhead 128 MiB = 134217728
//	total 2005096192 B ≈ 1.87 GiB
func TestComputeQwen05(t *testing.T) {
	cfg := find(t, "qwen2.5-0.5b")
	e := Compute(cfg, Settings{Quant: QuantNone, Method: "lora", Rank: 8, Optimizer: "adamw",
		BatchSize: 1, SeqLen: 1024, GradCheckpointing: true})
	want := Estimate{Weights: 715708416, Embeddings: 272357120, Adapter: 17301504, AdapterParams: 1081344,
		Activations: 254046208, KeptActivations: 476184576, Logits: 135280640, Overhead: 134217728,
		Total: 2005096192}
	if e != want {
		t.Errorf("Compute =\n %+v\nwant\n %+v", e, want)
	}
}

// TestConstants pins the constants that mirror the model's defaults, so that a
// change there is noticed here (model_test.go checks them against the model).
func TestConstants(t *testing.T) {
	if KeptActivationsBudget != 512<<20 {
		t.Errorf("KeptActivationsBudget = %d, want 512 MiB (model.KeptActivationsBudget)", KeptActivationsBudget)
	}
	if LogitBytes != 128<<20 {
		t.Errorf("LogitBytes = %d, want 128 MiB (the cross-entropy's default chunk)", LogitBytes)
	}
}

// TestKeptLayers checks the kept-layer count at Qwen2.5-0.5B's shape with LoRA
// r=8 on all-linear: one layer keeps 3·896 + 2 + 2·896 + 2·128 + 14 + 3·4864 + 7·8
// = 19400 f32 = 77600 B per token, so 512 MiB holds 6918 layer-tokens.
func TestKeptLayers(t *testing.T) {
	cfg := find(t, "qwen2.5-0.5b")
	cases := []struct {
		batch, seq int
		ckpt       bool
		want       int64
	}{
		{1, 256, true, 23}, // 27 fit, capped at L−1
		{1, 288, true, 23}, // 24 fit
		{1, 512, true, 13}, // 6918/512
		{1, 2048, true, 3}, // 6918/2048
		{4, 512, true, 3},  // tokens count, not rows
		{1, 8192, true, 0}, // one layer is over the budget
		{1, 512, false, 0}, // without checkpointing every layer is in Activations
		{1, 6918, true, 1}, // just fits
		{1, 6919, true, 0}, // just does not
	}
	for _, c := range cases {
		s := Settings{Quant: QuantNone, Method: "lora", Rank: 8, Targets: []string{"all-linear"},
			Optimizer: "adamw", BatchSize: c.batch, SeqLen: c.seq, GradCheckpointing: c.ckpt}
		if per := LayerActivationsPerToken(cfg, s); per != 19400 {
			t.Fatalf("LayerActivationsPerToken = %d, want 19400", per)
		}
		if got := KeptLayers(cfg, s); got != c.want {
			t.Errorf("%d×%d ckpt=%v: KeptLayers = %d, want %d", c.batch, c.seq, c.ckpt, got, c.want)
		}
		e := Compute(cfg, s)
		if want := c.want * 19400 * int64(c.batch*c.seq) * 4; e.KeptActivations != want {
			t.Errorf("%d×%d ckpt=%v: KeptActivations = %d, want %d", c.batch, c.seq, c.ckpt, e.KeptActivations, want)
		}
	}
}

func TestComputeScaling(t *testing.T) {
	cfg := find(t, "qwen2.5-coder-7b")
	base := Settings{Quant: QuantNone, Method: "lora", Rank: 8, Optimizer: "adamw", BatchSize: 4, SeqLen: 2048, GradCheckpointing: true}
	with := func(f func(*Settings)) Estimate { s := base; f(&s); return Compute(cfg, s) }
	ref := Compute(cfg, base)
	if e := with(func(s *Settings) { s.Quant = QuantInt8 }); !(e.Weights < ref.Weights*52/100 && e.Weights > ref.Weights*50/100) {
		t.Errorf("int8 weights %d, want just over half of bf16 %d", e.Weights, ref.Weights)
	}
	if e := with(func(s *Settings) { s.Quant = QuantNF4 }); !(e.Weights < ref.Weights*27/100 && e.Weights > ref.Weights*25/100) {
		t.Errorf("nf4 weights %d, want just over a quarter of bf16 %d", e.Weights, ref.Weights)
	}
	if e := with(func(s *Settings) { s.GradCheckpointing = false }); e.Activations < 5*ref.Activations {
		t.Errorf("without checkpointing activations %d, want far more than %d", e.Activations, ref.Activations)
	}
	if e := with(func(s *Settings) { s.Method = "dora" }); e.AdapterParams <= ref.AdapterParams {
		t.Error("DoRA should add magnitude parameters")
	}
	if e := with(func(s *Settings) { s.Targets = []string{"all-linear"} }); e.AdapterParams <= 2*ref.AdapterParams {
		t.Error("all-linear should more than double the adapter")
	}
	if e := with(func(s *Settings) { s.BatchSize = 8 }); e.Activations != 2*ref.Activations {
		t.Errorf("activations should scale with tokens: %d vs %d", e.Activations, ref.Activations)
	}
}

const gib = 1 << 30

func defaultRequest() Request {
	return Request{Settings: Settings{Quant: QuantAuto, Method: "lora", Rank: 8, Optimizer: "adamw",
		BatchSize: 4, SeqLen: 2048, GradCheckpointing: true}, GradAccum: 4}
}

func TestAutoAdjust(t *testing.T) {
	cases := []struct {
		name    string
		model   string
		req     func(*Request)
		m       Machine
		quant   Quant
		batch   int
		seqLess bool // max-seq-len had to shrink
		device  string
		reason  string // a substring one reason must contain
	}{
		{name: "8 GB laptop", model: "qwen2.5-coder-7b", m: Machine{RAMBytes: 8 * gib},
			quant: QuantNF4, batch: 1, seqLess: true, device: "cpu", reason: "max-seq-len 2048 →"},
		{name: "24 GB CPU box", model: "qwen2.5-coder-7b", m: Machine{RAMBytes: 22 * gib},
			quant: QuantInt8, batch: 4, device: "cpu", reason: "not bf16"},
		{name: "24 GB GPU without backend plans RAM", model: "qwen2.5-coder-7b",
			m:     Machine{RAMBytes: 64 * gib, GPUName: "RTX 4090", GPUMemoryBytes: 24 * gib},
			quant: QuantNone, batch: 4, device: "cpu", reason: "no GPU backend yet"},
		{name: "24 GB GPU", model: "qwen2.5-coder-7b",
			m:     Machine{RAMBytes: 64 * gib, GPUName: "RTX 4090", GPUMemoryBytes: 24 * gib, GPUBackend: true},
			quant: QuantInt8, batch: 4, device: "gpu", reason: "planning for GPU RTX 4090"},
		{name: "80 GB GPU", model: "qwen2.5-coder-7b",
			m:     Machine{RAMBytes: 64 * gib, GPUName: "A100", GPUMemoryBytes: 80 * gib, GPUBackend: true},
			quant: QuantNone, batch: 4, device: "gpu", reason: "quantization none"},
		{name: "small model on laptop stays bf16", model: "qwen2.5-0.5b", m: Machine{RAMBytes: 8 * gib},
			quant: QuantNone, batch: 4, device: "cpu"},
		{name: "14B on 24 GB halves the batch", model: "qwen2.5-coder-14b", m: Machine{RAMBytes: 22 * gib},
			quant: QuantNF4, batch: 2, device: "cpu", reason: "grad-accum 8"},
		{name: "requested quantization is kept", model: "qwen2.5-coder-7b", m: Machine{RAMBytes: 22 * gib},
			req: func(r *Request) { r.Quant = QuantNF4 }, quant: QuantNF4, batch: 4, device: "cpu", reason: "as requested"},
		{name: "fixed batch is kept", model: "qwen2.5-coder-7b", m: Machine{RAMBytes: 12 * gib},
			req:   func(r *Request) { r.Fixed.BatchSize = true },
			quant: QuantNF4, batch: 4, seqLess: true, device: "cpu"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := defaultRequest()
			if c.req != nil {
				c.req(&req)
			}
			p := AutoAdjust(find(t, c.model), req, c.m)
			if p.Quant != c.quant || p.BatchSize != c.batch || (p.SeqLen < 2048) != c.seqLess || p.Device != c.device {
				t.Errorf("got %s batch %d seq %d on %s, want %s batch %d seqLess=%v on %s\n%s",
					p.Quant, p.BatchSize, p.SeqLen, p.Device, c.quant, c.batch, c.seqLess, c.device, strings.Join(p.Reasons, "\n"))
			}
			if !req.Fixed.BatchSize && p.BatchSize*p.GradAccum != 16 {
				t.Errorf("effective batch %d×%d, want 16", p.BatchSize, p.GradAccum)
			}
			if !p.Fits || p.Estimate.Total > p.BudgetBytes {
				t.Errorf("plan does not fit: %s > %d", p.Estimate, p.BudgetBytes)
			}
			if c.reason != "" && !slices.ContainsFunc(p.Reasons, func(r string) bool { return strings.Contains(r, c.reason) }) {
				t.Errorf("no reason mentions %q:\n%s", c.reason, strings.Join(p.Reasons, "\n"))
			}
		})
	}
}

func TestAutoAdjustDoesNotFit(t *testing.T) {
	p := AutoAdjust(find(t, "qwen2.5-coder-32b"), defaultRequest(), Machine{RAMBytes: 8 * gib})
	if p.Fits || p.Quant != QuantNF4 || p.BatchSize != 1 || p.SeqLen != MinSeqLen {
		t.Fatalf("got fits=%v %s b%d s%d", p.Fits, p.Quant, p.BatchSize, p.SeqLen)
	}
	if last := p.Reasons[len(p.Reasons)-1]; !strings.HasPrefix(last, "does not fit") {
		t.Errorf("last reason %q", last)
	}
}

func TestAutoAdjustClampsToContext(t *testing.T) {
	req := defaultRequest()
	req.SeqLen = 32768
	p := AutoAdjust(find(t, "deepseek-coder-6.7b"), req, Machine{RAMBytes: 512 * gib})
	if p.SeqLen != 16384 {
		t.Errorf("SeqLen = %d, want the 16384 context", p.SeqLen)
	}
}

func ExampleAutoAdjust() {
	e, _ := catalog.Find("qwen2.5-coder-7b")
	p := AutoAdjust(&e.Config, Request{
		Settings:  Settings{Quant: QuantAuto, Method: "lora", Rank: 8, Optimizer: "adamw", BatchSize: 4, SeqLen: 2048, GradCheckpointing: true},
		GradAccum: 4,
	}, Machine{RAMBytes: 16 << 30})
	fmt.Println(p.Quant, p.BatchSize, p.GradAccum, p.SeqLen, p.Fits)
	// Output: nf4 2 8 2048 true
}

// TestMeasuredPeakRSS keeps the estimate within 15% of the peak RSS `bidora bench`
// measured for these runs (LoRA r=8 on all-linear, AdamW, one warm-up and one timed
// step; go run ./tools/memcheck, recorded in docs/benchmarks.md, "Memory estimate
// vs measured peak RSS"). If the model's memory changes, measure again and update
// both. The bf16-compute cases (threads set) are from "Memory estimate with bf16
// compute": bench --compute bf16 --threads N with enough steps for the scratch's
// steady state (40, 40, 25, 2 and 30).
func TestMeasuredPeakRSS(t *testing.T) {
	cases := []struct {
		preset      string
		quant       Quant
		method      string
		batch, seq  int
		noCkpt      bool
		measuredMiB float64
		bf16Threads int // bf16 compute with this many threads; 0: f32 compute
	}{
		{"qwen2.5-0.5b", QuantNone, "lora", 1, 256, false, 1668, 0},
		{"qwen2.5-0.5b", QuantNone, "lora", 1, 512, false, 1795, 0},
		{"qwen2.5-0.5b", QuantNone, "lora", 1, 1024, false, 1904, 0},
		{"qwen2.5-0.5b", QuantNone, "lora", 1, 2048, false, 2188, 0},
		{"qwen2.5-0.5b", QuantNone, "lora", 4, 512, false, 2188, 0},
		{"qwen2.5-0.5b", QuantNF4, "lora", 1, 512, false, 1310, 0},
		{"qwen2.5-0.5b", QuantNF4, "lora", 1, 2048, false, 1728, 0},
		{"qwen2.5-0.5b", QuantNone, "dora", 1, 512, false, 1851, 0},
		{"qwen2.5-0.5b", QuantNone, "lora", 1, 512, true, 2176, 0},
		{"llama-3.2-1b", QuantNone, "lora", 1, 512, false, 3358, 0},
		{"qwen2.5-1.5b", QuantNone, "lora", 1, 1024, false, 4187, 0},
		{"qwen2.5-3b", QuantNF4, "lora", 1, 512, false, 3267, 0},
		{"qwen2.5-0.5b", QuantNone, "lora", 1, 256, false, 1846, 2},
		{"qwen2.5-0.5b", QuantNone, "lora", 1, 512, false, 2003, 2},
		{"qwen2.5-0.5b", QuantNone, "lora", 1, 1024, false, 2215, 2},
		{"qwen2.5-0.5b", QuantNone, "lora", 1, 2048, false, 2425, 2},
		{"qwen2.5-0.5b", QuantNone, "lora", 1, 256, false, 2457, 8},
	}
	for _, c := range cases {
		s := Settings{Quant: c.quant, Method: c.method, Rank: 8,
			Targets: []string{"all-linear"}, Optimizer: "adamw", BatchSize: c.batch, SeqLen: c.seq,
			GradCheckpointing: !c.noCkpt, Threads: c.bf16Threads}
		if c.bf16Threads > 0 {
			s.BF16 = BF16Products{Head: true, Projections: true, Quantised: true}
		}
		e := Compute(find(t, c.preset), s)
		ratio := float64(e.Total) / (1 << 20) / c.measuredMiB
		if ratio < 0.85 || ratio > 1.15 {
			t.Errorf("%s %s %s %d×%d no-ckpt=%v bf16 threads %d: estimate %s is %.2f× the measured %.0f MiB",
				c.preset, c.quant, c.method, c.batch, c.seq, c.noCkpt, c.bf16Threads, FormatBytes(e.Total), ratio, c.measuredMiB)
		}
	}
}
