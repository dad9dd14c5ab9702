package memplan

import (
	"testing"
)

// AutoAdjust sizes the kept-activation budget from the memory the rest of the run
// leaves: none on a machine with nothing to spare, more layers kept with more memory,
// never above KeptShare of the budget, always counted in the estimate and always within
// the budget; and it never costs batch or sequence length (the plan's other choices
// equal those with no kept activations at all).
func TestAutoAdjustKeptBudget(t *testing.T) {
	cfg := find(t, "qwen2.5-0.5b")
	req := Request{Settings: Settings{Quant: QuantNone, Method: "lora", Rank: 8, Targets: []string{"all-linear"},
		Optimizer: "adamw", BatchSize: 1, SeqLen: 512, GradCheckpointing: true}, GradAccum: 1,
		Fixed: Fixed{BatchSize: true, GradAccum: true, SeqLen: true}}
	s := req.Settings
	s.KeptBudget = -1
	bare := Compute(cfg, s).Total
	per := LayerActivationsPerToken(cfg, s) * 512 * BytesF32
	prevKept := int64(-1)
	for _, ram := range []int64{bare * 5 / 4, bare*5/4 + 3*per, 4 * gib, 8 * gib, 64 * gib} {
		p := AutoAdjust(cfg, req, Machine{RAMBytes: ram})
		if !p.Fits || p.Estimate.Total > p.BudgetBytes {
			t.Fatalf("RAM %s: plan does not fit: %s > %s", FormatBytes(ram), p.Estimate, FormatBytes(p.BudgetBytes))
		}
		s.KeptBudget = p.KeptBudget
		kept := KeptLayers(cfg, s)
		if p.Estimate.KeptActivations != kept*per {
			t.Errorf("RAM %s: estimate counts %d B of kept activations, want %d layers × %d B", FormatBytes(ram), p.Estimate.KeptActivations, kept, per)
		}
		if p.KeptBudget > int64(float64(p.BudgetBytes)*KeptShare) {
			t.Errorf("RAM %s: kept budget %s above %.0f%% of the %s budget", FormatBytes(ram), FormatBytes(p.KeptBudget), KeptShare*100, FormatBytes(p.BudgetBytes))
		}
		if kept < prevKept {
			t.Errorf("RAM %s: %d layers kept, fewer than the %d of a smaller machine", FormatBytes(ram), kept, prevKept)
		}
		prevKept = kept
		switch ram {
		case bare * 5 / 4: // the budget (80%) is exactly the bare run: nothing to spare
			if p.KeptBudget >= 0 || kept != 0 {
				t.Errorf("no memory to spare: kept budget %d, %d layers kept; want none", p.KeptBudget, kept)
			}
		case bare*5/4 + 3*per: // 80% of 3 layers to spare: 2 layers
			if kept != 2 {
				t.Errorf("2.4 layers to spare: %d layers kept, want 2", kept)
			}
		case 64 * gib:
			if kept != int64(cfg.NumHiddenLayers-1) {
				t.Errorf("64 GiB: %d layers kept, want all %d below the last", kept, cfg.NumHiddenLayers-1)
			}
		}
	}

	// Sequence length is chosen without the kept activations: where auto-adjust had to
	// shrink it, twice the chosen length does not fit even with none kept.
	shrunk := 0
	for _, ram := range []int64{2 * gib, 3 * gib, 4 * gib} {
		r := defaultRequest()
		r.Quant, r.Fixed.BatchSize = QuantNone, true
		p := AutoAdjust(cfg, r, Machine{RAMBytes: ram})
		if p.SeqLen >= r.SeqLen {
			continue
		}
		shrunk++
		s := r.Settings
		s.SeqLen, s.KeptBudget = 2*p.SeqLen, -1
		if e := Compute(cfg, s); e.Total <= p.BudgetBytes {
			t.Errorf("RAM %s: max-seq-len shrunk to %d, but %d fits without kept activations (%s ≤ %s)",
				FormatBytes(ram), p.SeqLen, s.SeqLen, FormatBytes(e.Total), FormatBytes(p.BudgetBytes))
		}
	}
	if shrunk == 0 {
		t.Error("no machine made auto-adjust shrink max-seq-len: the check above ran on nothing")
	}
}

// An explicit Settings.KeptBudget replaces the default; negative keeps none.
func TestKeptBudgetSetting(t *testing.T) {
	cfg := find(t, "qwen2.5-0.5b")
	s := Settings{Method: "lora", Rank: 8, Targets: []string{"all-linear"}, BatchSize: 1, SeqLen: 512, GradCheckpointing: true}
	per := LayerActivationsPerToken(cfg, s) * 512 * BytesF32
	for _, c := range []struct {
		budget, want int64
	}{{0, KeptActivationsBudget / per}, {-1, 0}, {3*per + 1, 3}, {per - 1, 0}, {1 << 40, int64(cfg.NumHiddenLayers - 1)}} {
		s.KeptBudget = c.budget
		if got := KeptLayers(cfg, s); got != c.want {
			t.Errorf("KeptBudget %d: %d layers kept, want %d", c.budget, got, c.want)
		}
	}
}
