package train

import (
	"encoding/json"
	"math"
	"sort"
)

// Metrics is one line of metrics.jsonl.
type Metrics struct {
	Step      int      `json:"step"`
	Phase     string   `json:"phase,omitempty"` // the Phase's name
	Epoch     float64  `json:"epoch"`
	Loss      float64  `json:"loss,omitempty"`
	LR        float64  `json:"lr,omitempty"`
	GradNorm  float64  `json:"grad_norm,omitempty"`
	TokensPS  float64  `json:"tokens_per_s,omitempty"`
	Tokens    int      `json:"tokens,omitempty"`
	ValLoss   *float64 `json:"val_loss,omitempty"`
	ElapsedS  float64  `json:"elapsed_s"`
	TotalStep int      `json:"-"`
	// Extra holds the stepper's own metrics (Stats.Extra), written as further keys of
	// the same JSON object.
	Extra map[string]float64 `json:"-"`
}

// metricsJSON is Metrics without its methods (for encoding/json).
type metricsJSON Metrics

// MarshalJSON writes the common fields, then Extra's keys in sorted order; values
// JSON cannot hold (NaN, ±Inf) are written as null.
func (m Metrics) MarshalJSON() ([]byte, error) {
	c := metricsJSON(m)
	for _, f := range []*float64{&c.Loss, &c.LR, &c.GradNorm, &c.TokensPS, &c.ElapsedS} {
		if math.IsNaN(*f) || math.IsInf(*f, 0) {
			*f = 0
		}
	}
	if c.ValLoss != nil && (math.IsNaN(*c.ValLoss) || math.IsInf(*c.ValLoss, 0)) {
		c.ValLoss = nil
	}
	base, err := json.Marshal(c)
	if err != nil || len(m.Extra) == 0 {
		return base, err
	}
	keys := make([]string, 0, len(m.Extra))
	for k := range m.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := base[:len(base)-1]
	for _, k := range keys {
		kj, _ := json.Marshal(k)
		v := m.Extra[k]
		vj := []byte("null")
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			vj, _ = json.Marshal(v)
		}
		out = append(append(append(append(out, ','), kj...), ':'), vj...)
	}
	return append(out, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes: unknown numeric keys go to Extra.
func (m *Metrics) UnmarshalJSON(data []byte) error {
	var c metricsJSON
	if err := json.Unmarshal(data, &c); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	known := map[string]bool{"step": true, "phase": true, "epoch": true, "loss": true, "lr": true, "grad_norm": true,
		"tokens_per_s": true, "tokens": true, "val_loss": true, "elapsed_s": true}
	for k, raw := range all {
		var v float64
		if known[k] || json.Unmarshal(raw, &v) != nil {
			continue
		}
		if c.Extra == nil {
			c.Extra = map[string]float64{}
		}
		c.Extra[k] = v
	}
	*m = Metrics(c)
	return nil
}
