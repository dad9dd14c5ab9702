package model

import "testing"

// Options.KeptActivationsBudget replaces the default kept-activation budget: 0 keeps
// the default, a negative value keeps no layer, a positive one as many whole layers
// as fit (at most all but the last).
func TestKeptActivationsBudgetOption(t *testing.T) {
	const per = 1000
	for _, c := range []struct {
		budget int64
		want   int
	}{{0, -1}, {-1, 0}, {2*per + 999, 2}, {per - 1, 0}, {1 << 62, -2}} {
		m := tinyModel(t, "llama", Options{Seed: 1, KeptActivationsBudget: c.budget}, AdapterConfig{Targets: []string{"q_proj"}, Rank: 2, Alpha: 4})
		L := len(m.Layers)
		want := c.want
		switch want {
		case -1:
			want = min(L-1, KeptActivationsBudget/per)
		case -2:
			want = L - 1
		}
		if got := m.keptLayers(per); got != want {
			t.Errorf("budget %d: %d layers kept, want %d", c.budget, got, want)
		}
	}
}
