package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/nn"
	"github.com/bidora/bidora/optim"
	"github.com/bidora/bidora/peft"
	"github.com/bidora/bidora/safetensors"
)

// AdapterConfig describes the adapters to attach: which projections, rank, scaling,
// dropout, DoRA, with PEFT's per-module rank and alpha patterns.
type AdapterConfig struct {
	Targets []string // projection names (q_proj, …, down_proj) or "all-linear"
	Rank    int
	Alpha   float64
	Dropout float64
	RSLoRA  bool // scale alpha/√r instead of alpha/r
	DoRA    bool
	// RankPattern and AlphaPattern override Rank and Alpha for modules whose name
	// (model.layers.{i}.self_attn.q_proj) matches a key as in PEFT: the first key, in
	// order, that matches a dot-separated suffix of the name as a regular expression.
	RankPattern  peft.Patterns
	AlphaPattern peft.Patterns
}

// PEFT returns the adapter_config.json for this configuration.
func (c *AdapterConfig) PEFT(baseModel string) *peft.Config {
	pc := peft.NewConfig(baseModel, c.Rank, c.Alpha, c.Dropout, c.Targets)
	pc.UseDora, pc.UseRslora = c.DoRA, c.RSLoRA
	pc.RankPattern, pc.AlphaPattern = c.RankPattern, c.AlphaPattern
	return pc
}

// AdapterConfigFromPEFT converts a PEFT adapter config.
func AdapterConfigFromPEFT(pc *peft.Config) AdapterConfig {
	return AdapterConfig{Targets: slices.Clone(pc.TargetModules), Rank: pc.R, Alpha: pc.LoraAlpha, Dropout: pc.LoraDropout,
		RSLoRA: pc.UseRslora, DoRA: pc.UseDora, RankPattern: pc.RankPattern, AlphaPattern: pc.AlphaPattern}
}

// targets expands "all-linear" and checks the names.
func (c *AdapterConfig) targets() ([]string, error) {
	var out []string
	for _, t := range c.Targets {
		switch {
		case t == "all-linear":
			out = append(out, modelcfg.Projections...)
		case slices.Contains(modelcfg.Projections, t):
			out = append(out, t)
		default:
			return nil, fmt.Errorf("adapter target %q is not one of %s or all-linear", t, strings.Join(modelcfg.Projections, ", "))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("adapter has no target modules")
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// rankScale gives the rank and scale of one module, resolving patterns as PEFT does.
func (c *AdapterConfig) rankScale(module string) (int, float64) {
	pc := c.PEFT("")
	return pc.RankFor(module), pc.ScaleFor(module)
}

// moduleName is the HF module path of a projection (model.layers.{i}.self_attn.q_proj).
func moduleName(layer int, proj string) string { return peft.ModuleName(layer, proj) }

// AddAdapters attaches fresh adapters as PEFT initialises them: A Kaiming-uniform
// (a = √5, i.e. U(−1/√in, 1/√in)), B = 0, DoRA magnitude = row norms of W. It
// replaces any adapters already attached.
func (m *Model) AddAdapters(cfg AdapterConfig) error {
	targets, err := cfg.targets()
	if err != nil {
		return err
	}
	if cfg.Dropout < 0 || cfg.Dropout >= 1 {
		return fmt.Errorf("adapter dropout must be in [0, 1), got %g", cfg.Dropout)
	}
	rng := rand.New(rand.NewPCG(m.opts.Seed, 0x10a))
	m.params = nil
	m.ws = nil
	for l, ly := range m.Layers {
		for p, name := range modelcfg.Projections {
			lin := ly.Proj[p]
			lin.Adapter = nil
			if !slices.Contains(targets, name) {
				continue
			}
			r, scale := cfg.rankScale(moduleName(l, name))
			if r <= 0 {
				return fmt.Errorf("adapter rank for %s must be positive, got %d", moduleName(l, name), r)
			}
			out, in := lin.W.Rows, lin.W.Cols
			a := &nn.Adapter{R: r, Scale: float32(scale), Dropout: float32(cfg.Dropout), DoRA: cfg.DoRA,
				A: make([]float32, r*in), B: make([]float32, out*r), GA: make([]float32, r*in), GB: make([]float32, out*r)}
			bound := 1 / math.Sqrt(float64(in))
			for i := range a.A {
				a.A[i] = float32((2*rng.Float64() - 1) * bound)
			}
			lin.Adapter = a
			m.params = append(m.params,
				optim.Param{Name: peft.KeyA(l, name), Shape: []int{r, in}, Data: a.A, Grad: a.GA},
				optim.Param{Name: peft.KeyB(l, name), Shape: []int{out, r}, Data: a.B, Grad: a.GB})
			if cfg.DoRA {
				a.M, a.GM = make([]float32, out), make([]float32, out)
				a.UpdateNorm(lin.W)
				copy(a.M, a.Norm())
				m.params = append(m.params, optim.Param{Name: peft.KeyMagnitude(l, name), Shape: []int{out}, Data: a.M, Grad: a.GM})
			}
		}
	}
	c := cfg
	c.Targets = targets
	m.adapter = &c
	return nil
}

// Adapter returns the attached adapters' configuration (nil when none).
func (m *Model) Adapter() *AdapterConfig { return m.adapter }

// ReadAdapterConfig reads dir/adapter_config.json (validated by package peft).
func ReadAdapterConfig(dir string) (*AdapterConfig, error) {
	pc, err := peft.ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	cfg := AdapterConfigFromPEFT(pc)
	if _, err := cfg.targets(); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, peft.ConfigFileName), err)
	}
	return &cfg, nil
}

// LoadAdapter attaches the PEFT adapter in dir (adapter_config.json and
// adapter_model.safetensors). When an adapter with the same configuration is already
// attached, its tensors are overwritten in place, so Params() keeps returning the same
// slices (a trainer resuming from a checkpoint relies on this); otherwise the adapter
// replaces any attached before.
func (m *Model) LoadAdapter(dir string) error {
	pc, tensors, err := peft.Load(dir)
	if err != nil {
		return err
	}
	cfg := AdapterConfigFromPEFT(pc)
	if m.adapter == nil || !sameAdapter(m.adapter, &cfg) {
		if err := m.AddAdapters(cfg); err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
	}
	path := filepath.Join(dir, peft.WeightsFileName)
	want := map[string]bool{}
	for _, p := range m.params {
		want[p.Name] = true
		t, ok := tensors[p.Name]
		if !ok {
			return fmt.Errorf("%s: tensor %s is missing", path, p.Name)
		}
		if !slices.Equal(t.Shape, p.Shape) {
			return fmt.Errorf("%s: %w", path, errShape(p.Name, t.Shape, p.Shape))
		}
		copy(p.Data, t.Data)
	}
	for name := range tensors {
		if !want[name] {
			return fmt.Errorf("%s: unexpected tensor %s for this adapter config and model", path, name)
		}
	}
	return nil
}

// sameAdapter reports whether two configurations give the same adapter tensors.
func sameAdapter(a, b *AdapterConfig) bool {
	ta, errA := a.targets()
	tb, errB := b.targets()
	if errA != nil || errB != nil || !slices.Equal(ta, tb) || a.DoRA != b.DoRA || a.Dropout != b.Dropout {
		return false
	}
	return a.Rank == b.Rank && a.Alpha == b.Alpha && a.RSLoRA == b.RSLoRA &&
		slices.Equal(a.RankPattern, b.RankPattern) && slices.Equal(a.AlphaPattern, b.AlphaPattern)
}

// SaveAdapter writes the adapters as a PEFT adapter dir loadable by
// PeftModel.from_pretrained, naming Options.Name as the base model (each file written
// to a temporary name and renamed).
func (m *Model) SaveAdapter(dir string) error {
	baseModel := m.opts.Name
	if m.adapter == nil {
		return fmt.Errorf("model has no adapter to save")
	}
	var tensors []safetensors.Tensor
	for _, p := range m.params {
		t, err := safetensors.NewTensor(p.Name, safetensors.F32, p.Shape, p.Data)
		if err != nil {
			return err
		}
		tensors = append(tensors, t)
	}
	return peft.Save(dir, m.adapter.PEFT(baseModel), tensors) // its errors name the directory
}
