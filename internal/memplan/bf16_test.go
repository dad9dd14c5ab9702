package memplan

import (
	"strings"
	"testing"
)

// TestBF16Scratch checks the bf16-compute term against sizes worked out by hand for
// Qwen2.5-0.5B (hidden 896, intermediate 4864, vocab 151936: a logits chunk of
// 128 MiB / (4·151936) = 220 tokens), and that f32 compute adds nothing.
//
//	LM head copy: ⌈220/12⌉·12 = 228 rows × 151936 × 2 B = 69282816
//	projection copy at T tokens: ⌈T/12⌉·12 × 4864 × 2 B (T = 256: 264 rows,
//	  2568192; T = 8192: 8196 rows, 79730688, larger than the head's)
//	pooled copies: threads + 1, 3 with 2 threads, 2 with 1 (and with 0), 9 with 8
func TestBF16Scratch(t *testing.T) {
	cfg := find(t, "qwen2.5-0.5b")
	all := BF16Products{Head: true, Projections: true, Quantised: true}
	auto := BF16Products{Head: true, Projections: true} // what auto gave before NF4/INT8 ran bf16
	cases := []struct {
		name    string
		bf16    BF16Products
		quant   Quant
		seq     int
		threads int
		want    int64
	}{
		{"f32 compute", BF16Products{}, QuantNone, 2048, 2, 0},
		{"f32 compute nf4", BF16Products{}, QuantNF4, 8192, 2, 0},
		{"head only, short", BF16Products{Head: true}, QuantNone, 256, 2, 3 * 69282816},
		{"all, 256 tokens: the head's copy is the largest", all, QuantNone, 256, 2, 3 * 69282816},
		{"all, 1 thread", all, QuantNone, 256, 1, 2 * 69282816},
		{"threads 0 counts as 1", all, QuantNone, 256, 0, 2 * 69282816},
		{"all, 8 threads", all, QuantNone, 256, 8, 9 * 69282816},
		// 12 tokens: the chunk is the 12 tokens, 12 × 151936 × 2 B.
		{"all, 12 tokens: the chunk shrinks with the tokens", all, QuantNone, 12, 2, 3 * 12 * 151936 * 2},
		{"all, 8192 tokens: down_proj's copy is the largest", all, QuantNone, 8192, 2, 3 * 79730688},
		{"projections only, 256 tokens", BF16Products{Projections: true}, QuantNone, 256, 2, 3 * 2568192},
		{"head and unquantised projections: nf4 ones on f32", auto, QuantNF4, 8192, 2, 3 * 69282816},
		{"bf16 runs nf4 projections in bf16", all, QuantNF4, 8192, 2, 3 * 79730688},
		{"quantised only, unquantised base", BF16Products{Quantised: true}, QuantNone, 8192, 2, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Settings{Quant: c.quant, Method: "lora", Rank: 8, Targets: []string{"all-linear"}, Optimizer: "adamw",
				BatchSize: 1, SeqLen: c.seq, GradCheckpointing: true, BF16: c.bf16, Threads: c.threads}
			if got := BF16ScratchBytes(cfg, s); got != c.want {
				t.Errorf("BF16ScratchBytes = %d, want %d", got, c.want)
			}
			e := Compute(cfg, s)
			f := s
			f.BF16 = BF16Products{}
			e32 := Compute(cfg, f)
			if e.BF16Scratch != c.want || e.Total != e32.Total+c.want {
				t.Errorf("estimate %s: bf16 scratch %d, total %d; f32-compute total %d + %d expected",
					e, e.BF16Scratch, e.Total, e32.Total, c.want)
			}
			if e32.BF16Scratch != 0 {
				t.Errorf("f32 compute charges a bf16 scratch of %d", e32.BF16Scratch)
			}
		})
	}
}

// The scratch grows with the tokens per step and, through the logits chunk, with
// the vocabulary; it never shrinks as either grows.
func TestBF16ScratchGrows(t *testing.T) {
	cfg := *find(t, "qwen2.5-0.5b")
	s := Settings{Quant: QuantNone, Method: "lora", Rank: 8, Optimizer: "adamw", BatchSize: 1,
		GradCheckpointing: true, BF16: BF16Products{Head: true, Projections: true}, Threads: 2}
	var prev int64
	for _, T := range []int{1, 16, 100, 220, 256, 1024, 4096, 8192, 16384} {
		s.SeqLen = T
		got := BF16ScratchBytes(&cfg, s)
		if got < prev {
			t.Errorf("seq %d: scratch %d < %d at a shorter sequence", T, got, prev)
		}
		prev = got
	}
	if a, b := BF16ScratchBytes(&cfg, Settings{BF16: s.BF16, SeqLen: 16384, BatchSize: 1}),
		BF16ScratchBytes(&cfg, Settings{BF16: s.BF16, SeqLen: 4096, BatchSize: 4}); a != b {
		t.Errorf("batch 1×16384 scratch %d, batch 4×4096 %d: the same tokens per step", a, b)
	}
	s.SeqLen = 256
	small := BF16ScratchBytes(&cfg, s)
	cfg.VocabSize *= 2 // a chunk of half the tokens, each twice as wide
	if big := BF16ScratchBytes(&cfg, s); big != small {
		// ⌈110/12⌉·12 = 120 rows × 303872 > 228 rows × 151936
		if want := int64(3 * 120 * 303872 * 2); big != want {
			t.Errorf("vocab ×2: scratch %d, want %d", big, want)
		}
	}
	cfg.VocabSize = 32000 // a 1049-token chunk: the 256 tokens are one chunk
	if got, want := BF16ScratchBytes(&cfg, s), int64(3*(264*32000*2)); got != want {
		t.Errorf("vocab 32000: scratch %d, want %d", got, want)
	}
}

func TestBF16ProductsFor(t *testing.T) {
	all := BF16Products{Head: true, Projections: true, Quantised: true}
	cases := []struct {
		mode   string
		native bool
		want   BF16Products
	}{
		{"", true, BF16Products{}},
		{"f32", true, BF16Products{}},
		{"bf16", false, all},
		{"bf16", true, all},
		{"auto", false, BF16Products{}},
		{"auto", true, all},
	}
	for _, c := range cases {
		got, err := BF16ProductsFor(c.mode, c.native)
		if err != nil || got != c.want {
			t.Errorf("BF16ProductsFor(%q, %v) = %+v, %v; want %+v", c.mode, c.native, got, err, c.want)
		}
	}
	if _, err := BF16ProductsFor("fp16", true); err == nil || !strings.Contains(err.Error(), `"fp16"`) {
		t.Errorf("BF16ProductsFor(fp16): error %v, want one naming the mode", err)
	}
}

// The breakdown names the scratch only when there is one.
func TestEstimateStringBF16(t *testing.T) {
	cfg := find(t, "qwen2.5-0.5b")
	s := Settings{Quant: QuantNone, Method: "lora", Rank: 8, Optimizer: "adamw", BatchSize: 1, SeqLen: 512, GradCheckpointing: true}
	if str := Compute(cfg, s).String(); strings.Contains(str, "bf16") {
		t.Errorf("f32 compute: %q mentions bf16", str)
	}
	s.BF16, s.Threads = BF16Products{Head: true, Projections: true}, 2
	if str := Compute(cfg, s).String(); !strings.Contains(str, "bf16 compute scratch 198.2 MiB, overhead") {
		t.Errorf("bf16 compute: %q lacks the scratch (3 × 66.1 MiB) before the overhead", str)
	}
}

// AutoAdjust plans with the scratch: a budget that holds a 2048-token step with f32
// compute holds a shorter one with bf16 compute.
func TestAutoAdjustBF16(t *testing.T) {
	cfg := find(t, "qwen2.5-0.5b")
	s := Settings{Quant: QuantNone, Method: "lora", Rank: 8, Optimizer: "adamw", BatchSize: 1, SeqLen: 2048,
		GradCheckpointing: true, KeptBudget: -1}
	budget := Compute(cfg, s).Total + 16<<20
	m := Machine{RAMBytes: int64(float64(budget)/BudgetFraction) + 1}
	f32 := AutoAdjust(cfg, Request{Settings: s, GradAccum: 1}, m)
	s.BF16, s.Threads = BF16Products{Head: true, Projections: true}, 2
	bf16 := AutoAdjust(cfg, Request{Settings: s, GradAccum: 1}, m)
	if f32.SeqLen != 2048 || !f32.Fits {
		t.Fatalf("f32 compute: plan %+v, want 2048 tokens that fit", f32)
	}
	if bf16.SeqLen >= 2048 || !bf16.Fits || bf16.Estimate.BF16Scratch == 0 {
		t.Errorf("bf16 compute: seq %d fits %v scratch %d; want a shorter sequence that fits, scratch counted",
			bf16.SeqLen, bf16.Fits, bf16.Estimate.BF16Scratch)
	}
}
