package merge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/bidora/bidora/internal/metafile"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/bidora/bidora/kernels"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/nn"
	"github.com/bidora/bidora/peft"
	"github.com/bidora/bidora/safetensors"
)

// Adapter is a PEFT LoRA or DoRA adapter checked against a base model's
// config, one Module per adapted projection.
type Adapter struct {
	Config *peft.Config
	// Modules are sorted by layer, then in modelcfg.Projections order.
	Modules []*Module
}

// Module is the adapter of one projection weight W [Out, In].
type Module struct {
	Layer int
	Proj  string // q_proj … down_proj
	// Weight is the base model's tensor name, e.g. "model.layers.0.self_attn.q_proj.weight".
	Weight        string
	Out, In, Rank int
	// Scale is s = alpha/r (alpha/√r with rsLoRA), after rank and alpha patterns.
	Scale float64
	A     []float32 // [Rank, In]
	B     []float32 // [Out, Rank]
	// Magnitude is the DoRA magnitude m [Out]; nil for plain LoRA.
	Magnitude []float32
}

// DoRA reports whether the adapter uses DoRA magnitudes.
func (a *Adapter) DoRA() bool { return a.Config.UseDora }

// Module returns the module adapting the named base weight (nil if none).
func (a *Adapter) Module(weight string) *Module {
	for _, m := range a.Modules {
		if m.Weight == weight {
			return m
		}
	}
	return nil
}

// LoadAdapter reads a PEFT adapter directory and checks it against the base
// model's config: every tensor a well-formed decoder-layer LoRA key, shapes
// that fit the base's projections, layers within range, and every projection
// that target_modules selects (within layers_to_transform, when set) present.
// Pieces bidora cannot merge — modules_to_save, embedding or lm_head adapters,
// regular-expression target_modules, LoRA biases — are reported as errors
// naming what was found.
func LoadAdapter(dir string, base *modelcfg.Config) (*Adapter, error) {
	if err := checkSupported(dir); err != nil {
		return nil, err
	}
	cfg, tensors, err := peft.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", dir, err)
	}
	shapes := make(map[string][]int, len(tensors))
	for n, t := range tensors {
		shapes[n] = t.Shape
	}
	if err := peft.Check(cfg, shapes, base); err != nil {
		return nil, fmt.Errorf("adapter %s does not fit the base model: %w", dir, err)
	}
	layers, err := layersToTransform(dir, base.NumHiddenLayers)
	if err != nil {
		return nil, err
	}
	for _, t := range cfg.TargetModules {
		if err := checkTarget(t, base.NumHiddenLayers); err != nil {
			return nil, fmt.Errorf("adapter %s: %w", dir, err)
		}
	}
	ad := &Adapter{Config: cfg}
	var missing []string
	for _, layer := range layers {
		for _, proj := range modelcfg.Projections {
			module := peft.ModuleName(layer, proj)
			a, okA := tensors[peft.KeyA(layer, proj)]
			if !okA {
				if cfg.Targets(module) {
					missing = append(missing, module)
				}
				continue
			}
			b := tensors[peft.KeyB(layer, proj)]
			m := &Module{
				Layer: layer, Proj: proj, Weight: module + ".weight",
				Out: b.Shape[0], In: a.Shape[1], Rank: a.Shape[0],
				Scale: cfg.ScaleFor(module), A: a.Data, B: b.Data,
			}
			if cfg.UseDora {
				m.Magnitude = tensors[peft.KeyMagnitude(layer, proj)].Data
			}
			ad.Modules = append(ad.Modules, m)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("adapter %s: target_modules %v selects %d projection(s) that have no lora_A/lora_B weights, e.g. %s; the adapter file is incomplete or belongs to another base model", dir, cfg.TargetModules, len(missing), missing[0])
	}
	if len(ad.Modules) != countModules(shapes) {
		return nil, fmt.Errorf("adapter %s: some adapted layers are outside layers_to_transform", dir)
	}
	return ad, nil
}

// checkTarget reports a target_modules entry that selects none of the
// projections of a decoder with numLayers layers.
func checkTarget(t string, numLayers int) error {
	last := t[strings.LastIndexByte(t, '.')+1:]
	switch last {
	case "embed_tokens":
		return fmt.Errorf("target_modules entry %q adapts the token embedding; embedding adapters are not supported", t)
	case "lm_head":
		return fmt.Errorf("target_modules entry %q adapts the output head; lm_head adapters are not supported", t)
	}
	one := &peft.Config{TargetModules: []string{t}}
	for layer := 0; layer < numLayers; layer++ {
		for _, proj := range modelcfg.Projections {
			if one.Targets(peft.ModuleName(layer, proj)) {
				return nil
			}
		}
	}
	return fmt.Errorf("target_modules entry %q selects none of the projections bidora supports (%s)", t, strings.Join(modelcfg.Projections, ", "))
}

func countModules(shapes map[string][]int) int {
	n := 0
	for name := range shapes {
		if strings.HasSuffix(name, ".lora_A.weight") {
			n++
		}
	}
	return n
}

// checkSupported looks at the raw tensor names of an adapter for pieces that
// peft.Load would only report as malformed keys, to name them clearly.
func checkSupported(dir string) error {
	path := filepath.Join(dir, peft.WeightsFileName)
	f, err := safetensors.Open(path)
	if err != nil {
		return fmt.Errorf("reading adapter weights: %w", err)
	}
	defer f.Close()
	for _, name := range f.Names() {
		switch {
		case strings.Contains(name, "lora_embedding_A") || strings.Contains(name, "lora_embedding_B"):
			return fmt.Errorf("%s: tensor %q is an embedding adapter (target_modules includes embed_tokens); merging embedding adapters is not supported", path, name)
		case strings.Contains(name, "modules_to_save") || strings.HasSuffix(name, "embed_tokens.weight") || strings.HasSuffix(name, "lm_head.weight"):
			return fmt.Errorf("%s: tensor %q is a fully trained module (modules_to_save); such adapters are not supported", path, name)
		case strings.Contains(name, "lm_head."):
			return fmt.Errorf("%s: tensor %q adapts lm_head; adapters on the output head are not supported", path, name)
		case strings.Contains(name, ".lora_B.bias") || strings.Contains(name, ".lora_A.bias"):
			return fmt.Errorf("%s: tensor %q is a LoRA bias (lora_bias); not supported", path, name)
		}
	}
	return nil
}

// layersToTransform reads PEFT's layers_to_transform (an int or a list), which
// package peft does not model, and returns the layers adapters may sit on.
func layersToTransform(dir string, numLayers int) ([]int, error) {
	all := make([]int, numLayers)
	for i := range all {
		all[i] = i
	}
	data, err := metafile.Read(filepath.Join(dir, peft.ConfigFileName), metafile.MaxJSONBytes)
	if err != nil {
		return nil, fmt.Errorf("reading adapter config: %w", err)
	}
	var raw struct {
		Layers json.RawMessage `json:"layers_to_transform"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, peft.ConfigFileName), err)
	}
	v := bytes.TrimSpace(raw.Layers)
	if len(v) == 0 || string(v) == "null" {
		return all, nil
	}
	var one int
	var list []int
	if err := json.Unmarshal(v, &one); err == nil {
		list = []int{one}
	} else if err := json.Unmarshal(v, &list); err != nil {
		return nil, fmt.Errorf("%s: layers_to_transform: want null, an integer or a list of integers, got %s", filepath.Join(dir, peft.ConfigFileName), v)
	}
	sort.Ints(list)
	list = slices.Compact(list)
	for _, l := range list {
		if l < 0 || l >= numLayers {
			return nil, fmt.Errorf("%s: layers_to_transform has layer %d; the base model has %d layers", filepath.Join(dir, peft.ConfigFileName), l, numLayers)
		}
	}
	return list, nil
}

// Apply folds the module into w, the base weight [Out, In] in float32, in
// place: LoRA W' = W + s·B·A; DoRA W' = (m / ‖W + s·B·A‖_row) ⊙ (W + s·B·A),
// the norm taken over each output row (accumulated in float64). A row whose
// norm is zero is left at zero.
func (m *Module) Apply(w []float32) error {
	if len(w) != m.Out*m.In {
		return fmt.Errorf("%s: base weight has %d values, want %d×%d", m.Weight, len(w), m.Out, m.In)
	}
	if len(m.A) != m.Rank*m.In || len(m.B) != m.Out*m.Rank || (m.Magnitude != nil && len(m.Magnitude) != m.Out) {
		return errors.New(m.Weight + ": adapter tensors do not match the module's shape")
	}
	s := float32(m.Scale)
	in, r := m.In, m.Rank
	kernels.Parallel(m.Out, 16, func(lo, hi int) {
		for o := lo; o < hi; o++ {
			row := w[o*in : (o+1)*in]
			if m.Magnitude == nil {
				nn.AddRowDelta(row, o, m.A, m.B, r, s)
				continue
			}
			n := nn.DeltaRowNorm(row, o, m.A, m.B, r, s)
			if n == 0 {
				continue
			}
			f := float32(float64(m.Magnitude[o]) / n)
			for i := range row {
				row[i] *= f
			}
		}
	})
	return nil
}
