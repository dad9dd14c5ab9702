package memplan

import "testing"

// TestAutoPrefersBF16BaseOverQuantising: with quantization auto and the base dtype
// resolved from an f32 checkpoint, auto-adjust holds the base in bf16 before it
// quantises; an f32 base the user asked for is never demoted.
func TestAutoPrefersBF16BaseOverQuantising(t *testing.T) {
	cfg := find(t, "qwen2.5-1.5b")
	w := Compute(cfg, Settings{Quant: QuantNone, BaseDType: BaseF32, BatchSize: 1, SeqLen: 512, Rank: 8, Targets: []string{"q_proj"}, GradCheckpointing: true})
	// Memory where f32 weights exceed the weight share but bf16 ones fit.
	ram := int64(float64(w.Weights+w.Embeddings) / WeightShareLimit / BudgetFraction * 0.75)
	req := Request{Settings: Settings{Quant: QuantAuto, BaseDType: BaseF32, BatchSize: 1, SeqLen: 512, Rank: 8,
		Targets: []string{"q_proj"}, GradCheckpointing: true}, GradAccum: 1}
	req.BaseDTypeAuto = true
	p := AutoAdjust(cfg, req, Machine{RAMBytes: ram})
	if p.Quant != QuantNone || p.BaseDType != BaseBF16 {
		t.Fatalf("auto base: quantization %s base %s, want none with a bf16 base\n%v", p.Quant, p.BaseDType, p.Reasons)
	}
	req.BaseDTypeAuto = false
	p = AutoAdjust(cfg, req, Machine{RAMBytes: ram})
	if p.Quant == QuantNone || p.BaseDType != BaseF32 {
		t.Fatalf("asked-for f32 base: quantization %s base %s, want a quantised f32 base", p.Quant, p.BaseDType)
	}
}
